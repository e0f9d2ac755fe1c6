"""An issue repository for a batch of events: what the batch's handlers will read is loaded with a
few statements up front, their reads are answered from memory and their writes are kept until
`write`, which sends each table's rows with one statement.

The meetings' events name issues and meetings; a batch of them would otherwise cost about ten round
trips per event (lock the issue, read its link to the meeting, count its consultations, read its
supporters and street, ...). Here the whole batch costs a fixed handful. On PostgreSQL: the issues
named and those linked to the batch's meetings, locked in id order (so two copies of the worker
never deadlock) by one statement; their links, decisions, supporters, streets and the counts' zone
by one more (a JSON document); then at the end one UPDATE of the issues and one INSERT or UPDATE
per other table, each from a JSON document (json_to_recordset: one statement text whatever the
number of rows). On SQLite the same reads a statement per table, the writes as executemany.

The issues are plain rows made into `Issue`s belonging to no session: the ORM's flush would send
one UPDATE per issue (and spent most of a batch's time working out what changed). `write` compares
each with the values read, sends the changed ones, and counts them in the statistics as the
session's hook would have (adapters/counters.py); timeline entries are kept as rows, escalations
counted there too.

Only the handlers of the meetings' events use it, and only through the methods below; the rows they
touch are those of the issues locked here, so no one else changes them meanwhile.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, insert, select, text, union, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.orm.util import identity_key

from linli_issues.adapters import consultation_counts, counters
from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.sql import among
from linli_issues.adapters.tables import issue_decisions, issue_meetings, issue_updates, issues, replica, supporters
from linli_issues.domain.model import Category, Issue, TimelineEntry, sortable_id
from linli_kit.events.consumer import text_array_literal
from linli_kit.tables import UtcDateTime

_Key = tuple[str, str]


class PreloadedRepository(IssueRepository):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._issues: dict[str, Issue | None] = {}
        self._links: dict[_Key, dict[str, Any]] = {}  # (issue, meeting) -> the link's columns
        self._meetings_of: dict[str, set[str]] = {}  # issue -> the meetings it is linked to
        self._links_of_meeting: dict[str, set[str]] = {}  # meeting -> issues, for the meetings loaded
        self._decisions: dict[_Key, dict[str, Any]] = {}  # (issue, decision) -> the row's columns
        self._decisions_of: dict[str, set[str]] = {}  # issue -> its decisions
        # issue -> [action items, done] of its decisions, summed once and then kept up to date
        self._totals: dict[str, list[int]] = {}
        self._decisions_read: set[str] | None = None  # the decisions read, if not all the issues' ones
        # Of the meetings whose links were read, those with consultations counted or a concluded
        # link when read (PostgreSQL); None: not known, every meeting written is recounted.
        self._counted_meetings: set[str] | None = None
        self._supporters: dict[str, list[str]] = {}
        self._new_links: set[_Key] = set()
        self._changed_links: set[_Key] = set()
        self._new_decisions: set[_Key] = set()
        self._changed_decisions: set[_Key] = set()
        self._entries: list[dict[str, Any]] = []  # timeline entries kept for `write`, as rows
        self._linked_meetings: set[str] = set()  # the meetings whose links were read in full
        self._other_consultations: dict[str, int] = {}  # issue -> its other links not cancelled
        self._read: dict[str, dict[str, Any]] = {}  # issue -> its columns as read (or last written)
        self._streets_read: dict[str, str | None] = {}
        # Categories read for escalations: the session's identity map holds them only while
        # referenced, so each escalation of the batch would read its category again.
        self._categories: dict[str, Category | None] = {}

    def load(
        self,
        issue_ids: Iterable[str],
        meeting_ids: Iterable[str],
        linked_meetings: Iterable[str] = (),
        decision_ids: Iterable[str] | None = None,
    ) -> None:
        """Read what handling events about these issues and meetings needs, locking the issues;
        the issues already linked to these meetings are loaded (and locked) too. The issues' links
        are read in full for these meetings and `linked_meetings` (those the batch may link the
        issues to); of their other links only how many count as consultations. With
        `decision_ids` (PostgreSQL), of the issues' decisions only those are read, and of the
        others the totals of their action items: the batch follows up only the decisions its
        events name (an issue of many decisions read them all, every batch, for two sums)."""
        meeting_ids = sorted(set(meeting_ids))
        # What the session holds written first (as its autoflush would); then plain statements on
        # its connection, none of the ORM's execution needed.
        self.session.flush()
        connection = self.session.connection()
        self._linked_meetings = set(meeting_ids) | set(linked_meetings)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        wanted = set(issue_ids)
        for meeting_id in meeting_ids:
            self._links_of_meeting[meeting_id] = set()
        if meeting_ids and not postgres:
            rows = connection.execute(select(issue_meetings.c.issue_id, issue_meetings.c.meeting_id).where(
                _among(issue_meetings.c.meeting_id, meeting_ids, self.session)
            ))  # fmt: skip
            for issue_id, meeting_id in rows:
                self._links_of_meeting[meeting_id].add(issue_id)
                wanted.add(issue_id)
        ids = sorted(wanted)
        if not ids and not (postgres and meeting_ids):
            return
        named = _among(issues.c.id, ids, self.session)
        if postgres and meeting_ids:
            # With those linked to the meetings, in the same statement (their links to these
            # meetings are read with the details, of the issues locked). One set of ids looked up
            # by key: `id = ANY(…) OR id IN (subquery)` cannot use the key, and scanned every
            # issue of the city for each batch (52 ms at 300,000 issues, against 1.2 ms).
            linked_to = select(issue_meetings.c.issue_id).where(
                _among(issue_meetings.c.meeting_id, meeting_ids, self.session)
            )
            named_ids = select(func.unnest(bindparam("named_ids", ids, type_=postgresql.ARRAY(issues.c.id.type))))
            named = issues.c.id.in_(union(named_ids, linked_to))
        # Plain rows, not the ORM's: the issues are written back by `write` with one statement, the
        # values read here telling what changed (the ORM would flush one UPDATE per issue).
        found = connection.execute(select(issues).where(named).order_by(issues.c.id).with_for_update(of=issues))
        self._issues = dict.fromkeys(ids)
        names = list(found.keys())
        # All at once: iterating the result fetches from the driver a row at a time.
        for row in found.all():
            values = dict(zip(names, row, strict=True))
            self._issues[values["id"]] = _issue_of(values)
            self._read[values["id"]] = values
        ids = sorted(i for i, issue in self._issues.items() if issue is not None)
        if not ids:
            return
        linked = sorted(self._linked_meetings)
        communities = sorted({issue.community_id for issue in self._issues.values() if issue is not None})
        if postgres:
            decided = None if decision_ids is None else sorted(set(decision_ids))
            self._load_details_at_once(connection, ids, linked, communities, decided)
        else:
            self._load_details(connection, ids, linked, communities)
        self._streets.update({c: self._streets_read.get(c) for c in communities})

    def _load_details_at_once(
        self,
        connection: Any,
        ids: list[str],
        linked: list[str],
        communities: list[str],
        decision_ids: list[str] | None = None,
    ) -> None:
        """PostgreSQL: the issues' links, decisions, supporters and streets in one round trip, as one
        JSON document (parsed in C, a handful of instants converted here). The ids go as text
        literals of arrays (one string each for psycopg). With `decision_ids`, only those
        decisions of the issues, and every issue's totals of action items (`follow_up_totals`)."""
        arrays = {"ids": ids, "linked": linked, "communities": communities}
        statement = _DETAILS
        if decision_ids is not None:
            arrays["decisions"] = decision_ids
            statement = _DETAILS_OF_DECISIONS
            self._decisions_read = set(decision_ids)
        details = json.loads(
            _scalar_planned_each_time(connection, statement, {n: text_array_literal(v) for n, v in arrays.items()})
        )
        if decision_ids is not None:
            # Every issue's sums over all its decisions, kept up to date by `save_decision_follow_up`
            # from the rows read (every decision the batch saves is one of those named).
            self._totals = {i: [0, 0] for i in ids}
            for issue_id, action_items, done in details["totals"] or ():
                self._totals[issue_id] = [action_items, done]
        for link in details["links"] or ():
            link["starts_at"] = _parsed(link["starts_at"])
            link["concluded_at"] = _parsed(link["concluded_at"])
            link["linked_at"] = _parsed(link["linked_at"])
            self._links[(link["issue_id"], link["meeting_id"])] = link
            self._meetings_of.setdefault(link["issue_id"], set()).add(link["meeting_id"])
            if link["meeting_id"] in self._links_of_meeting:
                self._links_of_meeting[link["meeting_id"]].add(link["issue_id"])
        self._other_consultations = dict(details["others"] or ())
        for decision in details["decisions"] or ():
            decision["event_at"] = _parsed(decision["event_at"])
            self._decisions[(decision["issue_id"], decision["decision_id"])] = decision
            self._decisions_of.setdefault(decision["issue_id"], set()).add(decision["decision_id"])
        self._supporters = {i: [] for i in ids}
        for issue_id, user_id in details["supporters"] or ():
            self._supporters[issue_id].append(user_id)
        self._streets_read = dict(details["streets"] or ())
        if "counted" in details:
            self._counted_meetings = set(details["counted"] or ())
        counters.remember_zone(self.session, details["zone"])  # for the counts' hook, not read again

    def _load_details(self, connection: Any, ids: list[str], linked: list[str], communities: list[str]) -> None:
        """The same as `_load_details_at_once`, a statement per table (SQLite)."""
        m = issue_meetings.c
        if linked:
            found = connection.execute(
                select(issue_meetings).where(
                    _among(m.issue_id, ids, self.session), _among(m.meeting_id, linked, self.session)
                )
            )
            names = list(found.keys())
            for row in found:
                link = dict(zip(names, row, strict=True))
                self._links[(link["issue_id"], link["meeting_id"])] = link
                self._meetings_of.setdefault(link["issue_id"], set()).add(link["meeting_id"])
        # An issue taken up by many meetings: the batch needs only how many of the others count.
        others = select(m.issue_id, func.count()).where(_among(m.issue_id, ids, self.session), m.status != "cancelled")
        if linked:
            others = others.where(~_among(m.meeting_id, linked, self.session))
        self._other_consultations = dict(connection.execute(others.group_by(m.issue_id)).all())
        found = connection.execute(select(issue_decisions).where(_among(issue_decisions.c.issue_id, ids, self.session)))
        names = list(found.keys())
        for row in found:
            decision = dict(zip(names, row, strict=True))
            self._decisions[(decision["issue_id"], decision["decision_id"])] = decision
            self._decisions_of.setdefault(decision["issue_id"], set()).add(decision["decision_id"])
        self._supporters = {i: [] for i in ids}
        for issue_id, user_id in connection.execute(
            select(supporters.c.issue_id, supporters.c.user_id).where(_among(supporters.c.issue_id, ids, self.session))
        ):
            self._supporters[issue_id].append(user_id)
        self._streets_read = dict(
            connection.execute(
                select(replica.communities.c.community_id, replica.communities.c.street_id).where(
                    _among(replica.communities.c.community_id, communities, self.session)
                )
            ).all()
        )

    # --- reads, from what was loaded ------------------------------------------------------------------
    def get(self, issue_id: str, *, for_update: bool = False) -> Issue | None:
        if issue_id in self._issues:
            return self._issues[issue_id]
        return super().get(issue_id, for_update=for_update)  # not named by the batch: read as usual

    def category(self, key: str) -> Category | None:
        if key not in self._categories:
            self._categories[key] = super().category(key)
        return self._categories[key]

    def supporter_ids(self, issue_id: str) -> list[str]:
        if issue_id in self._supporters:
            return list(self._supporters[issue_id])
        return super().supporter_ids(issue_id)

    def meeting_link(self, issue_id: str, meeting_id: str) -> dict[str, Any] | None:
        self._require(issue_id)
        if meeting_id not in self._linked_meetings:
            raise LookupError(f"the links to meeting {meeting_id} were not loaded for this batch")
        link = self._links.get((issue_id, meeting_id))
        return dict(link) if link is not None else None

    def meeting_links_of_meeting(self, meeting_id: str) -> list[dict[str, Any]]:
        if meeting_id not in self._links_of_meeting:
            raise LookupError(f"meeting {meeting_id} was not loaded for this batch")
        return [dict(self._links[(i, meeting_id)]) for i in sorted(self._links_of_meeting[meeting_id])]

    def count_consultations(self, issue_id: str) -> int:
        self._require(issue_id)
        links = (self._links[(issue_id, m)] for m in self._meetings_of.get(issue_id, ()))
        return self._other_consultations.get(issue_id, 0) + sum(1 for link in links if link["status"] != "cancelled")

    def decision_follow_up(self, issue_id: str, decision_id: str) -> dict[str, Any] | None:
        self._require(issue_id)
        if self._decisions_read is not None and decision_id not in self._decisions_read:
            raise LookupError(f"decision {decision_id} was not loaded for this batch")
        row = self._decisions.get((issue_id, decision_id))
        return dict(row) if row is not None else None

    def follow_up_totals(self, issue_id: str) -> tuple[int, int]:
        self._require(issue_id)
        totals = self._totals.get(issue_id)
        if totals is None:
            rows = [self._decisions[(issue_id, d)] for d in self._decisions_of.get(issue_id, ())]
            totals = self._totals[issue_id] = [sum(r["action_items"] for r in rows), sum(r["done"] for r in rows)]
        return totals[0], totals[1]

    # --- writes, kept until `write` -----------------------------------------------------------------
    def add(self, thing: Issue | Category | TimelineEntry) -> None:
        """A timeline entry is kept for `write` (one INSERT of fixed text for the batch's entries,
        instead of an object for the session to flush; an escalation counted there in the
        statistics, as the session's hook would)."""
        if isinstance(thing, TimelineEntry):
            self._entries.append(_entry_row(thing))
            return
        super().add(thing)

    def note(self, issue_id: str, kind: str, created_at: datetime, body: str | None, data: dict[str, Any]) -> None:
        """A timeline entry, as `add(TimelineEntry(...))` keeps it, without making the object."""
        self._entries.append(
            {
                "id": sortable_id(),
                "issue_id": issue_id,
                "kind": kind,
                "body": body,
                "internal": False,
                "author_id": None,
                "data": data,
                "created_at": created_at,
            }
        )

    def add_meeting_link(self, **values: Any) -> None:
        key = (values["issue_id"], values["meeting_id"])
        self._require(key[0])
        if key[1] not in self._linked_meetings:
            raise LookupError(f"the links to meeting {key[1]} were not loaded for this batch")
        self._links[key] = dict(values)
        self._links_of_meeting.setdefault(key[1], set()).add(key[0])
        self._meetings_of.setdefault(key[0], set()).add(key[1])
        self._new_links.add(key)

    def update_meeting_link(self, issue_id: str, meeting_id: str, **values: Any) -> None:
        self._links[(issue_id, meeting_id)].update(values)
        self._changed_links.add((issue_id, meeting_id))

    def save_decision_follow_up(self, issue_id: str, decision_id: str, *, new: bool, **values: Any) -> None:
        key = (issue_id, decision_id)
        self._require(issue_id)
        totals = self._totals.get(issue_id)
        if totals is not None:
            before = self._decisions.get(key) if not new else None
            totals[0] += values["action_items"] - (before["action_items"] if before else 0)
            totals[1] += values["done"] - (before["done"] if before else 0)
        if new:
            self._decisions[key] = {"issue_id": issue_id, "decision_id": decision_id, **values}
            self._decisions_of.setdefault(issue_id, set()).add(decision_id)
            self._new_decisions.add(key)
        else:
            self._decisions[key].update(values)
            self._changed_decisions.add(key)

    def write(self) -> None:
        """Send what the batch changed since `load`, one statement per table and kind: the issues
        (their counts in the statistics kept as the session's hook keeps them), the links, the
        decisions and the timeline entries."""
        # Their meetings' consultations held are worked out again at commit, but for those known to
        # count nothing, before and after (see `_meetings_to_recount`).
        consultation_counts.touch(self.session, self._meetings_to_recount())
        writes = _Writes(self.session)
        self._write_issues(writes)
        _write(writes, issue_meetings, ("issue_id", "meeting_id"), self._links, self._new_links, self._changed_links)
        _write(writes, issue_decisions, ("issue_id", "decision_id"), self._decisions, self._new_decisions,
               self._changed_decisions)  # fmt: skip
        if self._entries:
            writes.insert(issue_updates, self._entries)
        writes.send()
        self._new_links, self._changed_links = set(), set()
        self._new_decisions, self._changed_decisions = set(), set()
        self._entries = []

    def _meetings_to_recount(self) -> set[str]:
        """The meetings whose links the batch writes, but those of which nothing is counted nor is
        to be: with no consultations stored and no link concluded when read (under the issues'
        locks), and no link concluded by the batch. A meeting's rows follow its concluded links
        alone (adapters/consultation_counts.py), and the batch changes none of them there: what
        anyone else concludes meanwhile they count themselves. Saves the commit a statement that
        would find each such meeting so (most meetings a batch names are only scheduled)."""
        written = self._new_links | self._changed_links
        meetings = {meeting_id for _issue_id, meeting_id in written}
        counted = self._counted_meetings
        if counted is None:
            return meetings
        concluding = {key[1] for key in written if self._links[key].get("status") == "concluded"}
        counted.update(concluding)  # for a later `write` in the same transaction
        return {meeting_id for meeting_id in meetings if meeting_id in counted}

    def _write_issues(self, writes: _Writes) -> None:
        changed: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (as read, as now) of each issue changed
        for issue_id, read in self._read.items():
            now = _values_of(self._issues[issue_id])
            if now != read:
                changed.append((read, now))
        escalations = [entry for entry in self._entries if entry["kind"] == "escalation"]
        self._count(changed, escalations)
        if not changed:
            return
        rows, counts = [], []
        for read, now in changed:
            if _NOT_WRITTEN_VALUES(now) != _NOT_WRITTEN_VALUES(read):
                # Not a change a meetings' event makes: that issue alone, every column.
                self.session.execute(update(issues).where(issues.c.id == now["id"]).values(now))
            elif _NOT_COUNTS_VALUES(now) == _NOT_COUNTS_VALUES(read):
                counts.append(now)  # only its counts, updated_at and revision changed (most of them)
            else:
                rows.append(now)
        if rows:
            writes.update(issues, ("id",), _WRITTEN, rows)
        if counts:
            writes.update(issues, ("id",), _COUNTS, counts)
        # An earlier handler of the consumer's batch may hold a copy of one in the session: read
        # again if used, so that no older revision is flushed over these.
        for read, _now in changed:
            held = self.session.identity_map.get(identity_key(Issue, read["id"]))
            if held is not None:
                self.session.expire(held)
        self._read.update({now["id"]: now for _read, now in changed})

    def _count(self, changed: list[tuple[dict[str, Any], dict[str, Any]]], escalations: list[dict[str, Any]]) -> None:
        """What the session's hook (adapters/counters.py) counts for issues it flushes, for the
        issues written here: each changed one's old contribution taken back and its new one added,
        and each escalation."""
        counted = [(read, now) for read, now in changed if any(read[n] != now[n] for n in counters.COUNTED_FIELDS)]
        if not (counted or escalations):
            return
        zone = counters.zone_in_transaction(self.session)
        tally = counters.Tally(zone)
        # The issues per status (the lists' totals) are kept whatever the zone, as the hook keeps them.
        for read, now in counted:
            if (read["community_id"], read["status"]) != (now["community_id"], now["status"]):
                tally.add_status(read["community_id"], read["status"], sign=-1)
                tally.add_status(now["community_id"], now["status"])
        if zone is None:
            counters.count_in_transaction(self.session, tally)
            return
        # Of the issues escalated, the community (an entry of no issue is not counted: /stats
        # does not count it either).
        escalated = [(e, issue.community_id) for e in escalations if (issue := self.get(e["issue_id"])) is not None]
        involved = {v["community_id"] for pair in counted for v in pair} | {c for _e, c in escalated}
        tally.streets = {community_id: self.street_of(community_id) for community_id in involved}
        for read, now in counted:
            tally.add(read["community_id"], counters.issue_figures(read), sign=-1)
            tally.add(now["community_id"], counters.issue_figures(now))
        for entry, community_id in escalated:
            tally.add(community_id, counters.escalation_figures(entry["created_at"], entry["data"]))
        counters.count_in_transaction(self.session, tally)

    def _require(self, issue_id: str) -> None:
        if issue_id not in self._issues:
            raise LookupError(f"issue {issue_id} was not loaded for this batch")


def _entry_row(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "issue_id": entry.issue_id,
        "kind": entry.kind,
        "body": entry.body,
        "internal": entry.internal,
        "author_id": entry.author_id,
        "data": entry.data,
        "created_at": entry.created_at,
    }


# The columns of an issue the meetings' handlers change (moves, escalations, routing, counts of
# consultations and action items, plans and summaries): the batch writes them with one statement.
_WRITTEN = (
    "status",
    "tier",
    "reason",
    "due_at",
    "assignee_id",
    "consultation_count",
    "action_items",
    "action_items_done",
    "resolution_plan",
    "resolution_summary",
    "rating",
    "rating_comment",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "revision",
)
# Of those, what a new count of consultations or action items changes: an issue changed only there
# is written with these columns alone (the statement and its JSON document a third of the size).
_COUNTS = ("consultation_count", "action_items", "action_items_done", "updated_at", "revision")
_COLUMNS = tuple(c.name for c in issues.columns)
_NOT_WRITTEN = tuple(name for name in _COLUMNS if name not in _WRITTEN and name != "id")
# The values of those columns as one tuple (compared in C, not a column at a time in Python).
_NOT_WRITTEN_VALUES = operator.itemgetter(*_NOT_WRITTEN)
_NOT_COUNTS_VALUES = operator.itemgetter(*(name for name in _WRITTEN if name not in _COUNTS))


_ISSUE_MANAGER = class_mapper(Issue).class_manager


def _issue_of(values: dict[str, Any]) -> Issue:
    """An issue of these column values, made as the ORM's loading makes one (its state set up, the
    values put in place) but belonging to no session: `write` sends its changes."""
    issue = _ISSUE_MANAGER.new_instance()
    vars(issue).update(values)
    return issue


_COLUMN_VALUES = operator.itemgetter(*_COLUMNS)


def _values_of(issue: Issue) -> dict[str, Any]:
    # The mapped attributes' values, as the ORM keeps them.
    return dict(zip(_COLUMNS, _COLUMN_VALUES(vars(issue)), strict=True))


# What the batch reads of the issues it locked (PostgreSQL), as one JSON document: their links to the
# meetings the batch names in full, how many of their other links count as consultations, their
# decisions, their supporters (in the order `IssueRepository.supporter_ids` reads them), the
# streets of their communities and the zone of the statistics' counts.
_DETAILS = text(
    """
SELECT json_build_object(
    'links', (SELECT json_agg(m) FROM issue_meetings AS m
              WHERE m.issue_id = ANY(CAST(:ids AS text[])) AND m.meeting_id = ANY(CAST(:linked AS text[]))),
    'others', (SELECT json_agg(json_build_array(o.issue_id, o.n)) FROM (
                   SELECT issue_id, count(*) AS n FROM issue_meetings
                   WHERE issue_id = ANY(CAST(:ids AS text[])) AND status <> 'cancelled'
                       AND NOT meeting_id = ANY(CAST(:linked AS text[]))
                   GROUP BY issue_id) AS o),
    'decisions', (SELECT json_agg(d) FROM issue_decisions AS d WHERE d.issue_id = ANY(CAST(:ids AS text[]))),
    'supporters', (SELECT json_agg(json_build_array(s.issue_id, s.user_id)) FROM issue_supporters AS s
                   WHERE s.issue_id = ANY(CAST(:ids AS text[]))),
    'streets', (SELECT json_agg(json_build_array(c.community_id, c.street_id)) FROM directory_communities AS c
                WHERE c.community_id = ANY(CAST(:communities AS text[]))),
    'zone', (SELECT zone FROM issue_counts_state WHERE id = 1)
)::text
"""
)


# What `handle_batch` reads (`load` given the decisions its events name): the same, with only those
# decisions (:decisions) and every issue's totals of action items over all its decisions, summed
# here rather than each decision sent to be summed in Python; and which of the meetings count
# consultations.
_DETAILS_OF_DECISIONS = text(
    _DETAILS.text.replace(
        "'decisions', (SELECT json_agg(d) FROM issue_decisions AS d WHERE d.issue_id = ANY(CAST(:ids AS text[]))),",
        "'decisions', (SELECT json_agg(d) FROM issue_decisions AS d WHERE d.issue_id = ANY(CAST(:ids AS text[]))"
        " AND d.decision_id = ANY(CAST(:decisions AS text[]))),"
        " 'totals', (SELECT json_agg(json_build_array(t.issue_id, t.action_items, t.done)) FROM ("
        "SELECT issue_id, sum(action_items) AS action_items, sum(done) AS done FROM issue_decisions"
        " WHERE issue_id = ANY(CAST(:ids AS text[])) GROUP BY issue_id) AS t),"
        # Of the meetings whose links are read in full, those with consultations stored or a link
        # concluded (`_meetings_to_recount`): the statement `consultation_counts.recount` begins with.
        " 'counted', (SELECT json_agg(c.meeting_id) FROM ("
        "SELECT meeting_id FROM issue_meeting_consultations WHERE meeting_id = ANY(CAST(:linked AS text[]))"
        " UNION SELECT meeting_id FROM issue_meetings"
        " WHERE meeting_id = ANY(CAST(:linked AS text[])) AND status = 'concluded') AS c),",
    )
)
assert _DETAILS_OF_DECISIONS.text != _DETAILS.text


def _scalar_planned_each_time(connection: Any, statement: Any, params: dict[str, Any]) -> Any:
    """The one value of a statement run without being prepared (PostgreSQL), so that it is planned
    for the arrays it is given. psycopg prepares a statement run five times; PostgreSQL then
    plans it once for any arrays (a generic plan), which cannot hash an array of a known length
    to test each row against it: the details of a batch of 500 events, read against arrays of 200
    ids, took 28 ms against 8 ms planned each time (planning costs 0.3 ms). Through SQLAlchemy
    as any statement (its errors, its events), the driver told not to prepare it meanwhile."""
    driver = connection.connection.driver_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None  # psycopg neither prepares nor counts it then
    try:
        return connection.execute(statement, params).scalar_one()
    finally:
        driver.prepare_threshold = threshold


def _parsed(value: str | None) -> datetime | None:
    """An instant as json_agg writes it (ISO 8601 with its offset), in UTC as the column's type reads it."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _among(column: Any, values: Iterable[str], session: Session) -> Any:
    return among(column, values, session.get_bind().dialect.name)


class _Writes:
    """The batch's INSERTs and UPDATEs from rows. On PostgreSQL they are kept and sent by `send` as
    one statement (each a data-modifying WITH part but the last: one round trip for the issues,
    links, decisions and timeline entries; the parts touch different rows, an UPDATE never one an
    INSERT of the same statement makes). On SQLite each is an executemany at once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._parts: list[tuple[tuple[str, Any, tuple[str, ...], tuple[str, ...]], str]] = []

    def insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        if not self.postgres:
            self.session.execute(insert(table), rows)
            return
        names = tuple(c.name for c in table.columns)
        self._parts.append((("insert", table, (), names), _json_rows(rows, names, _instants_of(table, names))))

    def update(self, table: Any, keys: tuple[str, ...], columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        """These columns of the rows of these keys (rows of at least those columns)."""
        if self.postgres:
            names = (*keys, *columns)
            self._parts.append((("update", table, keys, columns), _json_rows(rows, names, _instants_of(table, names))))
            return
        statement = (
            update(table)
            .where(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        params = [{**{f"key_{k}": row[k] for k in keys}, **{f"new_{c}": row[c] for c in columns}} for row in rows]
        self.session.execute(statement, params)

    def send(self) -> None:
        if self._parts:
            statement = _statement_of(tuple(spec for spec, _rows in self._parts))
            self.session.execute(statement, {f"rows_{i}": rows for i, (_spec, rows) in enumerate(self._parts)})
        self._parts = []


def _write(writes: _Writes, table: Any, keys: tuple[str, str], rows: dict, new: set, changed: set) -> None:
    if new:
        writes.insert(table, [rows[k] for k in sorted(new)])
    changed = changed - new
    if changed:
        columns = tuple(c.name for c in table.columns if c.name not in keys)
        writes.update(table, keys, columns, [rows[key] for key in sorted(changed)])


# PostgreSQL: a batch's rows go as one JSON document (serialised in C; arrays cost psycopg a Python
# step per element), read by json_to_recordset: one statement of fixed text whatever the number of
# rows, compiled once. json, not jsonb: a JSON column's value keeps its text as sent. msgspec writes
# it: instants natively (the standard library's encoder called back into Python for each of them,
# and escaped every Chinese character; together most of a batch's encoding time).
_encode = msgspec.json.Encoder().encode


def _json_rows(rows: list[dict[str, Any]], names: tuple[str, ...], instants: tuple[str, ...] = ()) -> str:
    """The rows' values of these columns as one JSON document; `instants` are those of them that
    hold instants: a naive datetime there is refused, as the column's type refuses it."""
    for name in instants:
        if any(value is not None and value.tzinfo is None for value in map(operator.itemgetter(name), rows)):
            raise ValueError("naive datetime: times are stored as instants with an offset")
    if rows and rows[0].keys() == set(names):
        return _encode(rows).decode()  # rows of exactly these columns (json_to_recordset ignores others)
    values = operator.itemgetter(*names)
    return _encode([dict(zip(names, values(row), strict=True)) for row in rows]).decode()


@functools.cache
def _instants_of(table: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """Of these columns of the table, those of instants (UtcDateTime)."""
    return tuple(name for name in names if isinstance(table.c[name].type, UtcDateTime))


# psycopg keeps the conversion of a statement's placeholders (%(name)s to $n) for statements of at
# most 4,096 bytes and 50 parameters (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH, _PARAMS); a
# longer one is split again at every execution. The batch's statement of every part (the issues'
# two UPDATEs, the links' and decisions' INSERT and UPDATE, the timeline's INSERT) is kept under
# that: the rows' alias is one letter and instants are named by PostgreSQL's short name for them.
CONVERSION_KEPT_BYTES = 4096
_SHORT_TYPES = {"TIMESTAMP WITH TIME ZONE": "timestamptz"}


def _record_set(table: Any, names: tuple[str, ...], param: str) -> str:
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    types = (table.c[n].type.compile(dialect=dialect) for n in names)
    columns = ", ".join(f"{quote(n)} {_SHORT_TYPES.get(t, t)}" for n, t in zip(names, types, strict=True))
    return f"json_to_recordset(CAST(:{param} AS json)) AS g({columns})"


def _insert_from_json(table: Any, names: tuple[str, ...], param: str) -> str:
    quote = postgresql.dialect().identifier_preparer.quote
    listed = ", ".join(quote(n) for n in names)
    return f"INSERT INTO {quote(table.name)} ({listed}) SELECT {listed} FROM {_record_set(table, names, param)}"


def _update_from_json(table: Any, keys: tuple[str, ...], columns: tuple[str, ...], param: str) -> str:
    quote = postgresql.dialect().identifier_preparer.quote
    assignments = ", ".join(f"{quote(c)} = g.{quote(c)}" for c in columns)
    matched = " AND ".join(f"t.{quote(k)} = g.{quote(k)}" for k in keys)
    given = _record_set(table, (*keys, *columns), param)
    return f"UPDATE {quote(table.name)} AS t SET {assignments} FROM {given} WHERE {matched}"


@functools.cache
def _statement_of(specs: tuple[tuple[str, Any, tuple[str, ...], tuple[str, ...]], ...]) -> Any:
    """One statement for these parts (kind, table, keys, columns), the rows of part i in :rows_i;
    made once for each combination of parts a batch has."""
    parts = [
        _insert_from_json(table, columns, f"rows_{i}")
        if kind == "insert"
        else _update_from_json(table, keys, columns, f"rows_{i}")
        for i, (kind, table, keys, columns) in enumerate(specs)
    ]
    if len(parts) == 1:
        return text(parts[0])
    written = ", ".join(f"part_{i} AS ({part})" for i, part in enumerate(parts[:-1]))
    return text(f"WITH {written} {parts[-1]}")
