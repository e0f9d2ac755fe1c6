"""An idle relay waits for the outbox's notification (PostgreSQL LISTEN/NOTIFY, from the trigger
the outbox table carries) instead of reading the outbox many times a second, and still publishes
a new event at once; it stops at once while waiting."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select

from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def unpublished(database) -> int:
    outbox = probe.messaging.outbox
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


def test_an_idle_relay_waits_for_the_notification_of_new_rows(database, amqp_url, bus_names, tap, threads):
    # The fallback read comes after a minute: anything published sooner was woken by a notification.
    relay = probe.relay_for(database, amqp_url, bus_names, listen_fallback_seconds=60)
    stop = threads(relay.run)
    eventually(relay.listening.is_set, what="the relay listening for outbox rows")
    probe.write_events(database, [1])
    eventually(lambda: unpublished(database) == 0, timeout=20, what="the first event published")
    eventually(lambda: len(tap.drain()) == 1, what="the first event on the broker")
    reads_when_idle = relay.reads

    for n in (2, 3, 4):
        [event_id] = probe.write_events(database, [n])
        eventually(lambda: unpublished(database) == 0, timeout=20, what=f"event {n} published")
        received = eventually(tap.drain, what=f"event {n} on the broker")
        assert [p.message_id for p in received] == [event_id]

    # A read or two per notification (the rows, then the empty outbox): not a poll every 20 ms.
    assert relay.reads - reads_when_idle <= 3 * 3
    stop.set()
    eventually(lambda: not relay.connected.is_set(), timeout=5, what="the relay stopped while waiting")


def test_the_outbox_trigger_notifies_on_insert(database):
    listener = psycopg.connect(database.engine.url.set(drivername="postgresql").render_as_string(False),
                               autocommit=True)  # fmt: skip
    try:
        listener.execute("LISTEN linli_outbox")
        probe.write_events(database, [7, 8])  # one transaction: one notification
        notes = list(listener.notifies(timeout=10, stop_after=1))
        assert [(n.channel, n.payload) for n in notes] == [("linli_outbox", "outbox")]
    finally:
        listener.close()


def test_events_confirmed_while_their_marking_fails_are_marked_later_not_published_again(
    database, amqp_url, bus_names, tap, threads
):
    # The database refuses the first marking (as when PostgreSQL restarts between the broker's
    # confirm and the mark): the broker has the events; they are marked once it is back, never sent twice.
    # A sequence counts the attempts: unlike a table, it is not rolled back with the refused one.
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE mark_attempts")
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_first_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('mark_attempts') = 1 THEN RAISE EXCEPTION 'the database is going away'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_first_mark BEFORE UPDATE ON outbox FOR EACH STATEMENT "
            "EXECUTE FUNCTION refuse_first_mark()"
        )
    relay = probe.relay_for(database, amqp_url, bus_names)
    threads(relay.run)
    event_ids = probe.write_events(database, [1, 2, 3])
    eventually(lambda: unpublished(database) == 0, timeout=30, what="the events marked published")
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT last_value FROM mark_attempts").scalar() >= 2  # it did refuse once
    received: list = []
    eventually(lambda: received.extend(tap.drain()) or len(received) >= 3, what="the events on the broker")
    # Whatever else was to come has come by the time a last event, published after them, arrives.
    [last] = probe.write_events(database, [4])
    eventually(lambda: received.extend(tap.drain()) or last in [p.message_id for p in received], what="the last")
    assert sorted(p.message_id for p in received) == sorted([*event_ids, last])
