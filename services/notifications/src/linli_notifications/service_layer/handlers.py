"""Rules from domain events to notifications (who is told what), and the state they keep:
recipients from accounts, follows of reporters and supporters, meetings (whose reminders are
scheduled here) and activities (whose reminders the activities service sends: `activity_reminder`).

Every handler runs inside the consumer's transaction with its inbox row: it never commits, and a
redelivered event is skipped by the inbox before it gets here. Order is checked with `revision`.

A notice says what changed, and nothing is sent when nothing did: the issues service also publishes
an issue's snapshot when only its consultations were counted (`from_status` equal to `status`), or
escalates an issue whose status stays the same. Each person's last known status and assignee of an
issue is kept (`issue_knowledge`), so a progress notice goes only to those for whom it is news.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.orm import Session

from linli_kit.events import Event
from linli_kit.events.consumer import BatchHandler, Handler, batch_handler
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import (
    deliveries,
    follows,
    issue_knowledge,
    notifications,
    recipient_communities,
    recipients,
    reminders,
    reminders_only,
    replica,
    subjects,
)
from linli_notifications.domain.access import COMMUNITY, PRIVATE, Subject
from linli_notifications.domain.clock import Clock
from linli_notifications.domain.model import Category, Intent
from linli_notifications.domain.templates import shorten
from linli_notifications.service_layer.deferred import PlanQueue
from linli_notifications.service_layer.issue_book import ActivityMembers, IssueBook, NewMeetings
from linli_notifications.service_layer.planning import plan, plan_code, plan_many, stable_id

STAFF = ("community_staff",)
ACTIVITY_REMINDER = "activities.activity.reminder"
REMINDER_OFFSETS = {"day_before": timedelta(days=1), "hour_before": timedelta(hours=1)}
# Rules that read no issue snapshot, follow of an issue or knowledge of one: the batch's issue book
# need not be written before them.
BOOK_BLIND = ("issues.issue.", "meetings.meeting.", "activities.")
REGISTRATIONS = {
    "activities.registration.confirmed",
    "activities.registration.waitlisted",
    "activities.registration.promoted",
    "activities.registration.cancelled",
}
PROGRESS = {
    "issues.issue.accepted",
    "issues.issue.assigned",
    "issues.issue.status_changed",
    "issues.issue.resolved",
    "issues.issue.closed",
    "issues.issue.reopened",
}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _utc_iso(value: datetime) -> str:
    """A moment as reminders name it (UTC, ISO 8601), whatever offset its event gave."""
    return value.astimezone(UTC).isoformat()


class Rules:
    def __init__(self, clock: Clock, city_timezone: str, plans: PlanQueue | None = None) -> None:
        self.clock = clock
        self.tz = city_timezone
        # Given (PostgreSQL), a batch's notices and deliveries are inserted after its commit by the
        # queue's expander (service_layer/deferred.py), but those of reminders.
        self.plans = plans
        # While a batch of events is handled, intents are gathered here and planned together.
        self._gathered: list[Intent] | None = None
        # For each gathered intent, who may read the issues it is about as they were when it was
        # gathered (from the batch's issue book), or None: planning reads them then.
        self._seen: list[dict[tuple[str, str], Subject | None] | None] = []
        self._gathered_subjects: set[tuple[str, str]] = set()
        self._lookups: dict[tuple, Any] | None = None
        self._book: IssueBook | None = None
        self._members: ActivityMembers | None = None
        self._new_meetings: NewMeetings | None = None

    def handlers(self) -> dict[str, Handler | BatchHandler]:
        """Every rule but the accounts' as one batch handler: the consumer hands it a run of events
        of any of these types, and their notices are planned together (see `_handle_batch`)."""
        single = self.single_handlers()
        batched = batch_handler(functools.partial(self._handle_batch, single))
        return {
            event_type: handler if event_type.startswith("accounts.") else batched
            for event_type, handler in single.items()
        }

    def _handle_batch(self, single: dict[str, Handler], session: Session, events: list[Event]) -> None:
        """Each event's rule in order; their intents are gathered and planned with one look-up of
        the recipients and one insert per table. Planning reads the subjects the intents are about
        (who may read them), and a rule that changes a meeting or an activity expires the
        reminders planned for it: so before a rule changes a subject that a gathered intent is
        about, or is a reminder of, what was gathered is planned, and the result is the same as
        planning event by event."""
        self._gathered, self._seen, self._gathered_subjects, self._lookups = [], [], set(), {}
        # The issue rules' snapshots, follows and knowledge: read for the whole run, written at once.
        self._book = IssueBook()
        self._book.load(session, {e.data["issue_id"] for e in events if e.type.startswith("issues.issue.")})
        # Likewise who holds a place in each activity, kept by the registration rule.
        self._members = ActivityMembers()
        self._members.load(session, {e.data["activity_id"] for e in events if e.type in REGISTRATIONS})
        self._preload_followers(session, events)
        self._preload_communities(session, events)
        # Meetings never seen before: snapshot and reminders kept until the next flush.
        self._new_meetings = NewMeetings()
        self._new_meetings.load(
            session, {e.data["meeting_id"] for e in events if e.type.startswith("meetings.meeting.")}
        )
        try:
            for event in events:
                if _subject_changed_by(event) in self._gathered_subjects:
                    self._plan_gathered(session)
                if not event.type.startswith(BOOK_BLIND):
                    self._flush_books(session)  # this rule reads the issue and meeting tables itself
                if event.type.startswith("activities.activity."):
                    self._members.flush(session, forget=event.data["activity_id"])  # it reads the snapshot
                single[event.type](session, event)
            self._plan_gathered(session)
        finally:
            self._gathered, self._seen, self._gathered_subjects, self._lookups = None, [], set(), None
            self._book, self._members, self._new_meetings = None, None, None

    def _preload_followers(self, session: Session, events: list[Event]) -> None:
        """The followers of the meetings and communities the run's meeting and activity rules tell,
        with one statement per kind: no rule of the batch adds such follows (only a person does,
        through the API), so they are read once, as the staff of a community are."""
        wanted: dict[str, set[str]] = {"meeting": set(), "community": set()}
        for event in events:
            if event.type.startswith("meetings.meeting."):
                wanted["meeting"].add(event.data["meeting_id"])
                wanted["community"].add(event.data["community_id"])
            elif event.type == "activities.activity.published":
                wanted["community"].update(event.data["community_ids"])
        assert self._lookups is not None
        statement = _followers_among(repository.dialect_of(session))
        for target_type, ids in wanted.items():
            found: dict[str, list[str]] = {i: [] for i in ids}
            if ids:
                given = {"target_type": target_type, repository.IDS: repository.ids_value(session, sorted(ids))}
                for target_id, user_id in session.execute(statement, given).all():
                    found[target_id].append(user_id)
            for target_id, people in found.items():
                self._lookups[("followers", target_type, target_id)] = people

    def _preload_communities(self, session: Session, events: list[Event]) -> None:
        """The names, streets and staff of the communities the run's issue rules name, with one
        statement each, where the rules would look each community up once per batch: no rule of
        the batch changes them (the directory's and accounts' events are handled apart)."""
        wanted = sorted({e.data["community_id"] for e in events if e.type.startswith("issues.issue.")})
        if not wanted:
            return
        assert self._lookups is not None and self._book is not None
        names = {c: None for c in wanted}
        for community_id, name, street_id in session.execute(
            _communities_among(repository.dialect_of(session)), {repository.IDS: repository.ids_value(session, wanted)}
        ).all():
            names[community_id] = name
            self._book.know_street(community_id, street_id)
        for community_id in wanted:
            self._book.know_street(community_id, None)  # not in the directory: as a look-up answers
            self._lookups[("community name", community_id)] = names[community_id]
        for community_id, staff in repository.members_with_role_by_community(session, wanted, STAFF).items():
            self._lookups[("staff", community_id)] = staff

    def _followers(self, session: Session, target_type: str, target_id: str) -> list[str]:
        """Followers of a meeting or a community (issues: `_issue_followers`)."""
        return self._lookup(
            ("followers", target_type, target_id), lambda: repository.followers(session, target_type, [target_id])
        )

    def _flush_books(self, session: Session) -> None:
        """Write what the batch keeps in memory: whatever reads the database next sees it."""
        if self._book is not None and self._book.dirty:
            self._book.flush(session)
        if self._members is not None:
            self._members.flush(session)
        if self._new_meetings is not None and self._new_meetings.dirty:
            self._new_meetings.flush(session)

    def _plan_gathered(self, session: Session) -> None:
        self._flush_books(session)  # planning reads who may see the intents' subjects
        if self._gathered:
            plans = self.plans
            if plans is not None and not any(_is_reminder(i.source_type) for i in self._gathered):
                plan_many(session, self._gathered, self.clock(), self.tz, seen=self._seen, defer=plans.defer)
            else:
                # Reminders are inserted now: a later change of their subject expires them. What was
                # planned before them goes in first, as the rows that collide keep the first.
                if plans is not None:
                    plans.expand_pending(session)
                plan_many(session, self._gathered, self.clock(), self.tz, seen=self._seen)
        self._gathered, self._seen, self._gathered_subjects = [], [], set()

    def _lookup(self, key: tuple, find: Callable[[], Any]) -> Any:
        """Within one batch, what no rule of the batch changes (the directory's names, who the
        community's staff are: changed only by directory and accounts events, which are handled
        apart) is looked up once."""
        if self._lookups is None:
            return find()
        if key not in self._lookups:
            self._lookups[key] = find()
        return self._lookups[key]

    def single_handlers(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "accounts.user.registered": self.user_changed,
            "accounts.user.updated": self.user_changed,
            "accounts.code.requested": self.code_requested,
            "issues.issue.reported": self.issue_reported,
            "issues.issue.supported": self.issue_supported,
            "issues.issue.escalated": self.issue_escalated,
            "issues.issue.overdue": self.issue_overdue,
            # Nothing to tell: who may read the issue changed, and the read rule must know at once.
            "issues.issue.visibility_changed": lambda session, event: self._record_issue(session, event.data) and None,
            "meetings.meeting.scheduled": self.meeting_changed,
            "meetings.meeting.rescheduled": self.meeting_changed,
            "meetings.meeting.cancelled": self.meeting_changed,
            "meetings.meeting.concluded": self.meeting_changed,
            "meetings.agenda_item.added": self.agenda_item_added,
            "meetings.decision.recorded": self.decision_recorded,
            "meetings.action_item.assigned": self.action_item,
            "meetings.action_item.completed": self.action_item_completed,
            "meetings.proposal.submitted": self.proposal_submitted,
            "meetings.proposal.accepted": self.proposal_accepted,
            "meetings.proposal.declined": self.proposal_declined,
            "activities.activity.published": self.activity_changed,
            "activities.activity.rescheduled": self.activity_changed,
            "activities.activity.cancelled": self.activity_changed,
            "activities.activity.reminder": self.activity_reminder,
            "activities.registration.confirmed": self.registration_changed,
            "activities.registration.waitlisted": self.registration_changed,
            "activities.registration.promoted": self.registration_changed,
            "activities.registration.cancelled": self.registration_changed,
            "activities.booking.requested": self.booking_changed,
            "activities.booking.confirmed": self.booking_changed,
            "activities.talent.vetted": self.talent_vetted,
            "activities.talent.matched": self.talent_matched,
            "activities.talent.match_accepted": self.talent_answered,
            "activities.talent.match_declined": self.talent_answered,
            "activities.proposal.submitted": self.activity_proposal_submitted,
            "activities.proposal.accepted": self.activity_proposal_answered,
            "activities.proposal.declined": self.activity_proposal_answered,
        }
        for event_type in PROGRESS:
            table[event_type] = self.issue_progress
        return table

    def _plan(self, session: Session, event: Event, **fields: object) -> None:
        self._submit(session, Intent(source_key=event.id, source_type=event.type, **fields))  # type: ignore[arg-type]

    def _submit(self, session: Session, intent: Intent) -> None:
        if self._gathered is not None:
            self._gathered.append(intent)
            book = self._book
            if book is not None and intent.about and all(t == "issue" and book.covers(i) for t, i in intent.about):
                # Its issues as they are now, from the book: a later change in the batch changes
                # what planning would read, not what it reads.
                self._seen.append({key: book.subject(session, key[1]) for key in intent.about})
            else:
                self._seen.append(None)
                # What planning them will read: the subjects they are about (who may read them).
                self._gathered_subjects.update(intent.about)
            # Reminders are what a later change of their subject expires.
            if intent.subject_type and intent.subject_id and _is_reminder(intent.source_type):
                self._gathered_subjects.add((intent.subject_type, intent.subject_id))
        else:
            if self.plans is not None:
                self.plans.expand_pending(session)  # what was planned before goes in first
            plan(session, intent, self.clock(), self.tz)

    # --- accounts -----------------------------------------------------------------------------
    def user_changed(self, session: Session, event: Event) -> None:
        d = event.data
        # Locked: a copy of this worker handling the same person's next snapshot waits for this one.
        current = session.scalar(
            select(recipients.c.revision).where(recipients.c.user_id == d["user_id"]).with_for_update()
        )
        if current is not None and current >= d["revision"]:
            return  # an older or repeated snapshot
        row = {
            "role": d["role"],
            "display_name": d["display_name"],
            "phone": d.get("phone"),
            "locale": d.get("locale") or "zh-CN",
            "street_id": d.get("street_id"),
            "organisation_id": d.get("organisation_id"),
            "active": d.get("active", True),
            "revision": d["revision"],
            "updated_at": self.clock(),
        }
        if current is None:
            session.execute(recipients.insert().values(user_id=d["user_id"], **row))
        else:
            session.execute(update(recipients).where(recipients.c.user_id == d["user_id"]).values(**row))
        session.execute(delete(recipient_communities).where(recipient_communities.c.user_id == d["user_id"]))
        community_ids = sorted(set(d.get("community_ids") or []))
        if community_ids:
            session.execute(
                recipient_communities.insert(),
                [{"community_id": c, "user_id": d["user_id"], "role": d["role"]} for c in community_ids],
            )

    def code_requested(self, session: Session, event: Event) -> None:
        d = event.data
        expires_at = _when(d["expires_at"])
        minutes = max(1, int((expires_at - self.clock()).total_seconds() // 60))
        plan_code(
            session,
            source_key=event.id,
            phone=d["phone"],
            locale=d.get("locale") or "zh-CN",
            params={"code": d["code"], "minutes": minutes},
            expires_at=expires_at,
            now=self.clock(),
        )

    # --- issues -------------------------------------------------------------------------------
    def _issue_is_stale(self, session: Session, d: dict) -> bool:
        """Record the issue's revision; True when a newer one was already seen."""
        return self._record_issue(session, d)[0]

    def _record_issue(self, session: Session, d: dict, members: Iterable[str] = ()) -> tuple[bool, str | None]:
        """Record the issue's snapshot: (True when a newer one was already seen, the status known
        before this snapshot or None). `members` (its supporters) are added even from a stale one:
        supporting is not undone by a later change."""
        book = self._book if self._book is not None and self._book.covers(d["issue_id"]) else None
        if book is not None:
            snapshot = book.snapshot(d["issue_id"])
            current = (
                None if snapshot is None else _Known(snapshot["revision"], snapshot["status"], snapshot["member_ids"])
            )
        else:
            # Locked: a copy of this worker handling another snapshot of the issue waits for this
            # one, so an older snapshot never overwrites a newer one and each change is told once.
            current = session.execute(
                select(subjects.c.revision, subjects.c.status, subjects.c.member_ids)
                .where(subjects.c.subject_type == "issue", subjects.c.subject_id == d["issue_id"])
                .with_for_update()
            ).first()
        known = set(current.member_ids or ()) if current is not None else set()
        people = sorted(known | set(d.get("supporter_ids") or ()) | {m for m in members if m})
        if current is not None and current.revision >= d["revision"]:
            if people != sorted(known):
                if book is not None:
                    book.update_snapshot(d["issue_id"], {"member_ids": people})
                else:
                    session.execute(
                        update(subjects)
                        .where(subjects.c.subject_type == "issue", subjects.c.subject_id == d["issue_id"])
                        .values(member_ids=people)
                    )
            return True, current.status
        values = {
            "community_id": d["community_id"],
            "title": d["title"],
            "status": d["status"],
            "revision": d["revision"],
            "member_ids": people,
            # Who may read it, as the issues service says (default "community", as before).
            "visibility": d.get("visibility") or COMMUNITY,
            "reporter_id": d["reporter_id"],
            "assignee_id": d.get("assignee_id"),
        }
        if "anonymous" in d:  # only the report says it; later snapshots leave it as it was
            values["anonymous"] = bool(d["anonymous"])
        if book is not None:
            if current is None:
                book.insert_snapshot(d["issue_id"], values)
            else:
                book.update_snapshot(d["issue_id"], values)
        elif current is None:
            session.execute(subjects.insert().values(subject_type="issue", subject_id=d["issue_id"], **values))
        else:
            session.execute(
                update(subjects)
                .where(subjects.c.subject_type == "issue", subjects.c.subject_id == d["issue_id"])
                .values(**values)
            )
        return False, current.status if current is not None else None

    def _known(self, session: Session, issue_id: str, users: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """(status, assignee) of the issue as each of `users` last knew it."""
        if self._book is not None and self._book.covers(issue_id):
            return self._book.known(issue_id, users)
        rows = session.execute(
            select(issue_knowledge.c.user_id, issue_knowledge.c.status, issue_knowledge.c.assignee).where(
                issue_knowledge.c.issue_id == issue_id,
                repository.among_rows(session, issue_knowledge.c.user_id, sorted(set(users))),
            )
        )
        return {r.user_id: (r.status, r.assignee) for r in rows}

    def _learn(self, session: Session, d: dict, users: Iterable[str]) -> None:
        """`users` now know the issue as this snapshot shows it (unless they know a later one)."""
        rows = [
            {
                "issue_id": d["issue_id"],
                "user_id": u,
                "status": d["status"],
                "assignee": _assignee(d),
                "revision": d["revision"],
            }  # fmt: skip
            for u in sorted({u for u in users if u})
        ]
        if self._book is not None and self._book.covers(d["issue_id"]):
            self._book.learn(rows)
        else:
            repository.upsert_newer(session, issue_knowledge, rows, keys=["issue_id", "user_id"])

    def _follow(self, session: Session, users: Iterable[str], target_type: str, target_id: str, reason: str) -> None:
        rows = [
            {
                "user_id": u,
                "target_type": target_type,
                "target_id": target_id,
                "reason": reason,
                "created_at": self.clock(),
            }
            for u in users
            if u
        ]
        if target_type == "issue" and self._book is not None and self._book.covers(target_id):
            self._book.follow(rows)
        else:
            repository.insert_ignore(session, follows, rows, ["target_type", "target_id", "user_id"])

    def _issue_followers(self, session: Session, issue_id: str) -> list[str]:
        if self._book is not None and self._book.covers(issue_id):
            return self._book.followers_of(issue_id)
        return repository.followers(session, "issue", [issue_id])

    def _issue_params(self, d: dict) -> dict:
        return {
            "title": shorten(d["title"]),
            "status": d["status"],
            "tier": d["tier"],
            "urgency": d["urgency"],
            "community": self._community_name(d["community_id"]),
        }

    def _staff_of(self, session: Session, community_id: str) -> list[str]:
        return self._lookup(
            ("staff", community_id), lambda: repository.members_with_role(session, [community_id], STAFF)
        )

    def _community_name(self, community_id: str) -> str:
        return community_id[:8]

    def issue_reported(self, session: Session, event: Event) -> None:
        d = event.data
        self._follow(session, [d["reporter_id"]], "issue", d["issue_id"], "reporter")
        self._learn(session, d, [d["reporter_id"]])  # they reported it: they know it is reported
        if self._issue_is_stale(session, d):
            return
        name = self._lookup(
            ("community name", d["community_id"]),
            lambda: session.scalar(
                select(replica.communities.c.name).where(replica.communities.c.community_id == d["community_id"])
            ),
        )
        params = {**self._issue_params(d), "community": shorten(name or "社区", 15)}
        staff = self._staff_of(session, d["community_id"])
        self._plan(
            session,
            event,
            kind="issue.reported",
            category=Category.SAFETY if d["urgency"] == "urgent" else Category.NEW_ISSUE,
            user_ids=tuple(staff),
            params=params,
            urgent=d["urgency"] == "urgent",
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )

    def issue_supported(self, session: Session, event: Event) -> None:
        d = event.data
        self._follow(session, [d["supporter_id"]], "issue", d["issue_id"], "supporter")
        self._learn(session, d, [d["supporter_id"]])  # they saw the issue as it is when supporting it
        self._record_issue(session, d, [d["supporter_id"]])

    def issue_progress(self, session: Session, event: Event) -> None:
        d = event.data
        stale, known_before = self._record_issue(session, d)
        if stale:
            return  # a later change was already told: telling an older status would mislead
        assigned = event.type.endswith("assigned")
        people = set(self._issue_followers(session, d["issue_id"])) | {d["reporter_id"]}
        people.discard(d.get("actor_id"))
        if not assigned and d.get("from_status") == d["status"]:
            # Only the consultations were counted (or the like): the status did not change.
            self._learn(session, d, people | {d.get("actor_id")})
            return
        # What each one knew before: their own record, else what the event says came before.
        before_status = d.get("from_status") or known_before
        known = self._known(session, d["issue_id"], people)
        if assigned:
            news = {p for p in people if known.get(p, (None, None))[1] != _assignee(d)}
            status = "assigned"
        else:
            news = {p for p in people if known.get(p, (before_status, None))[0] != d["status"]}
            status = "reopened" if event.type.endswith("reopened") else d["status"]
        self._learn(session, d, people | {d.get("actor_id")})
        if not news:
            return
        self._plan(
            session,
            event,
            kind="issue.progress",
            category=Category.ISSUE_PROGRESS,
            user_ids=tuple(sorted(news)),
            params={**self._issue_params(d), "status": status},
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )

    def issue_escalated(self, session: Session, event: Event) -> None:
        d = event.data
        if self._issue_is_stale(session, d):
            return
        if d.get("from_tier") == d["tier"]:
            return  # handled at the same tier as before: nothing to tell
        street = session.scalar(
            select(replica.communities.c.street_id).where(replica.communities.c.community_id == d["community_id"])
        )
        if d["tier"] == "city":
            officials = repository.users_with_role(session, "city_admin")
        elif d["tier"] == "street":
            officials = repository.officials_of_street(session, street or event.street_id)
        else:
            officials = self._staff_of(session, d["community_id"])
        self._plan(
            session,
            event,
            kind="issue.escalated",
            category=Category.ESCALATION,
            user_ids=tuple(officials),
            params=self._issue_params(d),
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )
        # Followers hear what changed, the tier, in the same words as the officials: its status
        # may well be the same as before ("status updated to: reported" would tell them nothing).
        people = set(self._issue_followers(session, d["issue_id"])) | {d["reporter_id"]}
        people -= set(officials) | {d.get("actor_id")}
        intent = Intent(
            source_key=f"{event.id}:followers",
            source_type=event.type,
            kind="issue.escalated",
            category=Category.ISSUE_PROGRESS,
            user_ids=tuple(sorted(people)),
            params=self._issue_params(d),
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )
        self._submit(session, intent)

    def issue_overdue(self, session: Session, event: Event) -> None:
        d = event.data
        if self._issue_is_stale(session, d):
            return
        staff = self._staff_of(session, d["community_id"])
        self._plan(
            session,
            event,
            kind="issue.overdue",
            category=Category.ESCALATION,
            user_ids=tuple(staff),
            params=self._issue_params(d),
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )

    # --- meetings -----------------------------------------------------------------------------
    def _remember_subject(
        self, session: Session, kind: str, subject_id: str, d: dict, status: str, members: list[str], community_id: str
    ) -> bool:
        """Keep the latest snapshot; False when this one is older than what is known."""
        new = self._new_meetings
        if kind == "meeting" and new is not None:
            if subject_id in new.unseen:
                new.keep(subject_id, self._snapshot_values(kind, d, status, members, community_id, None))
                return True
            if new.dirty:
                new.flush(session)  # this meeting's snapshot may be among them: read it from the database
        current = session.execute(
            select(subjects.c.revision, subjects.c.member_ids)
            .where(subjects.c.subject_type == kind, subjects.c.subject_id == subject_id)
            .with_for_update()  # as in _record_issue: copies of the worker take their turns
        ).first()
        if current is not None and current.revision >= d["revision"]:
            return False
        values = self._snapshot_values(kind, d, status, members, community_id, current)
        if current is None:
            session.execute(subjects.insert().values(subject_type=kind, subject_id=subject_id, **values))
        else:
            session.execute(
                update(subjects)
                .where(subjects.c.subject_type == kind, subjects.c.subject_id == subject_id)
                .values(**values)
            )
        return True

    def _snapshot_values(
        self, kind: str, d: dict, status: str, members: list[str], community_id: str, current: Any
    ) -> dict[str, Any]:
        values = {
            "community_id": community_id,
            "title": d["title"],
            "starts_at": _when(d["starts_at"]),
            "place": d.get("place"),
            "status": status,
            "revision": d["revision"],
            "member_ids": sorted(set(members) | set(current.member_ids if current else [])),
        }
        if kind == "meeting":
            # A private meeting is read by its participants and the staff above it (domain/access.py).
            values["visibility"] = COMMUNITY if d.get("public", True) else PRIVATE
        return values

    def _schedule_reminders(
        self, session: Session, kind: str, subject_id: str, starts_at: datetime | None, *, schedule: bool = True
    ) -> None:
        """Cancel reminders of an old start time; schedule the ones still ahead for the new one
        (unless `schedule` is False: an activity's reminders come from the activities service)."""
        now = self.clock()
        new = self._new_meetings
        if kind == "meeting" and new is not None and subject_id in new.kept:
            # First seen in this batch: no reminder of it to cancel or expire (see NewMeetings).
            new.schedule(self._reminder_rows(kind, subject_id, starts_at, now) if schedule else [])
            return
        if kind == "meeting" and new is not None and new.dirty:
            new.flush(session)
        # Reminders already fired for another start time (or a cancelled subject) must not go out:
        # this service's own and those the activities service asked for.
        # Both conditions repeat their partial index's own (tables.reminders_only).
        stale = select(notifications.c.id).where(
            notifications.c.subject_type == kind,
            notifications.c.subject_id == subject_id,
            reminders_only(notifications.c.source_type),
        )
        if starts_at is not None:
            stale = stale.where(notifications.c.params["when_at"].as_string() != _utc_iso(starts_at))
        session.execute(
            update(deliveries)
            .where(
                deliveries.c.state == "pending",
                reminders_only(deliveries.c.source_type),
                deliveries.c.notification_id.in_(stale.scalar_subquery()),
            )
            .values(state="expired", reason=f"{kind} changed", finished_at=now)
        )
        cancel = update(reminders).where(
            reminders.c.subject_type == kind, reminders.c.subject_id == subject_id, reminders.c.state == "scheduled"
        )
        if starts_at is not None:
            cancel = cancel.where(reminders.c.starts_at != starts_at)
        session.execute(cancel.values(state="cancelled"))
        if starts_at is None or not schedule:
            return
        rows = self._reminder_rows(kind, subject_id, starts_at, now)
        repository.insert_ignore(session, reminders, rows, ["subject_type", "subject_id", "kind", "starts_at"])

    def _reminder_rows(self, kind: str, subject_id: str, starts_at: datetime | None, now: datetime) -> list[dict]:
        rows: list[dict] = []
        if starts_at is None:
            return rows
        for name, offset in REMINDER_OFFSETS.items():
            due = starts_at - offset
            if due > now:
                rows.append(
                    {
                        "id": stable_id(kind, subject_id, name, starts_at.isoformat()),
                        "subject_type": kind,
                        "subject_id": subject_id,
                        "kind": name,
                        "starts_at": starts_at,
                        "due_at": due,
                        "state": "scheduled",
                    }
                )
        return rows

    def meeting_changed(self, session: Session, event: Event) -> None:
        d = event.data
        verb = event.type.rsplit(".", 1)[1]
        if not self._remember_subject(
            session, "meeting", d["meeting_id"], d, verb, d["participant_ids"], d["community_id"]
        ):
            return
        active = verb in ("scheduled", "rescheduled")
        self._schedule_reminders(session, "meeting", d["meeting_id"], _when(d["starts_at"]) if active else None)
        if verb == "concluded":
            return
        people = set(d["participant_ids"]) | set(self._followers(session, "meeting", d["meeting_id"]))
        if d.get("public", True):
            people |= set(self._followers(session, "community", d["community_id"]))
        people.discard(d["convener_id"])
        self._plan(
            session,
            event,
            kind=f"meeting.{verb}",
            category=Category.MEETING,
            user_ids=tuple(people),
            params={
                "meeting": shorten(d["title"]),
                "when_at": d["starts_at"],
                "place": shorten(d.get("place") or d.get("online_url") or "-"),
                "reason": shorten(d.get("reason") or "-"),
            },
            community_id=d["community_id"],
            subject_type="meeting",
            subject_id=d["meeting_id"],
            about=(("meeting", d["meeting_id"]),),
        )

    def agenda_item_added(self, session: Session, event: Event) -> None:
        d = event.data
        title = session.scalar(
            select(subjects.c.title).where(subjects.c.subject_type == "issue", subjects.c.subject_id == d["issue_id"])
        )
        people = repository.followers(session, "issue", [d["issue_id"]])
        self._submit(
            session,
            Intent(
                # Once per meeting and issue, whatever event (or repeat of it) brings the news.
                source_key=f"agenda:{d['meeting_id']}:{d['issue_id']}",
                source_type=event.type,
                kind="issue.on_agenda",
                category=Category.ISSUE_PROGRESS,
                user_ids=tuple(people),
                params={
                    "title": shorten(title or d.get("item_title") or d["title"]),
                    "meeting": shorten(d["title"]),
                    "when_at": d["starts_at"],
                },
                community_id=d["community_id"],
                subject_type="issue",
                subject_id=d["issue_id"],
                # The issue's title and the meeting's name and time: both must be readable.
                about=(("issue", d["issue_id"]), ("meeting", d["meeting_id"])),
            ),
        )

    def decision_recorded(self, session: Session, event: Event) -> None:
        d = event.data
        meeting = session.scalar(
            select(subjects.c.title).where(
                subjects.c.subject_type == "meeting", subjects.c.subject_id == d["meeting_id"]
            )
        )
        people = set(d["participant_ids"]) | set(repository.followers(session, "issue", d["issue_ids"]))
        self._plan(
            session,
            event,
            kind="decision.recorded",
            category=Category.DECISION,
            user_ids=tuple(people),
            params={"meeting": shorten(meeting or "会议"), "motion": shorten(d["motion"]), "outcome": d["outcome"]},
            community_id=d["community_id"],
            subject_type="meeting",
            subject_id=d["meeting_id"],
            about=(("meeting", d["meeting_id"]),),
        )

    def action_item(self, session: Session, event: Event) -> None:
        d = event.data
        about: tuple[tuple[str, str], ...] = ()
        if event.type.endswith("assigned"):
            people = [d["owner_user_id"]] if d.get("owner_user_id") else []  # it is theirs to do
            kind = "action_item.assigned"
        else:
            people = repository.followers(session, "issue", [d["issue_id"]]) if d.get("issue_id") else []
            kind = "action_item.completed"
            if d.get("issue_id"):
                about = (("issue", d["issue_id"]),)  # told because they follow the issue
        self._plan(
            session,
            event,
            kind=kind,
            category=Category.DECISION,
            user_ids=tuple(people),
            params={"title": shorten(d["title"]), "due": d.get("due_date") or "-"},
            community_id=d["community_id"],
            subject_type="meeting",
            subject_id=d["meeting_id"],
            about=about,
        )

    def action_item_completed(self, session: Session, event: Event) -> None:
        """The item's own notice; and once its decision's items are all done, that news for the
        people of the decision's issues."""
        self.action_item(session, event)
        d = event.data
        if d.get("decision_complete") is not True:
            return
        issue_ids = sorted(set(d.get("issue_ids") or ()) | ({d["issue_id"]} if d.get("issue_id") else set()))
        if not issue_ids:
            return
        known = {
            r.subject_id: r
            for r in session.execute(
                select(subjects.c.subject_id, subjects.c.title, subjects.c.reporter_id, subjects.c.member_ids).where(
                    subjects.c.subject_type == "issue", subjects.c.subject_id.in_(issue_ids)
                )
            )
        }
        for issue_id in issue_ids:
            issue = known.get(issue_id)
            if issue is None:
                continue  # an issue this service never heard of: nobody may be told of it
            # Its followers (reporter and supporters follow it from their events), and the reporter
            # and supporters as the issue's snapshot knows them; only those who may read it.
            people = set(repository.followers(session, "issue", [issue_id])) | set(issue.member_ids or ())
            people |= {issue.reporter_id} if issue.reporter_id else set()
            self._submit(
                session,
                Intent(
                    # Once per decision and issue, whichever completion (or repeat) says it.
                    source_key=f"decision-complete:{d['decision_id']}:{issue_id}",
                    source_type=event.type,
                    kind="decision.completed",
                    category=Category.DECISION,
                    user_ids=tuple(sorted(people)),
                    params={"issue": shorten(issue.title)},
                    community_id=d["community_id"],
                    subject_type="issue",
                    subject_id=issue_id,
                    about=(("issue", issue_id),),
                ),
            )

    def _issue_title(self, session: Session, d: dict) -> str:
        """The proposal's issue as its event names it, else as the issue events named it."""
        title = d.get("issue_title") or session.scalar(
            select(subjects.c.title).where(subjects.c.subject_type == "issue", subjects.c.subject_id == d["issue_id"])
        )
        return shorten(title or "-")

    def proposal_submitted(self, session: Session, event: Event) -> None:
        d = event.data
        staff = self._staff_of(session, d["community_id"])
        self._plan(
            session,
            event,
            kind="proposal.submitted",
            category=Category.MEETING,
            user_ids=tuple(u for u in staff if u != d["proposer_id"]),
            params={
                "issue": self._issue_title(session, d),
                "meeting_type": shorten(d["meeting_type"]),
                "reason": shorten(d["reason"]),
            },
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),  # the notice names the issue
        )

    def proposal_accepted(self, session: Session, event: Event) -> None:
        d = event.data
        self._plan(
            session,
            event,
            kind="proposal.accepted",
            category=Category.MEETING,
            user_ids=(d["proposer_id"],),
            params={
                "title": shorten(d["title"]),
                "when_at": d["starts_at"],
                "place": shorten(d.get("place") or "-"),
                "issue": self._issue_title(session, d),
            },
            community_id=d["community_id"],
            subject_type="meeting",
            subject_id=d["meeting_id"],
            # The meetings service tells the proposer the meeting it scheduled for them; the
            # issue it is about must still be theirs to read.
            about=(("issue", d["issue_id"]),),
        )

    def proposal_declined(self, session: Session, event: Event) -> None:
        d = event.data
        self._plan(
            session,
            event,
            kind="proposal.declined",
            category=Category.MEETING,
            user_ids=(d["proposer_id"],),
            params={"issue": self._issue_title(session, d), "reason": shorten(d["decision_reason"])},
            community_id=d["community_id"],
            subject_type="issue",
            subject_id=d["issue_id"],
            about=(("issue", d["issue_id"]),),
        )

    # --- activities ---------------------------------------------------------------------------
    def activity_changed(self, session: Session, event: Event) -> None:
        d = event.data
        verb = event.type.rsplit(".", 1)[1]
        community_id = d["community_ids"][0]
        if not self._remember_subject(
            session, "activity", d["activity_id"], d, verb, d["registrant_ids"], community_id
        ):
            return
        starts_at = _when(d["starts_at"]) if verb != "cancelled" else None
        # The activities service reminds those holding a place (`activities.activity.reminder`);
        # reminders scheduled here would tell them twice. What changes still cancels the
        # reminders of an old start that wait (in quiet hours) to go out.
        self._schedule_reminders(session, "activity", d["activity_id"], starts_at, schedule=False)
        if verb == "published":
            people = self._community_followers_in_scope(session, d["community_ids"])
        else:
            people = set(d["registrant_ids"])
        people.discard(d["organiser_id"])
        self._plan(
            session,
            event,
            kind=f"activity.{verb}",
            category=Category.ACTIVITY,
            user_ids=tuple(people),
            params={
                "title": shorten(d["title"]),
                "when_at": d["starts_at"],
                "place": shorten(d.get("place") or "-"),
                "reason": shorten(d.get("reason") or "-"),
            },
            community_id=community_id,
            subject_type="activity",
            subject_id=d["activity_id"],
        )

    def _community_followers_in_scope(self, session: Session, community_ids: list[str]) -> set[str]:
        """Followers of these communities who still belong to one they follow (or whose office
        covers it): someone who moved away is no longer told of their old community's news."""
        follows_of: dict[str, set[str]] = {}
        for community_id in community_ids:
            for user_id in self._followers(session, "community", community_id):
                follows_of.setdefault(user_id, set()).add(community_id)
        if not follows_of:
            return set()
        streets = dict(
            session.execute(
                select(replica.communities.c.community_id, replica.communities.c.street_id).where(
                    replica.communities.c.community_id.in_(community_ids)
                )
            ).all()
        )
        readers = repository.load_readers(session, follows_of)
        return {
            user_id
            for user_id, followed in follows_of.items()
            if user_id in readers
            and readers[user_id].active
            and any(readers[user_id].covers(c, streets.get(c)) for c in followed)
        }

    def registration_changed(self, session: Session, event: Event) -> None:
        d = event.data
        verb = event.type.rsplit(".", 1)[1]
        kept = self._members if self._members is not None and self._members.covers(d["activity_id"]) else None
        if kept is not None:
            if kept.has_snapshot(d["activity_id"]):
                (kept.leave if verb == "cancelled" else kept.join)(d["activity_id"], d["user_id"])
        else:
            # Built only here: a batch's registrations are answered from memory (`ActivityMembers`),
            # and making these expressions cost more than the rest of the rule.
            key = (subjects.c.subject_type == "activity", subjects.c.subject_id == d["activity_id"])
            members = session.scalar(select(subjects.c.member_ids).where(*key))
            if members is not None:
                updated = set(members) - {d["user_id"]} if verb == "cancelled" else set(members) | {d["user_id"]}
                session.execute(update(subjects).where(*key).values(member_ids=sorted(updated)))
        self._plan(
            session,
            event,
            kind=f"registration.{verb}",
            category=Category.REGISTRATION,
            user_ids=(d["user_id"],),
            params={
                "title": shorten(d["title"]),
                "when_at": d["starts_at"],
                "position": d.get("waitlist_position") or "-",
            },
            community_id=d["community_id"],
            subject_type="activity",
            subject_id=d["activity_id"],
        )

    def booking_changed(self, session: Session, event: Event) -> None:
        d = event.data
        verb = event.type.rsplit(".", 1)[1]
        people = [d["provider_id"]] if verb == "requested" else [d["resident_id"], d["booked_by_id"]]
        self._plan(
            session,
            event,
            kind=f"booking.{verb}",
            category=Category.BOOKING,
            user_ids=tuple(p for p in people if p),
            params={"service": shorten(d["service_name"]), "when_at": d["slot_start"]},
            community_id=d["community_id"],
            subject_type="booking",
            subject_id=d["booking_id"],
        )

    def activity_reminder(self, session: Session, event: Event) -> None:
        """The activities service's reminder, to those holding a place: once per activity, lead
        time and start (the source key), never for a start this service knows has moved or for a
        cancelled activity."""
        d = event.data
        starts_at = _when(d["starts_at"])
        known = session.execute(
            select(subjects.c.status, subjects.c.starts_at, subjects.c.revision).where(
                subjects.c.subject_type == "activity", subjects.c.subject_id == d["activity_id"]
            )
        ).first()
        if known is not None and known.revision > d["revision"]:
            if known.status == "cancelled" or known.starts_at != starts_at:
                return  # a later change: this reminder names a start that is no more
        elif known is not None and known.status == "cancelled":
            return
        when_at = _utc_iso(starts_at)
        self._submit(
            session,
            Intent(
                source_key=f"activity-reminder:{d['activity_id']}:{d['lead_minutes']}:{when_at}",
                source_type=event.type,
                kind="activity.reminder",
                category=Category.REMINDER,
                user_ids=tuple(sorted(set(d["confirmed_ids"]))),
                params={
                    "title": shorten(d["title"]),
                    "when_at": when_at,
                    "place": shorten(d.get("place") or "-"),
                },
                community_id=d["community_ids"][0],
                subject_type="activity",
                subject_id=d["activity_id"],
                expires_at=starts_at,  # a reminder after the start is noise: it expires
            ),
        )

    def talent_vetted(self, session: Session, event: Event) -> None:
        d = event.data
        self._plan(
            session,
            event,
            kind="talent.vetted",
            category=Category.ACTIVITY,
            user_ids=(d["user_id"],),
            params={"outcome": d["status"]},  # approved | declined, in the recipient's words
            community_id=d["community_id"],
            subject_type="talent",
            subject_id=d["talent_id"],
        )

    def talent_matched(self, session: Session, event: Event) -> None:
        d = event.data
        self._plan(
            session,
            event,
            kind="talent.matched",
            category=Category.ACTIVITY,
            user_ids=(d["talent_user_id"],),
            params={"note": shorten(d.get("note") or "-")},
            community_id=d["community_id"],
            subject_type="talent",
            subject_id=d["talent_id"],
        )

    def talent_answered(self, session: Session, event: Event) -> None:
        d = event.data
        self._plan(
            session,
            event,
            kind="talent.answered",
            category=Category.ACTIVITY,
            user_ids=(d["matched_by_id"],),
            # The event names no talent: the notice says only what was answered.
            params={"answer": "accepted" if event.type.endswith("match_accepted") else "declined"},
            community_id=d["community_id"],
            subject_type="talent",
            subject_id=d["talent_id"],
        )

    def activity_proposal_submitted(self, session: Session, event: Event) -> None:
        d = event.data
        staff = repository.members_with_role(session, [d["community_id"]], STAFF)
        self._plan(
            session,
            event,
            kind="activity_proposal.submitted",
            category=Category.ACTIVITY,
            user_ids=tuple(u for u in staff if u != d["proposer_id"]),
            params={"title": shorten(d["title"]), "reason": shorten(d.get("reason") or "-")},
            community_id=d["community_id"],
            subject_type="proposal",
            subject_id=d["proposal_id"],
        )

    def activity_proposal_answered(self, session: Session, event: Event) -> None:
        """The proposer hears what became of their proposal: when the activity is, or why not."""
        d = event.data
        accepted = event.type.endswith(".accepted")
        params = {"title": shorten(d["title"])}
        if accepted:
            params["when_at"] = d["starts_at"]
        else:
            params["reason"] = shorten(d.get("decision_reason") or "-")
        self._plan(
            session,
            event,
            kind="activity_proposal.accepted" if accepted else "activity_proposal.declined",
            category=Category.ACTIVITY,
            user_ids=(d["proposer_id"],),
            params=params,
            community_id=d["community_id"],
            subject_type="activity" if accepted else "proposal",
            subject_id=d["activity_id"] if accepted else d["proposal_id"],
        )


class _Known(NamedTuple):
    """An issue's snapshot as `_record_issue` reads it."""

    revision: int
    status: str
    member_ids: list[str] | None


@functools.cache
def _followers_among(dialect_name: str) -> Select:
    """Who follows each of the targets of a type (`_preload_followers`), built once."""
    return (
        select(follows.c.target_id, follows.c.user_id)
        .where(
            follows.c.target_type == bindparam("target_type"),
            repository.among_given(dialect_name, follows.c.target_id),
        )
        .distinct()
    )


@functools.cache
def _communities_among(dialect_name: str) -> Select:
    """The names and streets of communities (`_preload_communities`), built once."""
    c = replica.communities.c
    return select(c.community_id, c.name, c.street_id).where(repository.among_given(dialect_name, c.community_id))


def _is_reminder(source_type: str) -> bool:
    return source_type == ACTIVITY_REMINDER or source_type.startswith("reminder.")


def _subject_changed_by(event: Event) -> tuple[str, str] | None:
    """The subject whose snapshot (or reminders) the event's rule changes, if any (asked of every
    event of a batch: a tuple, not a set to intersect)."""
    d = event.data
    if event.type.startswith("issues.issue."):
        return ("issue", d["issue_id"])
    if event.type.startswith("meetings.meeting."):
        return ("meeting", d["meeting_id"])
    if event.type.startswith(("activities.activity.", "activities.registration.")):
        return ("activity", d["activity_id"])
    return None


def _assignee(d: dict) -> str | None:
    """Who handles the issue, as one value to compare."""
    return f"{d['assignee_type']}:{d['assignee_id']}" if d.get("assignee_type") else None


def has_due_reminders(session: Session, now: datetime) -> bool:
    return session.scalar(
        select(select(reminders.c.id).where(reminders.c.state == "scheduled", reminders.c.due_at <= now).exists())
    )


def fire_due_reminders(session: Session, clock: Clock, city_timezone: str, limit: int = 500) -> int:
    """Plan the reminders whose time has come; expire those whose subject already started."""
    now = clock()
    due = (
        session.execute(
            select(reminders, subjects.c.title, subjects.c.place, subjects.c.member_ids, subjects.c.community_id)
            .join(
                subjects,
                (subjects.c.subject_type == reminders.c.subject_type)
                & (subjects.c.subject_id == reminders.c.subject_id),
            )
            .where(reminders.c.state == "scheduled", reminders.c.due_at <= now)
            .order_by(reminders.c.due_at)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    for r in due:
        starts_at = r["starts_at"]  # aware: the column is UtcDateTime
        if starts_at <= now:
            session.execute(update(reminders).where(reminders.c.id == r["id"]).values(state="expired"))
            continue
        if r["subject_type"] == "activity":
            # Scheduled before the activities service reminded: it does now, so these would be
            # second reminders.
            session.execute(update(reminders).where(reminders.c.id == r["id"]).values(state="cancelled"))
            continue
        intent = Intent(
            source_key=f"reminder:{r['id']}",
            source_type=f"reminder.{r['kind']}",
            kind="meeting.reminder",
            category=Category.REMINDER,
            user_ids=tuple(r["member_ids"] or ()),
            params={
                "meeting": shorten(r["title"]),
                "when_at": _utc_iso(starts_at),
                "place": shorten(r["place"] or "-"),
            },
            community_id=r["community_id"],
            subject_type=r["subject_type"],
            subject_id=r["subject_id"],
            expires_at=starts_at,  # a reminder after the start is noise: it expires
        )
        plan(session, intent, now, city_timezone)
        session.execute(update(reminders).where(reminders.c.id == r["id"]).values(state="fired"))
    # Reminders of a cancelled subject are cancelled by its event; pending deliveries of them too.
    return len(due)


def make_handlers(
    clock: Clock, city_timezone: str, plans: PlanQueue | None = None
) -> dict[str, Handler | BatchHandler]:
    return Rules(clock, city_timezone, plans).handlers()
