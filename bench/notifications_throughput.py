"""Notifications: planning and delivery rates, community broadcast fan-out, and event-to-delivery
latency (issue 7, issue 15 point 4; DESIGN section 7, "community broadcast": 50,000 recipients
planned and handed to the provider in <= 5 s).

Run: `.venv/bin/python bench/notifications_throughput.py [--recipients 50000] [--events 2000]
[--rate 50 --seconds 10] [--broadcast overlapped sequential] [--stages planning broadcast latency]`

On the local PostgreSQL and RabbitMQ (found like the tests find them), in one run:

1. planning: `--events` registration events handled by the service's rules (one recipient each),
   in consumer-sized batches, straight into the database: notifications planned per second;
2. delivery: those deliveries sent through the `log` provider, then a fresh set through a loopback
   HTTP server answering as Alibaba Cloud SMS does (SendSms, one call per message): deliveries per second;
3. broadcast: a community of `--recipients` residents; the broadcast is planned in bulk (on
   PostgreSQL set-based: a few INSERT ... SELECT over arrays per chunk of 5,000) and sent
   through the loopback Alibaba Cloud server in SendBatchSms calls of 100, at the provider's default
   call rate (config.py), by the worker's `drain()`: time to plan, time to hand every message to the
   provider, and the total. `overlapped` (the default) runs them as the worker does, the planner on
   its own thread committing chunk after chunk, each chunk's deliveries claimed as they are planned
   and handed to the worker's deliverer (as definition.py wires the broadcast timer), while the
   delivery loop hands out anything else that is due; `sequential` plans everything first, with no
   deliverer, and the delivery loop claims and sends it all after. The loopback provider runs in a
   process of its own (the real one is elsewhere), so its parsing does not take this process's
   interpreter lock;
4. latency: the service's worker (consumer, relay, delivery loop; as `linli-notifications worker`
   runs it) gets `accounts.code.requested` events at `--rate` per second; latency = the moment the
   delivery is seen recorded as sent minus the moment the event was published (p50, p99, max).

It prints figures and never asserts on time. It creates its own databases and bus names and
removes them at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pika
from sqlalchemy import column, func, insert, select, table

from linli_kit.config import BusNames, load_settings
from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.events.topology import declare_exchanges
from linli_kit.migrations import upgrade
from linli_kit.testing import infra
from linli_notifications.adapters.tables import broadcasts, deliveries, recipient_communities, recipients
from linli_notifications.config import build_providers, load_config
from linli_notifications.definition import definition
from linli_notifications.domain.clock import FixedClock
from linli_notifications.service_layer.broadcasts import plan_broadcasts
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.handlers import Rules

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Shanghai"
DAYTIME = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, outside quiet hours
TARGET_BROADCAST_SECONDS = 5.0


class LoopbackServer(ThreadingHTTPServer):
    # Up to DELIVERY_CONCURRENCY connections arrive at once; the default backlog of 5 would refuse some.
    request_queue_size = 128
    daemon_threads = True


class LoopbackAliyun:
    """Answers SendSms / SendBatchSms with Alibaba Cloud's success body; counts numbers handed over.

    It runs in a process of its own, as the real provider is elsewhere: parsing 500 requests of 100
    numbers on this process's threads would take the interpreter lock from the service it measures."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # a clean process: no inherited threads or pools
        self._numbers = context.Value("q", 0)
        self._calls = context.Value("q", 0)
        ready = context.Queue()
        self._process = context.Process(
            target=_serve_aliyun, args=(self._numbers, self._calls, ready), name="loopback-aliyun", daemon=True
        )
        self._process.start()
        self.url = f"http://127.0.0.1:{ready.get(timeout=30)}/"

    @property
    def numbers(self) -> int:
        return self._numbers.value

    @property
    def calls(self) -> int:
        return self._calls.value

    def close(self) -> None:
        self._process.terminate()
        self._process.join(10)

    def env(self) -> dict[str, str]:
        return {
            "SMS_PROVIDERS": "aliyun",
            "ALIYUN_ACCESS_KEY_ID": "bench",
            "ALIYUN_ACCESS_KEY_SECRET": "bench",
            "ALIYUN_SMS_ENDPOINT": self.url,
            "ALIYUN_RATE_PER_SECOND": "1000000",
            # The example file names a template code for every kind, as an operator's would.
            "ALIYUN_SMS_TEMPLATES": str(ROOT / "services/notifications/aliyun-templates.example.json"),
            "ALIYUN_SMS_SIGN_NAME": "邻里",
            "SMS_PER_PHONE_PER_MINUTE": "1000",
            "SMS_PER_PHONE_PER_HOUR": "1000",
            "SMS_PER_PHONE_PER_DAY": "1000",
        }


def _serve_aliyun(numbers, calls, ready) -> None:
    """The loopback provider's process (see LoopbackAliyun)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, as a real server sends them

        def log_message(self, *args):
            pass

        def do_POST(self):
            params = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            count = len(json.loads(params["PhoneNumberJson"])) if "PhoneNumberJson" in params else 1
            with numbers.get_lock():
                numbers.value += count
            with calls.get_lock():
                calls.value += 1
            body = json.dumps(
                {"Message": "OK", "RequestId": str(uuid.uuid4()), "BizId": "9006197469364984^0", "Code": "OK"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    ready.put(server.server_address[1])
    server.serve_forever()


def add_residents(database: Database, community: str, n: int, first_phone: int, clock: FixedClock) -> list[str]:
    people = [str(uuid.uuid4()) for _ in range(n)]
    with database.transaction() as s:
        for start in range(0, n, 5000):
            chunk = list(enumerate(people[start : start + 5000], start=start))
            s.execute(
                insert(recipients),
                [
                    {
                        "user_id": p,
                        "role": "resident",
                        "display_name": "x",
                        "phone": f"+86{first_phone + i}",
                        "locale": "zh-CN",
                        "active": True,
                        "revision": 1,
                        "updated_at": clock(),
                    }
                    for i, p in chunk
                ],
            )
            s.execute(
                insert(recipient_communities),
                [{"community_id": community, "user_id": p, "role": "resident"} for _, p in chunk],
            )
    return people


def count_state(database: Database, state: str) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(deliveries).where(deliveries.c.state == state))


def deliverer(database: Database, clock: FixedClock, env: dict[str, str]) -> Deliverer:
    config = load_config({"DELIVERY_CLAIM_BATCH": "2000", "LOG_RATE_PER_SECOND": "1000000", **env})
    return Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ)


def bench_planning_and_delivery(database: Database, events: int, aliyun: LoopbackAliyun) -> None:
    clock = FixedClock(DAYTIME)
    community = str(uuid.uuid4())
    people = add_residents(database, community, events, 13000000000, clock)
    handle = Rules(clock, TZ).handlers()["activities.registration.promoted"].handle
    made = [
        new_event(
            "activities.registration.promoted",
            {
                "registration_id": str(uuid.uuid4()),
                "activity_id": str(uuid.uuid4()),
                "community_id": community,
                "user_id": p,
                "title": "亲子运动会",
                "starts_at": (DAYTIME + timedelta(days=2)).isoformat(),
                "party_size": 1,
                "status": "confirmed",
            },
            producer="activities",
        )
        for p in people
    ]
    started = time.perf_counter()
    for start in range(0, len(made), 200):  # a consumer batch: one transaction, one batch-handler call
        with database.transaction() as s:
            handle(s, made[start : start + 200])
    elapsed = time.perf_counter() - started
    print(
        f"planning: {events} events -> {events} notifications, {count_state(database, 'pending')} deliveries "
        f"pending in {elapsed:.2f}s = {events / elapsed:,.0f} notifications/s"
    )

    pending = count_state(database, "pending")
    started = time.perf_counter()
    deliverer(database, clock, {"SMS_PROVIDERS": "log"}).drain()
    elapsed = time.perf_counter() - started
    print(f"delivery via log provider: {pending} deliveries in {elapsed:.2f}s = {pending / elapsed:,.0f}/s")

    with database.transaction() as s:
        s.execute(deliveries.update().values(state="pending", provider=None, sent_at=None))
    started = time.perf_counter()
    deliverer(database, clock, aliyun.env()).drain()
    elapsed = time.perf_counter() - started
    print(
        f"delivery via loopback Alibaba Cloud SendSms: {pending} deliveries in {elapsed:.2f}s = "
        f"{pending / elapsed:,.0f}/s ({aliyun.calls} calls)"
    )


def bench_broadcast(
    database: Database, recipients_count: int, aliyun: LoopbackAliyun, *, overlapped: bool = True
) -> None:
    clock = FixedClock(DAYTIME)
    community = str(uuid.uuid4())
    add_residents(database, community, recipients_count, 15000000000, clock)
    with database.transaction() as s:
        s.execute(
            insert(broadcasts).values(
                id=str(uuid.uuid4()),
                community_id=community,
                author_id=str(uuid.uuid4()),
                title="停水通知",
                body="明日9:00-17:00停水，请提前储水。",
                urgent=False,
                channels=["sms"],
                state="planning",
                planned_count=0,
                created_at=clock(),
            )
        )
    numbers_before, calls_before = aliyun.numbers, aliyun.calls
    # The provider's default call rate applies here (stage 2 lifts it to measure the service alone).
    env = {k: v for k, v in aliyun.env().items() if k != "ALIYUN_RATE_PER_SECOND"}
    sender = deliverer(database, clock, {**env, "DELIVERY_CLAIM_BATCH": "5000"})
    rate = sender.config.limits.provider_per_second["aliyun"]
    pg_before = _backends_cpu(database)
    cpu_before = time.process_time()
    started = time.perf_counter()
    if overlapped:
        # As the worker runs them: its broadcast timer plans chunk after chunk (each committed with
        # its cursor) on one thread while its delivery loop hands out what is committed on another.
        result: dict[str, object] = {}
        planning_done = threading.Event()

        def planner() -> None:
            try:
                result["planned"] = plan_broadcasts(database, clock, TZ, sender)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                result["error"] = exc
            finally:
                result["at"] = time.perf_counter()
                planning_done.set()

        threading.Thread(target=planner, name="bench-broadcast-planner", daemon=True).start()
        while not planning_done.is_set():
            if not sender.drain():
                planning_done.wait(0.02)  # the worker's delivery timer waits its interval likewise
        sender.drain()  # what the last chunk planned
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        planned, planned_at = result["planned"], result["at"]
    else:
        planned = plan_broadcasts(database, clock, TZ)  # the provider gets nothing before it is all planned
        planned_at = time.perf_counter()
        sender.drain()
    done = time.perf_counter()
    cpu = time.process_time() - cpu_before
    pg_after = _backends_cpu(database)
    pg_cpu = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
    handed = aliyun.numbers - numbers_before
    how = "planned and handed over at once (as the worker does)" if overlapped else "planned, then handed over"
    print(
        f"broadcast to {recipients_count:,} residents, {how}: planned {planned:,} in {planned_at - started:.2f}s; "
        f"handed {handed:,} numbers to the provider in {aliyun.calls - calls_before} SendBatchSms calls, the last "
        f"{done - planned_at:.2f}s after planning ended (at most {rate:.0f} calls/s); total {done - started:.2f}s "
        f"(target <= {TARGET_BROADCAST_SECONDS:.0f}s); CPU: this process {cpu:.2f}s (planner and delivery "
        f"loop, every thread), its PostgreSQL backends {pg_cpu:.2f}s"
    )


def _backends_cpu(database: Database) -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend serving `database`, read from /proc
    (the local server): a figure the machine's load moves far less than the time. Empty when the
    server's processes cannot be read."""
    with database.session() as s:
        pids = list(s.scalars(select(func.pg_backend_pid()).union(_others_of_this_database())))
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def _others_of_this_database():
    activity = table("pg_stat_activity", column("pid"), column("datname"))
    return select(activity.c.pid).where(activity.c.datname == func.current_database())


def bench_latency(database: Database, amqp_url: str, bus: BusNames, rate: float, seconds: float) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database.url,
            "AMQP_URL": amqp_url,
            "EVENTS_EXCHANGE": bus.exchange,
            "DEAD_LETTER_EXCHANGE": bus.dead_letter_exchange,
            "QUEUE_PREFIX": bus.queue_prefix,
            "JWT_PUBLIC_KEY": "unused",
            "SMS_PROVIDERS": "log",
            "DELIVERY_INTERVAL_SECONDS": "0.01",
        }
    )
    settings = load_settings("notifications")
    worker = definition.build_worker(settings, database)
    worker.consumer.declare()
    worker.start()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_exchanges(channel, bus)
    published: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        with database.session() as s:
            while not stop.is_set():
                rows = s.execute(
                    select(deliveries.c.address).where(
                        deliveries.c.state == "sent", deliveries.c.source_type == "accounts.code.requested"
                    )
                ).scalars()
                now = time.perf_counter()
                for address in rows:
                    seen.setdefault(address, now)
                s.rollback()
                time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        total = int(rate * seconds)
        started = time.perf_counter()
        for n in range(total):
            phone = f"+8617{n:09d}"
            event = new_event(
                "accounts.code.requested",
                {
                    "phone": phone,
                    "code": "123456",
                    "purpose": "login",
                    "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
                },
                producer="gateway",
            )
            published[phone] = time.perf_counter()
            channel.basic_publish(
                bus.exchange,
                event.type,
                event.to_json().encode(),
                pika.BasicProperties(message_id=event.id, delivery_mode=2),
            )
            delay = started + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        deadline = time.perf_counter() + 60
        while len(seen) < total and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        watcher.join(5)
        worker.shutdown(10)
        connection.close()
    latencies = sorted((seen[p] - published[p]) * 1000 for p in published if p in seen)
    if not latencies:
        print("latency: nothing delivered")
        return
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"event on the bus -> delivery recorded, {len(latencies)}/{len(published)} at {rate:.0f}/s: "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--broadcast",
        nargs="+",
        choices=["overlapped", "sequential"],
        default=["overlapped"],
        help="how the broadcast is planned and handed over: at once as the worker does (overlapped), "
        "or planned first (sequential); both to compare",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=["planning", "broadcast", "latency"],
        default=["planning", "broadcast", "latency"],
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pg_url, _ = infra.find_postgres()
    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    databases = infra.PostgresDatabases(pg_url, f"bench_{run}")
    bus = BusNames(
        exchange=f"bench.{run}.events", dead_letter_exchange=f"bench.{run}.dead", queue_prefix=f"bench.{run}."
    )
    aliyun = LoopbackAliyun()
    try:
        for label, work in (
            ("planning", lambda db: bench_planning_and_delivery(db, args.events, aliyun)),
            *(
                (
                    f"broadcast_{mode}",
                    lambda db, mode=mode: bench_broadcast(db, args.recipients, aliyun, overlapped=mode == "overlapped"),
                )
                for mode in args.broadcast
            ),
            ("latency", lambda db: bench_latency(db, amqp_url, bus, args.rate, args.seconds)),
        ):
            if label.split("_")[0] not in args.stages:
                continue
            url = databases.create(label)
            upgrade(definition.migrations_dir, url)
            database = Database(url)
            try:
                work(database)
            finally:
                database.dispose()
    finally:
        aliyun.close()
        databases.drop_all()
        infra.delete_bus(
            amqp_url,
            bus.exchange,
            bus.dead_letter_exchange,
            [bus.queue("notifications"), bus.dead_letter_queue("notifications")],
        )


if __name__ == "__main__":
    main()
