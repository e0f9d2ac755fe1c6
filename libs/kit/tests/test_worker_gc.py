"""A worker that opts in (`ServiceDefinition.worker_gc_threshold`) freezes its start-up objects and
collects its young generation less often; one that does not keeps Python's defaults."""

from __future__ import annotations

import gc

from sqlalchemy import MetaData

from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.service import ServiceDefinition
from linli_kit.tables import add_messaging_tables
from linli_kit.worker import tune_gc_for_batches


def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc_for_batches(12_345)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_definition_hands_its_threshold_to_the_worker(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    metadata = MetaData()
    definition = ServiceDefinition(
        name="probe", metadata=metadata, messaging=add_messaging_tables(metadata), migrations_dir=tmp_path
    )
    assert definition.worker_gc_threshold is None
    tuned = ServiceDefinition(
        name="probe",
        metadata=metadata,
        messaging=definition.messaging,
        migrations_dir=tmp_path,
        worker_gc_threshold=10_000,
    )
    settings = load_settings("probe")
    database = Database(settings.database_url)
    try:
        assert definition.build_worker(settings, database).gc_young_threshold is None
        assert tuned.build_worker(settings, database).gc_young_threshold == 10_000
    finally:
        database.dispose()
