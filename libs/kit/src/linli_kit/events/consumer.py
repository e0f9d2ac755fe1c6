"""The idempotent consumer: handler effects and the inbox row commit together; the ack follows the commit.

Messages are taken in batches (bounded by the prefetch) and a batch is handled in one transaction,
so the database sees one commit per batch instead of one per event. If the batch fails, its
messages are handled one by one so that one bad message cannot hold back the good ones:

- an event whose id is already in the inbox is acked and skipped (redelivery, duplicate publish);
- an envelope that does not parse or match the catalogue is rejected at once (dead-lettered):
  retrying cannot fix it;
- a handler error is nacked with requeue; the quorum queue counts deliveries and dead-letters the
  message past the delivery limit, so it never blocks the queue;
- a database outage (OperationalError) is not the message's fault: the batch is retried in place
  with back-off, without spending deliveries, until the database answers again.

Handlers run on a helper thread while the connection's thread keeps serving heartbeats.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
from pika.exceptions import AMQPError
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from linli_kit import context
from linli_kit.backoff import Backoff
from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.events.catalogue import InvalidEvent
from linli_kit.events.envelope import Event
from linli_kit.events.topology import connection_parameters, declare_service_queue
from linli_kit.metrics import EVENTS_HANDLED

log = logging.getLogger(__name__)

Handler = Callable[[Session, Event], None]
HEARTBEAT_SECONDS = 30


@dataclass
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
        handlers: dict[str, Handler],
        prefetch: int = 500,
        batch_size: int = 200,
        delivery_limit: int = 5,
    ) -> None:
        self.database = database
        self.inbox = inbox_table
        self.amqp_url = amqp_url
        self.bus = bus
        self.service = service
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.delivery_limit = delivery_limit
        self.ready = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{service}-handler")

    @property
    def routing_keys(self) -> list[str]:
        return sorted(self.handlers)

    def declare(self) -> None:
        """Declare the service's queue and bindings now (also done at every connection)."""
        conn = pika.BlockingConnection(connection_parameters(self.amqp_url, name=f"{self.service}-declare"))
        try:
            declare_service_queue(
                conn.channel(), self.bus, self.service, self.routing_keys, delivery_limit=self.delivery_limit
            )
        finally:
            conn.close()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, reconnecting with back-off whenever the broker goes away."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                self._consume(stop, backoff)
            except (AMQPError, OSError) as exc:
                log.warning("broker connection lost", extra={"service": self.service, "error": repr(exc)})
            finally:
                self.ready.clear()
            if not stop.is_set():
                stop.wait(backoff.next())
        self._executor.shutdown(wait=True)

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        params = connection_parameters(self.amqp_url, heartbeat=HEARTBEAT_SECONDS, name=f"{self.service}-consumer")
        conn = pika.BlockingConnection(params)
        try:
            channel = conn.channel()
            queue = declare_service_queue(
                channel, self.bus, self.service, self.routing_keys, delivery_limit=self.delivery_limit
            )
            channel.basic_qos(prefetch_count=self.prefetch)
            pending: list[_Delivery] = []

            def on_message(_ch: Any, method: Any, _props: Any, body: bytes) -> None:
                pending.append(_Delivery(method.delivery_tag, body))

            channel.basic_consume(queue, on_message_callback=on_message)
            self.ready.set()
            backoff.reset()
            while not stop.is_set():
                conn.process_data_events(time_limit=0 if pending else 0.2)
                while pending and not stop.is_set():
                    batch, pending[:] = pending[: self.batch_size], pending[self.batch_size :]
                    self._handle_batch(conn, channel, batch, stop)
        finally:
            if conn.is_open:
                try:
                    conn.close()
                except AMQPError:
                    pass

    # --- one batch ---------------------------------------------------------------------------
    def _handle_batch(self, conn: Any, channel: Any, batch: list[_Delivery], stop: threading.Event) -> None:
        for delivery in batch:
            try:
                delivery.event = Event.from_json(delivery.body)
            except InvalidEvent as exc:
                log.error("rejecting malformed event", extra={"service": self.service, "error": str(exc)})
                delivery.outcome = "reject"
        valid = [d for d in batch if d.event is not None]
        if valid:
            try:
                self._run_in_background(conn, lambda: self._apply(valid, stop), stop)
            except _Abandoned:
                # Stopping during a database outage: leave the batch unacked; the broker
                # redelivers it to the next consumer, whose inbox check keeps it single.
                return
        self._settle(channel, batch)

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
                    except OperationalError:
                        raise
                    except Exception:
                        log.info("batch failed, handling one by one", extra={"service": self.service})
                for d in deliveries:
                    if d.outcome != "pending":
                        continue
                    try:
                        self._handle_in_one_transaction([d])
                        d.outcome = "ack"
                    except OperationalError:
                        raise
                    except Exception:
                        log.exception(
                            "handler failed",
                            extra={"service": self.service, "event_id": d.event.id, "event_type": d.event.type},
                        )
                        d.outcome = "requeue"
                return
            except (OperationalError, _Disconnected) as exc:
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
            ids = [d.event.id for d in deliveries]
            seen = set(
                session.scalars(
                    select(self.inbox.c.event_id).where(
                        self.inbox.c.consumer == self.service, self.inbox.c.event_id.in_(ids)
                    )
                )
            )
            rows = []
            now = datetime.now(UTC)
            for d in deliveries:
                event = d.event
                if event.id in seen:
                    continue
                seen.add(event.id)
                handler = self.handlers.get(event.type)
                token = context.request_id.set(event.correlation_id)
                try:
                    if handler is not None:
                        handler(session, event)
                finally:
                    context.request_id.reset(token)
                rows.append(
                    {"consumer": self.service, "event_id": event.id, "event_type": event.type, "handled_at": now}
                )
            if rows:
                session.execute(insert(self.inbox), rows)
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated:
                raise _Disconnected(str(exc)) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _run_in_background(self, conn: Any, work: Callable[[], None], stop: threading.Event) -> None:
        # Keep the connection alive (heartbeats) while a slow handler or a database outage lasts.
        future = self._executor.submit(work)
        while True:
            done, _ = wait([future], timeout=HEARTBEAT_SECONDS / 4)
            if done:
                future.result()
                return
            conn.process_data_events(time_limit=0)

    def _settle(self, channel: Any, batch: Iterable[_Delivery]) -> None:
        batch = list(batch)
        if all(d.outcome == "ack" for d in batch):
            channel.basic_ack(batch[-1].tag, multiple=True)
        else:
            for d in batch:
                if d.outcome == "ack":
                    channel.basic_ack(d.tag)
                elif d.outcome == "reject":
                    channel.basic_nack(d.tag, requeue=False)
                else:
                    channel.basic_nack(d.tag, requeue=True)
        for d in batch:
            EVENTS_HANDLED.labels(self.service, d.outcome).inc()


class _Disconnected(Exception):
    """The database connection broke under the handler: retry, it is not the message's fault."""


class _Abandoned(Exception):
    """The worker is stopping while the batch could not be handled."""
