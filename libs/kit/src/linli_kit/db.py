"""Database engines and sessions that are safe under gunicorn and work on PostgreSQL and SQLite.

The engine is created lazily in the process that uses it and again after a fork, so a gunicorn
master never hands its pooled connections to its workers.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from linli_kit import jsonvalues

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option naming how a transaction begins on SQLite: "IMMEDIATE" (the default: takes the
# database's one write lock at BEGIN) or "DEFERRED" (a reader: in WAL mode it never blocks a writer
# and no writer blocks it). Ignored on PostgreSQL.
SQLITE_BEGIN = "linli_sqlite_begin"
# A pooled PostgreSQL connection is pinged (`SELECT 1`) before it is handed out when it may be
# dead, so a session never meets a connection the server dropped while it sat in the pool (restart,
# terminated backend): SQLAlchemy's `pool_pre_ping`, done here. It is spared the round trip, a
# third of a plain write's, when the connection is surely alive: used within the last second and
# nothing to read on its socket (a server that drops a connection sends its goodbye and
# end-of-file there). A drop in the instant after that look fails the session's first statement,
# before anything is written (503 with Retry-After; the gateway retries reads), exactly as a drop
# in the instant after a ping would: the ping never closed that window, only the pool's idle time.
UNPINGED_REUSE_SECONDS = 1.0
_RETURNED_AT = "linli_returned_at"


class Database:
    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False) -> None:
        self.url = url
        self._pool_size = pool_size
        self._echo = echo
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[Session] | None = None
        self._pid: int | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            self._engine = self._create_engine()
            self._sessionmaker = sessionmaker(self._engine, expire_on_commit=False)
            self._pid = os.getpid()
        return self._engine

    def _create_engine(self) -> Engine:
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, echo=self._echo, connect_args={"check_same_thread": False})
            _configure_sqlite(engine)
            return engine
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(
            url,
            echo=self._echo,
            pool_size=self._pool_size,
            max_overflow=self._pool_size,
            pool_recycle=1800,
            # JSON columns read by msgspec where it reads them alike (a list's rows decode several
            # each: a sixth of an activities page's CPU went to json.loads), else by json.loads.
            json_deserializer=jsonvalues.loads,
        )
        _ping_before_use(engine)
        return engine

    def session(self) -> Session:
        self.engine  # noqa: B018 - make sure the sessionmaker belongs to this process
        assert self._sessionmaker is not None
        return self._sessionmaker()

    def reading_session(self) -> Session:
        """A session for reading only. On PostgreSQL its statements run in autocommit: no BEGIN
        before the first and no ROLLBACK at the end, two round trips of a list page's three.
        Under PostgreSQL's READ COMMITTED each statement of a transaction takes its own snapshot
        anyway, so what each statement reads is the same; a read made of one statement (a page
        with its total) is as consistent as before. SQLite keeps its deferred transaction."""
        session = self.session()
        if self.is_sqlite:
            session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
            return session
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection in a read-only transaction, rolled back at the end. On SQLite it begins
        DEFERRED, so it holds no write lock: readers never keep writers waiting."""
        with self.engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
            with conn.begin() as transaction:
                try:
                    yield conn
                finally:
                    transaction.rollback()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None
        self._sessionmaker = None


def _ping_before_use(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:  # noqa: ANN001
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) <= UNPINGED_REUSE_SECONDS and not _has_input(
            dbapi_connection
        ):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - whatever failed, this connection is unusable
            # The pool discards it and hands out another (a new one if need be), as pre-ping does.
            raise exc.DisconnectionError(f"pooled connection lost: {error}") from error
        if not alive:
            raise exc.DisconnectionError("pooled connection lost")


def _has_input(dbapi_connection: object) -> bool:
    """Whether an idle connection's socket is readable, which a healthy idle one never is (save
    an asynchronous notice): looked at without waiting, in one system call."""
    try:
        fileno = dbapi_connection.fileno()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - closed or broken: the ping judges it
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling starts transactions late and never with a write lock;
    # a reader that later writes then fails with "database is locked" under concurrency. Take
    # control: autocommit at the driver level, and BEGIN IMMEDIATE when SQLAlchemy begins.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        mode = "DEFERRED" if conn.get_execution_options().get(SQLITE_BEGIN) == "DEFERRED" else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


_Answer = TypeVar("_Answer")


def driver_rowcount(connection: Connection, statement: str, parameters: Mapping[str, Any]) -> int:
    """The row count of `statement` run by PostgreSQL's driver on `connection` (psycopg converts
    its `%(name)s` placeholders and prepares it after a few runs, as it does under SQLAlchemy),
    without SQLAlchemy's execution and result, which were a tenth of a one-statement write's CPU
    (a report, a new activity). Errors as `driver_rows`'."""
    return _on_driver(connection, statement, parameters, None, lambda cursor: cursor.rowcount)


def autocommit_rowcount(engine: Engine, statement: str, parameters: Mapping[str, Any]) -> int:
    """`driver_rowcount` of `statement` as a transaction of its own (autocommit), on a connection
    of `engine`'s pool taken for it alone (PostgreSQL): the driver's connection is switched to
    autocommit and back by psycopg's own attribute, without SQLAlchemy's `Connection` and its
    isolation-level setting and resetting (with them, checking out and in was a tenth of a
    report's CPU). Errors as `driver_rows'`; a connection found lost is dropped from the pool."""
    import psycopg  # PostgreSQL only: SQLite installs need not load it

    try:
        pooled = engine.raw_connection()
    except psycopg.Error as error:  # the pool could not connect: as `Engine.connect` raises it
        lost = engine.dialect.is_disconnect(error, None, None)
        raise exc.DBAPIError.instance(
            None, None, error, psycopg.Error, connection_invalidated=lost, dialect=engine.dialect
        ) from error
    try:
        driver = pooled.driver_connection
        try:
            driver.autocommit = True  # type: ignore[union-attr]  # a lost connection refuses it
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(statement, parameters)
                return cursor.rowcount
        except psycopg.Error as error:
            raise _as_sqlalchemys(error, statement, parameters, engine.dialect, driver, pooled.invalidate) from error
        finally:
            if not driver.closed:  # type: ignore[union-attr]
                try:
                    driver.autocommit = False  # type: ignore[union-attr]  # idle after its statement
                except psycopg.Error as error:  # broken after all: not handed out again
                    pooled.invalidate(error)
    finally:
        pooled.close()


def driver_rows(
    connection: Connection, statement: str, parameters: Mapping[str, Any], *, prepare: bool | None = True
) -> list[tuple]:
    """The rows of `statement` run by PostgreSQL's driver on `connection`, prepared (once per
    connection) unless `prepare` says otherwise, as tuples of the values psycopg reads: without
    SQLAlchemy's execution and result, which made a description of each column anew with every
    run and passed every value through its type. Its errors are SQLAlchemy's, as its execution
    raises them (the connection invalidated when it was lost: a 503 for the caller, like any
    statement's). Statements run so are seen where psycopg sends them, not by SQLAlchemy's
    `before_cursor_execute` (`linli_kit.testing.statements.statements_sent` sees both)."""
    return _on_driver(connection, statement, parameters, prepare, lambda cursor: cursor.fetchall())


def _on_driver(
    connection: Connection,
    statement: str,
    parameters: Mapping[str, Any],
    prepare: bool | None,
    answer: Callable[[Any], _Answer],
) -> _Answer:
    import psycopg  # PostgreSQL only: SQLite installs need not load it

    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(statement, parameters, prepare=prepare)
            return answer(cursor)
    except psycopg.Error as error:
        dialect = connection.dialect
        raise _as_sqlalchemys(error, statement, parameters, dialect, driver, connection.invalidate) from error


def _as_sqlalchemys(
    error: Exception,
    statement: str,
    parameters: Mapping[str, Any],
    dialect: Any,
    driver: Any,
    invalidate: Callable[[BaseException], None],
) -> exc.DBAPIError:
    """The error SQLAlchemy's execution would raise for the driver's `error` (OperationalError,
    IntegrityError, ...), its connection invalidated first when the error says it was lost."""
    import psycopg

    lost = dialect.is_disconnect(error, driver, None)
    if lost:
        invalidate(error)
    return exc.DBAPIError.instance(
        statement, parameters, error, psycopg.Error, connection_invalidated=lost, dialect=dialect
    )
