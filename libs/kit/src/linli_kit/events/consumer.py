"""The idempotent consumer: handler effects and the inbox row commit together; the ack follows the commit.

Messages are taken in batches (bounded by the prefetch) and a batch is handled in one transaction,
so the database sees one commit per batch instead of one per event. The inbox rows of a batch are
written first, with one `INSERT ... ON CONFLICT DO NOTHING RETURNING`: the events it returns are new
and go to their handlers; the others were handled before and are only acked. A concurrent consumer
handling the same event waits on that row's lock, so an event's effects commit once.

If the batch fails, its messages are handled one by one so that one bad message cannot hold back
the good ones:

- an event whose id is already in the inbox is acked and skipped (redelivery, duplicate publish);
- an envelope that does not parse or match the catalogue is rejected at once (dead-lettered):
  retrying cannot fix it;
- a handler error is nacked with requeue; the quorum queue counts deliveries and dead-letters the
  message past the delivery limit, so it never blocks the queue;
- a database outage (the connection lost, the server unreachable, shutting down or out of
  resources: see `is_database_outage`) is not the message's fault: the batch is retried in place
  with back-off, without spending deliveries, until the database answers again;
- any other database error (a deadlock, a lock or statement timeout, a serialization failure,
  SQLite's "database is locked") fails the batch like a handler error: it is handled one by one,
  and a message that keeps causing one spends its deliveries and is dead-lettered.

On SQLite a batch is at most `SQLITE_MAX_BATCH` events: its transaction holds the whole
database's write lock, which the service's web processes are waiting for meanwhile.

Batches are handled on a helper thread, one at a time and in order. Meanwhile the connection's
thread keeps serving heartbeats, receives and parses the next messages, and acks a batch as soon as
the helper reports its commit, so the broker, the parsing and the database work overlap.

A handler is called once per new event. A `BatchHandler` (see `batch_handler`) is called once per
run of consecutive new events it handles in a batch (of its type, or of any of the types mapped to
the same `BatchHandler` object), so it can write all their effects with one statement; it runs in
the same transaction as the inbox rows.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from pika.exceptions import AMQPError
from sqlalchemy import String, Table, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from linli_kit import context
from linli_kit.backoff import Backoff
from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.events.catalogue import InvalidEvent
from linli_kit.events.envelope import Event
from linli_kit.events.inbound import DeliveryConnection
from linli_kit.events.topology import Brokers, declare_service_queue
from linli_kit.metrics import EVENTS_HANDLED
from linli_kit.tables import UtcDateTime

log = logging.getLogger(__name__)

Handler = Callable[[Session, Event], None]
HEARTBEAT_SECONDS = 30
SQLITE_MAX_BATCH = 100

# SQLSTATE classes and codes that mean the database is unavailable, not that a statement failed:
# 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
# connections), 58 system error (I/O); 57P01-57P03 shutting down, crashed, not yet accepting.
_OUTAGE_SQLSTATE_CLASSES = {"08", "53", "58"}
_OUTAGE_SQLSTATES = {"57P01", "57P02", "57P03"}
# SQLite reports an unreachable database file by message only.
_SQLITE_OUTAGE_MESSAGES = ("unable to open database file", "disk i/o error", "database or disk is full")


def is_database_outage(exc: BaseException) -> bool:
    """Whether a database error means "the database is unavailable" (wait for it; not the message's
    fault) rather than "this work failed" (a deadlock, a lock or statement timeout, a serialization
    failure, SQLite's "database is locked": the batch failed, and a message that always causes one
    must end in the dead letters rather than block its queue)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
    elif isinstance(exc, psycopg.Error | sqlite3.Error):
        # Raised by the driver itself, not wrapped by SQLAlchemy: work done on the driver's own
        # connection, such as a COPY (notifications' bulk inserts), cut off mid-stream.
        orig = exc
    else:
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES or sqlstate in _OUTAGE_SQLSTATES
    if isinstance(orig, psycopg.Error):
        # Without a SQLSTATE there was no answer from the server at all: refused, reset, closed,
        # timed out connecting.
        return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
    if isinstance(orig, sqlite3.Error):
        return any(m in str(orig).lower() for m in _SQLITE_OUTAGE_MESSAGES)
    return False


def text_array_literal(values: Iterable[str]) -> str:
    """PostgreSQL's text form of an array of these strings (`{"a","b"}`, to CAST as text[] or any
    array type): one string for psycopg to send, where a list goes through its array dumper a
    Python step per element. Every element is quoted, so commas, braces, blanks and the word NULL
    stay values; quotes and backslashes are escaped."""
    values = list(values)
    if not values:
        return "{}"
    joined = '","'.join(values)
    if '"' in joined or "\\" in joined:
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + joined + '"}'


@dataclass(frozen=True)
class BatchHandler:
    """Handles several events of one type with one call, e.g. to insert all their effects at once.

    It gets the new (not yet handled) events in their order of arrival. Like a handler, it must do
    its work through the session it is given, and raise to fail the batch; the consumer then
    retries the events one by one, each in a call with a single event.

    Called like a handler, `(session, event)`, it handles that one event: a test or a tool handing
    events to a service's handlers one at a time need not know which kind each is.
    """

    handle: Callable[[Session, list[Event]], None]

    def __call__(self, session: Session, event: Event) -> None:
        self.handle(session, [event])


# What a service maps an event type to: a handler per event, or one per batch of events.
AnyHandler = Handler | BatchHandler


def batch_handler(handle: Callable[[Session, list[Event]], None]) -> BatchHandler:
    """Mark `handle(session, events)` as a batch handler, for the handlers mapping of a consumer."""
    return BatchHandler(handle)


@dataclass(slots=True)
class _Delivery:
    tag: int
    body: bytes
    event: Event | None = None
    outcome: str = "pending"  # ack | requeue | reject


class EventConsumer:
    def __init__(
        self,
        database: Database,
        inbox_table: Table,
        amqp_url: str,
        bus: BusNames,
        *,
        service: str,
        handlers: Mapping[str, Handler | BatchHandler],
        prefetch: int = 1000,
        batch_size: int = 500,
        delivery_limit: int = 5,
    ) -> None:
        self.database = database
        self.inbox = inbox_table
        self.amqp_url = amqp_url
        self.bus = bus
        self.service = service
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.batch_size = min(batch_size, SQLITE_MAX_BATCH) if database.is_sqlite else batch_size
        self.delivery_limit = delivery_limit
        self.ready = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{service}-handler")
        self._claim_statement: Any = None

    @property
    def routing_keys(self) -> list[str]:
        return sorted(self.handlers)

    def declare(self) -> None:
        """Declare the service's queue and bindings now (also done at every connection)."""
        conn, _params = Brokers(self.amqp_url, name=f"{self.service}-declare").connect()
        try:
            declare_service_queue(
                conn.channel(), self.bus, self.service, self.routing_keys, delivery_limit=self.delivery_limit
            )
        finally:
            conn.close()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, reconnecting with back-off whenever the broker goes away."""
        backoff = Backoff()
        # DeliveryConnection: deliveries decoded in fewer Python steps on the connection's thread,
        # which shares the GIL with the batch thread (see linli_kit.events.inbound).
        brokers = Brokers(
            self.amqp_url, heartbeat=HEARTBEAT_SECONDS, name=f"{self.service}-consumer", impl_class=DeliveryConnection
        )
        while not stop.is_set():
            try:
                self._consume(stop, backoff, brokers)
            except (AMQPError, OSError) as exc:
                log.warning(
                    "broker connection lost",
                    extra={"service": self.service, "error": repr(exc), "brokers": brokers.describe()},
                )
            except Exception:
                # Unacked messages come back to the next connection; the inbox keeps them single.
                log.exception("consumer failed, starting again", extra={"service": self.service})
            finally:
                self.ready.clear()
                # A connection that ended other than by `stop`: the next attempt starts with another
                # node of the cluster, if there is one.
                if not stop.is_set():
                    brokers.lost()
            if not stop.is_set():
                stop.wait(backoff.next())
        self._executor.shutdown(wait=True)

    def _consume(self, stop: threading.Event, backoff: Backoff, brokers: Brokers) -> None:
        conn, _params = brokers.connect()
        try:
            channel = conn.channel()
            queue = declare_service_queue(
                channel, self.bus, self.service, self.routing_keys, delivery_limit=self.delivery_limit
            )
            channel.basic_qos(prefetch_count=self.prefetch)
            link = _Link(self, conn, channel, stop)
            channel.basic_consume(queue, on_message_callback=link.on_message)
            self.ready.set()
            backoff.reset()
            link.run()
        finally:
            if conn.is_open:
                try:
                    conn.close()
                except AMQPError:
                    pass

    # --- one batch, on the helper thread ----------------------------------------------------------
    def _apply(self, deliveries: list[_Delivery], stop: threading.Event) -> None:
        """Handle in one transaction; on failure, fall back to one transaction per message."""
        backoff = Backoff(0.1, 10.0)
        while True:
            try:
                if len(deliveries) > 1:
                    try:
                        self._handle_in_one_transaction(deliveries)
                        for d in deliveries:
                            d.outcome = "ack"
                        return
                    except _DatabaseOutage:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a handler's or the database's refusal
                        log.info(
                            "batch failed, handling one by one", extra={"service": self.service, "error": repr(exc)}
                        )
                for d in deliveries:
                    if d.outcome != "pending":
                        continue
                    try:
                        self._handle_in_one_transaction([d])
                        d.outcome = "ack"
                    except _DatabaseOutage:
                        raise
                    except Exception:
                        log.exception(
                            "handler failed",
                            extra={"service": self.service, "event_id": d.event.id, "event_type": d.event.type},
                        )
                        d.outcome = "requeue"
                return
            except _DatabaseOutage as exc:
                if stop.is_set():
                    raise _Abandoned() from exc
                delay = backoff.next()
                log.warning(
                    "database unavailable, retrying batch",
                    extra={"service": self.service, "error": repr(exc), "retry_in": round(delay, 2)},
                )
                stop.wait(delay)

    def _handle_in_one_transaction(self, deliveries: list[_Delivery]) -> None:
        session = self.database.session()
        try:
            first: dict[str, _Delivery] = {}
            for d in deliveries:
                first.setdefault(d.event.id, d)
            claimed = self._claim(session, {event_id: d.event.type for event_id, d in first.items()})
            self._run_handlers(session, [d.event for event_id, d in first.items() if event_id in claimed])
            session.commit()
        except DBAPIError as exc:
            _rollback_quietly(session)
            if is_database_outage(exc):
                raise _DatabaseOutage(repr(exc)) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _claim(self, session: Session, types: dict[str, str]) -> set[str]:
        """INSERT the inbox rows, skipping those already there; the ids inserted are the new events."""
        now = datetime.now(UTC)
        if self.database.is_sqlite:
            if self._claim_statement is None:
                self._claim_statement = (
                    sqlite.insert(self.inbox).on_conflict_do_nothing().returning(self.inbox.c.event_id)
                )
            rows = [
                {"consumer": self.service, "event_id": event_id, "event_type": event_type, "handled_at": now}
                for event_id, event_type in types.items()
            ]
            return set(session.scalars(self._claim_statement, rows))
        if self._claim_statement is None:
            # One statement of fixed text whatever the batch size: the ids and types go as two arrays,
            # each sent as one text literal (psycopg's array dumper takes a Python step per element).
            inbox = self.inbox
            incoming = (
                func.unnest(
                    cast(bindparam("event_ids", type_=String), ARRAY(String)),
                    cast(bindparam("event_types", type_=String), ARRAY(String)),
                )
                .table_valued("event_id", "event_type")
                .render_derived()
            )
            self._claim_statement = (
                postgresql.insert(inbox)
                .from_select(
                    ["consumer", "event_id", "event_type", "handled_at"],
                    select(
                        bindparam("consumer", type_=String),
                        incoming.c.event_id,
                        incoming.c.event_type,
                        bindparam("handled_at", type_=UtcDateTime()),
                    ),
                )
                .on_conflict_do_nothing()
                .returning(inbox.c.event_id)
            )
        params = {
            "consumer": self.service,
            "event_ids": text_array_literal(types),
            "event_types": text_array_literal(types.values()),
            "handled_at": now,
        }
        # The ids fetched at once: iterated, the result fetches a row at a time (twice the Python).
        return set(session.scalars(self._claim_statement, params).all())

    def _run_handlers(self, session: Session, events: list[Event]) -> None:
        i = 0
        while i < len(events):
            event = events[i]
            handler = self.handlers.get(event.type)
            if isinstance(handler, BatchHandler):
                j = i + 1
                # One call for the run, whatever types it mixes, as long as they share this handler
                # (a service may map several types to one BatchHandler, e.g. every snapshot of an
                # issue): the handler sees them in their order of arrival.
                while j < len(events) and self.handlers.get(events[j].type) is handler:
                    j += 1
                handler.handle(session, events[i:j])
                i = j
                continue
            if handler is not None:
                token = context.request_id.set(event.correlation_id)
                try:
                    handler(session, event)
                finally:
                    context.request_id.reset(token)
            i += 1


class _Link:
    """One connection's worth of consuming. Everything here runs on the connection's thread, except
    `_wake`, which the helper thread calls when a batch is done."""

    def __init__(self, consumer: EventConsumer, conn: Any, channel: Any, stop: threading.Event) -> None:
        self.consumer = consumer
        self.conn = conn
        self.channel = channel
        self.stop = stop
        self.pending: deque[_Delivery] = deque()
        self.inflight: list[_Delivery] | None = None

    def on_message(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        delivery = _Delivery(method.delivery_tag, body)
        try:
            delivery.event = Event.from_json(body)
        except InvalidEvent as exc:
            log.error("rejecting malformed event", extra={"service": self.consumer.service, "error": str(exc)})
            delivery.outcome = "reject"
        except Exception:  # noqa: BLE001 - a body that breaks the parser is malformed too
            log.exception("rejecting unparsable event", extra={"service": self.consumer.service})
            delivery.outcome = "reject"
        self.pending.append(delivery)

    def run(self) -> None:
        while True:
            if self.inflight is None:
                if self.stop.is_set():
                    return
                if self.pending:
                    self._start_batch()
                    continue
            # Returns as soon as a message arrives or the helper reports a batch done.
            self.conn.process_data_events(time_limit=0.2)

    def _start_batch(self) -> None:
        size = min(len(self.pending), self.consumer.batch_size)
        batch = [self.pending.popleft() for _ in range(size)]
        valid = [d for d in batch if d.event is not None]
        if not valid:
            self._settle(batch)
            return
        self.inflight = batch
        future = self.consumer._executor.submit(self.consumer._apply, valid, self.stop)
        future.add_done_callback(self._wake)

    def _wake(self, future: Future) -> None:
        try:
            self.conn.add_callback_threadsafe(functools.partial(self._on_batch_done, future))
        except Exception:  # noqa: BLE001 - the connection is gone: the batch stays unacked, comes back
            if future.exception() is not None and not isinstance(future.exception(), _Abandoned):
                log.error(
                    "batch failed after the connection closed",
                    extra={"service": self.consumer.service, "error": repr(future.exception())},
                )

    def _on_batch_done(self, future: Future) -> None:
        batch, self.inflight = self.inflight, None
        assert batch is not None
        try:
            future.result()
        except _Abandoned:
            # Stopping during a database outage: leave the batch unacked; the broker
            # redelivers it to the next consumer, whose inbox keeps it single.
            return
        except Exception:
            log.exception("batch failed unexpectedly", extra={"service": self.consumer.service})
            for d in batch:
                if d.outcome == "pending":
                    d.outcome = "requeue"
        self._settle(batch)

    def _settle(self, batch: list[_Delivery]) -> None:
        channel = self.channel
        last_ack = None
        for d in batch:
            if d.outcome == "ack":
                last_ack = d.tag
            elif d.outcome == "reject":
                channel.basic_nack(d.tag, requeue=False)
            else:
                channel.basic_nack(d.tag, requeue=True)
        if last_ack is not None:
            # Every earlier delivery is either in this batch, acked here, or settled already.
            channel.basic_ack(last_ack, multiple=True)
        for outcome, count in Counter(d.outcome for d in batch).items():
            EVENTS_HANDLED.labels(self.consumer.service, outcome).inc(count)


def _rollback_quietly(session: Session) -> None:
    """Roll back; if the connection is gone, the server has rolled back already."""
    try:
        session.rollback()
    except DBAPIError as exc:
        log.debug("rollback failed", extra={"error": repr(exc)})


class _DatabaseOutage(Exception):
    """The database is unavailable under the handler: retry, it is not the message's fault."""


class _Abandoned(Exception):
    """The worker is stopping while the batch could not be handled."""
