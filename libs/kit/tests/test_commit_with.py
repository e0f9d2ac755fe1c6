"""UnitOfWork.commit_with: a change and its one event written by one statement (PostgreSQL), both or
neither."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from linli_kit.events import new_event
from linli_kit.events.outbox import Outbox
from linli_kit.testing import probe
from linli_kit.uow import ReadingOnly, UnitOfWork

pytestmark = pytest.mark.integration


def test_a_change_and_its_event_are_written_by_one_statement_both_or_neither(database):
    outbox = Outbox(probe.messaging.outbox)
    effects = probe.effects.c
    change = (
        insert(probe.effects)
        .values(id=bindparam("effect_id"), event_id=bindparam("effect_event_id"), n=bindparam("effect_n"))
        .returning(effects.id)
        .cte("effect")
    )
    statement = outbox.insert_one_with(change)
    uow = UnitOfWork(database, outbox)

    first = new_event(probe.PROBE_EVENT, {"n": 1}, producer="probe")
    with uow:
        uow.publish(first)
        uow.commit_with(statement, {"effect_id": 1, "effect_event_id": first.id, "effect_n": 1})

    # The same effect id again: the statement fails, and the event is not written either.
    second = new_event(probe.PROBE_EVENT, {"n": 2}, producer="probe")
    with uow, pytest.raises(IntegrityError):
        uow.publish(second)
        uow.commit_with(statement, {"effect_id": 1, "effect_event_id": second.id, "effect_n": 2})

    with uow, pytest.raises(ValueError, match="exactly one event"):
        uow.commit_with(statement, {"effect_id": 3, "effect_event_id": "x", "effect_n": 3})

    with database.session() as s:
        assert list(s.execute(select(effects.id, effects.event_id, effects.n))) == [(1, first.id, 1)]
        assert list(s.scalars(select(probe.messaging.outbox.c.event_id))) == [first.id]


def test_taken_events_are_the_callers_to_write_and_the_commit_writes_only_those_published_after(sqlite_database):
    outbox = Outbox(probe.messaging.outbox)
    uow = UnitOfWork(sqlite_database, outbox)
    first, second = (new_event(probe.PROBE_EVENT, {"n": n}, producer="probe") for n in (1, 2))
    with uow:
        uow.publish(first)
        assert uow.take_pending() == [first]
        assert uow.take_pending() == []
        uow.publish(second)
        uow.commit()
    with sqlite_database.session() as s:
        assert list(s.scalars(select(probe.messaging.outbox.c.event_id))) == [second.id]
    with pytest.raises(ReadingOnly), uow.reading():
        uow.take_pending()
