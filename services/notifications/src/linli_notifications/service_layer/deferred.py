"""A batch of events' notices and deliveries, inserted after the batch commits (PostgreSQL only).

The consumer's batch used to insert its notices and deliveries itself (about 4.5 rows per event,
each into tables of 5 indexes: most of PostgreSQL's share of the batch), and the next batch waited
for that insert. Now the batch writes the arrays the rows are made from (`planning.group_values`)
as one `event_plans` row, committed with its inbox rows: the event is handled exactly once, and its
plan is there once. After the commit the worker's expander thread (`PlanQueue.run`) expands
committed plans, oldest first, one transaction each: the plan's rows inserted by the very statement
the batch would have run (`planning.PLAN_STATEMENTS`, "on conflict do nothing"), reading its values
from the plan row it deletes (they never travel back to the worker). So a crash between the two
stages leaves the plan to the next expander (this process's after a restart, or another copy's),
and expanding never happens twice. Meanwhile the consumer reads and plans the next batch: Python
and PostgreSQL work at once.

What the consumer's rules read of notices and deliveries, they find as before:
- a plan is deferred only when none of its intents is a reminder; the reminders a changed meeting or
  activity expires (`Rules._schedule_reminders`) are therefore always inserted by their batch;
- a batch that plans in its own transaction first expands every plan committed before it
  (`expand_pending`), so where two sources' rows collide, the first planned is kept, as before.
Readers outside the worker (the inbox, the delivery loop) see a batch's notices and deliveries
once its plan is expanded, a few milliseconds after its commit.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_notifications.adapters.tables import PLAN_ARRAYS
from linli_notifications.service_layer.planning import PLAN_STATEMENTS

_DEFER = (
    "INSERT INTO event_plans (planned_at, ordered, "
    + ", ".join(f'"{c}"' for c in PLAN_ARRAYS)
    + ") VALUES (%(now)s, %(ordered)s, "
    + ", ".join(f"%({c})s" for c in PLAN_ARRAYS)
    + ")"
)


def _from_the_plan(statement: str) -> str:
    """`statement` (`planning.PLAN_STATEMENTS`, in order or not) reading its values from the plan
    `%(id)s`, deleted by the same statement: the arrays never travel back to the worker."""
    text = statement.replace(
        "WITH grp AS (", "WITH p AS (DELETE FROM event_plans WHERE id = %(id)s RETURNING *), grp AS (", 1
    )
    text = text.replace("AS about_json FROM unnest(", "AS about_json FROM p, unnest(", 1)
    text = text.replace("person AS (SELECT * FROM unnest(", "person AS (SELECT u.* FROM p, unnest(", 1)
    text = text.replace("FROM person AS u JOIN grp", "FROM p CROSS JOIN person AS u JOIN grp")
    text = text.replace("%(now)s", "p.planned_at")
    for name in PLAN_ARRAYS:
        text = text.replace(f"%({name})s", f'p."{name}"')
    if "%(" in text.replace("%(id)s", "") or text.count("FROM p") != 4:
        raise RuntimeError("planning's statement changed: event plans cannot be expanded")  # at import
    return text


_EXPAND = {ordered: _from_the_plan(statement) for ordered, statement in PLAN_STATEMENTS.items()}
# The oldest plan, locked: one another expander holds is waited for; gone by then, the next is taken.
_LOCK_OLDEST = "SELECT id, ordered FROM event_plans ORDER BY id LIMIT 1 FOR UPDATE"
# Every plan there is (committed, or this transaction's own), for a batch that inserts rows itself;
# those being expanded elsewhere are waited for and skipped (gone by then).
_LOCK_ALL = "SELECT id, ordered FROM event_plans ORDER BY id FOR UPDATE"


class PlanQueue:
    """The plans of one worker's consumer: written in its batches, expanded by its expander thread."""

    def __init__(self, database: Database, *, poll_seconds: float = 1.0) -> None:
        self.database = database
        # Plans left by a crashed or stopped copy of the worker are found within this.
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()

    def defer(self, session: Session, values: dict[str, Any]) -> None:
        """Write the plan of `values` in `session`'s transaction; the expander is woken once it commits."""
        session.connection().exec_driver_sql(_DEFER, values)
        if not event.contains(session, "after_commit", self._after_commit):
            event.listen(session, "after_commit", self._after_commit)

    def _after_commit(self, _session: Session) -> None:
        self._wake.set()

    def expand_pending(self, session: Session) -> int:
        """Expand, in `session`'s transaction and in their order, every plan there is: before the
        batch inserts rows itself. The number of plans expanded."""
        connection = session.connection()
        taken = connection.exec_driver_sql(_LOCK_ALL).all()
        for plan_id, ordered in taken:
            _expand(connection, plan_id, ordered)
        return len(taken)

    def expand_committed(self) -> int:
        """Expand committed plans, oldest first, one transaction each, until none is left; the
        number expanded."""
        expanded = 0
        while True:
            with self.database.transaction() as session:
                plan = session.connection().exec_driver_sql(_LOCK_OLDEST).first()
                if plan is not None:
                    _expand(session.connection(), *plan)
            if plan is None:
                return expanded
            expanded += 1

    def run(self) -> None:
        """One turn of the expander thread: wait for a commit (at most `poll_seconds`), then
        expand what there is."""
        self._wake.wait(self.poll_seconds)
        self._wake.clear()  # before expanding: a commit from now on wakes the next turn
        self.expand_committed()


def _expand(connection: Connection, plan_id: int, ordered: bool) -> None:
    """Insert the rows of plan `plan_id` and delete it, in the caller's transaction."""
    connection.exec_driver_sql(_EXPAND[ordered], {"id": plan_id})
