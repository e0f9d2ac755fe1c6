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
        "/proposals",
        "/proposals/{proposal_id}/accept",
        "/noticeboard",
        "/{meeting_id}/participants/{participant_id}",
    ):
        assert path in paths, path
    assert "MeetingIn" in spec["components"]["schemas"]


def test_upgrading_a_database_with_meetings_fills_the_statistics_read_model(pg_databases):
    import json
    from datetime import UTC, date, datetime

    from sqlalchemy import create_engine, text

    url = pg_databases.create("meetings_backfill")
    migrations.upgrade(definition.migrations_dir, url, revision="0002")
    engine = create_engine(url)
    now = datetime(2026, 11, 3, 11, tzinfo=UTC)
    meeting = {
        "id": "m1",
        "community_id": "c1",
        "meeting_type": "bench",
        "title": "t",
        "starts_at": now,
        "ends_at": now,
        "local_date": date(2026, 11, 3),
        "convener_id": "u",
        "public": True,
        "status": "concluded",
        "rescheduled_count": 0,
        "photo_urls": json.dumps([]),
        "revision": 3,
        "created_at": now,
    }
    with engine.begin() as conn:
        for m in (meeting, meeting | {"id": "m2", "local_date": date(2026, 11, 10)}):
            conn.execute(text(f"INSERT INTO meetings ({', '.join(m)}) VALUES ({', '.join(':' + k for k in m)})"), m)
            conn.execute(
                text(
                    "INSERT INTO agenda_items (id, meeting_id, position, title, issue_id) "
                    "VALUES (:i, :m, 1, 'x', 'roof')"
                ),
                {"i": m["id"] + "-a", "m": m["id"]},
            )
            for role in ("party_member", "resident"):
                conn.execute(
                    text(
                        "INSERT INTO participants (id, meeting_id, name, role, enrolment, response, enrolled_at) "
                        "VALUES (:i, :m, 'x', :r, 'invited', 'confirmed', :t)"
                    ),
                    {"i": f"{m['id']}-{role}", "m": m["id"], "r": role, "t": now},
                )
        conn.execute(
            text(
                "INSERT INTO decisions (id, meeting_id, community_id, motion, method, threshold, issue_effect, "
                "proposed_actions, status, outcome, votes_for, votes_against, abstentions, opened_at) VALUES "
                "('d1', 'm2', 'c1', 'm', 'show_of_hands', 'simple_majority', 'none', '[]', 'recorded', 'adopted', "
                "1, 0, 0, :t)"
            ),
            {"t": now},
        )
    migrations.upgrade(definition.migrations_dir, url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT meeting_id, consultation_number FROM deliberations ORDER BY consultation_number")
        ).all()
        assert [tuple(r) for r in rows] == [("m1", 1), ("m2", 2)]
        assert conn.scalar(text("SELECT local_date FROM decisions WHERE id = 'd1'")) == date(2026, 11, 10)
        assert conn.scalar(text("SELECT count(*) FROM meetings WHERE announced_at IS NULL")) == 0
        # Whoever took part as a party member is marked as one.
        marked = conn.execute(text("SELECT role, party_member FROM participants ORDER BY role")).all()
        assert [tuple(r) for r in marked] == [("party_member", True)] * 2 + [("resident", False)] * 2
    engine.dispose()


@pytest.mark.parametrize("platform", ["postgresql", "sqlite"])
def test_upgrading_takes_issues_replicated_before_visibility_as_private(pg_databases, tmp_path, platform):
    """Snapshots kept before issues had a visibility do not say who may read them: until the next
    event of each issue brings one, it is taken as private (the safe side)."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, text

    url = pg_databases.create("meetings_visibility") if platform == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(definition.migrations_dir, url, revision="0007")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO issue_replica (issue_id, community_id, title, category, urgency, status, tier,"
                " supporter_count, revision, updated_at) VALUES ('i1', 'c1', 'Old issue', 'building', 'normal',"
                " 'reported', 'community', 0, 1, :t)"
            ),
            {"t": datetime(2026, 11, 3, 11, tzinfo=UTC)},
        )
    migrations.upgrade(definition.migrations_dir, url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT visibility, reporter_id FROM issue_replica")).one() == ("private", None)
        # Issues kept from now on default to what the contract defaults to.
        conn.execute(
            text(
                "INSERT INTO issue_replica (issue_id, community_id, title, category, urgency, status, tier,"
                " supporter_count, revision, updated_at) VALUES ('i2', 'c1', 'New issue', 'building', 'normal',"
                " 'reported', 'community', 0, 1, :t)"
            ),
            {"t": datetime(2026, 12, 3, 11, tzinfo=UTC)},
        )
        assert conn.scalar(text("SELECT visibility FROM issue_replica WHERE issue_id = 'i2'")) == "community"
    engine.dispose()
