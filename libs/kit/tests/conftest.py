from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from linli_kit.db import Database
from linli_kit.testing import probe
from linli_kit.testing.proxy import TcpProxy


@pytest.fixture
def database(pg_databases) -> Iterator[Database]:
    db = Database(pg_databases.create("kit"))
    probe.metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """The probe's tables in a SQLite file, as `make run` keeps a service's database."""
    db = Database(f"sqlite:///{tmp_path / 'kit.db'}")
    probe.metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest) -> Database:
    """The probe's tables once on each database: a test using it runs on both."""
    return request.getfixturevalue("sqlite_database" if request.param == "sqlite" else "database")


@pytest.fixture
def tap(amqp_url, bus_names) -> Iterator[probe.Tap]:
    t = probe.Tap(amqp_url, bus_names)
    yield t
    t.close()


@pytest.fixture
def broker_proxy(amqp_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of the broker the test controls, and the AMQP URL that goes through it."""
    target = urlparse(amqp_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    credentials = target.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    yield proxy, target._replace(netloc=netloc).geturl()
    proxy.close()
