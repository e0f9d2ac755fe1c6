"""Exchanges and queues on the broker (DESIGN section 3). Declaring is idempotent: every process
declares what it uses at each (re)connection, so a fresh broker needs no set-up step."""

from __future__ import annotations

from collections.abc import Iterable

import pika
from pika.adapters.blocking_connection import BlockingChannel

from linli_kit.config import BusNames


def connection_parameters(amqp_url: str, *, heartbeat: int = 30, name: str = "linli") -> pika.URLParameters:
    params = pika.URLParameters(amqp_url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name}
    return params


def declare_exchanges(channel: BlockingChannel, bus: BusNames) -> None:
    channel.exchange_declare(bus.exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(bus.dead_letter_exchange, exchange_type="direct", durable=True)


def declare_service_queue(
    channel: BlockingChannel,
    bus: BusNames,
    service: str,
    routing_keys: Iterable[str],
    *,
    delivery_limit: int,
) -> str:
    """The service's quorum queue bound to the keys it handles, and its dead-letter queue."""
    declare_exchanges(channel, bus)
    queue = bus.queue(service)
    dead = bus.dead_letter_queue(service)
    channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(dead, bus.dead_letter_exchange, routing_key=queue)
    channel.queue_declare(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": bus.dead_letter_exchange,
            "x-dead-letter-routing-key": queue,
            # At-least-once dead-lettering: a message is removed from this queue only once the
            # dead-letter queue has confirmed it (needs reject-publish overflow).
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    for key in sorted(set(routing_keys)):
        channel.queue_bind(queue, bus.exchange, routing_key=key)
    return queue
