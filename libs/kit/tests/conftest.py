from __future__ import annotations

from collections.abc import Iterator

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
def tap(amqp_url, bus_names) -> Iterator[probe.Tap]:
    t = probe.Tap(amqp_url, bus_names)
    yield t
    t.close()
