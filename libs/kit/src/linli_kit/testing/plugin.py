"""pytest fixtures: the real PostgreSQL and RabbitMQ, per-run isolation, and test tokens."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from linli_kit.auth import TokenSigner
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform

TEST_ISSUER = "linli-gateway"
_bus_counter = itertools.count()


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.new_run_id()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    try:
        url, container = infra.find_postgres()
    except infra.InfraUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield url
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    try:
        url, container = infra.find_rabbitmq()
    except infra.InfraUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield url
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url: str, run_id: str) -> Iterator[infra.PostgresDatabases]:
    databases = infra.PostgresDatabases(pg_admin_url, run_id)
    yield databases
    databases.drop_all()


@pytest.fixture
def bus_names(amqp_url: str, run_id: str) -> Iterator[BusNames]:
    """Exchange and queue names of this test alone; removed from the broker afterwards."""
    n = next(_bus_counter)
    names = BusNames(
        exchange=f"t.{run_id}.{n}.events",
        dead_letter_exchange=f"t.{run_id}.{n}.dead",
        queue_prefix=f"t.{run_id}.{n}.",
    )
    yield names
    services = ["issues", "meetings", "activities", "notifications", "gateway", "bench", "probe"]
    queues = [q for s in services for q in (names.queue(s), names.dead_letter_queue(s))]
    infra.delete_bus(amqp_url, names.exchange, names.dead_letter_exchange, queues)


@pytest.fixture(scope="session")
def token_keys() -> tuple[str, str]:
    """(private PEM, public PEM) made for this run only."""
    return generate_keypair()


@pytest.fixture(scope="session")
def token_signer(token_keys: tuple[str, str]) -> TokenSigner:
    return TokenSigner(token_keys[0], issuer=TEST_ISSUER)


@pytest.fixture
def threads() -> Iterator[Callable[[Callable[[threading.Event], None]], threading.Event]]:
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
    for _stop, thread in started:
        thread.join(15)


@pytest.fixture
def platform(
    request: pytest.FixtureRequest,
    pg_databases: infra.PostgresDatabases,
    amqp_url: str,
    bus_names: BusNames,
    token_keys: tuple[str, str],
    tmp_path: Path,
) -> Iterator[Platform]:
    """The platform's real processes (gunicorn web, workers) on PostgreSQL, isolated for this test;
    their logs are printed when the test fails."""
    yield from _platform(request, pg_databases, amqp_url, bus_names, token_keys, tmp_path)


@pytest.fixture
def sqlite_platform(
    request: pytest.FixtureRequest,
    amqp_url: str,
    bus_names: BusNames,
    token_keys: tuple[str, str],
    tmp_path: Path,
) -> Iterator[Platform]:
    """The same processes on SQLite files, the configuration `make run` starts: two gunicorn workers
    per web process, as there."""
    yield from _platform(request, None, amqp_url, bus_names, token_keys, tmp_path, web_concurrency=2)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_platform(
    request: pytest.FixtureRequest,
    pg_databases: infra.PostgresDatabases,
    amqp_url: str,
    bus_names: BusNames,
    token_keys: tuple[str, str],
    tmp_path: Path,
) -> Iterator[Platform]:
    """The platform once on each database: a test using it runs on both."""
    if request.param == "sqlite":
        yield from _platform(request, None, amqp_url, bus_names, token_keys, tmp_path, web_concurrency=2)
    else:
        yield from _platform(request, pg_databases, amqp_url, bus_names, token_keys, tmp_path)


def _platform(
    request: pytest.FixtureRequest,
    databases: infra.PostgresDatabases | None,
    amqp_url: str,
    bus_names: BusNames,
    token_keys: tuple[str, str],
    tmp_path: Path,
    *,
    web_concurrency: int = 1,
) -> Iterator[Platform]:
    private_key, public_key = token_keys
    stack = Platform(
        databases,
        amqp_url,
        bus_names,
        public_key,
        private_key,
        tmp_path / "platform",
        web_concurrency=web_concurrency,
    )
    yield stack
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(stack.logs())
    stack.stop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets LINLI_FORBID_SKIPS: an integration test that skipped is a failure there.
    if not os.environ.get("LINLI_FORBID_SKIPS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"LINLI_FORBID_SKIPS: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
