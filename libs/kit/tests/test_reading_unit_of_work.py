"""A unit of work opened for reading: no transaction round trips on PostgreSQL, and no writes."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import registry

from linli_kit import db as db_module
from linli_kit.events import new_event
from linli_kit.events.outbox import Outbox
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually
from linli_kit.uow import ReadingOnly, UnitOfWork

pytestmark = pytest.mark.integration


def test_reads_on_postgresql_send_no_begin_nor_rollback_and_leave_the_pool_transactional(database):
    commands: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        commands.append(statement)

    uow = UnitOfWork(database, Outbox(probe.messaging.outbox))
    with uow.reading():
        raw = uow.session.connection().connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection) and raw.autocommit
        event.listen(database.engine, "before_cursor_execute", record)
        try:
            assert uow.session.execute(text("SELECT 1")).scalar() == 1
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # no BEGIN was sent
        finally:
            event.remove(database.engine, "before_cursor_execute", record)
    assert commands == ["SELECT 1"]

    # Back in the pool the connection is transactional again: a write left uncommitted is undone.
    with database.session() as session:
        assert not session.connection().connection.dbapi_connection.autocommit
        session.execute(insert(probe.effects).values(id=99, event_id="e", n=1))
        session.rollback()
    with database.session() as session:
        assert session.scalar(select(probe.effects.c.id).where(probe.effects.c.id == 99)) is None


def test_a_reading_unit_of_work_refuses_to_change_anything(any_database):
    uow = UnitOfWork(any_database, Outbox(probe.messaging.outbox)).reading()
    with uow, pytest.raises(ReadingOnly):
        uow.publish(new_event(probe.PROBE_EVENT, {"n": 1}, producer="probe"))
    with uow, pytest.raises(ReadingOnly):
        uow.commit()
    with uow:
        assert uow.session.scalar(select(probe.effects.c.id)) is None  # reads work, on both databases


def test_a_connection_is_pinged_only_when_it_may_be_dead(database, pg_admin_url, monkeypatch):
    pings: list[object] = []
    dialect = database.engine.dialect
    original = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: pings.append(conn) or original(conn))
    uow = UnitOfWork(database, Outbox(probe.messaging.outbox))
    with uow:
        uow.session.execute(text("SELECT 1"))
    with uow.reading():
        uow.session.execute(text("SELECT 1"))
    assert pings == []  # a write and a read on a connection just used and quiet: no round trip

    # Idle in the pool for longer than that: it may have been dropped silently, so it is pinged.
    monkeypatch.setattr(db_module, "UNPINGED_REUSE_SECONDS", -1.0)
    with uow:
        uow.session.execute(text("SELECT 1"))
    with uow.reading():
        uow.session.execute(text("SELECT 1"))
    assert len(pings) == 2
    monkeypatch.setattr(db_module, "UNPINGED_REUSE_SECONDS", 1.0)

    # The server drops the connection: once its backend is gone, its goodbye is on the socket, so
    # the next session pings, finds it dead and is handed a new connection instead of failing.
    name = database.engine.url.database
    for session_kind in ("reading", "writing"):
        before = len(pings)
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            assert killed
            eventually(
                lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall(),
                what="the terminated backends gone",
            )
        with uow.reading() if session_kind == "reading" else uow:
            assert uow.session.execute(text("SELECT 1")).scalar() == 1
        assert len(pings) >= before + 1, session_kind  # the dead connection pinged (and discarded)


class _Effect:
    """A row of the probe's effects as an ORM object: something for a session to flush."""


registry().map_imperatively(_Effect, probe.effects)


def _effect(effect_id: int) -> _Effect:
    effect = _Effect()
    effect.id, effect.event_id, effect.n = effect_id, f"e{effect_id}", 1
    return effect


def test_a_reading_unit_of_work_refuses_to_flush_and_others_flush(any_database):
    reading = UnitOfWork(any_database, Outbox(probe.messaging.outbox)).reading()
    with reading:
        reading.session.add(_effect(98))
        with pytest.raises(ReadingOnly):
            reading.session.flush()
    writing = UnitOfWork(any_database, Outbox(probe.messaging.outbox))
    with writing:
        writing.session.add(_effect(97))
        writing.session.flush()  # not a reading one: flushed and committed as ever
        writing.commit()
    with any_database.session() as session:
        ids = set(session.scalars(select(probe.effects.c.id).where(probe.effects.c.id.in_([97, 98]))))
    assert ids == {97}
