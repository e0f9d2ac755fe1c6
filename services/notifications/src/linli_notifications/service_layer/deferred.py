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

A plan whose expansion fails must not hold up every plan after it (before plans, such a failure
failed its batch, which was retried event by event and the bad event dead-lettered). So:
- an error that is nobody's fault (the database unreachable, a deadlock, a serialization failure, a
  lock timeout) is retried as it is, at the expander's next turn, as often as it happens;
- any other error (a value a column or constraint refuses, a bug) counts a try on the plan
  (`tries`, its `error` kept); at the `tries`-th the plan is set aside (`failed_at`): logged at
  ERROR with its id and error, counted (`linli_notification_plans_set_aside_total`), kept in
  event_plans for an operator, and skipped by the expanders, which go on with the plans after it;
- a batch expanding the plans before it (`expand_pending`) expands each in a savepoint when one
  fails, and leaves the failing one to the expander rather than failing itself (its reminders would
  otherwise be dead-lettered for another event's plan).
`linli-notifications plans list` shows the plans set aside; `plans retry [--id ID]` gives them back
to the expanders (their tries counted anew) once what failed them is fixed: each is expanded once,
as no failed try left anything.

Ordering: where a plan set aside (or skipped by a batch) has rows that collide with a later plan's
(or the batch's own), the later one goes first and its rows are kept, those of the plan set aside
skipped when it is retried ("on conflict do nothing"): the order holds among the plans that expand.

A batch's `expand_pending` can deadlock with another copy's expander: the batch waits for the plan
the expander holds, whose insert waits for a row the batch inserted earlier in its transaction (an
earlier reminder of the batch, or of the same event, colliding with the plan's rows). PostgreSQL
aborts one of them, each a whole transaction: the expander's plan stays for its next turn (not
counted as a try), or the batch is retried event by event as for any deadlock. Nothing is lost or
done twice; which of the colliding rows is kept is then the order of commits, as between copies.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.events.consumer import is_database_outage
from linli_notifications.adapters.metrics import PLANS_SET_ASIDE
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


log = logging.getLogger(__name__)

_EXPAND = {ordered: _from_the_plan(statement) for ordered, statement in PLAN_STATEMENTS.items()}
# The oldest plan not set aside, locked: one another expander holds is waited for; gone (or set
# aside) by then, the next is taken.
_LOCK_OLDEST = "SELECT id, ordered FROM event_plans WHERE failed_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE"
# Every plan there is (committed, or this transaction's own), for a batch that inserts rows itself;
# those being expanded elsewhere are waited for and skipped (gone by then).
_LOCK_ALL = "SELECT id, ordered FROM event_plans WHERE failed_at IS NULL ORDER BY id FOR UPDATE"
# A failed try at plan %(id)s, in a transaction of its own (the expansion's rolled back); set aside
# at the last. Gone (expanded by another expander meanwhile) or set aside already: no row.
_FAILED = (
    "UPDATE event_plans SET tries = tries + 1, error = %(error)s,"
    " failed_at = CASE WHEN tries + 1 >= %(tries)s THEN now() END"
    " WHERE id = %(id)s AND failed_at IS NULL RETURNING tries, failed_at IS NOT NULL"
)
# Class 40: serialization failure, deadlock; 55P03: lock timeout. Bad luck, not the plan's fault.
_RETRIED_SQLSTATE_CLASSES = {"40"}
_RETRIED_SQLSTATES = {"55P03"}
_ERROR_CHARS = 2000


class PlanQueue:
    """The plans of one worker's consumer: written in its batches, expanded by its expander thread."""

    def __init__(self, database: Database, *, poll_seconds: float = 1.0, tries: int = 3) -> None:
        self.database = database
        # Plans left by a crashed or stopped copy of the worker are found within this.
        self.poll_seconds = poll_seconds
        # Failed expansions (not counting transient errors) before a plan is set aside: one turn
        # each, so the plans behind a bad one wait a few turns, not forever.
        self.tries = tries
        self._wake = threading.Event()

    def defer(self, session: Session, values: dict[str, Any]) -> None:
        """Write the plan of `values` in `session`'s transaction; the expander is woken once it commits."""
        session.connection().exec_driver_sql(_DEFER, values)
        if not event.contains(session, "after_commit", self._after_commit):
            event.listen(session, "after_commit", self._after_commit)

    def _after_commit(self, _session: Session) -> None:
        self._wake.set()

    def expand_pending(self, session: Session) -> int:
        """Expand, in `session`'s transaction and in their order, every plan there is (not set
        aside): before the batch inserts rows itself. The number of plans expanded; one whose
        expansion fails (not transiently) is left to the expander."""
        connection = session.connection()
        taken = connection.exec_driver_sql(_LOCK_ALL).all()
        if not taken:
            return 0
        try:
            # One savepoint for all: a failure must not abort the batch's transaction.
            with session.begin_nested():
                nested = session.connection()  # the SAVEPOINT is issued when it is asked for
                for plan_id, ordered in taken:
                    _expand(nested, plan_id, ordered)
            return len(taken)
        except Exception as exc:
            if _is_retried(exc):
                raise  # the batch fails and is retried, as for its own statements
        expanded = 0
        for plan_id, ordered in taken:
            try:
                with session.begin_nested():
                    _expand(session.connection(), plan_id, ordered)
            except Exception as exc:
                if _is_retried(exc):
                    raise
                # Still locked by this batch: the expander counts its tries once the batch ends.
                log.warning("event plan left to the expander", extra={"plan_id": plan_id, "error": _describe(exc)})
                continue
            expanded += 1
        return expanded

    def expand_committed(self) -> int:
        """Expand committed plans, oldest first, one transaction each, until none is left; the
        number expanded. A plan that fails counts a try and ends the turn (raised), or at its last
        try is set aside and the next one taken; a transient error ends the turn as it is."""
        expanded = 0
        while True:
            plan = None
            try:
                with self.database.transaction() as session:
                    plan = session.connection().exec_driver_sql(_LOCK_OLDEST).first()
                    if plan is not None:
                        _expand(session.connection(), *plan)
            except Exception as exc:
                if plan is None or _is_retried(exc) or self._tried(plan[0], exc):
                    raise
                continue  # set aside: the next plan
            if plan is None:
                return expanded
            expanded += 1

    def _tried(self, plan_id: int, exc: BaseException) -> bool:
        """Count a failed expansion of plan `plan_id`: whether it is to be tried again (False: set
        aside now, or not there any more)."""
        error = _describe(exc)
        with self.database.transaction() as session:
            row = session.connection().exec_driver_sql(_FAILED, {"id": plan_id, "error": error, "tries": self.tries})
            counted = row.first()
        if counted is None:
            return False
        tries, set_aside = counted
        if not set_aside:
            log.warning("event plan failed to expand", extra={"plan_id": plan_id, "tries": tries, "error": error})
            return True
        log.error("event plan set aside", extra={"plan_id": plan_id, "tries": tries, "error": error})
        PLANS_SET_ASIDE.inc()
        return False

    def run(self) -> None:
        """One turn of the expander thread: wait for a commit (at most `poll_seconds`), then
        expand what there is."""
        self._wake.wait(self.poll_seconds)
        self._wake.clear()  # before expanding: a commit from now on wakes the next turn
        self.expand_committed()


_SET_ASIDE = "SELECT id, planned_at, tries, failed_at, error FROM event_plans WHERE failed_at IS NOT NULL ORDER BY id"
_RETRY = "UPDATE event_plans SET tries = 0, failed_at = NULL WHERE failed_at IS NOT NULL"


def set_aside(database: Database) -> list[dict[str, Any]]:
    """The plans set aside, oldest first: id, planned_at, tries, failed_at, error."""
    with database.session() as session:
        return [dict(row._mapping) for row in session.connection().exec_driver_sql(_SET_ASIDE)]


def retry_set_aside(database: Database, plan_id: int | None = None) -> int:
    """Give the plans set aside (or plan `plan_id` only) back to the expanders, which find them
    within their poll; the number given back."""
    statement, params = (_RETRY, {}) if plan_id is None else (_RETRY + " AND id = %(id)s", {"id": plan_id})
    with database.transaction() as session:
        return session.connection().exec_driver_sql(statement, params).rowcount


def _is_retried(exc: BaseException) -> bool:
    """Whether a failed expansion is retried as it is, as often as it happens (not the plan's fault)."""
    if is_database_outage(exc):
        return True
    sqlstate = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "sqlstate", None) or ""
    return sqlstate[:2] in _RETRIED_SQLSTATE_CLASSES or sqlstate in _RETRIED_SQLSTATES


def _describe(exc: BaseException) -> str:
    """The error of a failed expansion, as kept on its plan."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    text = f"{sqlstate or type(orig).__name__}: {orig}".strip()
    return text[:_ERROR_CHARS]


def _expand(connection: Connection, plan_id: int, ordered: bool) -> None:
    """Insert the rows of plan `plan_id` and delete it, in the caller's transaction."""
    connection.exec_driver_sql(_EXPAND[ordered], {"id": plan_id})
