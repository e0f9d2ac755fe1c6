"""Handing events to a service's handlers as the consumer does, without a broker: for tests that a
batch handler leaves the same effects as handling its events one by one (duplicates in one batch,
redelivery, mixed event types), in the consumer's own transactions with the inbox."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from sqlalchemy import Table

from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.events.consumer import AnyHandler, EventConsumer, _Delivery
from linli_kit.events.envelope import Event


def consume(
    database: Database,
    inbox: Table,
    handlers: Mapping[str, AnyHandler],
    events: Sequence[Event],
    *,
    service: str,
    one_by_one: bool = False,
    batch_size: int = 500,
) -> list[str]:
    """Deliver `events` in this order as the consumer's batches (of up to `batch_size`, fewer on
    SQLite as the consumer has it; or each event alone with `one_by_one`), through the consumer's
    own batch step: inbox claim, handlers, commit, and the one-by-one retry after a failed batch.
    Returns each delivery's outcome (ack | requeue)."""
    consumer = EventConsumer(
        database,
        inbox,
        "amqp://unused",  # never connected: only the batch step runs
        BusNames(),
        service=service,
        handlers=handlers,
        batch_size=batch_size,
    )
    deliveries = [_Delivery(tag, event.to_json().encode(), event) for tag, event in enumerate(events, start=1)]
    size = 1 if one_by_one else consumer.batch_size
    try:
        for start in range(0, len(deliveries), size):
            consumer._apply(deliveries[start : start + size], threading.Event())
    finally:
        consumer._executor.shutdown(wait=True)
    return [d.outcome for d in deliveries]
