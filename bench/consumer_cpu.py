"""CPU of an EventConsumer's connection thread per event (issue 15; linli_kit.events.inbound).

Run: `.venv/bin/python bench/consumer_cpu.py [--events N] [--runs R] [--pika]`

Publishes N envelopes of the notifications burst (bench/services_events.py: issues reported,
supported..., meetings scheduled, registrations confirmed), with the properties the relay gives
them, to a fresh service queue; then runs an EventConsumer over them with a batch handler that does
nothing, on a PostgreSQL database of its own (the inbox rows are written as in production), with
the garbage collector tuned as the notifications worker tunes it (`--gc-threshold`). It
prints the CPU time of the consumer's connection thread (receiving, decoding and parsing the
messages, settling the batches) per event: the work that competes with the batch thread for the
interpreter lock. `--pika` runs the consumer on pika's own SelectConnection instead of
`DeliveryConnection`, for comparison. The machine is shared: compare CPU, not time.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import pika
from pika.adapters.select_connection import SelectConnection

sys.path.insert(0, str(Path(__file__).parent))

from services_events import notifications_burst  # noqa: E402 - the bench's own module, by path

from linli_kit.config import BusNames  # noqa: E402
from linli_kit.db import Database  # noqa: E402
from linli_kit.events import consumer as consumer_module  # noqa: E402
from linli_kit.events.consumer import EventConsumer, batch_handler  # noqa: E402
from linli_kit.testing import infra, probe  # noqa: E402
from linli_kit.worker import tune_gc_for_batches  # noqa: E402


def publish(amqp_url: str, bus: BusNames, events: list) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()
    for event in events:
        channel.basic_publish(
            bus.exchange,
            event.type,
            event.to_json().encode(),
            pika.BasicProperties(
                message_id=event.id,
                type=event.type,
                timestamp=int(event.occurred_at.timestamp()),
                content_type="application/json",
                delivery_mode=2,
                correlation_id=event.correlation_id,
                app_id=event.producer,
            ),
        )
    conn.close()


def run_once(database: Database, amqp_url: str, bus: BusNames, events: list) -> tuple[float, float]:
    """(connection thread CPU seconds, wall seconds) from the consumer being ready to every event handled."""
    done = threading.Event()
    handled = 0

    def count(_session, batch) -> None:
        nonlocal handled
        handled += len(batch)
        if handled >= len({e.id for e in events}):
            done.set()

    handler = batch_handler(count)
    consumer = EventConsumer(
        database,
        probe.messaging.inbox,
        amqp_url,
        bus,
        service="notifications",
        handlers={t: handler for t in {e.type for e in events}},
        prefetch=2000,
    )
    consumer.declare()
    publish(amqp_url, bus, events)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    consumer.ready.wait(30)
    clock = time.pthread_getcpuclockid(thread.ident)
    cpu0, wall0 = time.clock_gettime(clock), time.perf_counter()
    if not done.wait(120):
        raise RuntimeError(f"only {handled} of {len(events)} events handled")
    cpu1, wall1 = time.clock_gettime(clock), time.perf_counter()
    stop.set()
    thread.join(30)
    return cpu1 - cpu0, wall1 - wall0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pika", action="store_true", help="pika's own SelectConnection")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=10_000,
        help="young generation, as the notifications worker sets it; 0: as is",
    )
    args = parser.parse_args()
    if args.gc_threshold:
        tune_gc_for_batches(args.gc_threshold)
    if args.pika:
        consumer_module.DeliveryConnection = SelectConnection
    admin_url, _ = infra.find_postgres()
    amqp_url, _ = infra.find_rabbitmq()
    run_id = infra.new_run_id()
    databases = infra.PostgresDatabases(admin_url, run_id)
    burst = notifications_burst(args.events, random.Random(15))
    events = list({e.id: e for e in burst.events}.values())[: args.events]  # no duplicates: all new
    try:
        for n in range(args.runs):
            database = Database(databases.create(f"cpu{n}"))
            probe.metadata.create_all(database.engine)
            bus = BusNames(
                exchange=f"t.{run_id}.{n}.events",
                dead_letter_exchange=f"t.{run_id}.{n}.dead",
                queue_prefix=f"t.{run_id}.{n}.",
            )
            try:
                cpu, wall = run_once(database, amqp_url, bus, events)
            finally:
                infra.delete_bus(
                    amqp_url,
                    bus.exchange,
                    bus.dead_letter_exchange,
                    [bus.queue("notifications"), bus.dead_letter_queue("notifications")],
                )
                database.dispose()
            print(
                f"{'pika' if args.pika else 'DeliveryConnection'}: {len(events)} events, connection thread "
                f"{1e6 * cpu / len(events):.1f} us/event CPU, {wall:.2f}s wall"
            )
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
