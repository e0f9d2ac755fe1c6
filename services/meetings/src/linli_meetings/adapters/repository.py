"""Meetings, decisions, documents and the issue replica stored with SQLAlchemy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, Row, Select, and_, bindparam, case, func, insert, or_, select
from sqlalchemy.orm import Session, raiseload

from linli_kit.events.outbox import Outbox
from linli_kit.search import TextIndex
from linli_meetings.adapters import counts, tables
from linli_meetings.domain.decision import ActionItem, CommunityDocument, Decision, Vote
from linli_meetings.domain.meeting import AgendaItem, Meeting, Participant, PeopleCounts
from linli_meetings.domain.procedure import Count
from linli_meetings.domain.proposal import MeetingProposal

# What a search reads of a meeting (migration 0010 made the index).
MEETING_TEXT = TextIndex("meetings", "id", ("title", "description"))


class _StreetCache:
    """community -> street for event envelopes, kept a few seconds in the process.

    Only the `street_id` an event travels with is read from here; authorisation always asks the
    replica. A community moved to another street is announced with the old street for at most
    TTL seconds, which no consumer relies on (each keeps its own replica).
    """

    TTL = 30.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, community_id: str, load: Callable[[str], str | None]) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(community_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        street_id = load(community_id)
        with self._lock:
            if len(self._entries) > 50_000:
                self._entries.clear()
            if street_id is not None:  # an unknown community may reach the replica any moment
                self._entries[community_id] = (street_id, now + self.TTL)
        return street_id


_streets = _StreetCache()

# A new meeting's row, built once (the `meeting_...` parameters of `meeting_parameters`).
MEETING_INSERT = insert(tables.meetings).values(
    {c.name: bindparam(f"meeting_{c.name}") for c in tables.meetings.columns}
)
# PostgreSQL: the meeting and its event (`outbox_...` parameters) in one statement.
MEETING_AND_EVENT_INSERT: Insert = Outbox(tables.messaging.outbox).insert_one_with(
    MEETING_INSERT.returning(tables.meetings.c.id).cte("meeting")
)


# What a list shows of a meeting (MeetingOut): all but its check-in code (staff ask for it) and
# when it was announced and created.
LISTED_COLUMNS = tuple(
    c for c in tables.meetings.columns if c.name not in ("checkin_code", "announced_at", "created_at")
)


_MEETING_PARAMETERS = tuple((f"meeting_{c.name}", c.name) for c in tables.meetings.columns)


def meeting_parameters(meeting: Meeting) -> dict[str, Any]:
    return {parameter: getattr(meeting, name) for parameter, name in _MEETING_PARAMETERS}


class MeetingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *entities: object) -> None:
        self.session.add_all(entities)

    def one_statement_follows(self) -> None:
        """The caller's whole change is the one statement it runs next, then it commits. If the
        session has not begun its transaction yet (nothing read or written), that statement runs
        on its own in autocommit: atomic as any statement is, without the BEGIN and COMMIT round
        trips. Otherwise nothing changes: it is part of the transaction begun."""
        if not self.session.in_transaction():
            self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def insert_new(self, meeting: Meeting) -> None:
        """Insert a meeting being scheduled, its agenda and its participants in three statements of
        fixed text (not through the ORM: scheduling is hot, and a flush of a meeting with some
        seventy new objects costs more than the statements). The objects stay outside the session.

        The statistics' counts (adapters/counts.py) are kept by the session's hooks, which this
        bypasses: a meeting being scheduled has no amounts (it is not concluded, and no decision or
        deliberation names it yet), so there is nothing to add."""
        self.session.execute(MEETING_INSERT, meeting_parameters(meeting))
        for item in meeting.agenda:
            item.meeting_id = meeting.id
        for person in meeting.participants:
            person.meeting_id = meeting.id
        if meeting.agenda:
            columns = tables.agenda_items.columns
            self.session.execute(
                insert(tables.agenda_items), [{c.name: getattr(i, c.name) for c in columns} for i in meeting.agenda]
            )
        if meeting.participants:
            columns = tables.participants.columns
            self.session.execute(
                insert(tables.participants),
                [{c.name: getattr(p, c.name) for c in columns} for p in meeting.participants],
            )

    # --- meetings --------------------------------------------------------------------------------
    def get(self, meeting_id: str, *, lock: bool = False) -> Meeting | None:
        if lock:
            # Registrations and check-ins change the meeting's seats: one writer at a time.
            return self.session.scalars(
                select(Meeting).where(tables.meetings.c.id == meeting_id).with_for_update()
            ).first()
        return self.session.get(Meeting, meeting_id)

    def search(self, visible: ColumnElement[bool], terms: list[str], limit: int) -> list[Row]:
        """Visible meetings holding every term in their title or description (id, title,
        description, community_id, starts_at, in_title): titles holding them all first, then the
        latest."""
        m = tables.meetings
        in_title = MEETING_TEXT.in_title(m, terms)
        query = (
            select(m.c.id, m.c.title, m.c.description, m.c.community_id, m.c.starts_at, in_title.label("in_title"))
            .where(visible, MEETING_TEXT.matches(m, terms, self.session.get_bind().dialect.name))
            .order_by(case((in_title, 1), else_=0).desc(), m.c.starts_at.desc(), m.c.id)
            .limit(limit)
        )
        return list(self.session.execute(query))

    @staticmethod
    def _list_conditions(visible: ColumnElement[bool], filters: dict[str, Any]) -> list[ColumnElement[bool]]:
        m = tables.meetings.c
        conditions = [visible]
        for name in ("community_id", "meeting_type", "status", "series_id"):
            if filters.get(name) is not None:
                conditions.append(m[name] == filters[name])
        if filters.get("public") is not None:
            conditions.append(m.public == filters["public"])
        if filters.get("starts_after") is not None:
            conditions.append(m.starts_at >= filters["starts_after"])
        if filters.get("starts_before") is not None:
            conditions.append(m.starts_at < filters["starts_before"])
        if filters.get("issue_id") is not None:
            conditions.append(
                m.id.in_(
                    select(tables.agenda_items.c.meeting_id).where(
                        tables.agenda_items.c.issue_id == filters["issue_id"]
                    )
                )
            )
        if filters.get("participant_id") is not None:
            conditions.append(m.id.in_(MeetingRepository.meetings_of_user(filters["participant_id"])))
        return conditions

    def list_page(
        self, visible: ColumnElement[bool], *, offset: int, limit: int, **filters: Any
    ) -> tuple[list[Row], int]:
        """A page of the meetings a list shows (rows of LISTED_COLUMNS, soonest first) and how many
        there are in all. Rows, not meetings: a list shows them as they are stored, and loading
        them as objects was a third of its work. The total comes with the page (a window count,
        one statement); only a page past the end asks for it on its own."""
        m = tables.meetings.c
        conditions = self._list_conditions(visible, filters)
        rows = self.session.execute(
            select(*LISTED_COLUMNS, func.count().over().label("total_count"))
            .where(*conditions)
            .order_by(m.starts_at, m.id)
            .offset(offset)
            .limit(limit)
        ).all()
        if rows:
            return list(rows), rows[0].total_count
        if offset == 0:
            return [], 0
        total = self.session.scalar(select(func.count()).select_from(tables.meetings).where(*conditions)) or 0
        return [], total

    def listed_agenda(self, meeting_ids: list[str], user_id: str) -> list[Row]:
        """The agenda items of these meetings in order of position (id, position, title,
        duration_minutes, issue_id, notes, meeting_id: in this order, as schemas.listed_meetings
        unpacks them), each with `private_in`: the community of its
        issue when that issue is private and `user_id` neither reported nor supports it (what
        `issues_hidden_from` answers, read in the same statement)."""
        a, i = tables.agenda_items.c, tables.issue_replica.c
        return list(
            self.session.execute(
                select(
                    a.id,
                    a.position,
                    a.title,
                    a.duration_minutes,
                    a.issue_id,
                    a.notes,
                    a.meeting_id,
                    i.community_id.label("private_in"),
                )
                .select_from(tables.agenda_items)
                .outerjoin(tables.issue_replica, and_(i.issue_id == a.issue_id, ~self._readable_by(user_id)))
                .where(a.meeting_id.in_(meeting_ids))
                .order_by(a.meeting_id, a.position)
            ).all()
        )

    def people_counts(self, meeting_ids: list[str]) -> dict[str, PeopleCounts]:
        p = tables.participants.c
        present = p.checked_in_at.is_not(None)
        rows = self.session.execute(
            select(p.meeting_id, p.enrolment, p.response, present, func.count())
            .where(p.meeting_id.in_(meeting_ids))
            .group_by(p.meeting_id, p.enrolment, p.response, present)
        ).all()
        by_meeting: dict[str, list[tuple[str, str, bool, int]]] = {i: [] for i in meeting_ids}
        for meeting_id, enrolment, response, is_present, n in rows:
            by_meeting[meeting_id].append((enrolment, response, bool(is_present), n))
        return {i: PeopleCounts.tally(r) for i, r in by_meeting.items()}

    def iter_for_feed(self, community_id: str, visible: ColumnElement[bool], limit: int = 500) -> list[Meeting]:
        m = tables.meetings.c
        query = select(Meeting).where(m.community_id == community_id, visible).order_by(m.starts_at.desc()).limit(limit)
        return list(self.session.scalars(query))

    @staticmethod
    def meetings_of_user(user_id: str) -> Select:
        p = tables.participants.c
        return select(p.meeting_id).where(p.user_id == user_id)

    @staticmethod
    def meetings_of_organisation(organisation_id: str) -> Select:
        p = tables.participants.c
        return select(p.meeting_id).where(p.organisation_id == organisation_id)

    @staticmethod
    def meetings_of_committee(organisation_id: str) -> Select:
        """The meetings an owners' committee is invited to as a body."""
        p = tables.participants.c
        return select(p.meeting_id).where(
            p.organisation_id == organisation_id,
            p.role == "owners_committee",
            p.user_id.is_(None),
            p.response != "cancelled",
        )

    def unannounced_before(self, moment: datetime, *, limit: int) -> list[Meeting]:
        m = tables.meetings.c
        return list(
            self.session.scalars(
                select(Meeting)
                .where(m.announced_at.is_(None), m.status == "scheduled", m.starts_at <= moment)
                .order_by(m.starts_at)
                .limit(limit)
                # Two workers never announce the same occurrence twice.
                .with_for_update(skip_locked=True)
            )
        )

    def motion_for_vote(
        self, meeting_id: str, decision_id: str, user_id: str
    ) -> tuple[Decision, Meeting, dict[str, Any] | None, Participant | None, bool] | None:
        """For a vote, in one statement (votes are most of a meeting's requests): the motion, its
        meeting (people and agenda not loaded), the structured rules of the community's current
        rules of procedure (None without any), `user_id`'s participation in the meeting (None:
        none) and whether they voted on the motion.

        The motion's row is share-locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        every writer): votes do not wait for each other, but recording the motion (FOR UPDATE)
        waits for the votes being cast, and a vote waits for the recording and then reads the
        motion as recorded."""
        d, m, doc, p, v = (
            tables.decisions.c,
            tables.meetings.c,
            tables.documents.c,
            tables.participants.c,
            tables.votes.c,
        )
        current_rules = (
            select(doc.rules)
            .where(doc.community_id == m.community_id, doc.kind == "rules_of_procedure")
            .order_by(doc.version.desc())
            .limit(1)
            .scalar_subquery()
        )
        voted = select(v.voter_id).where(v.decision_id == d.id, v.voter_id == user_id).exists()
        row = self.session.execute(
            select(Decision, Meeting, current_rules, Participant, voted.label("voted"))
            .join(Meeting, m.id == d.meeting_id)
            .outerjoin(Participant, and_(p.meeting_id == m.id, p.user_id == user_id))
            .where(d.id == decision_id, m.id == meeting_id)
            .options(raiseload(Meeting.agenda), raiseload(Meeting.participants))
            .with_for_update(read=True, of=tables.decisions)
        ).first()
        return (row[0], row[1], row[2], row[3], bool(row[4])) if row else None

    def committee_voter(
        self, meeting_id: str, decision_id: str, organisation_id: str
    ) -> tuple[Participant | None, bool]:
        """The owners' committee `organisation_id` invited to the meeting as a body, and whether it
        voted on the motion (its vote is stored under its own id)."""
        p = tables.participants.c
        row = self.session.scalars(
            select(Participant).where(
                p.meeting_id == meeting_id,
                p.organisation_id == organisation_id,
                p.role == "owners_committee",
                p.user_id.is_(None),
                p.response != "cancelled",
            )
        ).first()
        return row, self.has_voted(decision_id, organisation_id) if row is not None else False

    def record_deliberations(self, meeting: Meeting) -> None:
        """A concluded meeting deliberated the issues on its agenda (for statistics), each for the
        n-th time counting the meetings that took it up before."""
        issue_ids = list(dict.fromkeys(meeting.issue_ids))
        if not issue_ids:
            return
        # The statistics' read model counts them: the issues' amounts as they were, before these.
        counts.touch(self.session, [("meeting", meeting.id), *(("issue", issue_id) for issue_id in issue_ids)])
        dl = tables.deliberations.c
        before = dict(
            self.session.execute(
                select(dl.issue_id, func.count()).where(dl.issue_id.in_(issue_ids)).group_by(dl.issue_id)
            ).all()
        )
        rows = [
            {
                "meeting_id": meeting.id,
                "issue_id": issue_id,
                "community_id": meeting.community_id,
                "local_date": meeting.local_date,
                "consultation_number": before.get(issue_id, 0) + 1,
            }
            for issue_id in issue_ids
        ]
        self.session.execute(insert(tables.deliberations), rows)

    def agenda_item(self, item_id: str) -> AgendaItem | None:
        return self.session.get(AgendaItem, item_id)

    def participant(self, participant_id: str) -> Participant | None:
        return self.session.get(Participant, participant_id)

    # --- directory replica ----------------------------------------------------------------------------
    def street_of(self, community_id: str) -> str | None:
        c = tables.replica.communities.c
        return self.session.scalar(select(c.street_id).where(c.community_id == community_id))

    def street_for_event(self, community_id: str) -> str | None:
        return _streets.get(community_id, self.street_of)

    @staticmethod
    def communities_of_street(street_id: str) -> Select:
        c = tables.replica.communities.c
        return select(c.community_id).where(c.street_id == street_id)

    # --- meeting types -----------------------------------------------------------------------------
    def meeting_types(self, community_id: str) -> list[dict[str, Any]]:
        t = tables.meeting_types.c
        rows = self.session.execute(
            select(t.key, t.name, t.description).where(t.community_id == community_id).order_by(t.key)
        )
        return [dict(r._mapping) for r in rows]

    def has_meeting_type(self, community_id: str, key: str) -> bool:
        t = tables.meeting_types.c
        return self.session.scalar(select(t.key).where(t.community_id == community_id, t.key == key)) is not None

    def add_meeting_type(self, row: dict[str, Any]) -> None:
        self.session.execute(tables.meeting_types.insert().values(**row))

    def add_series(self, row: dict[str, Any]) -> None:
        self.session.execute(tables.series.insert().values(**row))

    # --- decisions ------------------------------------------------------------------------------------
    def decision(self, decision_id: str, *, lock: bool = False) -> Decision | None:
        if lock:
            return self.session.scalars(
                select(Decision).where(tables.decisions.c.id == decision_id).with_for_update()
            ).first()
        return self.session.get(Decision, decision_id)

    def decisions_of(self, meeting_id: str) -> list[Decision]:
        d = tables.decisions.c
        return list(self.session.scalars(select(Decision).where(d.meeting_id == meeting_id).order_by(d.opened_at)))

    def has_voted(self, decision_id: str, voter_id: str) -> bool:
        v = tables.votes.c
        return (
            self.session.scalar(select(v.voter_id).where(v.decision_id == decision_id, v.voter_id == voter_id))
            is not None
        )

    def votes_of(self, decision_ids: list[str], *, voter_id: str | None = None) -> list[Vote]:
        """The votes on these motions (only one voter's, if given), in the order they were cast."""
        if not decision_ids:
            return []
        v = tables.votes.c
        query = select(Vote).where(v.decision_id.in_(decision_ids))
        if voter_id is not None:
            query = query.where(v.voter_id == voter_id)
        return list(self.session.scalars(query.order_by(v.cast_at, v.voter_id)))

    def roll_calls(self, decision_ids: list[str]) -> dict[str, Count]:
        """The count of the votes stored on each of these motions (zero for a motion without any)."""
        v = tables.votes.c
        counts: dict[str, dict[str, int]] = {i: {} for i in decision_ids}
        if decision_ids:
            for decision_id, choice, n in self.session.execute(
                select(v.decision_id, v.choice, func.count())
                .where(v.decision_id.in_(decision_ids))
                .group_by(v.decision_id, v.choice)
            ):
                counts[decision_id][choice] = n
        return {i: Count(c.get("for", 0), c.get("against", 0), c.get("abstain", 0)) for i, c in counts.items()}

    # --- action items -----------------------------------------------------------------------------------
    def action_item(self, item_id: str, *, lock: bool = False) -> ActionItem | None:
        if lock:
            return self.session.scalars(
                select(ActionItem).where(tables.action_items.c.id == item_id).with_for_update()
            ).first()
        return self.session.get(ActionItem, item_id)

    def action_items_of(self, decision_ids: list[str]) -> list[ActionItem]:
        if not decision_ids:
            return []
        a = tables.action_items.c
        return list(
            self.session.scalars(select(ActionItem).where(a.decision_id.in_(decision_ids)).order_by(a.created_at))
        )

    def list_action_items(
        self, visible: ColumnElement[bool], *, offset: int, limit: int, **filters: Any
    ) -> tuple[list[ActionItem], int]:
        a = tables.action_items.c
        query = select(ActionItem).where(visible)
        for name in (
            "community_id",
            "meeting_id",
            "decision_id",
            "issue_id",
            "status",
            "owner_body",
            "owner_organisation_id",
        ):
            if filters.get(name) is not None:
                query = query.where(a[name] == filters[name])
        if filters.get("overdue_on") is not None:
            query = query.where(a.due_date < filters["overdue_on"], a.status.in_(("open", "in_progress")))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(a.due_date.is_(None), a.due_date, a.id).offset(offset).limit(limit))
        return list(rows), total

    # --- noticeboard ------------------------------------------------------------------------------------
    def recorded_decisions(
        self, community_id: str, *, public_only: bool, limit: int
    ) -> list[tuple[Decision, dict[str, Any]]]:
        """The community's latest recorded decisions, newest first, each with its meeting's title,
        type and date (only those of public meetings when `public_only`)."""
        d, m = tables.decisions.c, tables.meetings.c
        query = (
            select(Decision, m.title, m.meeting_type, m.local_date)
            .join(tables.meetings, m.id == d.meeting_id)
            .where(d.community_id == community_id, d.status == "recorded")
        )
        if public_only:
            query = query.where(m.public.is_(True))
        rows = self.session.execute(query.order_by(d.recorded_at.desc(), d.id).limit(limit)).all()
        return [(row[0], {"meeting_title": row[1], "meeting_type": row[2], "meeting_date": row[3]}) for row in rows]

    def open_action_items(self, community_id: str, *, public_only: bool, limit: int) -> list[ActionItem]:
        """Open or in-progress action items of the community, soonest due first (undated last)."""
        a, m = tables.action_items.c, tables.meetings.c
        query = select(ActionItem).where(a.community_id == community_id, a.status.in_(("open", "in_progress")))
        if public_only:
            query = query.join(tables.meetings, m.id == a.meeting_id).where(m.public.is_(True))
        return list(
            self.session.scalars(query.order_by(a.due_date.is_(None), a.due_date, a.created_at, a.id).limit(limit))
        )

    def upcoming(self, community_id: str, now: datetime, *, public_only: bool, limit: int) -> list[Meeting]:
        """Meetings not yet over (scheduled or running), soonest first, without their people."""
        m = tables.meetings.c
        query = select(Meeting).where(
            m.community_id == community_id, m.status.in_(("scheduled", "in_progress")), m.ends_at >= now
        )
        if public_only:
            query = query.where(m.public.is_(True))
        return list(
            self.session.scalars(
                query.options(raiseload(Meeting.participants)).order_by(m.starts_at, m.id).limit(limit)
            )
        )

    # --- documents -------------------------------------------------------------------------------------
    def current_document(self, community_id: str, kind: str) -> CommunityDocument | None:
        d = tables.documents.c
        return self.session.scalars(
            select(CommunityDocument)
            .where(d.community_id == community_id, d.kind == kind)
            .order_by(d.version.desc())
            .limit(1)
        ).first()

    def document_history(self, community_id: str, kind: str) -> list[CommunityDocument]:
        d = tables.documents.c
        return list(
            self.session.scalars(
                select(CommunityDocument)
                .where(d.community_id == community_id, d.kind == kind)
                .order_by(d.version.desc())
            )
        )

    # --- proposals ---------------------------------------------------------------------------------------
    def proposal(self, proposal_id: str, *, lock: bool = False) -> MeetingProposal | None:
        query = select(MeetingProposal).where(tables.proposals.c.id == proposal_id)
        if lock:
            # Two of the staff answering at once: one answer, the other a 409.
            query = query.with_for_update()
        return self.session.scalars(query).first()

    def list_proposals(
        self, visible: ColumnElement[bool], *, offset: int, limit: int, **filters: Any
    ) -> tuple[list[MeetingProposal], int]:
        pr = tables.proposals.c
        query = select(MeetingProposal).where(visible)
        for name in ("community_id", "issue_id", "status"):
            if filters.get(name) is not None:
                query = query.where(pr[name] == filters[name])
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(pr.created_at.desc(), pr.id).offset(offset).limit(limit))
        return list(rows), total

    # --- register of organisations (replicated) --------------------------------------------------------
    def organisation(self, organisation_id: str) -> dict[str, Any] | None:
        """A registered organisation, as the gateway's register has it (None: not registered)."""
        o = tables.replica.organisations
        assert o is not None
        row = self.session.execute(select(o).where(o.c.organisation_id == organisation_id)).first()
        return dict(row._mapping) if row else None

    def community_of_compound(self, compound_id: str) -> str | None:
        c = tables.replica.compounds.c
        return self.session.scalar(select(c.community_id).where(c.compound_id == compound_id))

    # --- issue replica ----------------------------------------------------------------------------------
    def issue(self, issue_id: str) -> dict[str, Any] | None:
        """The issue as the issues service last described it (None: not known here yet)."""
        i = tables.issue_replica.c
        row = self.session.execute(select(i).where(i.issue_id == issue_id)).first()
        return dict(row._mapping) if row else None

    def issue_titles(self, issue_ids: set[str]) -> dict[str, str]:
        i = tables.issue_replica.c
        rows = self.session.execute(select(i.issue_id, i.title).where(i.issue_id.in_(sorted(issue_ids))))
        return {r.issue_id: r.title for r in rows}

    @staticmethod
    def _readable_by(user_id: str | None) -> ColumnElement[bool]:
        """Issues whose title `user_id` may read whatever their visibility: not private, or
        reported or supported by them (the staff's scope is the service layer's business)."""
        i = tables.issue_replica.c
        s = tables.issue_supporters.c
        if user_id is None:
            return i.visibility != "private"
        supported = select(s.issue_id).where(s.user_id == user_id)
        return or_(i.visibility != "private", i.reporter_id == user_id, i.issue_id.in_(supported))

    def issues_hidden_from(self, issue_ids: set[str], user_id: str | None) -> dict[str, str]:
        """Of these issues, the private ones `user_id` neither reported nor supports:
        {issue_id: community_id}. Issues the replica does not know are not among them."""
        i = tables.issue_replica.c
        rows = self.session.execute(
            select(i.issue_id, i.community_id).where(i.issue_id.in_(sorted(issue_ids)), ~self._readable_by(user_id))
        )
        return {r.issue_id: r.community_id for r in rows}

    def candidate_issues(
        self,
        community_id: str,
        pending: tuple[str, ...],
        *,
        offset: int,
        limit: int,
        private_for: str | None = None,
        include_private: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """The community's pending issues; private ones only with `include_private` (the staff in
        scope) or when `private_for` reported or supports them."""
        i = tables.issue_replica.c
        a = tables.agenda_items.c
        m = tables.meetings.c
        query = select(i).where(i.community_id == community_id, i.status.in_(pending))
        if not include_private:
            query = query.where(self._readable_by(private_for))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        # How often each issue has already been on the agenda of a concluded meeting.
        consultations = (
            select(func.count())
            .select_from(tables.agenda_items.join(tables.meetings, m.id == a.meeting_id))
            .where(a.issue_id == i.issue_id, m.status == "concluded")
            .scalar_subquery()
        )
        rows = self.session.execute(
            query.add_columns(consultations.label("consultations"))
            .order_by(i.supporter_count.desc(), i.updated_at, i.issue_id)
            .offset(offset)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows], total
