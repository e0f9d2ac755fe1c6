"""The relay holds no database lock or transaction while it waits for the broker, and one relay of a
service publishes at a time: on SQLite (what `make run` uses) and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pika
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from linli_kit.db import Database
from linli_kit.events.topology import declare_exchanges
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def unpublished(database: Database) -> int:
    outbox = probe.messaging.outbox
    with database.reading() as conn:
        return conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


def write_while_relay_waits(database: Database, pg_admin_url: str) -> None:
    """Write to the outbox from another connection, giving up after one second of waiting for a
    lock (the busy timeout of the service's own connections is ten)."""
    if database.is_sqlite:
        conn = sqlite3.connect(make_url(database.url).database, timeout=1.0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # "database is locked" after 1 s if the relay holds it
            conn.execute("UPDATE outbox SET payload = payload")
            conn.execute("INSERT INTO poison (n) VALUES (1)")
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    url = make_url(database.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SET lock_timeout = '1s'")  # fails if the relay holds the rows it published
        conn.execute("UPDATE outbox SET payload = payload")
        conn.execute("INSERT INTO poison (n) VALUES (1)")
        conn.commit()
        idle_in_transaction = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state IN ('idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert idle_in_transaction == 0, "a connection sits in an open transaction while the relay waits"


def test_relay_waiting_for_confirms_leaves_the_database_free(
    any_database, amqp_url, bus_names, broker_proxy, tap, threads, pg_admin_url
):
    proxy, proxied_url = broker_proxy
    relay = probe.relay_for(any_database, proxied_url, bus_names)
    threads(relay.run)
    eventually(relay.leading.is_set, what="relay connected and publishing")

    proxy.stall()  # the broker stops answering: no confirm comes
    ids = probe.write_events(any_database, range(300))
    eventually(lambda: relay.awaiting_confirms == 300, what="the relay waiting for the confirms of its batch")

    write_while_relay_waits(any_database, pg_admin_url)
    assert unpublished(any_database) == 300, "rows were marked published before the broker confirmed them"

    proxy.resume()
    eventually(lambda: unpublished(any_database) == 0, what="rows marked once the confirms arrive")
    received = Counter(p.message_id for p in eventually(tap.drain, what="events on the broker"))
    assert set(received) == set(ids)


def test_confirms_that_never_come_send_the_rows_again(any_database, amqp_url, bus_names, broker_proxy, tap, threads):
    proxy, proxied_url = broker_proxy
    relay = probe.relay_for(any_database, proxied_url, bus_names, confirm_timeout=1.0)
    threads(relay.run)
    eventually(relay.leading.is_set, what="relay connected")
    proxy.stall()
    ids = probe.write_events(any_database, range(20))
    eventually(lambda: relay.awaiting_confirms == 20, what="batch awaiting confirms")
    # The confirm timeout gives up on the link; the rows stay unpublished and go out on the next one.
    eventually(lambda: not relay.connected.is_set(), what="relay gives up on the silent broker")
    assert unpublished(any_database) == 20
    proxy.cut()
    proxy.resume()
    proxy.restore()
    eventually(lambda: unpublished(any_database) == 0, timeout=30, what="rows published after reconnecting")
    assert set(ids) <= {p.message_id for p in eventually(tap.drain, what="events on the broker")}


def test_one_relay_of_a_service_publishes_at_a_time(any_database, amqp_url, bus_names, tap, threads):
    first = probe.relay_for(any_database, amqp_url, bus_names, batch_size=50, standby_seconds=0.2)
    second = probe.relay_for(any_database, amqp_url, bus_names, batch_size=50, standby_seconds=0.2)
    stops = {id(first): threads(first.run), id(second): threads(second.run)}
    eventually(lambda: first.connected.is_set() and second.connected.is_set(), what="both relays connected")
    eventually(lambda: first.leading.is_set() != second.leading.is_set(), what="exactly one relay leading")

    ids = []
    for start in range(0, 1000, 100):
        ids += probe.write_events(any_database, range(start, start + 100))
    eventually(lambda: unpublished(any_database) == 0, what="everything published")
    received: Counter[str] = Counter()
    eventually(lambda: received.update(p.message_id for p in tap.drain()) or set(received) == set(ids))
    assert max(received.values()) == 1, "some events went out twice"

    # The leader stops; the other takes over.
    leader, other = (first, second) if first.leading.is_set() else (second, first)
    stops[id(leader)].set()
    eventually(other.leading.is_set, what="the standby relay takes over")
    later = probe.write_events(any_database, [1000])
    eventually(lambda: unpublished(any_database) == 0, what="published by the new leader")
    assert later[0] in {p.message_id for p in eventually(tap.drain, what="the later event")}


def test_refused_events_stay_unpublished_and_go_out_again(any_database, amqp_url, bus_names, threads):
    # A queue that takes one message and refuses the rest (the broker nacks them).
    queue = bus_names.queue("bench")  # removed with the test's names
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    try:
        declare_exchanges(channel, bus_names)
        channel.queue_declare(queue, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        channel.queue_bind(queue, bus_names.exchange, routing_key=probe.PROBE_EVENT)
        relay = probe.relay_for(any_database, amqp_url, bus_names, refused_reconnect_seconds=0.5)
        threads(relay.run)
        ids = probe.write_events(any_database, range(3))
        eventually(lambda: unpublished(any_database) == 2, what="one accepted, two refused and kept")
        # Refused for longer than refused_reconnect_seconds: it tries through a new connection.
        eventually(lambda: relay.links >= 2, timeout=30, what="a new connection after refusals")
        assert unpublished(any_database) == 2
        got = []
        for _ in range(3):  # make room, one message at a time: the refused ones are sent again
            got.append(eventually(lambda: channel.basic_get(queue, auto_ack=True)[1], what="the next event"))
        assert sorted(p.message_id for p in got) == sorted(ids)
        eventually(lambda: unpublished(any_database) == 0, what="all marked once accepted")
    finally:
        conn.close()
