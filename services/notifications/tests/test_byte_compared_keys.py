"""The keys of notices, deliveries, follows, subjects and issue knowledge compare bytes on PostgreSQL (migration 0014,
`linli_kit.tables.ascii_key`): the migrations and the tables' metadata agree, the migration goes
back and forth, and the columns still meet those of the default collation they are joined to."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from linli_kit.db import Database
from linli_kit.migrations import alembic_config, upgrade
from linli_notifications.adapters.tables import metadata

from .conftest import MIGRATIONS

BYTE_COMPARED = {
    ("notifications", "id"),
    ("notifications", "user_id"),
    ("notifications", "source_key"),
    ("deliveries", "id"),
    ("deliveries", "key"),
    ("deliveries", "community_id"),
    ("follows", "user_id"),
    ("follows", "target_type"),
    ("follows", "target_id"),
    ("subjects", "subject_type"),
    ("subjects", "subject_id"),
    ("issue_knowledge", "issue_id"),
    ("issue_knowledge", "user_id"),
}
TABLES = sorted({table for table, _ in BYTE_COMPARED})


def _collations(url: str) -> dict[tuple[str, str], str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = ANY(:tables)"
                    " AND data_type = 'character varying'"
                ),
                {"tables": TABLES},
            )
            return {(table, column): collation for table, column, collation in rows}
    finally:
        engine.dispose()


def test_the_migrations_make_the_keys_byte_compared_as_the_tables_declare(pg_databases):
    migrated = _collations(pg_databases.create_migrated("collation_migrated", MIGRATIONS))
    assert {column for column, collation in migrated.items() if collation == "C"} == BYTE_COMPARED
    # Text read by people keeps the database's collation.
    assert migrated[("notifications", "title")] is None

    declared_url = pg_databases.create("collation_declared")
    engine = create_engine(declared_url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    assert _collations(declared_url) == migrated


def test_the_migration_goes_back_and_forth(pg_databases):
    url = pg_databases.create("collation_both_ways")
    upgrade(MIGRATIONS, url)
    from alembic import command

    command.downgrade(alembic_config(MIGRATIONS, url), "0013")
    assert all(collation is None for collation in _collations(url).values())
    upgrade(MIGRATIONS, url)
    assert {column for column, collation in _collations(url).items() if collation == "C"} == BYTE_COMPARED


def test_byte_compared_keys_meet_the_columns_they_are_joined_to(database: Database):
    # deliveries.notification_id and recipients.user_id keep the default collation: equality with
    # the byte-compared columns needs none, as the reminders' expiry and the inbox's reads do.
    with database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO notifications (id, user_id, source_key, source_type, kind, category, urgent,"
                " title, body, params, created_at) VALUES ('n-1', 'u-1', 's|1', 't', 'k', 'c', false,"
                " 'title', 'body', '{}', now())"
            )
        )
        session.execute(
            text(
                "INSERT INTO deliveries (id, key, notification_id, user_id, channel, locale, kind, batch_key,"
                " params, urgent, state, source_type, providers_tried, attempts, next_attempt_at,"
                " outcome_unknown, created_at) VALUES ('d-1', 's|1|u-1|sms', 'n-1', 'u-1', 'sms', 'zh-CN',"
                " 'k', 'b', '{}', false, 'pending', 't', '[]', 0, now(), false, now())"
            )
        )
    with database.engine.connect() as conn:
        joined = conn.execute(
            text(
                "SELECT d.id, n.id FROM deliveries AS d JOIN notifications AS n ON n.id = d.notification_id"
                " WHERE n.user_id IN (SELECT d2.user_id FROM deliveries AS d2)"
            )
        ).all()
    assert joined == [("d-1", "n-1")]
