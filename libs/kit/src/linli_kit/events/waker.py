"""Waking the outbox relay after a commit, off the committing request's path (PostgreSQL).

The outbox's trigger notifies the relay from the transaction that adds rows (`linli_kit.tables`).
PostgreSQL holds its one notification-queue lock from such a transaction's commit until its WAL
flush is done, so a busy writer whose every commit notifies commits one at a time. A hot path can
say instead, in its transaction, that it wakes the relay itself (`set_config(NOTIFY_SETTING,
'later', true)`, see `DEFER_NOTIFY_SQL`) and, once committed, `poke` this process's waker: a thread
of its own sends one NOTIFY for every poke that came while it was busy, in a transaction of its own
committed without waiting for its WAL flush (`synchronous_commit off`: the lock is held for
microseconds; a notification lost in a crash is what a listener would lose anyway).

Notifications are spaced at least `SPACING_SECONDS` apart: one woken relay reads every row
committed until its read, so under a stream of commits one notification in that time does the work
of many, each of which costs a transaction in the database (and a wake-up of the relay) on the
machine the requests share. A first poke after a quiet moment is sent at once; the others wait at
most that long.

Nothing is lost if a wake-up is: the rows are committed, and the relay reads the outbox again
every `listen_fallback_seconds` (5 s) while it waits for notifications.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref

import psycopg
from sqlalchemy import Engine

from linli_kit.tables import NOTIFY_CHANNEL, NOTIFY_SETTING

log = logging.getLogger(__name__)

# A condition for a statement's WHERE clause (always true), making its transaction one that does
# not notify from the outbox's trigger: its writer pokes the waker after commit.
DEFER_NOTIFY_SQL = f"set_config('{NOTIFY_SETTING}', 'later', true) IS NOT NULL"


class OutboxWaker:
    """One per process and database: `poke()` after a commit whose outbox rows did not notify."""

    # A thread with nothing to do for this long ends; the next poke starts another.
    IDLE_SECONDS = 60.0
    # The least time between two notifications: pokes in between are answered by one at its end.
    SPACING_SECONDS = 0.02

    def __init__(self, engine: Engine, table_name: str = "outbox") -> None:
        self._engine = weakref.ref(engine)  # the waker must not keep a disposed engine alive
        self.table_name = table_name
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.sent = 0  # notifications sent (coalesced pokes count once)
        self._conn: psycopg.Connection | None = None
        self._sent_at = float("-inf")  # time.monotonic() of the last notification

    def poke(self) -> None:
        """Ask for a notification soon; returns at once."""
        # Under the lock: a thread about to end for want of work (in `_run`) either sees this poke
        # or has let go of `_thread` before it is looked at.
        with self._lock:
            self._due.set()
            # A process forked by gunicorn inherits the object but not the thread.
            if self._thread is None or self._pid != os.getpid():
                if self._pid != os.getpid():
                    self._conn = None  # the parent's: neither used nor closed here
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="outbox-waker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._due.wait(self.IDLE_SECONDS):
                with self._lock:
                    if not self._due.is_set():
                        self._thread = None
                        self._close()
                        return
                continue
            # A deliberate pause, not a wait for something: the pokes that come in it are coalesced.
            pause = self._sent_at + self.SPACING_SECONDS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._due.clear()  # pokes from now on ask for another notification
            for attempt in (1, 2):  # a connection gone since the last wake-up: once more on a new one
                try:
                    if self._notify():
                        self.sent += 1
                        self._sent_at = time.monotonic()
                    break
                except Exception as exc:  # noqa: BLE001 - the relay's fallback read covers a lost wake-up
                    self._close()
                    if attempt == 2:
                        log.warning("waking the outbox relay failed", extra={"error": repr(exc)})

    def _notify(self) -> bool:
        """One notification, in a transaction committed without waiting for its WAL flush; on a
        connection of the waker's own (not the pool's: requests never wait for it, and their
        statement hooks never see it), in one round trip (the simple query protocol)."""
        if self._conn is None or self._conn.closed:
            engine = self._engine()
            if engine is None:
                return False
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        self._conn.execute(
            f"BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY {NOTIFY_CHANNEL}, '{self.table_name}'; COMMIT"
        )
        return True

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


_wakers: weakref.WeakKeyDictionary[Engine, dict[str, OutboxWaker]] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


def waker_for(engine: Engine, table_name: str = "outbox") -> OutboxWaker:
    """The process's waker of the relay of `engine`'s outbox."""
    with _wakers_lock:
        of_engine = _wakers.setdefault(engine, {})
        waker = of_engine.get(table_name)
        if waker is None:
            waker = of_engine[table_name] = OutboxWaker(engine, table_name)
    return waker
