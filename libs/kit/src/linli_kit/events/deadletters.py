"""Inspecting and replaying a service's dead letters (`<service>.events.dead`), and the events no
queue was bound for (the unrouted queue, `<exchange>.unrouted`, see `topology`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pika
from pika.exceptions import UnroutableError

from linli_kit.config import BusNames
from linli_kit.events.topology import Brokers, declare_unrouted


@dataclass(frozen=True)
class DeadLetter:
    event_id: str | None
    event_type: str | None
    reason: str | None
    deaths: int
    body: str
    routing_key: str | None = None


def _describe(props: Any, body: bytes, routing_key: str | None = None) -> DeadLetter:
    deaths = (props.headers or {}).get("x-death") or []
    first = deaths[0] if deaths else {}
    reason = first.get("reason")
    event_id, event_type = props.message_id, props.type
    if event_id is None or event_type is None:
        # Published by something other than a relay: the envelope itself may still say.
        try:
            envelope = json.loads(body)
            event_id = event_id or envelope.get("id")
            event_type = event_type or envelope.get("type")
        except (ValueError, AttributeError):
            pass
    return DeadLetter(
        event_id=event_id,
        event_type=event_type,
        reason=reason.decode() if isinstance(reason, bytes) else reason,
        deaths=sum(int(d.get("count", 1)) for d in deaths),
        body=body.decode("utf-8", errors="replace"),
        routing_key=routing_key,
    )


def list_dead_letters(amqp_url: str, bus: BusNames, service: str, *, limit: int = 100) -> list[DeadLetter]:
    """Read without removing: the messages go back to the dead-letter queue when the channel closes."""
    return _peek(amqp_url, bus.dead_letter_queue(service), limit=limit, name=f"{service}-dead-letters")


def list_unrouted(amqp_url: str, bus: BusNames, *, limit: int = 100) -> list[DeadLetter]:
    """The events published while no queue was bound for their type, oldest first, without removing
    them. Their `reason` is "unrouted"."""
    letters = _peek(amqp_url, bus.unrouted_queue, limit=limit, name="unrouted-events", declare=bus)
    return [DeadLetter(**{**letter.__dict__, "reason": "unrouted"}) for letter in letters]


def _peek(amqp_url: str, queue: str, *, limit: int, name: str, declare: BusNames | None = None) -> list[DeadLetter]:
    conn, _params = Brokers(amqp_url, name=name).connect()
    try:
        channel = conn.channel()
        if declare is not None:
            declare_unrouted(channel, declare)  # so a broker that never saw a relay answers "none"
        found = []
        for _ in range(limit):
            method, props, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append(_describe(props, body, method.routing_key))
        return found
    finally:
        conn.close()


def replay_dead_letters(
    amqp_url: str,
    bus: BusNames,
    service: str,
    *,
    event_id: str | None = None,
    limit: int = 10_000,
) -> int:
    """Put dead letters back on the service's queue (all, or the one with `event_id`); returns how many.

    Each message is republished with a confirm before it is removed from the dead-letter queue,
    so a failure half-way loses nothing. `mandatory` makes a missing service queue an error rather
    than a silent drop (at worst a message is in both queues, and the inbox
    keeps its effect single).
    """
    conn, _params = Brokers(amqp_url, name=f"{service}-replay").connect()
    replayed = 0
    try:
        channel = conn.channel()
        queue = bus.queue(service)
        channel.confirm_delivery()
        for _ in range(limit):
            method, props, body = channel.basic_get(bus.dead_letter_queue(service), auto_ack=False)
            if method is None:
                break
            if event_id is not None and _describe(props, body).event_id != event_id:
                continue  # left unacked: returns to the dead-letter queue when the channel closes
            headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")}
            headers["linli-replayed"] = True
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=body,
                properties=pika.BasicProperties(
                    message_id=props.message_id,
                    type=props.type,
                    timestamp=props.timestamp,
                    content_type=props.content_type,
                    correlation_id=props.correlation_id,
                    app_id=props.app_id,
                    delivery_mode=2,
                    headers=headers,
                ),
                mandatory=True,
            )
            channel.basic_ack(method.delivery_tag)
            replayed += 1
        return replayed
    finally:
        conn.close()


def replay_unrouted(
    amqp_url: str,
    bus: BusNames,
    *,
    event_id: str | None = None,
    event_type: str | None = None,
    limit: int = 10_000,
) -> int:
    """Publish unrouted events (all, or those with `event_id` / `event_type`) to the events exchange
    again, with their own routing keys; returns how many. Bind the queues that want them first.

    Each one is published with a confirm before it is removed from the unrouted queue. One whose
    type still has no queue bound comes back to the unrouted queue (through the alternate exchange;
    or, on an exchange without one, it is returned and left where it was). The queue is read at
    most once through, so such events are not replayed in a circle.
    """
    conn, _params = Brokers(amqp_url, name="unrouted-replay").connect()
    replayed = 0
    try:
        channel = conn.channel()
        declare_unrouted(channel, bus)
        waiting = channel.queue_declare(bus.unrouted_queue, passive=True).method.message_count
        channel.confirm_delivery()
        for _ in range(min(limit, waiting)):
            method, props, body = channel.basic_get(bus.unrouted_queue, auto_ack=False)
            if method is None:
                break
            letter = _describe(props, body, method.routing_key)
            if (event_id is not None and letter.event_id != event_id) or (
                event_type is not None and letter.event_type != event_type
            ):
                continue  # left unacked: returns to the unrouted queue when the channel closes
            headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")}
            headers["linli-replayed"] = True
            try:
                channel.basic_publish(
                    exchange=bus.exchange,
                    routing_key=method.routing_key or letter.event_type or "",
                    body=body,
                    properties=pika.BasicProperties(
                        message_id=props.message_id,
                        type=props.type,
                        timestamp=props.timestamp,
                        content_type=props.content_type,
                        correlation_id=props.correlation_id,
                        app_id=props.app_id,
                        delivery_mode=2,
                        headers=headers,
                    ),
                    mandatory=True,
                )
            except UnroutableError:
                continue  # still nowhere to go: it stays in the unrouted queue
            channel.basic_ack(method.delivery_tag)
            replayed += 1
        return replayed
    finally:
        conn.close()


def to_json(letters: list[DeadLetter]) -> str:
    return json.dumps([letter.__dict__ for letter in letters], ensure_ascii=False, indent=2)
