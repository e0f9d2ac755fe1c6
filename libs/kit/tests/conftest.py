from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from linli_kit.db import Database
from linli_kit.testing import probe


@pytest.fixture
def database(pg_databases) -> Iterator[Database]:
    db = Database(pg_databases.create("kit"))
    probe.metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def threads() -> Iterator[Callable]:
    """Start `target(stop)` on a thread; every one is stopped and joined after the test."""
    started: list[tuple[threading.Event, threading.Thread]] = []

    def start(target: Callable[[threading.Event], None]) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), daemon=True)
        thread.start()
        started.append((stop, thread))
        return stop

    yield start
    for stop, _thread in started:
        stop.set()
    for _, thread in started:
        thread.join(15)


@pytest.fixture
def tap(amqp_url, bus_names) -> Iterator[probe.Tap]:
    t = probe.Tap(amqp_url, bus_names)
    yield t
    t.close()
