"""A service may declare its own default consumer batch and prefetch (`ServiceDefinition`); the
environment (EVENTS_BATCH_SIZE, EVENTS_PREFETCH) still decides when set, and a service that
declares nothing keeps the kit's defaults."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData

from linli_kit.config import DEFAULT_EVENTS_BATCH_SIZE, DEFAULT_EVENTS_PREFETCH, ConfigError
from linli_kit.db import Database
from linli_kit.service import ServiceDefinition
from linli_kit.tables import add_messaging_tables


def _definition(tmp_path, **own: int) -> ServiceDefinition:
    metadata = MetaData()
    return ServiceDefinition(
        name="probe", metadata=metadata, messaging=add_messaging_tables(metadata), migrations_dir=tmp_path, **own
    )


@pytest.fixture(autouse=True)
def _environment(monkeypatch) -> None:
    # Never connected to: the settings and the worker's parts are only built.
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1:1/probe")
    monkeypatch.delenv("EVENTS_BATCH_SIZE", raising=False)
    monkeypatch.delenv("EVENTS_PREFETCH", raising=False)


def test_a_service_that_declares_nothing_keeps_the_kits_defaults(tmp_path) -> None:
    settings = _definition(tmp_path).settings()
    assert (settings.consumer_batch_size, settings.prefetch) == (DEFAULT_EVENTS_BATCH_SIZE, DEFAULT_EVENTS_PREFETCH)
    assert (DEFAULT_EVENTS_BATCH_SIZE, DEFAULT_EVENTS_PREFETCH) == (500, 1000)


def test_a_services_own_defaults_are_its_settings(tmp_path) -> None:
    settings = _definition(tmp_path, events_batch_size=1000, events_prefetch=2000).settings()
    assert (settings.consumer_batch_size, settings.prefetch) == (1000, 2000)


def test_the_environment_overrides_a_services_own_defaults(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EVENTS_BATCH_SIZE", "200")
    monkeypatch.setenv("EVENTS_PREFETCH", "300")
    settings = _definition(tmp_path, events_batch_size=1000, events_prefetch=2000).settings()
    assert (settings.consumer_batch_size, settings.prefetch) == (200, 300)


def test_a_bad_value_in_the_environment_is_still_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EVENTS_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="EVENTS_BATCH_SIZE"):
        _definition(tmp_path, events_batch_size=1000).settings()


def test_the_worker_consumes_with_the_services_defaults(tmp_path) -> None:
    definition = _definition(tmp_path, events_batch_size=1000, events_prefetch=2000)
    definition.handlers = lambda _s, _d: {"probe.thing.happened": lambda _session, _event: None}
    settings = definition.settings()
    database = Database(settings.database_url)
    try:
        consumer = definition.build_worker(settings, database).consumer
        assert consumer is not None
        assert (consumer.batch_size, consumer.prefetch) == (1000, 2000)
    finally:
        database.dispose()
