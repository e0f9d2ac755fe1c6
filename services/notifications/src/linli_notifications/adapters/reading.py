"""Sessions for work that only reads (list the inbox, look a delivery up, check what is due).

On PostgreSQL they are the database's ordinary sessions: a reader never blocks a writer there.

On SQLite the kit's engine begins every transaction with `BEGIN IMMEDIATE`, which takes the
database's one write lock: right for a transaction that will write, but a request that only reads
would then queue behind the worker's writes (and hold back the others while it reads). Here a
second engine on the same file begins its transactions DEFERRED and its connections are
`query_only`: in WAL mode a read transaction sees one consistent snapshot, takes no write lock,
and neither waits for a writer nor holds one back.

The kit should offer this itself (`Database.read_session()`); until it does, it lives here.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from linli_kit.db import SQLITE_BUSY_TIMEOUT_MS, Database


class ReadSessions:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[Session] | None = None
        self._pid: int | None = None

    def _maker(self) -> sessionmaker[Session]:
        # Created in the process that reads, and again after a fork (gunicorn workers).
        with self._lock:
            if self._sessionmaker is None or self._pid != os.getpid():
                self._engine = _read_only_sqlite_engine(self.database.url)
                self._sessionmaker = sessionmaker(self._engine, expire_on_commit=False)
                self._pid = os.getpid()
            return self._sessionmaker

    def session(self) -> Session:
        """A session to read with; it never commits anything (close it, or use `reading()`)."""
        if not self.database.is_sqlite:
            return self.database.session()
        return self._maker()()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        session = self.session()
        try:
            yield session
        finally:
            session.close()  # ends the read transaction (a rollback: nothing was written)

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None
        self._sessionmaker = None


_SHARED: weakref.WeakKeyDictionary[Database, ReadSessions] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def reads_for(database: Database) -> ReadSessions:
    """The one `ReadSessions` of `database` in this process (one read engine per database)."""
    with _SHARED_LOCK:
        found = _SHARED.get(database)
        if found is None:
            found = _SHARED[database] = ReadSessions(database)
        return found


def _read_only_sqlite_engine(url: str) -> Engine:
    engine = create_engine(make_url(url), connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
        cursor = dbapi_connection.cursor()
        # WAL is a property of the file (the kit's engine sets it); asking again is a no-op read.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        # DEFERRED: the snapshot starts at the first read; no lock is taken for writing.
        conn.exec_driver_sql("BEGIN")

    return engine
