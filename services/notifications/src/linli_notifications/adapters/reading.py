"""Sessions for work that only reads (list the inbox, look a delivery up, check what is due).

On SQLite a session of the kit's `Database.session()` begins with `BEGIN IMMEDIATE`, which takes the
database's one write lock: right for a transaction that will write, but a request that only reads
would then queue behind the worker's writes (and hold back the others while it reads). These
sessions run on the kit's `Database.reading()` connection instead, whose transaction begins
DEFERRED: in WAL mode it sees one consistent snapshot, takes no write lock, and neither waits for a
writer nor holds one back. On PostgreSQL its statements run in autocommit (`Database.reading_session`):
under READ COMMITTED each statement of a transaction read its own snapshot anyway, so what is read is
the same, without the BEGIN and ROLLBACK round trips (two of an inbox page's four).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from linli_kit.db import Database


class ReadSessions:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session to read with; nothing it does is committed."""
        session = self.database.reading_session()
        try:
            yield session
        finally:
            session.close()
