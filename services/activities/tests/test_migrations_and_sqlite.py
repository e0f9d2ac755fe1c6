"""Migrations on PostgreSQL and SQLite match the tables the code uses; the service runs on SQLite."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert

from linli_activities.adapters.tables import metadata, replica
from linli_activities.definition import definition
from linli_activities.entrypoints.web import create_app
from linli_kit.db import Database
from linli_kit.migrations import alembic_config, upgrade
from linli_kit.search import is_search_object

pytestmark = pytest.mark.integration


def _not_search(name: str | None, type_: str, parent_names: dict) -> bool:
    return not is_search_object(name)


def differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # The text search's FTS5 tables and trigram indexes are made by migration 0012 alone.
            context = MigrationContext.configure(conn, opts={"include_name": _not_search})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_postgresql_schema_matches_the_code(activities_db_url):
    assert differences(activities_db_url) == []


def test_sqlite_migrates_up_down_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'activities.db'}"
    upgrade(definition.migrations_dir, url)
    assert differences(url) == []
    command.downgrade(alembic_config(definition.migrations_dir, url), "0001")
    upgrade(definition.migrations_dir, url)
    assert differences(url) == []


def test_the_service_works_on_sqlite(tmp_path, monkeypatch, token_keys, token_signer, clock):
    url = f"sqlite:///{tmp_path / 'activities.db'}"
    upgrade(definition.migrations_dir, url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    community, street = str(uuid.uuid4()), str(uuid.uuid4())
    database = Database(url)
    with database.transaction() as s:
        s.execute(insert(replica.communities).values(community_id=community, street_id=street, name="c", revision=1))
    database.dispose()
    app = create_app(clock=clock)
    client = app.test_client()

    def headers(role):
        return {
            "Authorization": "Bearer "
            + token_signer.sign(user_id=str(uuid.uuid4()), role=role, community_ids=[community])
        }

    staff = headers("community_staff")
    activity = client.post(
        "/",
        json={
            "community_ids": [community],
            "kind": "culture",
            "title": "Opera",
            "starts_at": "2026-12-01T19:00:00+08:00",
            "ends_at": "2026-12-01T21:00:00+08:00",
            "capacity": 1,
            "publish": True,
        },
        headers=staff,
    ).get_json()
    assert client.post(f"/{activity['id']}/registrations", json={}, headers=headers("resident")).status_code == 201
    waiting = client.post(f"/{activity['id']}/registrations", json={}, headers=headers("resident")).get_json()
    assert waiting["status"] == "waitlisted"
    clock.now = clock.now.replace(hour=11, minute=30)  # 19:30 in Shanghai, under way
    client.post(f"/{activity['id']}/walk-ins", json={"community_id": community, "participants": 3}, headers=staff)
    stats = client.get("/stats", query_string={"community_id": community}, headers=staff).get_json()
    assert stats["totals"]["participant_times"] == 3 and stats["totals"]["activities_held"] == 1
    assert {m["month"]: m["participant_times"] for m in stats["monthly"]}["2026-12"] == 3
    app.extensions["linli.database"].dispose()
