"""A writer that wakes the relay itself after commit (`linli_kit.events.waker`): its transaction
does not notify from the outbox's trigger, the process's waker sends one notification for the
pokes that came while it was busy, and an idle relay publishes the rows at once."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import func, select, text

from linli_kit.events.waker import DEFER_NOTIFY_SQL, OutboxWaker, waker_for
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def listener(database) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(database.engine.url.set(drivername="postgresql").render_as_string(False), autocommit=True)
    conn.execute("LISTEN linli_outbox")
    yield conn
    conn.close()


def insert_row(database, n: int, *, deferred: bool) -> None:
    """One outbox row in a statement of its own (autocommit), its notification deferred or not."""
    condition = f"WHERE {DEFER_NOTIFY_SQL}" if deferred else ""
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, payload, created_at) "
                f"SELECT :id, 'probe.thing.happened', '{{}}', now() {condition}"
            ),
            {"id": f"deferred-{n}"},
        )


def notifications(listener: psycopg.Connection, timeout: float) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in listener.notifies(timeout=timeout)]


def test_a_deferring_transaction_does_not_notify_and_the_others_still_do(database, listener):
    insert_row(database, 1, deferred=True)
    insert_row(database, 2, deferred=False)
    # The one notification is the second row's: a deferring writer's comes from its waker.
    assert notifications(listener, timeout=1.0) == [("linli_outbox", "outbox")]
    # The setting was the deferring transaction's only: the same connection notifies again after it.
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"SELECT {DEFER_NOTIFY_SQL}"))
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, payload, created_at) "
                "VALUES ('after', 'probe.thing.happened', '{}', now())"
            )
        )
    assert notifications(listener, timeout=1.0) == [("linli_outbox", "outbox")]


def test_the_waker_notifies_once_for_pokes_that_came_together(database, listener):
    waker = OutboxWaker(database.engine)
    for _ in range(50):
        waker.poke()
    first = notifications(listener, timeout=2.0)
    assert first and set(first) == {("linli_outbox", "outbox")}
    assert 1 <= waker.sent <= 2 < 50  # coalesced: the thread was busy with the first while the others came


def test_notifications_are_spaced_and_the_pokes_in_between_answered_by_one(database, listener, monkeypatch):
    monkeypatch.setattr(OutboxWaker, "SPACING_SECONDS", 2.0)
    waker = OutboxWaker(database.engine)
    waker.poke()
    # The first after a quiet moment goes at once (well within the spacing).
    assert notifications(listener, timeout=1.0) == [("linli_outbox", "outbox")]
    for _ in range(20):
        waker.poke()
    # The next waits for the spacing to end, then answers all twenty.
    assert notifications(listener, timeout=0.5) == []
    assert notifications(listener, timeout=5.0) == [("linli_outbox", "outbox")]
    assert waker.sent == 2


def test_an_idle_waker_thread_ends_and_the_next_poke_starts_another(database, listener, monkeypatch):
    monkeypatch.setattr(OutboxWaker, "IDLE_SECONDS", 0.05)
    waker = OutboxWaker(database.engine)
    waker.poke()
    assert notifications(listener, timeout=2.0)
    eventually(lambda: waker._thread is None, timeout=5, what="the idle waker's thread ended")
    waker.poke()
    assert notifications(listener, timeout=2.0)
    assert waker.sent == 2


def test_the_process_has_one_waker_per_engine(database):
    assert waker_for(database.engine) is waker_for(database.engine)


def test_an_idle_relay_publishes_a_deferred_row_when_woken(database, amqp_url, bus_names, tap, threads):
    # The fallback read comes after a minute: a row published sooner was woken by the waker.
    relay = probe.relay_for(database, amqp_url, bus_names, listen_fallback_seconds=60)
    threads(relay.run)
    eventually(relay.listening.is_set, what="the relay listening for outbox rows")
    insert_row(database, 3, deferred=True)
    waker_for(database.engine).poke()
    outbox = probe.messaging.outbox

    def published() -> bool:
        with database.session() as s:
            return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))) == 0

    eventually(published, timeout=20, what="the deferred row published")
    assert [p.message_id for p in eventually(tap.drain, what="the event on the broker")] == ["deferred-3"]


def test_a_waker_whose_connection_was_cut_wakes_on_a_new_one(database, listener):
    waker = OutboxWaker(database.engine)
    waker.poke()
    assert notifications(listener, timeout=2.0)
    backend = waker._conn.info.backend_pid
    with database.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
    waker.poke()
    assert notifications(listener, timeout=2.0) == [("linli_outbox", "outbox")]
    assert waker.sent == 2 and waker._conn.info.backend_pid != backend
