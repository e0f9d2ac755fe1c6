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
