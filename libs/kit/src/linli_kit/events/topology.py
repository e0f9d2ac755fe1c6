"""Exchanges and queues on the broker (DESIGN section 3). Declaring is idempotent: every process
declares what it uses at each (re)connection, so a fresh broker needs no set-up step.

Unroutable events are kept, not dropped: the events exchange is declared with an alternate exchange
(`<exchange>.unrouted`, fanout) whose durable quorum queue (`<exchange>.unrouted`) holds every event
no queue is bound for, e.g. an event only monitoring cares about, or one published before its
consumer first declared its queue. The broker confirms such an event once it is in that queue, so
the outbox never waits on it; `linli-events dead-letters list|replay --unrouted` inspects and
replays them. An exchange declared before this existed has no alternate exchange, and cannot be
given one by redeclaring (the broker refuses a changed argument, PRECONDITION_FAILED): the relays
then park unroutable events in the same queue themselves (they publish with `mandatory` and handle
the returns), and a warning says how to let the broker do it for every publisher.

`AMQP_URL` may name several brokers, the nodes of one cluster, separated by commas. Every process
connects to one of them (`Brokers`): the first that answers, in the order given, and, once a
connection is lost, the next one first. With quorum queues replicated on every node, whichever
node a process reaches serves it, and a node that stops costs a reconnection, not an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.select_connection import SelectConnection
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker

from linli_kit.config import BusNames, split_broker_urls

log = logging.getLogger(__name__)

ALTERNATE_EXCHANGE = "alternate-exchange"
PRECONDITION_FAILED = 406
UNROUTED_QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}
_warned_exchanges: set[str] = set()


def broker_urls(amqp_url: str) -> list[str]:
    """The brokers `AMQP_URL` names: one URL, or several (the nodes of one cluster) separated by
    commas, in the order they are tried."""
    return split_broker_urls(amqp_url)


def describe_brokers(amqp_url: str) -> str:
    """The brokers' addresses without credentials, for messages and logs."""
    return ", ".join(url.rpartition("@")[2] for url in broker_urls(amqp_url))


def connection_parameters(amqp_url: str, *, heartbeat: int = 30, name: str = "linli") -> pika.URLParameters:
    """The connection parameters of the first broker `amqp_url` names (see `Brokers` for all)."""
    return broker_parameters(amqp_url, heartbeat=heartbeat, name=name)[0]


def broker_parameters(amqp_url: str, *, heartbeat: int = 30, name: str = "linli") -> list[pika.URLParameters]:
    """The connection parameters of every broker `amqp_url` names, in order."""
    found = []
    for url in broker_urls(amqp_url) or [amqp_url]:
        params = pika.URLParameters(url)
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = 60
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.client_properties = {"connection_name": name}
        found.append(params)
    return found


class Brokers:
    """The brokers one process may connect to (the nodes of a cluster), tried in turn.

    `connect` tries them in the order given, starting with the one that worked last; `lost` says
    that connection went away, so the next attempt starts with the following broker: a node that
    stopped is not waited for when another can serve. One broker behaves as a plain connection."""

    def __init__(
        self,
        amqp_url: str,
        *,
        heartbeat: int = 30,
        name: str = "linli",
        socket_timeout: float = 5,
        impl_class: type[SelectConnection] | None = None,
    ) -> None:
        self.parameters = broker_parameters(amqp_url, heartbeat=heartbeat, name=name)
        for params in self.parameters:
            params.socket_timeout = socket_timeout
        # The asynchronous connection under each BlockingConnection: pika's SelectConnection, or
        # a subclass of it such as the consumers' `inbound.DeliveryConnection`.
        self.impl_class = impl_class
        self._first = 0
        self.current: pika.URLParameters | None = None

    def candidates(self) -> list[pika.URLParameters]:
        """Every broker, starting with the one to try first."""
        return self.parameters[self._first :] + self.parameters[: self._first]

    def connect(self) -> tuple[pika.BlockingConnection, pika.URLParameters]:
        """A connection to the first broker that answers, and its parameters; raise the last
        broker's error when none does."""
        error: AMQPConnectionError | None = None
        for params in self.candidates():
            try:
                if self.impl_class is None:
                    conn = pika.BlockingConnection(params)
                else:
                    conn = pika.BlockingConnection(params, _impl_class=self.impl_class)
            except AMQPConnectionError as exc:
                log.info("broker unreachable, trying the next", extra={"broker": _address(params), "error": repr(exc)})
                error = exc
                continue
            self.connected(params)
            return conn, params
        assert error is not None
        raise error

    def connected(self, params: pika.URLParameters) -> None:
        self.current = params
        self._first = self.parameters.index(params)

    def lost(self) -> None:
        """The current connection went away (or could not be made): try the next broker first."""
        if self.current is not None:
            self._first = (self.parameters.index(self.current) + 1) % len(self.parameters)
            self.current = None

    def describe(self) -> str:
        return ", ".join(_address(params) for params in self.parameters)


def _address(params: pika.ConnectionParameters) -> str:
    return f"{params.host}:{params.port}"


def declare_exchanges(channel: BlockingChannel, bus: BusNames) -> bool:
    """Declare the events exchange (with its alternate exchange and unrouted queue) and the
    dead-letter exchange. Returns whether the broker routes unroutable events to the unrouted queue
    itself; False for an events exchange declared without the alternate exchange (see module doc)."""
    declare_unrouted(channel, bus)
    channel.exchange_declare(bus.dead_letter_exchange, exchange_type="direct", durable=True)
    # A refused declaration closes its channel: try it on a channel of its own, so the caller's
    # channel stays usable either way.
    scratch = channel.connection.channel()
    try:
        scratch.exchange_declare(
            bus.exchange,
            exchange_type="topic",
            durable=True,
            arguments={ALTERNATE_EXCHANGE: bus.unrouted_exchange},
        )
        return True
    except ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        channel.exchange_declare(bus.exchange, passive=True)  # it exists; fails if not a usable one
        warn_no_alternate_exchange(bus, str(exc.reply_text))
        return False
    finally:
        if scratch.is_open:
            scratch.close()


def declare_unrouted(channel: BlockingChannel, bus: BusNames) -> None:
    channel.exchange_declare(bus.unrouted_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(bus.unrouted_queue, durable=True, arguments=UNROUTED_QUEUE_ARGUMENTS)
    channel.queue_bind(bus.unrouted_queue, bus.unrouted_exchange)


def warn_no_alternate_exchange(bus: BusNames, detail: str) -> None:
    """Say once per process, clearly, what an operator can do about a pre-existing exchange."""
    if bus.exchange in _warned_exchanges:
        return
    _warned_exchanges.add(bus.exchange)
    log.warning(
        "exchange %s was declared without an alternate exchange: the outbox relays park unroutable "
        "events in queue %s themselves, but other publishers' unroutable messages are dropped. To have "
        "the broker keep them all, stop the platform's processes, delete the exchange "
        "(rabbitmqctl delete_exchange %s; queues and their messages stay) and start them again: they "
        "redeclare it with its alternate exchange, and their bindings",
        bus.exchange,
        bus.unrouted_queue,
        bus.exchange,
        extra={"exchange": bus.exchange, "broker_said": detail},
    )


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
