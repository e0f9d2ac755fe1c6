"""A database error is an outage (wait, spend no delivery) only when the database is unavailable; a
statement that fails (timeout, deadlock, lock) fails its message, which ends in the dead letters."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from linli_kit.events import Event, new_event
from linli_kit.events.consumer import EventConsumer, is_database_outage
from linli_kit.events.deadletters import list_dead_letters
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually


def wrapped(orig: BaseException, *, invalidated: bool = False) -> OperationalError:
    return OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "orig",
    [
        pg_errors.DeadlockDetected("deadlock detected"),  # 40P01
        pg_errors.LockNotAvailable("could not obtain lock"),  # 55P03
        pg_errors.QueryCanceled("canceling statement due to statement timeout"),  # 57014
        pg_errors.SerializationFailure("could not serialize access"),  # 40001
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["deadlock", "lock-timeout", "statement-timeout", "serialization", "sqlite-locked"],
)
def test_a_failed_statement_is_not_an_outage(orig):
    assert not is_database_outage(wrapped(orig))


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pg_errors.AdminShutdown("terminating connection due to administrator command")),  # 57P01
        wrapped(pg_errors.CannotConnectNow("the database system is starting up")),  # 57P03
        wrapped(pg_errors.TooManyConnections("too many clients")),  # 53300
        wrapped(pg_errors.ConnectionFailure("connection failure")),  # 08006
        wrapped(psycopg.OperationalError("connection refused")),  # no SQLSTATE: no server answer
        wrapped(pg_errors.QueryCanceled("whatever"), invalidated=True),  # the connection is gone
        wrapped(sqlite3.OperationalError("unable to open database file")),
    ],
    ids=[
        "admin-shutdown",
        "starting-up",
        "too-many-connections",
        "connection-failure",
        "refused",
        "invalidated",
        "sqlite-no-file",
    ],
)
def test_an_unavailable_database_is_an_outage(error):
    assert is_database_outage(error)


def test_other_errors_are_not_outages():
    assert not is_database_outage(IntegrityError("INSERT", {}, pg_errors.UniqueViolation("duplicate key")))
    assert not is_database_outage(RuntimeError("handler bug"))


STATEMENT_TIMEOUT_N = 13


def slow_for_one(session: Session, event: Event) -> None:
    """Times out on one event, every time; records the others."""
    n = int(event.data["n"])
    if n == STATEMENT_TIMEOUT_N:
        session.execute(text("SET LOCAL statement_timeout = '50ms'"))
        session.execute(text("SELECT pg_sleep(5)"))
    session.execute(insert(probe.effects).values(event_id=event.id, n=n))


@pytest.mark.integration
def test_a_message_that_always_times_out_is_dead_lettered_and_the_rest_flow(database, amqp_url, bus_names, threads):
    consumer = EventConsumer(
        database,
        probe.messaging.inbox,
        amqp_url,
        bus_names,
        service="probe",
        handlers={probe.PROBE_EVENT: slow_for_one},
        delivery_limit=2,
    )
    consumer.declare()
    slow = new_event(probe.PROBE_EVENT, {"n": STATEMENT_TIMEOUT_N}, producer="probe")
    probe.publish_raw(amqp_url, bus_names, slow.to_json().encode())
    for n in (14, 15, 16):
        probe.publish_raw(
            amqp_url, bus_names, new_event(probe.PROBE_EVENT, {"n": n}, producer="probe").to_json().encode()
        )
    threads(consumer.run)

    def handled() -> list[int]:
        with database.session() as s:
            return sorted(s.scalars(select(probe.effects.c.n)))

    eventually(lambda: handled() == [14, 15, 16], what="the events behind the slow one handled")
    dead = eventually(lambda: list_dead_letters(amqp_url, bus_names, "probe"), what="the slow one dead-lettered")
    assert [d.event_id for d in dead] == [slow.id] and dead[0].reason == "delivery_limit"
    with database.session() as s:  # its inbox row never committed: a replay would handle it
        assert (
            s.scalar(select(probe.messaging.inbox.c.event_id).where(probe.messaging.inbox.c.event_id == slow.id))
            is None
        )
