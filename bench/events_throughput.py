"""Event bus throughput and latency, against bare pika on the same broker (DESIGN sections 3 and 7).

Run: `.venv/bin/python bench/events_throughput.py [--events N] [--rate R --seconds S]` (or `make bench`).

Measures, in one run on the local PostgreSQL and RabbitMQ:

1. ours, end to end: events committed to a producer database's outbox through a UnitOfWork ->
   OutboxRelay (its own process, like a service's worker) -> the broker's topic exchange -> the
   consuming service's quorum queue (declared by declare_service_queue) -> EventConsumer (another
   process) whose handler writes one effect row into a second database, with the inbox row, in
   one transaction.
   - throughput: N events are pre-filled in the outbox, then the relay is let go; the clock stops
     when every effect row is committed;
   - latency: with the pipeline running, events are committed one per transaction at a fixed rate;
     latency = the consumer's commit of the effect minus the event's occurred_at.
2. bare pika on the same broker, publisher and consumer in their own processes: persistent
   messages to a quorum queue, a prefetching consumer acking each message; once with a publisher
   confirm per message (BlockingChannel.confirm_delivery), once without confirms (the ceiling).

It prints figures, never asserts on time. Each run uses its own databases, exchanges and queues and
removes them at the end.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

import pika
from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, event, func, insert, select, text
from sqlalchemy.orm import Session

from linli_kit.config import BusNames, load_settings
from linli_kit.db import Database
from linli_kit.events import Event, new_event
from linli_kit.events.consumer import EventConsumer, batch_handler
from linli_kit.events.outbox import Outbox
from linli_kit.events.relay import OutboxRelay
from linli_kit.events.topology import declare_exchanges, declare_service_queue
from linli_kit.tables import add_messaging_tables
from linli_kit.testing import infra
from linli_kit.testing.probe import PROBE_EVENT  # registers the probe event type in the catalogue
from linli_kit.uow import UnitOfWork

TARGET_EVENTS_PER_SECOND = 5_000
TARGET_P99_MS = 50.0
TARGET_RATE = 200
PHASE_TIMEOUT = 120.0
SERVICE = "bench"  # the consuming service; its queue is <prefix>bench.events
PRODUCER = "benchsrc"

metadata = MetaData()
messaging = add_messaging_tables(metadata)
effects = Table(
    "bench_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("n", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)
# Written once, at the end of the run, by the consumer process: when each effect committed.
commits = Table(
    "bench_commits",
    metadata,
    Column("n", Integer, primary_key=True),
    Column("occurred", Float, nullable=False),
    Column("committed", Float, nullable=False),
)


# --- the consuming service's process ---------------------------------------------------------------
_committed: list[tuple[int, float, float]] = []
_handled = None  # multiprocessing.Value: effects committed so far


def record_effect(session: Session, evt: Event) -> None:
    """The usual handler: one effect row per event, in the consumer's transaction."""
    n = int(evt.data["n"])
    session.execute(insert(effects).values(event_id=evt.id, n=n, occurred_at=evt.occurred_at))
    session.info.setdefault("bench", []).append((n, evt.occurred_at.timestamp()))


def record_effects(session: Session, events: list[Event]) -> None:
    """The batch handler: the effect rows of every event of the batch in one INSERT."""
    rows = [{"event_id": e.id, "n": int(e.data["n"]), "occurred_at": e.occurred_at} for e in events]
    session.execute(insert(effects), rows)
    session.info.setdefault("bench", []).extend((row["n"], row["occurred_at"].timestamp()) for row in rows)


HANDLERS = {"per-event": lambda: record_effect, "batch": lambda: batch_handler(record_effects)}
LABELS = {
    "per-event": "ours, handler: one INSERT per event",
    "batch": "ours, batch handler: one INSERT per batch",
}


def _on_commit(session: Session) -> None:
    done = session.info.pop("bench", None)
    if done:
        now = time.time()
        _committed.extend((n, occurred, now) for n, occurred in done)
        with _handled.get_lock():
            _handled.value += len(done)


def _on_rollback(session: Session) -> None:
    session.info.pop("bench", None)


def consumer_process(db_url, amqp_url, bus, options, variant, handled, ready, stop, results) -> None:
    global _handled
    _quiet_logs()
    try:
        _handled = handled
        event.listen(Session, "after_commit", _on_commit)
        event.listen(Session, "after_rollback", _on_rollback)
        database = Database(db_url)
        consumer = EventConsumer(
            database,
            messaging.inbox,
            amqp_url,
            bus,
            service=SERVICE,
            handlers={PROBE_EVENT: HANDLERS[variant]()},
            prefetch=options["prefetch"],
            batch_size=options["consumer_batch_size"],
            delivery_limit=options["delivery_limit"],
        )
        local_stop = threading.Event()
        thread = threading.Thread(target=consumer.run, args=(local_stop,), daemon=True)
        cpu0 = time.process_time()
        thread.start()
        consumer.ready.wait(30)
        ready.set()
        stop.wait()
        local_stop.set()
        thread.join(30)
        cpu = time.process_time() - cpu0
        with database.transaction() as session:
            rows = [{"n": n, "occurred": o, "committed": c} for n, o, c in _committed]
            if rows:
                session.execute(insert(commits), rows)
        database.dispose()
        results.put(("consumer", {"cpu": cpu}))
    except BaseException:  # noqa: BLE001 - report, the parent prints it
        results.put(("consumer", {"error": traceback.format_exc()}))


# --- the producing service's relay process ----------------------------------------------------------
def relay_process(db_url, amqp_url, bus, options, relay_ready, go, stop, results) -> None:
    _quiet_logs()
    try:
        database = Database(db_url)
        database.ping()
        relay = OutboxRelay(
            database,
            messaging.outbox,
            amqp_url,
            bus,
            service=PRODUCER,
            batch_size=options["relay_batch_size"],
            idle_seconds=options["relay_idle_seconds"],
        )
        relay_ready.set()
        go.wait()
        local_stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(local_stop,), daemon=True)
        cpu0 = time.process_time()
        thread.start()
        stop.wait()
        local_stop.set()
        thread.join(30)
        results.put(("relay", {"cpu": time.process_time() - cpu0}))
    except BaseException:  # noqa: BLE001
        results.put(("relay", {"error": traceback.format_exc()}))


# --- bare pika ---------------------------------------------------------------------------------------
def pika_consumer_process(amqp_url, queue, count, prefetch, ready, results) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = conn.channel()
        channel.basic_qos(prefetch_count=prefetch)
        got = 0
        first = None

        def on_message(ch, method, _props, _body) -> None:
            nonlocal got, first
            if first is None:
                first = time.time()
            ch.basic_ack(method.delivery_tag)
            got += 1
            if got >= count:
                ch.stop_consuming()

        channel.basic_consume(queue, on_message_callback=on_message)
        ready.set()
        deadline = time.monotonic() + PHASE_TIMEOUT
        while got < count and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
        end = time.time()
        conn.close()
        results.put(("pika-consumer", {"got": got, "end": end, "first": first}))
    except BaseException:  # noqa: BLE001
        results.put(("pika-consumer", {"error": traceback.format_exc()}))


def pika_publisher_process(amqp_url, exchange, routing_key, count, confirms, body, go, results) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = conn.channel()
        if confirms:
            channel.confirm_delivery()
        go.wait()
        start = time.time()
        for i in range(count):
            channel.basic_publish(
                exchange,
                routing_key,
                body,
                pika.BasicProperties(
                    message_id=str(i),
                    type=routing_key,
                    timestamp=int(start),
                    content_type="application/json",
                    delivery_mode=2,
                ),
            )
        end = time.time()
        conn.close()
        results.put(("pika-publisher", {"start": start, "end": end}))
    except BaseException:  # noqa: BLE001
        results.put(("pika-publisher", {"error": traceback.format_exc()}))


# --- the run -----------------------------------------------------------------------------------------
@dataclass
class Ours:
    """One run of our pipeline, with one kind of handler."""

    label: str
    events: int = 0
    seconds: float | None = None
    relay_seconds: float | None = None
    effects: int = 0
    relay_cpu: float | None = None
    consumer_cpu: float | None = None
    latency_events: int = 0
    latency_received: int = 0
    latency_achieved_rate: float | None = None
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Figures:
    ours: dict[str, Ours] = field(default_factory=dict)
    pika: dict[str, tuple[int, float | None, float | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    settings: dict[str, float] = field(default_factory=dict)
    load_before: float | None = None


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(processName)s %(name)s: %(message)s")


def _collect(results, names: set[str], timeout: float, figures: Figures) -> dict[str, dict]:
    got: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while names - set(got) and time.monotonic() < deadline:
        try:
            name, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty
            break
        if "error" in value:
            figures.problems.append(f"{name} failed:\n{value['error']}")
        got[name] = value
    for missing in names - set(got):
        figures.problems.append(f"{missing} did not report back")
    return got


def _write_events(database: Database, numbers: range, per_transaction: int) -> None:
    outbox = Outbox(messaging.outbox)
    numbers = list(numbers)
    for start in range(0, len(numbers), per_transaction):
        uow = UnitOfWork(database, outbox)
        with uow:
            uow.publish(
                *(new_event(PROBE_EVENT, {"n": n}, producer=PRODUCER) for n in numbers[start : start + per_transaction])
            )
            uow.commit()


def _pending(database: Database) -> int:
    outbox = messaging.outbox
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))) or 0


def _wait_for(value, target: int, timeout: float) -> float | None:
    """Seconds until the shared counter reached `target`, polled every 2 ms; None on time-out."""
    start = time.time()
    deadline = start + timeout
    while value.value < target:
        if time.time() > deadline:
            return None
        time.sleep(0.002)
    return time.time() - start


def run_ours(args, figures: Figures, variant: str, databases, amqp_url: str, bus: BusNames) -> None:
    ours = figures.ours[variant] = Ours(LABELS[variant])
    producer = Database(databases.create(f"producer_{variant.replace('-', '_')}"))
    consumer_db = Database(databases.create(f"consumer_{variant.replace('-', '_')}"))
    try:
        metadata.create_all(producer.engine)
        metadata.create_all(consumer_db.engine)
        _run_ours(args, figures, ours, variant, producer, consumer_db, amqp_url, bus)
    finally:
        producer.dispose()
        consumer_db.dispose()


def _run_ours(
    args, figures, ours: Ours, variant: str, producer: Database, consumer_db: Database, amqp_url, bus
) -> None:
    settings = load_settings(SERVICE)
    options = {
        "prefetch": settings.prefetch,
        "consumer_batch_size": settings.consumer_batch_size,
        "delivery_limit": settings.delivery_limit,
        "relay_batch_size": settings.relay_batch_size,
        "relay_idle_seconds": settings.relay_idle_seconds,
    }
    figures.settings = options
    ctx = mp.get_context("spawn")
    handled = ctx.Value("q", 0)
    ready, relay_ready, go, stop = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    results = ctx.Queue()

    print(f"{ours.label}: pre-filling the outbox with {args.events:,} events ...", flush=True)
    _write_events(producer, range(args.events), per_transaction=1000)

    procs = [
        ctx.Process(
            target=consumer_process,
            args=(consumer_db.url, amqp_url, bus, options, variant, handled, ready, stop, results),
            name="consumer",
        ),
        ctx.Process(
            target=relay_process,
            args=(producer.url, amqp_url, bus, options, relay_ready, go, stop, results),
            name="relay",
        ),
    ]
    for p in procs:
        p.start()
    try:
        if not (ready.wait(60) and relay_ready.wait(60)):
            figures.problems.append("the consumer or the relay never became ready")
            return
        print(f"{ours.label}: throughput, relay let go ...", flush=True)
        ours.events = args.events
        start = time.time()
        go.set()
        relay_done = None
        deadline = start + PHASE_TIMEOUT
        while handled.value < args.events and time.time() < deadline:
            if relay_done is None and _pending(producer) == 0:
                relay_done = time.time() - start
            time.sleep(0.002 if relay_done is not None else 0.05)
        if handled.value >= args.events:
            ours.seconds = time.time() - start
        else:
            figures.problems.append(f"{variant}: throughput phase timed out: {handled.value} of {args.events} effects")
        ours.relay_seconds = relay_done if relay_done is not None else ours.seconds

        # Latency: the pipeline keeps running; events are committed one per transaction at a fixed rate.
        time.sleep(1.0)
        total = round(args.rate * args.seconds)
        print(f"{ours.label}: latency, {total:,} events at {args.rate:g}/s ...", flush=True)
        ours.latency_events = total
        outbox = Outbox(messaging.outbox)
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            uow = UnitOfWork(producer, outbox)
            with uow:
                uow.publish(new_event(PROBE_EVENT, {"n": args.events + i}, producer=PRODUCER))
                uow.commit()
        ours.latency_achieved_rate = total / (time.perf_counter() - t0) if total else None
        if _wait_for(handled, args.events + total, 30) is None:
            figures.problems.append(
                f"{variant}: latency phase timed out: {handled.value - args.events} of {total} effects"
            )
    finally:
        go.set()
        stop.set()
        got = _collect(results, {"consumer", "relay"}, 60, figures)
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
    ours.relay_cpu = got.get("relay", {}).get("cpu")
    ours.consumer_cpu = got.get("consumer", {}).get("cpu")
    with consumer_db.session() as s:
        ours.effects = s.scalar(select(func.count(func.distinct(effects.c.n)))) or 0
        duplicates = (s.scalar(select(func.count()).select_from(effects)) or 0) - ours.effects
        if duplicates:
            figures.problems.append(f"{variant}: {duplicates} duplicate effect rows")
        rows = s.execute(select(commits.c.occurred, commits.c.committed).where(commits.c.n >= args.events)).all()
    ours.latency_received = len(rows)
    ours.latencies_ms = sorted((c - o) * 1000 for o, c in rows)
    if ours.effects != ours.events + ours.latency_events:
        figures.problems.append(f"{variant}: {ours.effects} effects for {ours.events + ours.latency_events} events")


def run_pika(args, figures: Figures, amqp_url: str, bus: BusNames, queue: str, body: bytes) -> None:
    ctx = mp.get_context("spawn")
    for label, confirms in (("confirms", True), ("no-confirms", False)):
        count = args.pika_events
        print(f"bare pika, {label}: {count:,} messages ...", flush=True)
        ready, go = ctx.Event(), ctx.Event()
        results = ctx.Queue()
        consumer = ctx.Process(
            target=pika_consumer_process, args=(amqp_url, queue, count, args.pika_prefetch, ready, results)
        )
        publisher = ctx.Process(
            target=pika_publisher_process,
            args=(amqp_url, bus.exchange, "pika.bench", count, confirms, body, go, results),
        )
        consumer.start()
        publisher.start()
        try:
            ready.wait(60)
            time.sleep(1.0)
            go.set()
            got = _collect(results, {"pika-consumer", "pika-publisher"}, PHASE_TIMEOUT + 30, figures)
        finally:
            for p in (consumer, publisher):
                p.join(10)
                if p.is_alive():
                    p.terminate()
        pub, con = got.get("pika-publisher", {}), got.get("pika-consumer", {})
        if "start" in pub and "end" in con and con.get("got") == count:
            figures.pika[label] = (count, con["end"] - pub["start"], pub["end"] - pub["start"])
        else:
            figures.pika[label] = (count, None, None)
            if con.get("got") is not None and con.get("got") != count:
                figures.problems.append(f"bare pika {label}: consumer got {con.get('got')} of {count}")


def _percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if seconds else None


def _fmt(value: float | None, spec: str = ",.0f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def report(args, figures: Figures, versions: dict[str, str]) -> None:
    pika_c = figures.pika.get("confirms", (0, None, None))
    pika_n = figures.pika.get("no-confirms", (0, None, None))
    pika_conf = _rate(pika_c[0], pika_c[1])
    pika_noconf = _rate(pika_n[0], pika_n[1])
    s = figures.settings
    width = 104
    line = "-" * width

    def row(label: str, count: int | str, seconds: float | None, rate: float | None) -> None:
        count = f"{count:,}" if isinstance(count, int) else count
        print(f"{label:<70}{count:>10}{_fmt(seconds, '.2f'):>10}{_fmt(rate):>12}")

    print()
    print(line)
    print(
        f"Linli event bus benchmark   {os.cpu_count()} CPUs   RabbitMQ {versions.get('rabbitmq', '?')}   "
        f"PostgreSQL {versions.get('postgres', '?')}"
    )
    load_after = os.getloadavg()[0]
    busy = max(figures.load_before or 0.0, load_after) > (os.cpu_count() or 1) * 0.75
    print(
        f"load average (1 min) before {_fmt(figures.load_before, '.1f')}, after {load_after:.1f}"
        + (
            "  -- the machine was busy with other work: every figure is skewed, compare only within this run"
            if busy
            else ""
        )
    )
    if s:
        print(
            f"settings: relay batch {s['relay_batch_size']}, relay idle {s['relay_idle_seconds']} s; "
            f"consumer prefetch {s['prefetch']}, batch {s['consumer_batch_size']}"
        )
    print(line)
    print(f"{'throughput':<70}{'messages':>10}{'seconds':>10}{'msgs/s':>12}")
    for ours in figures.ours.values():
        row(ours.label, ours.events, ours.seconds, _rate(ours.events, ours.seconds))
        row(
            "  outbox empty (everything published and confirmed) after",
            "",
            ours.relay_seconds,
            _rate(ours.events, ours.relay_seconds),
        )
        if ours.relay_cpu is not None and ours.consumer_cpu is not None:
            print(
                f"  CPU, throughput and latency runs: relay process {ours.relay_cpu:.1f} s, "
                f"consumer process {ours.consumer_cpu:.1f} s"
            )
    row("bare pika: confirm per message, persistent, ack per message", pika_c[0], pika_c[1], pika_conf)
    row("  publisher alone", "", pika_c[2], _rate(pika_c[0], pika_c[2]))
    row("bare pika: no confirms, persistent, ack per message (ceiling)", pika_n[0], pika_n[1], pika_noconf)
    row("  publisher alone", "", pika_n[2], _rate(pika_n[0], pika_n[2]))
    print(line)
    print("ratio to bare pika                                      with confirms   without confirms (ceiling)")
    for ours in figures.ours.values():
        rate = _rate(ours.events, ours.seconds)
        ratio = rate / pika_conf if rate and pika_conf else None
        ceiling = rate / pika_noconf if rate and pika_noconf else None
        print(f"  {ours.label:<54}{_fmt(ratio, '.2f', 'x'):>13}{_fmt(ceiling, '.2f', 'x'):>19}")
    print(line)
    print(f"latency at {args.rate:g} events/s for {args.seconds:g} s, one event per producer transaction:")
    for ours in figures.ours.values():
        lat = ours.latencies_ms
        print(
            f"  {ours.label:<54}p50 {_fmt(_percentile(lat, 50), '.1f', ' ms')}, "
            f"p99 {_fmt(_percentile(lat, 99), '.1f', ' ms')}, max {_fmt(lat[-1] if lat else None, '.1f', ' ms')}  "
            f"({ours.latency_received:,} of {ours.latency_events:,} events, produced at "
            f"{_fmt(ours.latency_achieved_rate, '.0f')}/s)"
        )
    print(line)
    print(
        f"DESIGN section 7 targets: >= {TARGET_EVENTS_PER_SECOND:,} events/s end to end; "
        f"p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE} events/s"
    )
    for ours in figures.ours.values():
        rate = _rate(ours.events, ours.seconds)
        p99 = _percentile(ours.latencies_ms, 99)
        verdict = "n/a" if rate is None else ("meets" if rate >= TARGET_EVENTS_PER_SECOND else "BELOW")
        if args.rate != TARGET_RATE:
            latency = f"p99 not measured at {TARGET_RATE}/s"
        else:
            latency = "n/a" if p99 is None else ("meets" if p99 <= TARGET_P99_MS else "ABOVE")
            latency = f"p99 {_fmt(p99, '.1f', ' ms')} -> {latency}"
        print(f"  {ours.label:<54}{_fmt(rate)} events/s -> {verdict}; {latency}")
    for problem in figures.problems:
        print(f"PROBLEM: {problem}")
    print(line, flush=True)


def _versions(admin_url: str, amqp_url: str) -> dict[str, str]:
    versions = {}
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        versions["rabbitmq"] = str(conn._impl.server_properties.get("version", "?"))
        conn.close()
    except Exception:  # noqa: BLE001 - only for the heading
        pass
    try:
        database = Database(admin_url)
        with database.engine.connect() as c:
            versions["postgres"] = str(c.execute(text("SHOW server_version")).scalar()).split()[0]
        database.dispose()
    except Exception:  # noqa: BLE001
        pass
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events for the throughput runs (default 20000)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="events/s for the latency run (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run (default 10)")
    parser.add_argument(
        "--pika-events", type=int, default=10_000, help="messages for each bare pika run (default 10000)"
    )
    parser.add_argument("--pika-prefetch", type=int, default=None, help="bare pika prefetch (default: ours)")
    parser.add_argument("--skip-pika", action="store_true", help="measure our pipeline only")
    parser.add_argument(
        "--handlers",
        nargs="+",
        choices=sorted(HANDLERS),
        default=["per-event", "batch"],
        help="which consumer handlers to run ours with (default both)",
    )
    args = parser.parse_args(argv)
    _quiet_logs()

    admin_url, pg_container = infra.find_postgres()
    amqp_url, mq_container = infra.find_rabbitmq()
    run_id = infra.new_run_id()
    if args.pika_prefetch is None:
        args.pika_prefetch = load_settings(SERVICE).prefetch
    print(f"bench run {run_id}: PostgreSQL {admin_url.split('@')[-1]}, RabbitMQ {amqp_url.split('@')[-1]}")
    bus = BusNames(
        exchange=f"bench.{run_id}.events",
        dead_letter_exchange=f"bench.{run_id}.dead",
        queue_prefix=f"bench.{run_id}.",
    )
    pika_queue = f"bench.{run_id}.pika"
    databases = infra.PostgresDatabases(admin_url, f"bench_{run_id}")
    figures = Figures(load_before=os.getloadavg()[0])
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            channel = conn.channel()
            declare_service_queue(
                channel, bus, SERVICE, [PROBE_EVENT], delivery_limit=load_settings(SERVICE).delivery_limit
            )
            declare_exchanges(channel, bus)
            channel.queue_declare(pika_queue, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_bind(pika_queue, bus.exchange, routing_key="pika.bench")
        finally:
            conn.close()
        body = new_event(PROBE_EVENT, {"n": 1}, producer=PRODUCER).to_json().encode()

        for variant in args.handlers:
            run_ours(args, figures, variant, databases, amqp_url, bus)
        if not args.skip_pika:
            run_pika(args, figures, amqp_url, bus, pika_queue, body)
        report(args, figures, _versions(admin_url, amqp_url))
    finally:
        try:
            databases.drop_all()
        except Exception as exc:  # noqa: BLE001
            print(f"could not drop the bench databases: {exc}", file=sys.stderr)
        try:
            infra.delete_bus(
                amqp_url,
                bus.exchange,
                bus.dead_letter_exchange,
                [bus.queue(SERVICE), bus.dead_letter_queue(SERVICE), pika_queue],
            )
        except Exception as exc:  # noqa: BLE001
            print(f"could not delete the bench exchanges and queues: {exc}", file=sys.stderr)
        for container in (pg_container, mq_container):
            if container is not None:
                container.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
