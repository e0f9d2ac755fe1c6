"""A BatchHandler is called once for each run of consecutive new events it handles, whatever their
types (a service may map several types to one BatchHandler): in order, duplicates and events seen
before left out; a failed batch is retried one event at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import MetaData

from linli_kit.db import Database
from linli_kit.events import Event
from linli_kit.events.consumer import batch_handler
from linli_kit.tables import add_messaging_tables
from linli_kit.testing.consuming import consume

metadata = MetaData()
messaging = add_messaging_tables(metadata)


@pytest.fixture
def database(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'batches.db'}")
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def event(event_type: str, n: int) -> Event:
    return Event(type=event_type, data={"n": n}, producer="test")


def test_one_call_per_run_of_the_types_a_batch_handler_shares(database):
    calls: list[tuple[str, list[int]]] = []
    shared = batch_handler(lambda _s, events: calls.append(("shared", [e.data["n"] for e in events])))
    handlers = {
        "a.thing.made": shared,
        "a.thing.changed": shared,
        "b.other.made": batch_handler(lambda _s, events: calls.append(("other", [e.data["n"] for e in events]))),
        "c.plain.made": lambda _s, e: calls.append(("plain", [e.data["n"]])),
    }
    first = event("a.thing.made", 1)
    events = [
        first,
        event("a.thing.changed", 2),
        first,  # a duplicate in the same batch
        event("a.thing.made", 3),
        event("b.other.made", 4),
        event("a.thing.changed", 5),
        event("c.plain.made", 6),
        event("a.thing.made", 7),
    ]

    assert set(consume(database, messaging.inbox, handlers, events, service="test")) == {"ack"}
    assert calls == [
        ("shared", [1, 2, 3]),
        ("other", [4]),
        ("shared", [5]),
        ("plain", [6]),
        ("shared", [7]),
    ]

    calls.clear()  # redelivered: acked, handled no more
    assert set(consume(database, messaging.inbox, handlers, events, service="test")) == {"ack"}
    assert calls == []


def test_a_failed_batch_is_retried_one_event_at_a_time(database):
    calls: list[list[int]] = []

    def handle(_session, events: list[Event]) -> None:
        calls.append([e.data["n"] for e in events])
        if any(e.data["n"] == 2 for e in events):
            raise ValueError("this one cannot be handled")

    handlers = dict.fromkeys(["a.thing.made", "a.thing.changed"], batch_handler(handle))
    events = [event("a.thing.made", 1), event("a.thing.changed", 2), event("a.thing.made", 3)]

    outcomes = consume(database, messaging.inbox, handlers, events, service="test")

    assert outcomes == ["ack", "requeue", "ack"]
    assert calls == [[1, 2, 3], [1], [2], [3]]
