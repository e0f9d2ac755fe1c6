"""Statements run by PostgreSQL's driver itself (`linli_kit.db.driver_rowcount`, `driver_rows`):
what they answer, SQLAlchemy's errors for the driver's (a lost connection invalidated, so the
request answers 503 and the pool hands out a new one), and the test helper that sees them."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc, text

from linli_kit import db
from linli_kit.db import Database, autocommit_rowcount, driver_rowcount, driver_rows
from linli_kit.testing.statements import statements_sent

pytestmark = pytest.mark.integration


def test_a_write_answers_its_row_count_and_a_read_its_rows(database):
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("CREATE TABLE driver_things (id int PRIMARY KEY, name text)")
        inserted = driver_rowcount(
            conn, "INSERT INTO driver_things SELECT n, 'thing ' || n FROM generate_series(1, %(n)s) AS n", {"n": 3}
        )
        updated = driver_rowcount(conn, "UPDATE driver_things SET name = %(name)s WHERE id > 5", {"name": "x"})
        rows = driver_rows(conn, "SELECT id, name FROM driver_things WHERE id >= %(least)s ORDER BY id", {"least": 2})
    assert (inserted, updated) == (3, 0)
    assert rows == [(2, "thing 2"), (3, "thing 3")]
    # In autocommit each statement committed by itself: another connection sees the rows.
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM driver_things")).scalar() == 3


def test_a_refused_statement_raises_sqlalchemys_error_and_keeps_the_connection(database):
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(exc.ProgrammingError) as raised:
            driver_rowcount(conn, "INSERT INTO no_such_table VALUES (%(n)s)", {"n": 1})
        assert "no_such_table" in str(raised.value.orig)
        assert not raised.value.connection_invalidated
        assert driver_rows(conn, "SELECT 1", {}) == [(1,)]


def test_a_lost_connection_is_invalidated_and_the_next_checkout_gets_a_new_one(database):
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        backend = driver_rows(conn, "SELECT pg_backend_pid()", {})[0][0]
        with database.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
        with pytest.raises(exc.OperationalError) as raised:
            driver_rowcount(conn, "SELECT 1", {})
        assert raised.value.connection_invalidated
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != backend


def test_the_helper_sees_what_the_driver_runs_and_what_sqlalchemy_runs(database):
    with statements_sent(database.engine) as seen, database.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        conn.execution_options(isolation_level="AUTOCOMMIT")
        driver_rows(conn, "SELECT 2", {})
    assert list(seen) == ["SELECT 1", "SELECT 2"]
    assert seen.autocommit == [False, True]


def test_the_helper_sees_sqlites_statements_through_sqlalchemy(sqlite_database):
    with statements_sent(sqlite_database.engine) as seen, sqlite_database.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert [s for s in seen if not s.startswith(("BEGIN", "PRAGMA"))] == ["SELECT 1"]


def test_a_statement_in_autocommit_of_its_own_commits_and_leaves_its_connection_as_it_found_it(database):
    with database.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE autocommitted (id int PRIMARY KEY)")
        conn.commit()
    with statements_sent(database.engine) as seen:
        written = autocommit_rowcount(
            database.engine, "INSERT INTO autocommitted VALUES (%(n)s), (%(m)s)", {"n": 1, "m": 2}
        )
    assert written == 2 and seen.autocommit == [True]
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM autocommitted")).scalar() == 2
        # The pool's connection is back in transactions: a rolled-back write leaves nothing.
        conn.exec_driver_sql("INSERT INTO autocommitted VALUES (3)")
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM autocommitted")).scalar() == 2
    with pytest.raises(exc.IntegrityError):
        autocommit_rowcount(database.engine, "INSERT INTO autocommitted VALUES (%(n)s)", {"n": 1})


def test_a_lost_connection_in_autocommit_is_dropped_from_the_pool(database, monkeypatch):
    with database.engine.connect() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    # The pool's one idle connection is ended by the server (a restart, an administrator), and
    # handed out before its socket shows the server's goodbye (so not pinged at check-out).
    url = database.engine.url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (backend,))
    monkeypatch.setattr(db, "_has_input", lambda _connection: False)
    with pytest.raises(exc.OperationalError) as raised:
        autocommit_rowcount(database.engine, "SELECT 1", {})
    assert raised.value.connection_invalidated
    # The lost connection is not handed out again.
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != backend


def test_a_database_that_cannot_be_reached_raises_sqlalchemys_error():
    """As `Engine.connect` raises it (the kit's handler answers 503 for it), not the driver's."""
    unreachable = Database("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(exc.OperationalError):
            autocommit_rowcount(unreachable.engine, "SELECT 1", {})
    finally:
        unreachable.dispose()
