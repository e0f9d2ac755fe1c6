"""An issue repository for a batch of events: what the batch's handlers will read is loaded with a
few statements up front, their reads are answered from memory and their writes are kept until
`write`, which sends each table's rows with one statement.

The meetings' events name issues and meetings; a batch of them would otherwise cost about ten round
trips per event (lock the issue, read its link to the meeting, count its consultations, read its
supporters and street, ...). Here the whole batch costs a fixed handful: the links of its meetings,
the issues (locked, in id order, so two copies of the worker never deadlock), their links, decisions
and supporters, and the streets; then at the end one insert and one update per table (the timeline
entries too: one insert) and the ORM's flush of the issues.

Only the handlers of the meetings' events use it, and only through the methods below; the rows they
touch are those of the issues locked here, so no one else changes them meanwhile.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from linli_issues.adapters import consultation_counts
from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.tables import issue_decisions, issue_meetings, issue_updates, replica, supporters
from linli_issues.domain.model import Category, Issue, TimelineEntry

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
        self._supporters: dict[str, list[str]] = {}
        self._new_links: set[_Key] = set()
        self._changed_links: set[_Key] = set()
        self._new_decisions: set[_Key] = set()
        self._changed_decisions: set[_Key] = set()
        self._entries: list[TimelineEntry] = []  # timeline entries kept for `write`
        self._linked_meetings: set[str] = set()  # the meetings whose links were read in full
        self._other_consultations: dict[str, int] = {}  # issue -> its other links not cancelled

    def load(self, issue_ids: Iterable[str], meeting_ids: Iterable[str], linked_meetings: Iterable[str] = ()) -> None:
        """Read what handling events about these issues and meetings needs, locking the issues;
        the issues already linked to these meetings are loaded (and locked) too. The issues' links
        are read in full for these meetings and `linked_meetings` (those the batch may link the
        issues to); of their other links only how many count as consultations."""
        meeting_ids = sorted(set(meeting_ids))
        self._linked_meetings = set(meeting_ids) | set(linked_meetings)
        wanted = set(issue_ids)
        for meeting_id in meeting_ids:
            self._links_of_meeting[meeting_id] = set()
        if meeting_ids:
            rows = self.session.execute(select(issue_meetings.c.issue_id, issue_meetings.c.meeting_id).where(
                issue_meetings.c.meeting_id.in_(meeting_ids)
            ))  # fmt: skip
            for issue_id, meeting_id in rows:
                self._links_of_meeting[meeting_id].add(issue_id)
                wanted.add(issue_id)
        ids = sorted(wanted)
        if not ids:
            return
        found = self.session.scalars(select(Issue).where(Issue.id.in_(ids)).order_by(Issue.id).with_for_update())
        self._issues = dict.fromkeys(ids)
        self._issues.update({issue.id: issue for issue in found})
        ids = [i for i in ids if self._issues[i] is not None]
        m = issue_meetings.c
        linked = sorted(self._linked_meetings)
        if linked:
            for row in self.session.execute(
                select(issue_meetings).where(m.issue_id.in_(ids), m.meeting_id.in_(linked))
            ):
                self._links[(row.issue_id, row.meeting_id)] = dict(row._mapping)
                self._meetings_of.setdefault(row.issue_id, set()).add(row.meeting_id)
        # An issue taken up by many meetings: the batch needs only how many of the others count.
        others = select(m.issue_id, func.count()).where(m.issue_id.in_(ids), m.status != "cancelled")
        if linked:
            others = others.where(m.meeting_id.not_in(linked))
        self._other_consultations = dict(self.session.execute(others.group_by(m.issue_id)).all())
        for row in self.session.execute(select(issue_decisions).where(issue_decisions.c.issue_id.in_(ids))):
            self._decisions[(row.issue_id, row.decision_id)] = dict(row._mapping)
            self._decisions_of.setdefault(row.issue_id, set()).add(row.decision_id)
        self._supporters = {i: [] for i in ids}
        for issue_id, user_id in self.session.execute(
            select(supporters.c.issue_id, supporters.c.user_id).where(supporters.c.issue_id.in_(ids))
        ):
            self._supporters[issue_id].append(user_id)
        communities = sorted({issue.community_id for issue in self._issues.values() if issue is not None})
        streets = dict(
            self.session.execute(
                select(replica.communities.c.community_id, replica.communities.c.street_id).where(
                    replica.communities.c.community_id.in_(communities)
                )
            ).all()
        )
        self._streets.update({c: streets.get(c) for c in communities})

    # --- reads, from what was loaded ------------------------------------------------------------------
    def get(self, issue_id: str, *, for_update: bool = False) -> Issue | None:
        if issue_id in self._issues:
            return self._issues[issue_id]
        return super().get(issue_id, for_update=for_update)  # not named by the batch: read as usual

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
        row = self._decisions.get((issue_id, decision_id))
        return dict(row) if row is not None else None

    def follow_up_totals(self, issue_id: str) -> tuple[int, int]:
        self._require(issue_id)
        rows = [self._decisions[(issue_id, d)] for d in self._decisions_of.get(issue_id, ())]
        return sum(r["action_items"] for r in rows), sum(r["done"] for r in rows)

    # --- writes, kept until `write` -----------------------------------------------------------------
    def add(self, thing: Issue | Category | TimelineEntry) -> None:
        """A timeline entry is kept for `write` (one INSERT of fixed text for the batch's entries,
        instead of an object for the session to flush); an escalation still goes through the
        session, whose hook counts it in the statistics (adapters/counters.py)."""
        if isinstance(thing, TimelineEntry) and thing.kind != "escalation":
            self._entries.append(thing)
            return
        super().add(thing)

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
        if new:
            self._decisions[key] = {"issue_id": issue_id, "decision_id": decision_id, **values}
            self._decisions_of.setdefault(issue_id, set()).add(decision_id)
            self._new_decisions.add(key)
        else:
            self._decisions[key].update(values)
            self._changed_decisions.add(key)

    def write(self) -> None:
        """Send the links, decisions and timeline entries kept since `load`, one statement per
        table and kind; the issues (and escalations) go with the session's flush."""
        # Their meetings' consultations held are worked out again at commit.
        consultation_counts.touch(self.session, {key[1] for key in self._new_links | self._changed_links})
        _write(self.session, issue_meetings, ("issue_id", "meeting_id"), self._links, self._new_links,
               self._changed_links)  # fmt: skip
        _write(self.session, issue_decisions, ("issue_id", "decision_id"), self._decisions, self._new_decisions,
               self._changed_decisions)  # fmt: skip
        if self._entries:
            _insert(self.session, issue_updates, [_entry_row(entry) for entry in self._entries])
        self._new_links, self._changed_links = set(), set()
        self._new_decisions, self._changed_decisions = set(), set()
        self._entries = []

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


def _insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    # One INSERT ... SELECT FROM unnest(arrays): one statement for the server to run whatever the
    # number of rows (an executemany is one per row, if in one round trip), of one text.
    session.execute(
        _insert_from_arrays(table),
        {
            f"all_{c.name}": [json.dumps(row[c.name]) if _is_json(c) else row[c.name] for row in rows]
            for c in table.columns
        },
    )


def _is_json(column: Any) -> bool:
    return isinstance(column.type, JSON)


@functools.cache
def _insert_from_arrays(table: Any) -> Any:
    """INSERT INTO `table` from one array parameter per column (`all_<column>`; JSON as text)."""
    given = (
        func.unnest(*(bindparam(f"all_{c.name}", type_=ARRAY(Text if _is_json(c) else c.type)) for c in table.columns))
        .table_valued(*(c.name for c in table.columns))
        .render_derived(with_types=False)
        .alias("given")
    )
    names = [c.name for c in table.columns]
    return insert(table).from_select(names, select(*(cast(given.c[c.name], c.type) for c in table.columns)))


def _write(session: Session, table: Any, keys: tuple[str, str], rows: dict, new: set, changed: set) -> None:
    if new:
        _insert(session, table, [rows[k] for k in sorted(new)])
    changed = changed - new
    if not changed:
        return
    columns = [c.name for c in table.columns if c.name not in keys]
    if session.get_bind().dialect.name == "postgresql":
        # One UPDATE ... FROM unnest(arrays): one round trip whatever the number of rows (an
        # executemany is one per row), and one statement text, compiled once.
        session.execute(_update_from_arrays(table, keys), {
            f"all_{c.name}": [rows[key][c.name] for key in sorted(changed)] for c in table.columns
        })  # fmt: skip
        return
    statement = (
        update(table)
        .where(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
        .values({c: bindparam(f"new_{c}") for c in columns})
    )
    params = []
    for key in sorted(changed):
        row = rows[key]
        params.append(
            {**{f"key_{k}": v for k, v in zip(keys, key, strict=True)}, **{f"new_{c}": row[c] for c in columns}}
        )
    session.execute(statement, params)


@functools.cache
def _update_from_arrays(table: Any, keys: tuple[str, ...]) -> Any:
    """UPDATE `table` from one array parameter per column (`all_<column>`), matched on `keys`."""
    given = (
        func.unnest(*(bindparam(f"all_{c.name}", type_=ARRAY(c.type)) for c in table.columns))
        .table_valued(*(c.name for c in table.columns))
        .render_derived(with_types=False)
        .alias("given")
    )
    return (
        update(table)
        .where(*(table.c[k] == given.c[k] for k in keys))
        .values({c.name: cast(given.c[c.name], c.type) for c in table.columns if c.name not in keys})
    )
