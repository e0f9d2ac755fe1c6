"""The indexes over values an issue gets after its report (its assignee, when it was accepted,
resolved, closed) hold only the issues that have them (migration 0020): a report writes no entry
in them, and the queries that read them, which all compare the column with something, still do,
on PostgreSQL (with the generic plan a prepared statement gets) and on SQLite."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from linli_issues.adapters.tables import issues
from linli_issues.definition import definition
from linli_kit.db import Database
from linli_kit.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

LATER_VALUES = {
    "ix_issues_accepted": "accepted_at",
    "ix_issues_resolved": "resolved_at",
    "ix_issues_closed": "closed_at",
    "ix_issues_community_accepted": "accepted_at",
    "ix_issues_community_resolved": "resolved_at",
    "ix_issues_community_closed": "closed_at",
    "ix_issues_assignee": "assignee_id",
}

# What the statistics and the lists of an organisation's issues ask (service_layer/stats.py,
# adapters/repository.py), and the column whose indexes (one of them: the planner chooses) each reads.
QUERIES = [
    (
        "SELECT count(*) FROM issues WHERE community_id IN (:a, :b) AND accepted_at >= :since AND accepted_at < :until",
        "accepted_at",
    ),
    (
        "SELECT community_id, count(*) FROM issues WHERE resolved_at >= :since AND resolved_at < :until "
        "GROUP BY community_id",
        "resolved_at",
    ),
    (
        "SELECT count(*), sum(rating) FROM issues WHERE community_id = :a AND closed_at >= :since "
        "AND closed_at < :until AND rating IS NOT NULL",
        "closed_at",
    ),
    ("SELECT id FROM issues WHERE assignee_id = :a", "assignee_id"),
]
VALUES = {"a": "a", "b": "b", "since": "2026-01-01T00:00:00+00:00", "until": "2026-02-01T00:00:00+00:00"}


def _predicates(database: Database) -> dict[str, str | None]:
    """Each of the seven indexes' condition (None: it holds every issue)."""
    with database.engine.connect() as conn:
        if database.is_sqlite:
            rows = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'index' AND tbl_name = 'issues' AND sql IS NOT NULL"
                )
            )
            found = {name: sql.partition(" WHERE ")[2] or None for name, sql in rows}
        else:
            rows = conn.execute(
                text(
                    "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'issues'::regclass"
                )
            )
            found = dict(rows.all())
    return {name: found[name] for name in LATER_VALUES}


def _held_only_when_set(database: Database) -> bool:
    predicates = _predicates(database)
    return all(
        (predicates[name] or "").strip("()").replace("(", "").replace(")", "") == f"{column} IS NOT NULL"
        for name, column in LATER_VALUES.items()
    )


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_the_migration_makes_them_hold_only_issues_with_the_value_and_its_downgrade_all(env) -> None:
    database = Database(env)
    try:
        assert _held_only_when_set(database)
        command.downgrade(alembic_config(definition.migrations_dir, env), "0019")
        assert set(_predicates(database).values()) == {None}
        upgrade(definition.migrations_dir, env)
        assert _held_only_when_set(database)
    finally:
        database.dispose()


def test_the_table_as_declared_says_the_same() -> None:
    declared = {index.name: index for index in issues.indexes if index.name in LATER_VALUES}
    assert declared.keys() == LATER_VALUES.keys()
    for name, column in LATER_VALUES.items():
        for dialect in ("postgresql", "sqlite"):
            where = declared[name].dialect_options[dialect]["where"]
            assert str(where) == f"issues.{column} IS NOT NULL", (name, dialect)


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize(("query", "column"), QUERIES)
def test_the_queries_that_read_them_still_do(env, query: str, column: str) -> None:
    database = Database(env)
    try:
        with database.engine.connect() as conn:
            if database.is_sqlite:
                plan = str(conn.execute(text(f"EXPLAIN QUERY PLAN {query}"), VALUES).all())
            else:
                # An empty table: make the planner show the index it can use. Prepared, with the
                # generic plan (no values known), as psycopg's prepared statements are planned.
                conn.exec_driver_sql("SET enable_seqscan = off")
                conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                names = list(VALUES)
                numbered = query
                for n, name in enumerate(names, 1):
                    numbered = numbered.replace(f":{name}", f"${n}")
                types = ", ".join("timestamptz" if name in ("since", "until") else "text" for name in names)
                conn.exec_driver_sql(f"PREPARE later_values ({types}) AS {numbered}")
                arguments = ", ".join(f"'{VALUES[name]}'" for name in names)
                plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN EXECUTE later_values ({arguments})").scalars())
        assert any(name in plan for name, of in LATER_VALUES.items() if of == column), plan
    finally:
        database.dispose()
