"""A database that drops every connection mid-stream: no event is lost and none is handled twice."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def kill_connections(pg_admin_url: str, database_url: str) -> int:
    name = make_url(database_url).database
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def test_consumer_and_relay_survive_dropped_database_connections(database, amqp_url, bus_names, threads, pg_admin_url):
    consumer = probe.make_consumer(database, amqp_url, bus_names, batch_size=20)
    consumer.declare()
    relay = probe.relay_for(database, amqp_url, bus_names, batch_size=25)
    threads(consumer.run)
    threads(relay.run)

    def handled() -> list[int]:
        with database.session() as s:
            return sorted(s.scalars(select(probe.effects.c.n)))

    killed = 0
    for start in range(0, 600, 50):
        probe.write_events(database, range(start, start + 50))
        eventually(lambda s=start: len(handled()) > s, what="progress before the next cut")
        killed += kill_connections(pg_admin_url, database.url)
    assert killed > 0
    eventually(lambda: len(handled()) >= 600, timeout=60, what="every event after the outages")
    assert handled() == list(range(600))  # none lost, none twice


def test_a_copy_cut_off_by_the_database_is_an_outage(database, pg_admin_url):
    """A COPY runs on the driver's own connection, so its error reaches the consumer unwrapped by
    SQLAlchemy: it must still read as "the database is unavailable" (wait), not as a failed batch
    (which ends in the dead letters)."""
    from linli_kit.events.consumer import is_database_outage

    with database.engine.connect() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE copied (n integer)")
            with pytest.raises(psycopg.Error) as cut:
                with cursor.copy("COPY copied (n) FROM STDIN") as copy:
                    copy.write_row((1,))
                    assert kill_connections(pg_admin_url, database.url) >= 1
                    for n in range(100_000):  # until the server's end is found closed
                        copy.write_row((n,))
    assert not isinstance(cut.value, DBAPIError)
    assert is_database_outage(cut.value)


def test_a_driver_error_that_is_the_statements_fault_is_not_an_outage(database):
    from linli_kit.events.consumer import is_database_outage

    with database.engine.connect() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor, pytest.raises(psycopg.Error) as failed:
            cursor.execute("SELECT 1 / 0")
    assert not is_database_outage(failed.value)
