"""pytest fixtures: the real PostgreSQL and RabbitMQ, per-run isolation, and test tokens."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from linli_kit.auth import TokenSigner
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra

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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets LINLI_FORBID_SKIPS: an integration test that skipped is a failure there.
    if not os.environ.get("LINLI_FORBID_SKIPS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"LINLI_FORBID_SKIPS: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
