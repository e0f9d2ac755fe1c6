"""A tiny service used by the event-bus tests: one event type, a table of effects, a poison switch.

Run as a process (`python -m linli_kit.testing.probe DB_URL AMQP_URL EXCHANGE DEAD_EXCHANGE PREFIX`)
it consumes once and dies right after its first commit, before the ack: the crash the inbox must
survive.
"""

from __future__ import annotations

import os
import sys
import threading

import pika
from marshmallow import fields
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.orm import Session

from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.events import CATALOGUE, Event, EventSchema, new_event
from linli_kit.events.consumer import EventConsumer
from linli_kit.events.outbox import Outbox
from linli_kit.events.relay import OutboxRelay
from linli_kit.events.topology import declare_exchanges
from linli_kit.tables import add_messaging_tables
from linli_kit.uow import UnitOfWork

PROBE_EVENT = "probe.thing.happened"


class ThingHappened(EventSchema):
    n = fields.Integer(required=True)


CATALOGUE.register(PROBE_EVENT, 1, ThingHappened)

metadata = MetaData()
messaging = add_messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("n", Integer, nullable=False),
)
poison = Table("poison", metadata, Column("n", Integer, primary_key=True))


def record_effect(session: Session, evt: Event) -> None:
    """Fails while `poison` holds the event's number; otherwise records one effect row."""
    n = int(evt.data["n"])
    if session.scalar(select(poison.c.n).where(poison.c.n == n)) is not None:
        raise RuntimeError(f"poisoned event n={n}")
    session.execute(insert(effects).values(event_id=evt.id, n=n))


def make_consumer(database: Database, amqp_url: str, bus: BusNames, **options: object) -> EventConsumer:
    return EventConsumer(
        database, messaging.inbox, amqp_url, bus, service="probe", handlers={PROBE_EVENT: record_effect}, **options
    )


def _crash_after_first_commit() -> None:
    @event.listens_for(Session, "after_commit")
    def _die(_session: Session) -> None:
        os._exit(17)


def relay_for(database: Database, amqp_url: str, bus: BusNames, **options) -> OutboxRelay:
    return OutboxRelay(database, messaging.outbox, amqp_url, bus, service="probe", **options)


def write_events(database: Database, numbers: range | list[int]) -> list[str]:
    """Commit one probe event per number through a unit of work; returns their ids."""
    uow = UnitOfWork(database, Outbox(messaging.outbox))
    events = [new_event(PROBE_EVENT, {"n": n}, producer="probe") for n in numbers]
    with uow:
        uow.publish(*events)
        uow.commit()
    return [e.id for e in events]


class Tap:
    """A plain queue bound to every key of a test exchange: what actually reached the broker."""

    def __init__(self, amqp_url: str, bus: BusNames) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, bus.exchange, routing_key="#")

    def drain(self) -> list[pika.BasicProperties]:
        got = []
        while True:
            method, props, _body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return got
            got.append(props)

    def close(self) -> None:
        self.conn.close()


def publish_raw(amqp_url: str, bus: BusNames, body: bytes, routing_key: str = PROBE_EVENT) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(bus.exchange, routing_key, body, pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()


if __name__ == "__main__":
    db_url, amqp, exchange, dead, prefix = sys.argv[1:6]
    _crash_after_first_commit()
    consumer = make_consumer(
        Database(db_url), amqp, BusNames(exchange=exchange, dead_letter_exchange=dead, queue_prefix=prefix)
    )
    consumer.run(threading.Event())
