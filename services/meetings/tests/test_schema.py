"""Migrations build the schema the code maps, on PostgreSQL and on SQLite; OpenAPI documents the API."""

from __future__ import annotations

import pytest
from alembic import command

from linli_kit import migrations
from linli_meetings.definition import definition

pytestmark = pytest.mark.integration


def test_migrations_match_the_tables_on_postgresql(meetings_db_url):
    # `check` fails when autogenerate would find any difference between the database and metadata.
    command.check(migrations.alembic_config(definition.migrations_dir, meetings_db_url))


def test_migrations_run_on_sqlite_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'meetings.db'}"
    migrations.upgrade(definition.migrations_dir, url)
    config = migrations.alembic_config(definition.migrations_dir, url)
    command.check(config)
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    for path in (
        "/",
        "/{meeting_id}",
        "/{meeting_id}/motions/{decision_id}/votes",
        "/{meeting_id}.ics",
        "/candidates",
        "/stats",
        "/series",
        "/action-items",
        "/documents",
    ):
        assert path in paths, path
    assert "MeetingIn" in spec["components"]["schemas"]
