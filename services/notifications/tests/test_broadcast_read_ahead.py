"""A broadcast's chunks read ahead (PostgreSQL): the next chunk is read and built while one is
written. The rows are those of reading one chunk after the other; a chunk read ahead of a write
whose cursor did not move is dropped, and a failure while reading ahead loses no committed chunk."""

import uuid

import pytest
from sqlalchemy import delete, func, insert, select, update

from linli_notifications.adapters.tables import broadcasts, deliveries, notifications, preferences
from linli_notifications.service_layer import broadcasts as broadcast_module
from linli_notifications.service_layer.broadcasts import plan_broadcasts

from .test_broadcast_handover import TZ, broadcast, by_state, deliverer, numbers_accepted, residents

pytestmark = pytest.mark.integration

# What a notice and a delivery are, but their random parts (a delivery's id, claimed or not).
NOTICE_COLUMNS = [c for c in notifications.c]
DELIVERY_COLUMNS = [c for c in deliveries.c if c.name != "id"]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(broadcast_module, "CHUNK", 100)


def planned_rows(database) -> tuple[list[dict], list[dict], dict]:
    with database.session() as s:
        notices = s.execute(select(*NOTICE_COLUMNS).order_by(notifications.c.user_id)).mappings().all()
        made = s.execute(select(*DELIVERY_COLUMNS).order_by(deliveries.c.key)).mappings().all()
        progress = s.execute(select(broadcasts.c.state, broadcasts.c.cursor, broadcasts.c.planned_count)).one()
    return [dict(r) for r in notices], [dict(r) for r in made], dict(progress._mapping)


def plan_again(database) -> None:
    """The broadcast back to planning from its start, its rows gone."""
    with database.transaction() as s:
        s.execute(delete(deliveries))
        s.execute(delete(notifications))
        s.execute(update(broadcasts).values(state="planning", cursor=None, planned_count=0, planned_at=None))


def test_rows_read_ahead_are_those_read_one_chunk_after_the_other(database, clock, fakes, small_chunks, monkeypatch):
    people = residents(database, clock, 450, night_zone=3, opted_out=2)
    with database.transaction() as s:  # some residents take no broadcast by SMS
        s.execute(
            insert(preferences),
            [{"user_id": p, "category": "broadcast", "channel": "sms", "enabled": False} for p in people[10:15]],
        )
    broadcast(database, clock)
    reads = []
    real = broadcast_module._read_chunk
    monkeypatch.setattr(broadcast_module, "_read_chunk", lambda *a: reads.append(a[-1]) or real(*a))

    assert plan_broadcasts(database, clock, TZ) == 445  # five take no SMS: a notice, no delivery
    ahead = planned_rows(database)
    assert reads == [None, *(people[i] for i in (99, 199, 299, 399, 449))]

    plan_again(database)
    reads.clear()
    monkeypatch.setattr(broadcast_module, "READ_AHEAD", False)
    assert plan_broadcasts(database, clock, TZ) == 445
    one_after_the_other = planned_rows(database)

    assert reads == [None, *(people[i] for i in (99, 199, 299, 399, 449))]
    assert ahead == one_after_the_other
    notices, made, progress = ahead
    assert len(notices) == 450 and len(made) == 445
    assert progress == {"state": "planned", "cursor": people[-1], "planned_count": 450}
    assert {r["state"] for r in made} == {"pending", "suppressed"}


def test_claimed_rows_read_ahead_are_sent_once(database, clock, fakes, small_chunks):
    residents(database, clock, 450, night_zone=3, opted_out=2)
    broadcast(database, clock)
    d = deliverer(database, clock, fakes)
    assert plan_broadcasts(database, clock, TZ, d) == 450
    assert by_state(database) == {"sent": 445, "pending": 3, "suppressed": 2}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 445


def test_a_chunk_read_ahead_of_a_cursor_another_planner_moved_is_dropped(
    database, clock, fakes, small_chunks, monkeypatch
):
    residents(database, clock, 250)
    broadcast(database, clock)
    real = broadcast_module._read_chunk
    others = []

    def another_planner_first(*args):
        if not others:  # while this planner reads its first chunk, another plans them all
            others.append("planning")
            others[0] = plan_broadcasts(database, clock, TZ, deliverer(database, clock, fakes))
        return real(*args)

    monkeypatch.setattr(broadcast_module, "_read_chunk", another_planner_first)
    d = deliverer(database, clock, fakes)
    assert plan_broadcasts(database, clock, TZ, d) == 0  # its first write finds the cursor moved
    assert others == [250]
    assert by_state(database) == {"sent": 250}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 250
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(notifications)) == 250
        assert s.execute(select(broadcasts.c.state, broadcasts.c.planned_count)).one() == ("planned", 250)


def test_a_failure_reading_ahead_loses_no_committed_chunk(database, clock, fakes, small_chunks, monkeypatch):
    people = residents(database, clock, 250)
    broadcast(database, clock)
    real = broadcast_module._read_chunk

    def third_read_fails(*args):
        if args[-1] == people[199]:
            raise ConnectionError("the database went away while the third chunk was read")
        return real(*args)

    monkeypatch.setattr(broadcast_module, "_read_chunk", third_read_fails)
    d = deliverer(database, clock, fakes)
    with pytest.raises(ConnectionError):
        plan_broadcasts(database, clock, TZ, d)
    assert by_state(database) == {"sent": 200}  # both chunks written before it committed and were sent
    with database.session() as s:
        assert s.execute(select(broadcasts.c.cursor, broadcasts.c.planned_count)).one() == (people[199], 200)

    monkeypatch.setattr(broadcast_module, "_read_chunk", real)
    assert plan_broadcasts(database, clock, TZ, d) == 50  # resumed after the last committed chunk
    assert by_state(database) == {"sent": 250}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 250


def test_an_empty_community_is_planned_at_once(database, clock, fakes):
    broadcast_id = broadcast(database, clock)
    assert plan_broadcasts(database, clock, TZ, deliverer(database, clock, fakes)) == 0
    with database.session() as s:
        assert s.scalar(select(broadcasts.c.state).where(broadcasts.c.id == broadcast_id)) == "planned"
    assert str(uuid.UUID(broadcast_id)) == broadcast_id
