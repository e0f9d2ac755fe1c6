"""The outbox relay: publishes outbox rows in batches and marks them only after the broker confirms.

A confirm round trip per message caps a publisher near 1,300 messages/s. The relay publishes a whole
batch, then takes the broker's (usually cumulative) confirms, so one round trip covers the batch.
Rows are claimed and marked with one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING` inside a transaction that stays open until the confirms arrive, so two relays of the same
service never publish the same row at once. The mark commits only after the broker has confirmed
the batch, and rows the broker refused (nack) are unmarked before that commit, so a row is
published, as anyone else sees it, only once its confirm is an ack. If the broker or the connection
fails mid-batch, the transaction rolls back and the rows go out again later: delivery is
at-least-once and consumers are idempotent.

While a full batch waits for its confirms, the relay already reads and publishes the next one (its
own transaction; SKIP LOCKED passes over the rows of the first), so the confirm round trip and the
database work overlap. Up to `batches_in_flight` batches are open at once (one on SQLite, which
has no row locks). When a batch comes back short the relay polls again soon, and backs off towards
`idle_seconds` while the outbox stays empty.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
from pika import spec
from pika.exceptions import AMQPError
from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from linli_kit.backoff import Backoff
from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.events.topology import connection_parameters, declare_exchanges
from linli_kit.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

PRUNE_CHUNK = 5000
PRUNE_INTERVAL = timedelta(minutes=10)


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
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.database = database
        self.table = outbox_table
        self.amqp_url = amqp_url
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.busy_poll_seconds = min(busy_poll_seconds, idle_seconds)
        # SQLite has no row locks: a second open batch would read the first one's rows again.
        self.batches_in_flight = 1 if database.is_sqlite else max(1, batches_in_flight)
        self.confirm_timeout = confirm_timeout
        self.retention = retention
        self.connected = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, reconnecting with back-off whenever the broker goes away."""
        backoff = Backoff()
        while not stop.is_set():
            link = None
            try:
                params = connection_parameters(self.amqp_url, name=f"{self.service}-relay")
                declare = pika.BlockingConnection(params)
                try:
                    declare_exchanges(declare.channel(), self.bus)
                finally:
                    declare.close()
                link = _RelayLink(self, params, stop)
                link.run()
                if link.published:
                    backoff.reset()
                if link.error is not None and not stop.is_set():
                    log.warning("relay connection lost", extra={"service": self.service, "error": str(link.error)})
            except (AMQPError, OSError) as exc:
                log.warning("broker unreachable for relay", extra={"service": self.service, "error": repr(exc)})
            except Exception:
                log.exception("relay failed, starting again", extra={"service": self.service})
            finally:
                if link is not None:
                    link.abandon_batches()  # rows still in flight go out again with the next link
                self.connected.clear()
            if not stop.is_set():
                stop.wait(backoff.next())

    def pending_count(self) -> int:
        from sqlalchemy import func

        with self.database.session() as session:
            return (
                session.scalar(select(func.count()).select_from(self.table).where(self.table.c.published_at.is_(None)))
                or 0
            )


class _Batch:
    """Outbox rows published together, in the transaction that holds their row locks."""

    __slots__ = ("session", "unconfirmed", "acked", "nacked", "full", "timer")

    def __init__(self, session: Session, full: bool) -> None:
        self.session: Session | None = session
        self.unconfirmed: OrderedDict[int, int] = OrderedDict()  # delivery tag -> outbox row id
        self.acked = 0
        self.nacked: list[int] = []
        self.full = full
        self.timer: Any = None


class _RelayLink:
    """One broker connection's worth of relaying, driven by pika's SelectConnection event loop."""

    def __init__(self, relay: OutboxRelay, params: pika.URLParameters, stop: threading.Event) -> None:
        self.relay = relay
        self.stop = stop
        self.error: Any = None
        self.published = 0
        self.channel: Any = None
        self.next_tag = 0
        self.batches: deque[_Batch] = deque()  # oldest first; delivery tags ascend across them
        self.poll_timer: Any = None
        self.poll_due = 0.0
        self.idle_delay = relay.busy_poll_seconds
        self.closing = False
        self.db_backoff = Backoff(0.1, 5.0)
        self.next_prune = datetime.min.replace(tzinfo=UTC)
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
        if not self.closing:
            self.error = reason
        conn.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
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
        table = self.relay.table
        session = None
        try:
            session = self.relay.database.session()
            # Claim and mark in one statement. The mark stays uncommitted (invisible to everyone
            # else, and undone by a rollback) until the broker has confirmed the batch.
            claim = (
                select(table.c.id)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.id)
                .limit(self.relay.batch_size)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = session.execute(
                update(table)
                .where(table.c.id.in_(claim))
                .values(published_at=datetime.now(UTC))
                .returning(table.c.id, table.c.event_id, table.c.event_type, table.c.payload, table.c.created_at)
            ).all()
        except SQLAlchemyError as exc:
            log.warning("outbox read failed", extra={"service": self.relay.service, "error": repr(exc)})
            _end(session, commit=False)
            self._schedule(self.db_backoff.next())
            return
        self.db_backoff.reset()
        if not rows:
            _end(session, commit=False)
            if not self.batches:
                self._maybe_prune()
                self._schedule(self.idle_delay)
                self.idle_delay = min(self.idle_delay * 2, self.relay.idle_seconds)
            return
        self.idle_delay = self.relay.busy_poll_seconds
        rows.sort(key=lambda r: r.id)  # RETURNING does not keep the subquery's order
        batch = _Batch(session, full=len(rows) == self.relay.batch_size)
        self.batches.append(batch)  # from here on, a failure rolls it back with the others
        exchange = self.relay.bus.exchange
        publish = self.channel.basic_publish
        for row in rows:
            envelope = _envelope_fields(row.payload)
            publish(
                exchange=exchange,
                routing_key=row.event_type,
                body=row.payload.encode(),
                properties=pika.BasicProperties(
                    message_id=row.event_id,
                    type=row.event_type,
                    timestamp=int(row.created_at.timestamp()),
                    content_type="application/json",
                    delivery_mode=2,
                    correlation_id=envelope.get("correlation_id"),
                    app_id=envelope.get("producer"),
                ),
            )
            self.next_tag += 1
            batch.unconfirmed[self.next_tag] = row.id
        self._coalesce_output()
        batch.timer = self.conn.ioloop.call_later(self.relay.confirm_timeout, self._on_confirm_timeout)
        if batch.full:
            # More rows are waiting: read and send them while this batch's confirms come back.
            self._schedule(0)

    def _coalesce_output(self) -> None:
        """pika queues every frame (three a message) as its own buffer and sends each with its own
        system call; join what a batch queued so it leaves in a few large writes. Relies on pika's
        transport keeping a deque of buffers; when it does not, this does nothing."""
        buffers = getattr(getattr(self.conn, "_transport", None), "_tx_buffers", None)
        if isinstance(buffers, deque) and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def _on_confirm(self, frame: Any) -> None:
        try:
            self._confirmed(frame.method)
        except Exception as exc:  # noqa: BLE001 - never let a callback kill the event loop
            self._fail(exc)

    def _confirmed(self, method: Any) -> None:
        is_ack = isinstance(method, spec.Basic.Ack)
        tag = method.delivery_tag
        for batch in self.batches:
            unconfirmed = batch.unconfirmed
            if method.multiple:
                while unconfirmed and next(iter(unconfirmed)) <= tag:
                    _settle(batch, unconfirmed.popitem(last=False)[1], is_ack)
                if unconfirmed:
                    break  # later batches hold higher tags
            else:
                row_id = unconfirmed.pop(tag, None)
                if row_id is not None:
                    _settle(batch, row_id, is_ack)
                    break
        while self.batches and not self.batches[0].unconfirmed:
            self._finish_batch(self.batches.popleft())
        for batch in [b for b in self.batches if not b.unconfirmed]:
            self.batches.remove(batch)
            self._finish_batch(batch)

    def _finish_batch(self, batch: _Batch) -> None:
        if batch.timer is not None:
            self.conn.ioloop.remove_timeout(batch.timer)
            batch.timer = None
        table = self.relay.table
        try:
            if batch.nacked:
                # Refused by the broker: unmark them, they go out again with a later batch.
                batch.session.execute(update(table).where(table.c.id.in_(batch.nacked)).values(published_at=None))
            _end(batch.session, commit=True)
            self.published += batch.acked
            EVENTS_PUBLISHED.labels(self.relay.service).inc(batch.acked)
        except SQLAlchemyError as exc:
            # The events did reach the broker; they will be sent again and deduplicated downstream.
            log.warning("marking outbox rows failed", extra={"service": self.relay.service, "error": repr(exc)})
            _end(batch.session, commit=False)
        batch.session = None
        if batch.nacked:
            log.warning("broker refused events", extra={"service": self.relay.service, "count": len(batch.nacked)})
            self._schedule(self.relay.idle_seconds)
        else:
            self._schedule(0 if batch.full else self.relay.busy_poll_seconds)

    def _on_confirm_timeout(self) -> None:
        log.warning("broker did not confirm in time", extra={"service": self.relay.service})
        self.error = TimeoutError("publisher confirms timed out")
        self.abandon_batches()
        self._close()

    def abandon_batches(self) -> None:
        while self.batches:
            batch = self.batches.popleft()
            if batch.timer is not None:
                self.conn.ioloop.remove_timeout(batch.timer)
            _end(batch.session, commit=False)

    def _maybe_prune(self) -> None:
        """Delete rows published longer ago than the retention, a bounded chunk at a time: this runs
        on the event loop's thread, which must not stall for long (heartbeats, confirms)."""
        now = datetime.now(UTC)
        if now < self.next_prune:
            return
        table = self.relay.table
        deleted = 0
        try:
            with self.relay.database.transaction() as session:
                doomed = (
                    select(table.c.id)
                    .where(table.c.published_at < now - self.relay.retention)
                    .limit(PRUNE_CHUNK)
                    .scalar_subquery()
                )
                deleted = session.execute(delete(table).where(table.c.id.in_(doomed))).rowcount or 0
        except SQLAlchemyError as exc:
            log.warning("outbox prune failed", extra={"service": self.relay.service, "error": repr(exc)})
        # More left: go on at the next idle moment; otherwise look again in a while.
        self.next_prune = now if deleted >= PRUNE_CHUNK else now + PRUNE_INTERVAL


def _envelope_fields(payload: str) -> dict[str, Any]:
    """The envelope, for its correlation id and producer; a row that is not one is still sent (the
    consumers dead-letter it) rather than blocking every row behind it."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        return {}
    return envelope if isinstance(envelope, dict) else {}


def _settle(batch: _Batch, row_id: int, is_ack: bool) -> None:
    if is_ack:
        batch.acked += 1
    else:
        batch.nacked.append(row_id)


def _end(session: Session | None, *, commit: bool) -> None:
    """Commit (raising on failure) or roll back (never raising: if the connection is gone, the
    server has rolled the transaction back already), and give the connection back."""
    if session is None:
        return
    try:
        if commit:
            session.commit()
        else:
            try:
                session.rollback()
            except SQLAlchemyError as exc:
                log.debug("rollback failed", extra={"error": repr(exc)})
    finally:
        session.close()
