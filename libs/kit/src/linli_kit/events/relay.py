"""The outbox relay: publishes outbox rows in batches and marks them only after the broker confirms.

No database transaction is ever open while the relay waits for the broker. A batch is read in one
short read-only transaction (on SQLite a DEFERRED one, which takes no lock in WAL mode), published,
and, once the broker has confirmed it, its acked rows are marked in a second short transaction. On
SQLite, where a write transaction locks the whole database, the web processes of the service are
never kept waiting behind a broker round trip; on PostgreSQL no row lock or open transaction is
held across it either.

Several copies of a service's worker may run, but only one relay publishes a service's outbox at a
time: it holds the outbox's relay lock (on PostgreSQL a session advisory lock on the connection the
relay reads and marks with; on SQLite an exclusive `flock` on a file beside the database, which
only processes of the same machine can share anyway). The others stand by, retrying the lock every
`standby_seconds`, and take over when the holder stops or loses its database connection (the
server then drops the lock with the session). So two relays never publish the same row concurrently
in normal operation. Within one relay the rows in flight are excluded from the next read by id.

A row is marked published only once its confirm is an ack. A nacked row, and every row of a batch
whose confirms time out or whose connection fails, stays unpublished and goes out again: delivery
is at-least-once and consumers are idempotent (their inbox).

Events published with no queue bound for them are not lost: the events exchange's alternate
exchange keeps them in the unrouted queue (see `topology`), and the broker's ack then means they are
there. On an exchange declared without that argument the broker returns them instead (the relay
publishes with `mandatory`); the relay then parks them in the unrouted queue itself before marking
the row. Either way an event nobody consumes never holds the outbox back.

A row whose event type carries personal data (`EventSchema.personal_data`) keeps its payload only
until it is published: the statement that marks it published also blanks its data.

A batch is published whole and its confirms (usually cumulative) come back together, so one round
trip covers the batch. Its messages' frames are marshalled here (`_publish_frames`, the bytes pika's
`basic_publish` would send) and a cumulative ack of a whole batch settles it at once: the relay
publishes thousands of events a second on one thread. While a full batch waits for its confirms the
relay already reads and publishes the next one; up to `batches_in_flight` batches are out at once.
When a batch comes back short the relay polls again soon, and backs off towards `idle_seconds`
while the outbox stays empty.

An idle outbox is not polled many times a second on PostgreSQL: a trigger on the outbox notifies
`NOTIFY_CHANNEL` when rows are added (see `linli_kit.tables`), and the leading relay LISTENs on a
connection of its own, watched by the same event loop; once the outbox reads empty it waits for a
notification, reading again only every `listen_fallback_seconds` in case one was missed (a
trigger dropped by hand). Without the listener (SQLite, or its connection lost: it is made again
at most every LISTEN_RETRY_SECONDS) the relay polls as above.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any

import pika
import psycopg
from pika import spec
from pika.adapters.select_connection import PollEvents
from pika.exceptions import AMQPError
from psycopg.pq import ConnStatus
from sqlalchemy import BigInteger, Connection, Row, Select, Table, any_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from linli_kit.backoff import Backoff
from linli_kit.config import BusNames
from linli_kit.db import SQLITE_BEGIN, Database
from linli_kit.events.catalogue import CATALOGUE
from linli_kit.events.topology import (
    UNROUTED_QUEUE_ARGUMENTS,
    Brokers,
    declare_exchanges,
    warn_no_alternate_exchange,
)
from linli_kit.metrics import EVENTS_PUBLISHED
from linli_kit.tables import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


def next_rows_query(table: Table, in_flight: list[int], limit: int) -> Select:
    """The relay's read: the first `limit` unpublished rows in id order, but those in flight."""
    query = select(table.c.id, table.c.event_id, table.c.event_type, table.c.payload, table.c.created_at).where(
        table.c.published_at.is_(None)
    )
    if in_flight:
        # Rows of a batch in flight lie within [lowest, highest]; a row committed late with a
        # lower id, or refused earlier, lies below and is still taken.
        query = query.where(or_(table.c.id > max(in_flight), table.c.id < min(in_flight)))
    return query.order_by(table.c.id).limit(limit)


# For the read of the next rows only (SET LOCAL: the transaction's settings). The rows it wants are
# the first of ix_outbox_unpublished, in its order: walking that index stops after a batch, whatever
# the backlog. During a burst the statistics still say the outbox has next to nothing unpublished,
# so the planner chose to fetch every unpublished row by a bitmap and sort them for the first
# thousand: with 20,000 waiting, 12-55 ms a read instead of about 1 ms, and quadratic over a burst.
WALK_THE_UNPUBLISHED_INDEX = text(
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)

# The envelope fields a redacted row keeps: enough to say what was published, nothing about whom.
CLOSE_TIMEOUT_SECONDS = 5.0
LISTEN_RETRY_SECONDS = 5.0
# While waiting for a notification, how often `stop` is looked at (no database work).
STOP_CHECK_SECONDS = 0.1
ENVELOPE_KEYS = ("id", "type", "version", "occurred_at", "producer", "correlation_id", "street_id", "community_id")


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        outbox_table: Table,
        amqp_url: str,
        bus: BusNames,
        *,
        service: str,
        batch_size: int = 1000,
        idle_seconds: float = 0.02,
        busy_poll_seconds: float = 0.002,
        batches_in_flight: int = 3,
        confirm_timeout: float = 30.0,
        standby_seconds: float = 2.0,
        refused_reconnect_seconds: float = 5.0,
        listen_fallback_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.table = outbox_table
        self.amqp_url = amqp_url
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.busy_poll_seconds = min(busy_poll_seconds, idle_seconds)
        self.batches_in_flight = max(1, batches_in_flight)
        self.confirm_timeout = confirm_timeout
        self.standby_seconds = standby_seconds
        self.refused_reconnect_seconds = refused_reconnect_seconds
        self.listen_fallback_seconds = max(listen_fallback_seconds, idle_seconds)
        self.reads = 0  # outbox reads so far (for observers)
        self.listening = threading.Event()  # woken by the outbox's notifications (PostgreSQL)
        self.links = 0  # broker connections made so far (for observers)
        self.connected = threading.Event()  # the broker link is up (leading or standing by)
        self.leading = threading.Event()  # this relay holds the outbox's relay lock
        self.awaiting_confirms = 0  # messages published and not yet confirmed (for observers)

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, reconnecting with back-off whenever the broker goes away."""
        backoff = Backoff()
        brokers = Brokers(self.amqp_url, name=f"{self.service}-relay")
        while not stop.is_set():
            link = None
            try:
                declare, params = brokers.connect()
                try:
                    alternate_exchange = declare_exchanges(declare.channel(), self.bus)
                finally:
                    declare.close()
                link = _RelayLink(self, params, stop, alternate_exchange=alternate_exchange)
                self.links += 1
                link.run()
                if link.published:
                    backoff.reset()
                if link.error is not None and not stop.is_set():
                    brokers.lost()  # another node of the cluster, if there is one, is tried first
                    log.warning(
                        "relay connection lost",
                        extra={"service": self.service, "error": str(link.error), "broker": params.host},
                    )
            except (AMQPError, OSError) as exc:
                brokers.lost()
                log.warning(
                    "broker unreachable for relay",
                    extra={"service": self.service, "error": repr(exc), "brokers": brokers.describe()},
                )
            except Exception:
                brokers.lost()
                log.exception("relay failed, starting again", extra={"service": self.service})
            finally:
                if link is not None:
                    link.abandon_batches()  # rows still in flight go out again with the next link
                    link.step_down()
                self.connected.clear()
            if not stop.is_set():
                stop.wait(backoff.next())

    def pending_count(self) -> int:
        with self.database.reading() as conn:
            return (
                conn.scalar(select(func.count()).select_from(self.table).where(self.table.c.published_at.is_(None)))
                or 0
            )

    def lock(self) -> OutboxLock:
        return OutboxLock(self.database, self.table)


class OutboxLock:
    """The right to publish one outbox; held by one relay at a time (see the module doc).

    `try_acquire` returns the database connection the holder reads and marks with, or None when
    another relay holds the lock. `release` gives it up."""

    _memory_locks: dict[str, threading.Lock] = {}
    _memory_guard = threading.Lock()

    def __init__(self, database: Database, table: Table) -> None:
        self.database = database
        self.table = table
        self.connection: Connection | None = None
        self._fd: int | None = None
        self._memory_lock: threading.Lock | None = None
        digest = hashlib.blake2b(f"linli-outbox-relay:{table.fullname}".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)

    def try_acquire(self) -> Connection | None:
        if self.connection is not None:
            return self.connection
        if self.database.is_sqlite:
            if not self._lock_file():
                return None
            try:
                self.connection = self.database.engine.connect()
            except BaseException:
                self._unlock_file()
                raise
            return self.connection
        conn = self.database.engine.connect()
        try:
            held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}))
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not held:
            conn.close()
            return None
        self.connection = conn
        return conn

    def release(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            try:
                if not self.database.is_sqlite:
                    # A session-level advisory lock lives as long as the session: end it, rather
                    # than hand a locked connection back to the pool.
                    conn.invalidate()
                conn.close()
            except SQLAlchemyError as exc:
                log.debug("closing the relay's connection failed", extra={"error": repr(exc)})
        self._unlock_file()

    def _lock_file(self) -> bool:
        path = make_url(self.database.url).database
        if not path or path == ":memory:":
            with self._memory_guard:
                lock = self._memory_locks.setdefault(self.database.url, threading.Lock())
            if not lock.acquire(blocking=False):
                return False
            self._memory_lock = lock
            return True
        fd = os.open(f"{path}.relay-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _unlock_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor releases the flock
        if self._memory_lock is not None:
            lock, self._memory_lock = self._memory_lock, None
            lock.release()


class _Batch:
    """Outbox rows published together, waiting for their confirms."""

    __slots__ = ("rows", "unconfirmed", "acked", "nacked", "full", "timer", "lost_unrouted")

    def __init__(self, rows: list[Row], full: bool) -> None:
        self.rows: dict[int, Row] = {row.id: row for row in rows}
        self.unconfirmed: OrderedDict[int, int] = OrderedDict()  # delivery tag -> outbox row id
        self.acked: list[int] = []
        self.nacked: list[int] = []
        self.full = full
        self.timer: Any = None
        self.lost_unrouted = False  # a parked event came back: the unrouted queue is missing


class _RelayLink:
    """One broker connection's worth of relaying, driven by pika's SelectConnection event loop.
    Everything here runs on the event loop's thread."""

    def __init__(
        self, relay: OutboxRelay, params: pika.URLParameters, stop: threading.Event, *, alternate_exchange: bool
    ) -> None:
        self.relay = relay
        self.stop = stop
        self.alternate_exchange = alternate_exchange
        self.error: Any = None
        self.published = 0
        self.channel: Any = None
        self.next_tag = 0
        self.batches: deque[_Batch] = deque()  # oldest first
        # Batches the broker confirmed whose marking failed (the database went away): marked first
        # once it is back, before anything is read, so they are not published a second time.
        self.confirmed_unmarked: list[_Batch] = []
        self.returned: dict[str, str] = {}  # event id -> exchange that returned it (unroutable)
        self.poll_timer: Any = None
        self.poll_due = 0.0
        self.idle_delay = relay.busy_poll_seconds
        self.closing = False
        self.db_backoff = Backoff(0.1, 5.0)
        # A broker refusing events (a full queue with reject-publish) is asked again less and less often.
        self.refused_backoff = Backoff(max(relay.idle_seconds, 0.05), 5.0)
        self.refused_since: float | None = None  # when the broker began refusing every event
        self.lock = relay.lock()
        self.db: Connection | None = None  # while leading: the connection holding the lock
        self.listener: _OutboxListener | None = None  # while leading, on PostgreSQL
        self.listen_tried_at = float("-inf")
        self.stop_timer: Any = None
        self.redeclared_at = 0.0
        self.conn = pika.SelectConnection(
            params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )

    def run(self) -> None:
        self.conn.ioloop.start()

    # --- connection lifecycle -----------------------------------------------------------------
    def _on_open(self, conn: pika.SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, conn: pika.SelectConnection, err: BaseException) -> None:
        self.error = err
        conn.ioloop.stop()

    def _on_closed(self, conn: pika.SelectConnection, reason: BaseException) -> None:
        self.abandon_batches()
        self.step_down()
        if not self.closing:
            self.error = reason
        conn.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        self.relay.connected.set()
        self._schedule(0)

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        if not self.closing:
            self.error = reason
        self._close()

    def _close(self) -> None:
        self.closing = True
        if self.conn.is_open:
            self.conn.close()
            # A broker that has stopped answering never sends Close-Ok: do not wait for it forever.
            give_up = functools.partial(self._abort, TimeoutError("broker did not close the connection"))
            self.conn.ioloop.call_later(CLOSE_TIMEOUT_SECONDS, give_up)

    def _abort(self, error: Exception) -> None:
        """Drop the connection without the closing handshake (what pika does on a missed heartbeat)."""
        self.closing = True
        if self.conn.is_closed:
            return
        terminate = getattr(self.conn, "_terminate_stream", None)
        if callable(terminate):
            terminate(error)
        elif self.conn.is_open:
            self.conn.close()

    def _schedule(self, delay: float) -> None:
        """Poll after `delay` seconds, unless a poll is already due sooner."""
        due = time.monotonic() + delay
        if self.poll_timer is not None:
            if self.poll_due <= due:
                return
            self.conn.ioloop.remove_timeout(self.poll_timer)
        self.poll_due = due
        self.poll_timer = self.conn.ioloop.call_later(delay, self._poll)

    def _fail(self, exc: BaseException) -> None:
        """Something unexpected broke this link: drop its batches and close; `run` starts afresh."""
        log.exception("relay link failed", extra={"service": self.relay.service})
        self.error = exc
        self.abandon_batches()
        self._close()

    # --- leadership ------------------------------------------------------------------------------
    def _lead(self) -> bool:
        """Hold the outbox's relay lock, or say that another relay does."""
        if self.db is not None:
            return True
        self.db = self.lock.try_acquire()
        if self.db is None:
            self.relay.leading.clear()
            return False
        self.relay.leading.set()
        log.info("relay publishing this outbox", extra={"service": self.relay.service})
        return True

    def step_down(self, *, keep_in_flight: bool = False) -> None:
        """Give the lock up (another relay may take over); rows in flight are forgotten first,
        unless `keep_in_flight`: then their confirms are still awaited on the open channel, and
        the rows the broker confirms are marked once this relay leads again (see _finish_batch)."""
        if not keep_in_flight:
            self.abandon_batches()
        self._unlisten()
        self.db = None
        self.lock.release()
        self.relay.leading.clear()

    def _database_failed(self, what: str, exc: SQLAlchemyError) -> None:
        log.warning(what, extra={"service": self.relay.service, "error": repr(exc)})
        lost = (isinstance(exc, DBAPIError) and exc.connection_invalidated) or self.db is None or self.db.invalidated
        if lost:
            # The session, and with it a PostgreSQL lock, is gone: compete for the lock anew. What
            # is in flight reached the broker or will be refused by it: its confirms are still
            # awaited (the channel is fine), and what is confirmed is marked once this relay leads
            # again, before it reads anything. Forgetting it sent every row of those batches a
            # second time. (Another relay that takes the lock meanwhile may send them again;
            # consumers deduplicate.)
            self.step_down(keep_in_flight=True)
        self._schedule(self.db_backoff.next())

    # --- batches --------------------------------------------------------------------------------
    def _poll(self) -> None:
        self.poll_timer = None
        try:
            self._poll_once()
        except Exception as exc:  # noqa: BLE001 - never let a callback kill the event loop
            self._fail(exc)

    def _poll_once(self) -> None:
        if self.stop.is_set():
            self._close()
            return
        if self.closing or not self.conn.is_open:
            return
        if len(self.batches) >= self.relay.batches_in_flight:
            return  # the next finished batch polls again
        try:
            if not self._lead():
                self._schedule(self.relay.standby_seconds)
                return
            self._listen()
            self._mark_confirmed_unmarked()
            rows = self._read()
        except SQLAlchemyError as exc:
            self._database_failed("outbox read failed", exc)
            return
        self.db_backoff.reset()
        if not rows:
            if not self.batches:
                if self.listener is not None:
                    self._schedule(self.relay.listen_fallback_seconds)  # or sooner, when notified
                else:
                    self._schedule(self.idle_delay)
                    self.idle_delay = min(self.idle_delay * 2, self.relay.idle_seconds)
            return
        self.idle_delay = self.relay.busy_poll_seconds
        batch = _Batch(rows, full=len(rows) == self.relay.batch_size)
        self.batches.append(batch)
        for row in rows:
            self._publish(batch, row, self.relay.bus.exchange)
        self._coalesce_output()
        self._count()
        batch.timer = self.conn.ioloop.call_later(self.relay.confirm_timeout, self._on_confirm_timeout)
        if batch.full:
            # More rows are waiting: read and send them while this batch's confirms come back.
            self._schedule(0)

    # --- waiting for rows (PostgreSQL) ------------------------------------------------------------
    def _listen(self) -> None:
        """LISTEN for the outbox's notifications, unless already listening or it failed lately.
        Started before the read that may find the outbox empty, so no notification falls between."""
        if self.listener is not None or self.relay.database.is_sqlite:
            return
        now = time.monotonic()
        if now - self.listen_tried_at < LISTEN_RETRY_SECONDS:
            return
        self.listen_tried_at = now
        try:
            listener = _OutboxListener(self.relay.database, self.relay.table.name)
        except (psycopg.Error, OSError) as exc:
            log.warning(
                "cannot listen for outbox rows, polling", extra={"service": self.relay.service, "error": repr(exc)}
            )
            return
        self.listener = listener
        self.conn.ioloop.add_handler(listener.fileno, self._on_notified, PollEvents.READ)
        self.relay.listening.set()
        self._watch_stop()

    def _watch_stop(self) -> None:
        """While the relay may wait long for a notification, a stop is still seen at once."""
        self.stop_timer = None
        if self.listener is None:
            return
        if self.stop.is_set():
            self._schedule(0)  # the poll closes the link
            return
        self.stop_timer = self.conn.ioloop.call_later(STOP_CHECK_SECONDS, self._watch_stop)

    def _on_notified(self, _fd: int, _events: int) -> None:
        listener = self.listener
        if listener is None:
            return
        try:
            woken = listener.drain()
        except (psycopg.Error, OSError) as exc:
            log.warning("outbox listener lost, polling", extra={"service": self.relay.service, "error": repr(exc)})
            self._unlisten()
            self._schedule(0)
            return
        if woken:
            self._schedule(0)

    def _unlisten(self) -> None:
        listener, self.listener = self.listener, None
        if listener is None:
            return
        self.relay.listening.clear()
        try:
            if self.stop_timer is not None:
                self.conn.ioloop.remove_timeout(self.stop_timer)
                self.stop_timer = None
            self.conn.ioloop.remove_handler(listener.fileno)
        except Exception as exc:  # noqa: BLE001 - the loop may be gone already
            log.debug("removing the outbox listener failed", extra={"error": repr(exc)})
        listener.close()

    def _read(self) -> list[Row]:
        """The next unpublished rows, oldest first, leaving out those in flight. A read-only
        transaction, over before anything is published."""
        in_flight = [row_id for batch in self.batches for row_id in batch.rows]
        query = next_rows_query(self.relay.table, in_flight, self.relay.batch_size)
        self.relay.reads += 1
        db = self.db
        assert db is not None
        db.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        with db.begin():
            if not self.relay.database.is_sqlite:
                db.execute(WALK_THE_UNPUBLISHED_INDEX)
            return list(db.execute(query).all())

    def _publish(self, batch: _Batch, row: Row, exchange: str) -> None:
        row_id, event_id, event_type, payload, created_at = row  # once, not an attribute lookup each
        envelope = _envelope_fields(payload)
        body = payload.encode()
        timestamp = int(created_at.timestamp())
        correlation_id, producer = envelope.get("correlation_id"), envelope.get("producer")
        frames = None
        output = getattr(self.conn, "_output_marshaled_frames", None)
        body_max = getattr(self.conn, "_body_max_length", None)
        if output is not None and isinstance(body_max, int) and body_max > 0 and self.channel.is_open:
            frames = _publish_frames(
                self.channel.channel_number,
                exchange,
                event_type,
                body,
                body_max,
                message_id=event_id,
                timestamp=timestamp,
                correlation_id=correlation_id,
                app_id=producer,
            )
        if frames is not None:
            output(frames)  # what pika's basic_publish sends, marshalled in fewer Python steps
        else:
            self.channel.basic_publish(
                exchange=exchange,
                routing_key=event_type,
                body=body,
                properties=pika.BasicProperties(
                    message_id=event_id,
                    type=event_type,
                    timestamp=timestamp,
                    content_type="application/json",
                    delivery_mode=2,
                    correlation_id=correlation_id,
                    app_id=producer,
                ),
                # With no queue bound and no alternate exchange, the broker returns the event rather
                # than dropping it; see `_settle`.
                mandatory=True,
            )
        self.next_tag += 1
        batch.unconfirmed[self.next_tag] = row_id

    def _coalesce_output(self) -> None:
        """pika queues every frame (three a message) as its own buffer and sends each with its own
        system call; join what a batch queued so it leaves in a few large writes. Relies on pika's
        transport keeping a deque of buffers; when it does not, this does nothing."""
        buffers = getattr(getattr(self.conn, "_transport", None), "_tx_buffers", None)
        if isinstance(buffers, deque) and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def _count(self) -> None:
        self.relay.awaiting_confirms = sum(len(b.unconfirmed) for b in self.batches)

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        # The broker sends the return before the confirm of the same message: remember it, and the
        # confirm's ack is then not taken as "delivered".
        if properties.message_id:
            self.returned[properties.message_id] = method.exchange

    def _on_confirm(self, frame: Any) -> None:
        try:
            self._confirmed(frame.method)
        except Exception as exc:  # noqa: BLE001 - never let a callback kill the event loop
            self._fail(exc)

    def _confirmed(self, method: Any) -> None:
        is_ack = isinstance(method, spec.Basic.Ack)
        tag = method.delivery_tag
        for batch in list(self.batches):
            unconfirmed = batch.unconfirmed
            if method.multiple:
                if is_ack and not self.returned and unconfirmed and next(reversed(unconfirmed)) <= tag:
                    # The usual case: the whole batch acked and none of it returned, so every row
                    # is acked, as `_settle` would find one by one.
                    batch.acked.extend(unconfirmed.values())
                    unconfirmed.clear()
                    continue
                # Tags ascend within a batch; a batch may hold a higher tag than a later one (an
                # event parked after its return), so every batch is looked at.
                while unconfirmed and next(iter(unconfirmed)) <= tag:
                    self._settle(batch, unconfirmed.popitem(last=False)[1], is_ack)
            else:
                row_id = unconfirmed.pop(tag, None)
                if row_id is not None:
                    self._settle(batch, row_id, is_ack)
                    break
        # Finishing a batch may end the lead (its mark failed with the connection) and drop the rest.
        while (done := next((b for b in self.batches if not b.unconfirmed), None)) is not None:
            self.batches.remove(done)
            self._finish_batch(done)
        self._count()

    def _settle(self, batch: _Batch, row_id: int, is_ack: bool) -> None:
        row = batch.rows[row_id]
        returned_by = self.returned.pop(row.event_id, None)
        if not is_ack:
            batch.nacked.append(row_id)
        elif returned_by is None:
            batch.acked.append(row_id)
        elif returned_by == self.relay.bus.exchange:
            # No queue is bound for it and the exchange has no alternate exchange: park it in the
            # unrouted queue ourselves; the row is marked once that copy is confirmed.
            if self.alternate_exchange:
                self.alternate_exchange = False
                warn_no_alternate_exchange(self.relay.bus, "an unroutable event came back")
            self._publish(batch, row, self.relay.bus.unrouted_exchange)
        else:
            # Even the unrouted queue is gone: keep the row unpublished and declare the queue again.
            batch.nacked.append(row_id)
            batch.lost_unrouted = True

    def _finish_batch(self, batch: _Batch) -> None:
        if batch.timer is not None:
            self.conn.ioloop.remove_timeout(batch.timer)
            batch.timer = None
        if batch.acked and self.db is None:
            # Confirmed while this relay has no database (it stepped down when the connection was
            # lost): marked first when it leads again.
            self.confirmed_unmarked.append(batch)
        elif batch.acked:
            try:
                self._mark_published(batch)
                self.published += len(batch.acked)
                EVENTS_PUBLISHED.labels(self.relay.service).inc(len(batch.acked))
            except SQLAlchemyError as exc:
                # The events did reach the broker: remembered, and marked when the database is back.
                # (Should this process stop first, they go out again and are deduplicated downstream.)
                self.confirmed_unmarked.append(batch)
                self._database_failed("marking outbox rows failed", exc)
                return
        if batch.lost_unrouted:
            self._declare_unrouted_again()
        if batch.nacked:
            # Refused by the broker: they stay unpublished and go out again with a later batch.
            if batch.acked:
                self.refused_since = None
            elif self.refused_since is None:
                self.refused_since = time.monotonic()
            elif time.monotonic() - self.refused_since > self.relay.refused_reconnect_seconds:
                # A full queue refuses for a while; a channel that refuses everything for this long
                # is more likely stuck. RabbitMQ 3.10 was seen to nack every publish on a channel
                # opened while a quorum queue changed leader (reject-publish overflow, an empty
                # queue) for minutes, while a new channel was accepted at once: start afresh,
                # through another node first.
                log.warning(
                    "broker kept refusing events: reconnecting",
                    extra={"service": self.relay.service, "seconds": round(time.monotonic() - self.refused_since, 1)},
                )
                self.error = RuntimeError("the broker refused every event for too long")
                self._close()
                return
            delay = self.refused_backoff.next()
            log.warning(
                "broker refused events",
                extra={"service": self.relay.service, "count": len(batch.nacked), "retry_in": round(delay, 2)},
            )
            self._schedule(delay)
        else:
            self.refused_backoff.reset()
            self.refused_since = None
            self._schedule(0 if batch.full else self.relay.busy_poll_seconds)

    def _mark_confirmed_unmarked(self) -> None:
        while self.confirmed_unmarked:
            batch = self.confirmed_unmarked[0]
            self._mark_published(batch)
            self.confirmed_unmarked.pop(0)
            self.published += len(batch.acked)
            EVENTS_PUBLISHED.labels(self.relay.service).inc(len(batch.acked))

    def _mark_published(self, batch: _Batch) -> None:
        """Mark the acked rows in one short write transaction; rows of personal event types lose
        their data in the same statement."""
        table = self.relay.table
        now = datetime.now(UTC)
        personal_types = CATALOGUE.personal_types()
        plain: list[int] = []
        personal: list[int] = []
        rows = batch.rows
        for i in batch.acked:
            (personal if rows[i].event_type in personal_types else plain).append(i)
        db = self.db
        assert db is not None
        db.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with db.begin():
            if plain:
                if self.relay.database.is_sqlite:
                    where = table.c.id.in_(plain)
                else:  # one statement text whatever the batch size
                    where = table.c.id == any_(bindparam("ids", plain, type_=postgresql.ARRAY(BigInteger)))
                db.execute(update(table).where(where).values(published_at=now))
            if personal:
                db.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values(published_at=now, payload=bindparam("redacted")),
                    [{"row_id": i, "redacted": redact(batch.rows[i].payload)} for i in personal],
                )

    def _declare_unrouted_again(self) -> None:
        if time.monotonic() - self.redeclared_at < 10:
            return
        self.redeclared_at = time.monotonic()
        bus = self.relay.bus
        log.warning("the unrouted queue is missing: declaring it again", extra={"queue": bus.unrouted_queue})
        self.channel.exchange_declare(bus.unrouted_exchange, exchange_type="fanout", durable=True)
        self.channel.queue_declare(bus.unrouted_queue, durable=True, arguments=UNROUTED_QUEUE_ARGUMENTS)
        self.channel.queue_bind(bus.unrouted_queue, bus.unrouted_exchange)

    def _on_confirm_timeout(self) -> None:
        log.warning("broker did not confirm in time", extra={"service": self.relay.service})
        self.error = TimeoutError("publisher confirms timed out")
        self.abandon_batches()
        self._abort(self.error)

    def abandon_batches(self) -> None:
        while self.batches:
            batch = self.batches.popleft()
            if batch.timer is not None:
                self.conn.ioloop.remove_timeout(batch.timer)
        self.returned.clear()
        self._count()


class _OutboxListener:
    """A PostgreSQL connection of its own LISTENing on NOTIFY_CHANNEL; the relay's event loop
    watches its socket and calls `drain` when it is readable."""

    def __init__(self, database: Database, table_name: str) -> None:
        url = database.engine.url.set(drivername="postgresql")
        self.table_name = table_name
        self.conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)
        try:
            self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except BaseException:
            self.conn.close()
            raise
        self.fileno = self.conn.pgconn.socket

    def drain(self) -> bool:
        """Take the notifications that arrived; True when one was about this outbox. Raises when
        the connection is gone."""
        pgconn = self.conn.pgconn
        pgconn.consume_input()
        woken = False
        while (note := pgconn.notifies()) is not None:
            woken = woken or note.extra.decode() == self.table_name
        if pgconn.status != ConnStatus.OK:
            raise psycopg.OperationalError("the outbox listener's connection is closed")
        return woken

    def close(self) -> None:
        try:
            self.conn.close()
        except psycopg.Error as exc:
            log.debug("closing the outbox listener failed", extra={"error": repr(exc)})


def redact(payload: str) -> str:
    """What an outbox row of a personal event keeps once published: its envelope without data."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        envelope = None
    kept = {key: envelope.get(key) for key in ENVELOPE_KEYS} if isinstance(envelope, dict) else {}
    kept["data"] = None
    kept["redacted"] = True
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def is_redacted(payload: str) -> bool:
    try:
        envelope = json.loads(payload)
    except ValueError:
        return False
    return isinstance(envelope, dict) and envelope.get("redacted") is True


# AMQP 0-9-1 frames of a persistent JSON message published with `mandatory`, as pika 1.x marshals
# them for `basic_publish` (its Basic.Publish method frame, content header and body frames; the
# kit's tests compare the bytes with pika's own). pika spends a dozen Python calls a message on
# objects it builds and drops; the relay publishes thousands a second on one thread.
_FRAME_END = b"\xce"
_BASIC = 60
_PUBLISH = 40
_CONTENT_TYPE = b"\x10application/json"
# Property flags of spec.BasicProperties, in the order their values follow.
_F_CONTENT_TYPE, _F_DELIVERY_MODE, _F_CORRELATION_ID = 1 << 15, 1 << 12, 1 << 10
_F_MESSAGE_ID, _F_TIMESTAMP, _F_TYPE, _F_APP_ID = 1 << 7, 1 << 6, 1 << 5, 1 << 3


def _short(value: str) -> bytes | None:
    raw = value.encode()
    return bytes((len(raw),)) + raw if len(raw) <= 255 else None


@functools.lru_cache(maxsize=1024)
def _method_frame(channel_number: int, exchange: str, routing_key: str) -> bytes | None:
    exchange_s, key_s = _short(exchange), _short(routing_key)
    if exchange_s is None or key_s is None:
        return None
    payload = struct.pack(">HHH", _BASIC, _PUBLISH, 0) + exchange_s + key_s + b"\x01"  # mandatory
    return struct.pack(">BHI", 1, channel_number, len(payload)) + payload + _FRAME_END


def _publish_frames(
    channel_number: int,
    exchange: str,
    event_type: str,
    body: bytes,
    body_max: int,
    *,
    message_id: Any,
    timestamp: int,
    correlation_id: Any,
    app_id: Any,
) -> list[bytes] | None:
    """The frames of one event, routed by its type and carrying it as its `type`; None for what
    only pika's own path should send (a string over 255 bytes, which it refuses; a value that is
    not a string)."""
    method = _method_frame(channel_number, exchange, event_type)
    if method is None or not 0 <= timestamp < 1 << 64:
        return None
    flags = _F_CONTENT_TYPE | _F_DELIVERY_MODE | _F_TIMESTAMP | _F_TYPE
    props = [_CONTENT_TYPE, b"\x02"]  # content type, delivery mode 2 (persistent)
    for flag, value in ((_F_CORRELATION_ID, correlation_id), (_F_MESSAGE_ID, message_id)):
        if value is not None:
            if not isinstance(value, str) or (short := _short(value)) is None:
                return None
            flags |= flag
            props.append(short)
    props.append(struct.pack(">Q", timestamp))
    type_s = _short(event_type)
    assert type_s is not None  # the routing key's length was checked with the method frame
    props.append(type_s)
    if app_id is not None:
        if not isinstance(app_id, str) or (short := _short(app_id)) is None:
            return None
        flags |= _F_APP_ID
        props.append(short)
    header = struct.pack(">HHQH", _BASIC, 0, len(body), flags) + b"".join(props)
    frames = [method, struct.pack(">BHI", 2, channel_number, len(header)) + header + _FRAME_END]
    for start in range(0, len(body), body_max):
        chunk = body[start : start + body_max]
        frames.append(struct.pack(">BHI", 3, channel_number, len(chunk)) + chunk + _FRAME_END)
    return frames


# Event.to_json writes the envelope's own fields first and its data last, without spaces.
_DATA_KEY = ',"data":'
_HEAD_KEYS = frozenset(("producer", "correlation_id"))


def _envelope_fields(payload: str) -> dict[str, Any]:
    """The envelope, for its correlation id and producer; a row that is not one is still sent (the
    consumers dead-letter it) rather than blocking every row behind it.

    Only the part before the data is parsed when it holds both (the data is most of a payload and
    parsing it was a tenth of the relay's time): `,"data":` outside a JSON string is a key, since a
    string's quotes are escaped; if it is a nested object's, what precedes it does not parse as one
    object. Anything else (another layout, the fields after the data) is parsed whole, as before."""
    cut = payload.find(_DATA_KEY)
    if cut > 0:
        try:
            head = json.loads(payload[:cut] + "}")
        except ValueError:
            head = None
        if isinstance(head, dict) and head.keys() >= _HEAD_KEYS:
            return head
    try:
        envelope = json.loads(payload)
    except ValueError:
        return {}
    return envelope if isinstance(envelope, dict) else {}
