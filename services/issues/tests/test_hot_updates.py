"""The issues' pages keep room for their rows' next versions (migration 0019, fillfactor 70), so
that an update of no indexed column is HOT: the meetings' batches (counts, updated_at, revision)
then add nothing to the issues' indexes."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from linli_issues.adapters.tables import issues
from linli_issues.definition import definition
from linli_kit.db import Database
from linli_kit.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration


def _options(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return list(conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'issues'")).scalar() or [])


def test_the_migration_keeps_room_in_the_issues_pages_and_its_downgrade_gives_it_back(env) -> None:
    database = Database(env)
    try:
        assert _options(database) == ["fillfactor=70"]
        command.downgrade(alembic_config(definition.migrations_dir, env), "0018")
        assert _options(database) == []
        upgrade(definition.migrations_dir, env)
        assert _options(database) == ["fillfactor=70"]
    finally:
        database.dispose()


def test_the_table_as_declared_says_the_same() -> None:
    assert issues.dialect_options["postgresql"]["with"] == {"fillfactor": 70}


def test_on_sqlite_the_migration_does_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'issues.db'}"
    upgrade(definition.migrations_dir, url)
    command.downgrade(alembic_config(definition.migrations_dir, url), "0018")
    upgrade(definition.migrations_dir, url)
