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
    """Terminate the database's connections and wait until their backends are gone (a terminated
    backend sends its goodbye a moment after pg_terminate_backend returns)."""
    name = make_url(database_url).database
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchall()
        ]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        eventually(
            lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchall(),
            what="the terminated backends gone",
        )
    return len(pids)


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


def test_batches_in_flight_when_the_database_goes_are_not_sent_twice(
    database, amqp_url, bus_names, broker_proxy, tap, threads, pg_admin_url
):
    """Three batches await their confirms when the relay's database connection (and with it its
    lock) is cut. The first confirm's marking fails; the relay steps down but keeps awaiting the
    other two batches' confirms on its channel, and marks all three once it leads again, before it
    reads anything: none of the 300 events goes out twice."""
    from collections import Counter

    from sqlalchemy import func

    def unpublished() -> int:
        outbox = probe.messaging.outbox
        with database.reading() as conn:
            return conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))

    proxy, proxied_url = broker_proxy
    relay = probe.relay_for(database, proxied_url, bus_names, batch_size=100, batches_in_flight=3)
    threads(relay.run)
    eventually(relay.leading.is_set, what="relay connected and publishing")

    proxy.stall()  # the broker holds its confirms back
    ids = probe.write_events(database, range(300))
    eventually(lambda: relay.awaiting_confirms == 300, what="three batches awaiting their confirms")
    assert kill_connections(pg_admin_url, database.url) >= 1  # the relay's lock and its connection
    proxy.resume()

    eventually(lambda: unpublished() == 0, timeout=30, what="every row marked after the outage")
    received: Counter[str] = Counter()
    eventually(lambda: received.update(p.message_id for p in tap.drain()) or set(received) == set(ids))
    assert max(received.values()) == 1, f"{sum(n > 1 for n in received.values())} events went out twice"
