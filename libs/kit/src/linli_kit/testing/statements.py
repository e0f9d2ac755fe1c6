"""The SQL statements an engine sends, for tests that count round trips or look at what was sent.

On PostgreSQL they are seen where psycopg sends them (`Cursor.execute`, `Cursor.executemany`), on
the connections the engine's pool hands out: the hottest writes run on the driver itself
(`linli_kit.db.driver_rowcount`, `driver_rows`), which SQLAlchemy's `before_cursor_execute` never
sees. Connections of the process's outbox waker are not the engine's and are left out. On SQLite
they are seen by that event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from sqlalchemy import Engine, event


class Sent(list):
    """The statements' texts in the order sent; `autocommit`: for each, whether its connection was
    in autocommit (PostgreSQL; None on SQLite)."""

    def __init__(self) -> None:
        super().__init__()
        self.autocommit: list[bool | None] = []


@contextmanager
def statements_sent(engine: Engine) -> Iterator[Sent]:
    """`with statements_sent(engine) as seen:` — what `engine` sends meanwhile, as `Sent`."""
    seen = Sent()
    if engine.dialect.name != "postgresql":

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)
            seen.autocommit.append(None)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return

    import psycopg

    ours: set[int] = set()  # the engine's connections (their ids) handed out meanwhile

    def checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        ours.add(id(dbapi_connection))

    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def note(cursor: psycopg.Cursor, query: Any) -> None:
        if id(cursor.connection) in ours:
            seen.append(query if isinstance(query, str) else query.as_string(cursor))
            seen.autocommit.append(cursor.connection.autocommit)

    def recorded_execute(cursor: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
        note(cursor, query)
        return execute(cursor, query, *args, **kwargs)

    def recorded_executemany(cursor: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
        note(cursor, query)
        return executemany(cursor, query, *args, **kwargs)

    event.listen(engine, "checkout", checked_out)
    try:
        with (
            mock.patch.object(psycopg.Cursor, "execute", recorded_execute),
            mock.patch.object(psycopg.Cursor, "executemany", recorded_executemany),
        ):
            yield seen
    finally:
        event.remove(engine, "checkout", checked_out)
