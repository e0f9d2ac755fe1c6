"""Fixtures for the tests that cross services: the platform's real processes on PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli_kit.testing.platform import Platform


@pytest.fixture
def platform(request, pg_databases, amqp_url, bus_names, token_keys, tmp_path) -> Iterator[Platform]:
    private_key, public_key = token_keys
    stack = Platform(pg_databases, amqp_url, bus_names, public_key, private_key, tmp_path / "platform")
    yield stack
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(stack.logs())
    stack.stop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
