"""What the issue rules of one batch read and write, kept in memory: the issues' snapshots
(`subjects`), who follows them and what each person knows of them (`issue_knowledge`).

Event by event, an issue rule costs four to six statements (lock and read the snapshot, write it,
add a follow, read and write what people know). For a batch, the book reads all of that for the
batch's issues with three statements (the snapshots locked, in id order, as `_record_issue` locks
one), answers the rules from memory, and `flush` writes what changed with one statement per table.
The rules call it exactly where they would have read or written the table, with the same
semantics (`insert_ignore` for follows, `upsert_newer` for knowledge), so the rows are the same.

Whoever else reads these tables in the batch (a meeting's rule reading an issue's title, planning
reading who may see an issue) must see the book's changes: the batch flushes the book first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select, true, update
from sqlalchemy.orm import Session

from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import follows, issue_knowledge, reminders, replica, subjects
from linli_notifications.domain.access import COMMUNITY, Subject

# The columns an issue's snapshot keeps (`Rules._record_issue`).
COLUMNS = ("community_id", "title", "status", "revision", "member_ids", "visibility", "reporter_id", "assignee_id",
           "anonymous")  # fmt: skip


class IssueBook:
    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any] | None] = {}  # None: not known yet
        self.followers: dict[str, set[str]] = {}
        self.knowledge: dict[tuple[str, str], dict[str, Any]] = {}
        self._streets: dict[str, str | None] = {}
        self._inserted: dict[str, set[str]] = {}  # issue -> the columns its new snapshot sets
        self._changed: set[str] = set()
        self._new_follows: list[dict[str, Any]] = []
        self._learnt: set[tuple[str, str]] = set()
        # Who may read each issue (`subject`), made once per snapshot: an issue's supporters can be
        # many, and every notice gathered about it asks again. Dropped whenever its snapshot changes.
        self._subjects: dict[str, Subject | None] = {}

    def covers(self, issue_id: str) -> bool:
        return issue_id in self.snapshots

    @property
    def dirty(self) -> bool:
        return bool(self._inserted or self._changed or self._new_follows or self._learnt)

    def load(self, session: Session, issue_ids: Iterable[str]) -> None:
        ids = sorted(set(issue_ids) - set(self.snapshots))
        if not ids:
            return
        self.snapshots.update(dict.fromkeys(ids))
        dialect_name = repository.dialect_of(session)
        for ids_chunk in _chunks(ids):
            given = {repository.IDS: repository.ids_value(session, ids_chunk)}
            for row in session.execute(*_locked_snapshots(session, ids_chunk)).all():
                self.snapshots[row.subject_id] = {c: row._mapping[c] for c in COLUMNS}
            for target_id, user_id in session.execute(_issue_follows_among(dialect_name), given).all():
                self.followers.setdefault(target_id, set()).add(user_id)
            for row in session.execute(_knowledge_among(dialect_name), given).all():
                self.knowledge[(row.issue_id, row.user_id)] = dict(row._mapping)

    # --- subjects ---------------------------------------------------------------------------------
    def snapshot(self, issue_id: str) -> dict[str, Any] | None:
        return self.snapshots[issue_id]

    def insert_snapshot(self, issue_id: str, values: dict[str, Any]) -> None:
        self.snapshots[issue_id] = {c: values.get(c) for c in COLUMNS}
        self._inserted[issue_id] = set(values)
        self._subjects.pop(issue_id, None)

    def update_snapshot(self, issue_id: str, values: dict[str, Any]) -> None:
        row = self.snapshots[issue_id]
        assert row is not None
        row.update(values)
        self._subjects.pop(issue_id, None)
        if issue_id in self._inserted:
            self._inserted[issue_id] |= set(values)
        else:
            self._changed.add(issue_id)

    def know_street(self, community_id: str, street_id: str | None) -> None:
        """The community's street, read by the caller with others (kept if already known)."""
        self._streets.setdefault(community_id, street_id)

    def subject(self, session: Session, issue_id: str) -> Subject | None:
        """Who may read the issue, as `repository.load_subjects` would say now."""
        if issue_id in self._subjects:
            return self._subjects[issue_id]
        row = self.snapshots[issue_id]
        if row is None:
            return None
        community_id = row["community_id"]
        if community_id not in self._streets:
            self._streets[community_id] = session.scalar(
                select(replica.communities.c.street_id).where(replica.communities.c.community_id == community_id)
            )
        made = self._subjects[issue_id] = Subject(
            subject_type="issue",
            subject_id=issue_id,
            community_id=community_id,
            street_id=self._streets[community_id],
            visibility=row["visibility"] or COMMUNITY,
            reporter_id=row["reporter_id"],
            member_ids=frozenset(row["member_ids"] or ()),
            assignee_id=row["assignee_id"],
        )
        return made

    # --- follows and knowledge --------------------------------------------------------------------
    def follow(self, rows: list[dict[str, Any]]) -> None:
        """As `insert_ignore` on follows: the first row of a person and issue stays."""
        for row in rows:
            people = self.followers.setdefault(row["target_id"], set())
            if row["user_id"] not in people:
                people.add(row["user_id"])
                self._new_follows.append(row)

    def followers_of(self, issue_id: str) -> list[str]:
        return sorted(self.followers.get(issue_id, ()))

    def known(self, issue_id: str, users: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        found = {}
        for user in set(users):
            row = self.knowledge.get((issue_id, user))
            if row is not None:
                found[user] = (row["status"], row["assignee"])
        return found

    def learn(self, rows: list[dict[str, Any]]) -> None:
        """As `upsert_newer` on issue_knowledge: a row replaces one of an older revision."""
        for row in rows:
            key = (row["issue_id"], row["user_id"])
            current = self.knowledge.get(key)
            if current is None or current["revision"] < row["revision"]:
                self.knowledge[key] = dict(row)
                self._learnt.add(key)

    # --- writing -----------------------------------------------------------------------------------
    def flush(self, session: Session) -> None:
        """Write what changed since the last flush: one statement per table and shape of row."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for issue_id, columns in sorted(self._inserted.items()):
            row = self.snapshots[issue_id]
            assert row is not None
            names = tuple(c for c in COLUMNS if c in columns)
            by_columns.setdefault(names, []).append(
                {"subject_type": "issue", "subject_id": issue_id, **{c: row[c] for c in names}}
            )
        for rows in by_columns.values():
            repository.insert_rows(session, subjects, rows)
        if self._changed and session.get_bind().dialect.name == "postgresql":
            changed = []
            for issue_id in sorted(self._changed):
                row = self.snapshots[issue_id]
                assert row is not None
                changed.append({"subject_id": issue_id, **row})
            repository.update_arrays(session, subjects, changed, ["subject_id"], {"subject_type": "issue"})
        elif self._changed:
            statement = (
                update(subjects)
                .where(subjects.c.subject_type == "issue", subjects.c.subject_id == bindparam("key_id"))
                .values({c: bindparam(f"new_{c}") for c in COLUMNS})
            )
            rows = []
            for issue_id in sorted(self._changed):
                row = self.snapshots[issue_id]
                assert row is not None
                rows.append({"key_id": issue_id, **{f"new_{c}": row[c] for c in COLUMNS}})
            session.execute(statement, rows)
        repository.insert_new(session, follows, self._new_follows, ["target_type", "target_id", "user_id"])
        repository.upsert_newer(
            session, issue_knowledge, [self.knowledge[k] for k in sorted(self._learnt)], keys=["issue_id", "user_id"]
        )
        self._inserted, self._changed, self._new_follows, self._learnt = {}, set(), [], set()


# An issue's snapshot as the book loads it.
_SNAPSHOT_COLUMNS = (subjects.c.subject_id, *(subjects.c[c] for c in COLUMNS))


def _locked_snapshots(session: Session, ids: list[str]) -> tuple[Select, dict[str, Any]]:
    """The snapshots of the issues `ids` (sorted), each locked as `_record_issue` locks one, in
    the order of `ids`: copies of the worker take their turns, and never deadlock on them."""
    return _by_key(session, "issue", ids, _SNAPSHOT_COLUMNS, lock=True)


@functools.cache
def _issue_follows_among(dialect_name: str) -> Select:
    return select(follows.c.target_id, follows.c.user_id).where(
        follows.c.target_type == "issue", repository.among_given(dialect_name, follows.c.target_id)
    )


@functools.cache
def _knowledge_among(dialect_name: str) -> Select:
    return select(issue_knowledge).where(repository.among_given(dialect_name, issue_knowledge.c.issue_id))


def _by_key(
    session: Session, subject_type: str, ids: list[str], columns: tuple, *, lock: bool = False
) -> tuple[Select, dict[str, Any]]:
    """`columns` of the snapshots of type `subject_type` among `ids` (sorted), in the order of
    `ids`, as a statement and its parameters; with `lock`, each row locked as it is read (in that
    order: copies of the worker take their turns, and never deadlock on them).

    On PostgreSQL each id is looked up by the primary key: a lateral subquery per id, which its
    LIMIT (and a row lock) keeps from being flattened into a join. A semi-join of the ids read
    every snapshot of the type whenever the planner had no statistics of the table (a burst's, or
    a generic plan's), a cost that grew with the number of issues or meetings ever seen."""
    dialect_name = repository.dialect_of(session)
    statement = _by_key_statement(dialect_name, subject_type, columns, lock)
    return statement, {repository.IDS: repository.ids_value(session, ids)}


@functools.cache
def _by_key_statement(dialect_name: str, subject_type: str, columns: tuple, lock: bool) -> Select:
    """`_by_key`'s statement, built once (the ids given as the parameter `repository.IDS`)."""
    if dialect_name != "postgresql":
        statement = (
            select(*columns)
            .where(subjects.c.subject_type == subject_type, repository.among_given(dialect_name, subjects.c.subject_id))
            .order_by(subjects.c.subject_id)
        )
        return statement.with_for_update() if lock else statement
    wanted = (
        func.unnest(repository.as_array("", String(36), repository.IDS))
        .table_valued("id", with_ordinality="n")
        .render_derived()
    )
    one = select(*columns).where(subjects.c.subject_type == subject_type, subjects.c.subject_id == wanted.c.id)
    one = (one.with_for_update() if lock else one).limit(1).lateral("snapshot")
    return select(one).select_from(wanted.join(one, true())).order_by(wanted.c.n)


def _chunks(ids: list[str], size: int = 5000) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class ActivityMembers:
    """Who holds a place in each activity (`subjects.member_ids`), as the registration rule keeps
    it: read for a batch's activities with one statement, changed in memory, written with one.
    An activity rule reads and writes the activity's snapshot itself: the batch writes these
    first and forgets that activity (`flush(session, forget=...)`).

    Kept as sets, written sorted (as the rule writes them event by event): an activity's places run
    to hundreds, sorted once per batch rather than once per registration."""

    def __init__(self) -> None:
        self.members: dict[str, set[str] | None] = {}  # None: no snapshot of the activity
        self._changed: set[str] = set()

    def load(self, session: Session, activity_ids: Iterable[str]) -> None:
        ids = sorted(set(activity_ids) - set(self.members))
        if not ids:
            return
        self.members.update(dict.fromkeys(ids))
        for activity_id, member_ids in session.execute(
            *_by_key(session, "activity", ids, (subjects.c.subject_id, subjects.c.member_ids))
        ).all():
            self.members[activity_id] = set(member_ids or ())

    def covers(self, activity_id: str) -> bool:
        return activity_id in self.members

    def has_snapshot(self, activity_id: str) -> bool:
        return self.members[activity_id] is not None

    def join(self, activity_id: str, user_id: str) -> None:
        """`user_id` holds a place in the activity (which has a snapshot)."""
        members = self.members[activity_id]
        assert members is not None
        members.add(user_id)
        self._changed.add(activity_id)

    def leave(self, activity_id: str, user_id: str) -> None:
        """`user_id` holds no place in the activity (which has a snapshot)."""
        members = self.members[activity_id]
        assert members is not None
        members.discard(user_id)
        self._changed.add(activity_id)

    def _sorted(self, activity_id: str) -> list[str]:
        return sorted(self.members[activity_id] or ())

    def flush(self, session: Session, forget: str | None = None) -> None:
        if self._changed and session.get_bind().dialect.name == "postgresql":
            repository.update_arrays(
                session,
                subjects,
                [{"subject_id": a, "member_ids": self._sorted(a)} for a in sorted(self._changed)],
                ["subject_id"],
                {"subject_type": "activity"},
            )
            self._changed = set()
        elif self._changed:
            session.execute(
                update(subjects)
                .where(subjects.c.subject_type == "activity", subjects.c.subject_id == bindparam("key_id"))
                .values(member_ids=bindparam("new_member_ids")),
                [{"key_id": a, "new_member_ids": self._sorted(a)} for a in sorted(self._changed)],
            )
            self._changed = set()
        if forget is not None:
            self.members.pop(forget, None)


class NewMeetings:
    """The meetings of a batch that this service has never seen, kept in memory until `flush`:
    their snapshots and the reminders scheduled for them, each table written with one statement.

    A meeting's reminders (and the reminder notices fired from them) exist only once its snapshot
    is kept, and snapshots are never deleted: so for a meeting with no snapshot there is nothing to
    cancel or expire, and the rule's statements for that are skipped. Once written (`flush`), the
    meeting is no longer new, and its rules go to the database as event by event."""

    def __init__(self) -> None:
        self.unseen: set[str] = set()  # no snapshot in the database, none kept here yet
        self.kept: dict[str, dict[str, Any]] = {}  # snapshots kept here, not yet written
        self._reminders: list[dict[str, Any]] = []

    def load(self, session: Session, meeting_ids: Iterable[str]) -> None:
        ids = sorted(set(meeting_ids))
        if not ids:
            return
        known = set(session.scalars(*_by_key(session, "meeting", ids, (subjects.c.subject_id,))).all())
        self.unseen = set(ids) - known

    @property
    def dirty(self) -> bool:
        return bool(self.kept or self._reminders)

    def keep(self, meeting_id: str, values: dict[str, Any]) -> None:
        self.unseen.discard(meeting_id)
        self.kept[meeting_id] = {"subject_type": "meeting", "subject_id": meeting_id, **values}

    def schedule(self, rows: list[dict[str, Any]]) -> None:
        self._reminders.extend(rows)

    def flush(self, session: Session) -> None:
        if self.kept:
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self.kept.values():
                by_columns.setdefault(tuple(sorted(row)), []).append(row)
            for rows in by_columns.values():
                repository.insert_rows(session, subjects, rows)
            self.kept = {}
        repository.insert_new(session, reminders, self._reminders, ["subject_type", "subject_id", "kind", "starts_at"])
        self._reminders = []
