"""Events through the real services (issue 15 point 1; DESIGN section 7, first row).

Run: `.venv/bin/python bench/services_events.py [--events N] [--services notifications meetings issues]
[--skip-peers] [--profile]`

For each consuming service, in one run on the local PostgreSQL and RabbitMQ:

- its database is made and migrated by the service's own `linli-<service> migrate`, and seeded with
  what its handlers need to do real work (communities, staff and residents for notifications; the
  issues that meetings name for issues), through the service's own code;
- N events (default 20,000) of the kinds it really consumes, in a realistic mix (issues reported,
  supported, moved on; meetings scheduled; registrations made; agenda items, decisions, action
  items; see the `*_burst` functions), with 1 % published twice (a duplicate publish: the inbox must
  keep its effects single), are committed to a producer's outbox (1,000 per transaction);
- the service's real worker (`linli-<service> worker`, its own process, with its relay, timers
  and consumer as in production) is started and has declared its queue; then an `OutboxRelay`
  (another process, like the producing service's worker) is let go. The clock runs from letting the
  relay go until the service's inbox holds every distinct event (the inbox row commits with the
  handler's effects) and, for notifications, every batch's plan committed with them has been
  expanded into its notices and deliveries (`event_plans` empty). Then the effects are counted:
  every distinct event in the inbox once, and the service's own rows.

Peers, in the same run, with the same number of events and envelopes of the same size (the average
of the bursts'), each consumer writing per event an inbox row (INSERT ... ON CONFLICT DO NOTHING)
and an effect row in one PostgreSQL transaction:
- celery 5.7, acks_late, 2 prefork workers, publishing without confirms (its default);
- nameko 2.14, standalone EventDispatcher (persistent, with confirms: its defaults) -> event_handler.
They run from their own virtual environments (`var/peers/celery`, `var/peers/nameko`; made with pip
on first use, `--skip-peers` leaves them out). The time runs from the first publish to the commit of
the last effect.

The notifications worker's delivery loop runs too, every DELIVERY_INTERVAL_SECONDS (set to 3,600 s
here, as its own benchmark, notifications_throughput.py, measures delivery): this one measures the
handlers. `--profile` records the worker with py-spy (installed in `var/peers/tools`) and prints
where its time went.

Beside each service's time it prints when the relay had every event published and confirmed (if
that is close to the time, the producing side set the pace, not the consumer) and the CPU seconds
its worker process used while the burst ran, per event: a figure the machine's load hardly moves,
unlike the time.

It prints figures and never asserts on time. Each run creates its own databases, exchanges and
queues and removes them at the end. The machine is shared: the load average is printed beside the
figures, compare only within one run.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    text,
)

from linli_kit.config import BusNames, load_settings
from linli_kit.db import Database
from linli_kit.events import Event, new_event
from linli_kit.events.relay import OutboxRelay
from linli_kit.tables import UtcDateTime
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "var" / "peers"
SERVICES = ("notifications", "meetings", "issues")
TARGET_EVENTS_PER_SECOND = 5_000
TARGET_CELERY_RATIO = 4.0
TARGET_NAMEKO_RATIO = 6.0
DUPLICATE_EVERY = 100  # 1 % of the events are published twice
PHASE_TIMEOUT = 900.0  # a slow service on a busy machine still finishes its burst
PEER_REQUIREMENTS = {"celery": ["celery==5.7.0", "psycopg[binary]"], "nameko": ["nameko==2.14.1", "psycopg[binary]"]}

# The producer's outbox: the kit's columns, without the unique event id, so that a duplicate
# publish (the same envelope twice) can be staged in it.
producer_metadata = MetaData()
producer_outbox = Table(
    "outbox",
    producer_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(120), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
)
# The indexes a service's outbox has (linli_kit.tables.add_messaging_tables): the relay reads the
# unpublished rows by the first, and marks them published through both. Its event_id is not unique
# here: the burst publishes 1 % of its events twice.
Index("ix_outbox_unpublished", producer_outbox.c.id, postgresql_where=producer_outbox.c.published_at.is_(None))
Index("ix_outbox_published_at", producer_outbox.c.published_at)
peer_metadata = MetaData()
Table(
    "peer_inbox",
    peer_metadata,
    Column("consumer", String(80), primary_key=True),
    Column("event_id", String(36), primary_key=True),
)
peer_effects = Table(
    "peer_effects",
    peer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("n", Integer, nullable=False),
)


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class Burst:
    """What one service gets: the seed events handled before the clock (in-process, by the service's
    own handlers or service layer) and the measured events, in order, duplicates included."""

    events: list[Event]
    seed: Callable[[Database], None] = lambda _db: None
    kinds: collections.Counter = field(default_factory=collections.Counter)

    @property
    def unique(self) -> int:
        return len({e.id for e in self.events})


def _with_duplicates(events: list[Event], rng: random.Random) -> list[Event]:
    """Every DUPLICATE_EVERY-th event published once more, a little later (a producer's retry)."""
    out: list[Event] = []
    pending: list[tuple[int, Event]] = []
    for i, event in enumerate(events):
        out.append(event)
        if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
            pending.append((i + rng.randint(5, 200), event))
        while pending and pending[0][0] <= i:
            out.append(pending.pop(0)[1])
    out.extend(e for _, e in pending)
    return out


# --- the bursts -------------------------------------------------------------------------------------
def _issue_snapshot(issue: dict, **extra: object) -> dict:
    return {
        "issue_id": issue["issue_id"],
        "community_id": issue["community_id"],
        "title": issue["title"],
        "category": "environment",
        "urgency": issue["urgency"],
        "status": issue["status"],
        "tier": "community",
        "reporter_id": issue["reporter_id"],
        "supporter_count": len(issue["supporters"]),
        "supporter_ids": list(issue["supporters"]),
        "revision": issue["revision"],
        **extra,
    }


class Neighbourhoods:
    """Streets, communities, staff and residents the events name."""

    def __init__(self, rng: random.Random, communities: int = 20, residents: int = 60) -> None:
        self.rng = rng
        self.street = str(uuid.uuid4())
        self.communities = ids(communities)
        self.staff = {c: ids(3) for c in self.communities}
        self.residents = {c: ids(residents) for c in self.communities}

    def directory_events(self) -> list[Event]:
        events = [
            new_event(
                "directory.street.upserted",
                {"street_id": self.street, "name": "育才街道", "city": "灵武市", "revision": 1},
                producer="gateway",
            )
        ]
        for i, c in enumerate(self.communities):
            events.append(
                new_event(
                    "directory.community.upserted",
                    {"community_id": c, "street_id": self.street, "name": f"第{i + 1}社区", "revision": 1},
                    producer="gateway",
                )
            )
        return events

    def people_events(self) -> list[Event]:
        events = []
        for c in self.communities:
            for role, people in (("community_staff", self.staff[c]), ("resident", self.residents[c])):
                for person in people:
                    events.append(
                        new_event(
                            "accounts.user.registered",
                            {
                                "user_id": person,
                                "role": role,
                                "display_name": "张三",
                                "phone": f"+86138{self.rng.randint(0, 99_999_999):08d}",
                                "locale": "zh-CN",
                                "street_id": self.street,
                                "community_ids": [c],
                                "revision": 1,
                            },
                            producer="gateway",
                        )
                    )
        return events

    def resident(self, community: str) -> str:
        return self.rng.choice(self.residents[community])


def _new_issue(hood: Neighbourhoods, n: int) -> dict:
    community = hood.rng.choice(hood.communities)
    return {
        "issue_id": str(uuid.uuid4()),
        "community_id": community,
        "title": f"{n}号楼楼道灯坏了",
        "urgency": "urgent" if n % 20 == 0 else "normal",
        "status": "reported",
        "reporter_id": hood.resident(community),
        "supporters": [],
        "revision": 1,
    }


def _issue_events(hood: Neighbourhoods, count: int, weights: dict[str, int]) -> tuple[list[Event], collections.Counter]:
    """Snapshots of issues as the issues service publishes them: reported, supported, accepted,
    assigned, moved on; each later snapshot of an issue with the next revision."""
    rng = hood.rng
    issues: list[dict] = []
    events: list[Event] = []
    kinds: collections.Counter = collections.Counter()
    while len(events) < count:
        kind = pick(rng, weights) if issues else "reported"
        if kind == "reported":
            issue = _new_issue(hood, len(issues))
            issues.append(issue)
            data = _issue_snapshot(issue, anonymous=False, channel="app")
            event_type = "issues.issue.reported"
        else:
            issue = rng.choice(issues[-200:])
            issue["revision"] += 1
            if kind == "supported":
                supporter = hood.resident(issue["community_id"])
                if supporter not in issue["supporters"]:
                    issue["supporters"].append(supporter)
                data = _issue_snapshot(issue, supporter_id=supporter)
                event_type = "issues.issue.supported"
            elif kind == "assigned":
                staff = hood.staff[issue["community_id"]][0]
                data = _issue_snapshot(
                    issue, assignee_type="property_company", assignee_id=str(uuid.uuid4()), actor_id=staff
                )
                event_type = "issues.issue.assigned"
            else:
                before = issue["status"]
                issue["status"] = {"reported": "accepted", "accepted": "deliberating"}.get(before, before)
                data = _issue_snapshot(issue, from_status=before, actor_id=hood.staff[issue["community_id"]][0])
                event_type = "issues.issue.accepted" if before == "reported" else "issues.issue.status_changed"
        kinds[event_type] += 1
        events.append(new_event(event_type, data, producer="issues", community_id=issue["community_id"]))
    return events, kinds


def notifications_burst(count: int, rng: random.Random) -> Burst:
    hood = Neighbourhoods(rng)
    issue_share = count * 6 // 10
    events, kinds = _issue_events(hood, issue_share, {"reported": 5, "supported": 3, "accepted": 1, "assigned": 1})
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    activities = [
        {"activity_id": str(uuid.uuid4()), "community_id": rng.choice(hood.communities), "title": f"第{i}期书法班"}
        for i in range(50)
    ]
    others: list[Event] = []
    while len(others) < count - issue_share:
        if rng.random() < 0.25:
            c = rng.choice(hood.communities)
            meeting_id = str(uuid.uuid4())
            data = {
                "meeting_id": meeting_id,
                "community_id": c,
                "meeting_type": "round_table",
                "title": "楼道照明议事会",
                "starts_at": starts,
                "ends_at": starts + timedelta(hours=2),
                "place": "社区活动室",
                "convener_id": hood.staff[c][0],
                "public": False,
                "participant_ids": rng.sample(hood.residents[c], 5),
                "revision": 1,
            }
            others.append(new_event("meetings.meeting.scheduled", data, producer="meetings", community_id=c))
            kinds["meetings.meeting.scheduled"] += 1
        else:
            activity = rng.choice(activities)
            c = activity["community_id"]
            data = {
                "registration_id": str(uuid.uuid4()),
                "activity_id": activity["activity_id"],
                "community_id": c,
                "user_id": hood.resident(c),
                "title": activity["title"],
                "starts_at": starts,
                "party_size": 1,
                "status": "confirmed",
            }
            others.append(new_event("activities.registration.confirmed", data, producer="activities", community_id=c))
            kinds["activities.registration.confirmed"] += 1
    # Interleaved as they come from three producers: runs of a few events of one type.
    mixed: list[Event] = []
    a, b = list(events), list(others)
    while a or b:
        source = a if (a and (not b or rng.random() < len(a) / (len(a) + len(b)))) else b
        take = rng.randint(1, 8)
        mixed.extend(source[:take])
        del source[:take]

    def seed(database: Database) -> None:
        from linli_notifications.definition import handlers

        _handle_in_process(database, handlers(load_settings("notifications"), database), hood.directory_events())
        _handle_in_process(database, handlers(load_settings("notifications"), database), hood.people_events())

    return Burst(_with_duplicates(mixed, rng), seed, kinds)


def meetings_burst(count: int, rng: random.Random) -> Burst:
    hood = Neighbourhoods(rng)
    events, kinds = _issue_events(hood, count, {"reported": 3, "supported": 4, "accepted": 2, "assigned": 1})

    def seed(database: Database) -> None:
        from linli_meetings.definition import definition

        _handle_in_process(database, definition.handlers(load_settings("meetings"), database), hood.directory_events())

    return Burst(_with_duplicates(events, rng), seed, kinds)


def issues_burst(count: int, rng: random.Random) -> Burst:
    hood = Neighbourhoods(rng, communities=10)
    issue_count = max(20, count // 40)
    issue_ids: list[str] = []
    community_of: dict[str, str] = {}
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    meetings: list[dict] = []
    decisions: list[dict] = []
    events: list[Event] = []
    kinds: collections.Counter = collections.Counter()
    # The issue ids are known only once seeded: the events are made then, in `seed`.

    def make_events() -> None:
        while len(events) < count:
            kind = pick(rng, {"scheduled": 3, "rescheduled": 1, "agenda": 2, "decision": 2, "action": 2})
            if kind in ("rescheduled", "agenda", "decision") and not meetings:
                kind = "scheduled"
            if kind == "action" and not decisions:
                kind = "scheduled"
            if kind == "scheduled":
                issue = rng.choice(issue_ids)
                c = community_of[issue]
                meeting = {
                    "meeting_id": str(uuid.uuid4()),
                    "community_id": c,
                    "meeting_type": "round_table",
                    "title": f"第{len(meetings) + 1}次议事会",
                    "starts_at": starts + timedelta(hours=len(meetings)),
                    "ends_at": starts + timedelta(hours=len(meetings) + 2),
                    "place": "社区活动室",
                    "convener_id": hood.staff[c][0],
                    "agenda": [{"item_id": str(uuid.uuid4()), "title": "楼道照明", "issue_id": issue}],
                    "issue_ids": [issue],
                    "participant_ids": rng.sample(hood.residents[c], 3),
                    "revision": 1,
                }
                meetings.append(meeting)
                event_type, data = "meetings.meeting.scheduled", dict(meeting)
            elif kind == "rescheduled":
                meeting = rng.choice(meetings[-100:])
                meeting["revision"] += 1
                previous = meeting["starts_at"]
                meeting["starts_at"] = previous + timedelta(minutes=30)
                meeting["ends_at"] = meeting["ends_at"] + timedelta(minutes=30)
                event_type = "meetings.meeting.rescheduled"
                data = {**meeting, "previous_starts_at": previous, "reason": "场地冲突"}
            elif kind == "agenda":
                meeting = rng.choice(meetings[-100:])
                c = meeting["community_id"]
                issue = rng.choice([i for i in issue_ids if community_of[i] == c])
                event_type = "meetings.agenda_item.added"
                data = {
                    "meeting_id": meeting["meeting_id"],
                    "community_id": c,
                    "meeting_type": meeting["meeting_type"],
                    "title": meeting["title"],
                    "starts_at": meeting["starts_at"],
                    "item_id": str(uuid.uuid4()),
                    "issue_id": issue,
                    "item_title": "楼道照明",
                }
            elif kind == "decision":
                meeting = rng.choice(meetings[-100:])
                decision = {
                    "decision_id": str(uuid.uuid4()),
                    "meeting_id": meeting["meeting_id"],
                    "community_id": meeting["community_id"],
                    "issue_ids": meeting["issue_ids"],
                    "items": 2,
                }
                decisions.append(decision)
                event_type = "meetings.decision.recorded"
                data = {
                    "decision_id": decision["decision_id"],
                    "meeting_id": meeting["meeting_id"],
                    "community_id": meeting["community_id"],
                    "motion": "请物业一周内修复楼道灯",
                    "outcome": "adopted",
                    "rule": "到会过半数同意",
                    "votes_for": 12,
                    "votes_against": 1,
                    "abstentions": 0,
                    "issue_ids": meeting["issue_ids"],
                    "issue_effect": "reconsult",
                    "participant_ids": meeting["participant_ids"],
                }
            else:
                decision = rng.choice(decisions[-100:])
                event_type = "meetings.action_item.assigned"
                data = {
                    "action_item_id": str(uuid.uuid4()),
                    "decision_id": decision["decision_id"],
                    "meeting_id": decision["meeting_id"],
                    "community_id": decision["community_id"],
                    "issue_id": decision["issue_ids"][0],
                    "issue_ids": decision["issue_ids"],
                    "title": "更换楼道灯",
                    "owner_body": "property_company",
                    "status": "open",
                    "progress": 0,
                    "decision_issue_effect": "reconsult",
                    "decision_action_items": decision["items"],
                    "decision_action_items_done": 0,
                    "decision_complete": False,
                }
            kinds[event_type] += 1
            events.append(new_event(event_type, data, producer="meetings", community_id=data["community_id"]))

    burst = Burst(events, kinds=kinds)

    def seed(database: Database) -> None:
        from linli_issues.definition import definition
        from linli_issues.service_layer.issues import report_issue
        from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
        from linli_kit.auth import Principal, Role

        _handle_in_process(database, definition.handlers(load_settings("issues"), database), hood.directory_events())
        now = datetime.now(UTC)
        for n in range(issue_count):
            c = hood.communities[n % len(hood.communities)]
            staff = Principal(user_id=hood.staff[c][0], role=Role.COMMUNITY_STAFF, community_ids=(c,))
            issue = report_issue(
                IssuesUnitOfWork(database),
                staff,
                now,
                community_id=c,
                title=f"{n}号楼楼道灯坏了",
                description="晚上楼道一片黑，老人上下楼不安全。",
                category="safety_hazard",
                on_behalf_of=hood.resident(c),
            )
            issue_ids.append(issue.id)
            community_of[issue.id] = c
        make_events()
        burst.events[:] = _with_duplicates(events, rng)

    burst.seed = seed
    return burst


BURSTS = {"notifications": notifications_burst, "meetings": meetings_burst, "issues": issues_burst}


def _handle_in_process(database: Database, handlers: dict, events: list[Event]) -> None:
    """Seed events handled by the service's own handlers, one transaction per 500."""
    from linli_kit.events.consumer import BatchHandler

    for start in range(0, len(events), 500):
        with database.transaction() as session:
            for event in events[start : start + 500]:
                handler = handlers[event.type]
                if isinstance(handler, BatchHandler):
                    handler.handle(session, [event])
                else:
                    handler(session, event)


# --- the producing side's relay process ------------------------------------------------------------------
def relay_process(db_url, amqp_url, bus, options, relay_ready, go, stop, results) -> None:
    try:
        database = Database(db_url)
        database.ping()
        relay = OutboxRelay(
            database,
            producer_outbox,
            amqp_url,
            bus,
            service="benchsource",
            batch_size=options["relay_batch_size"],
            idle_seconds=options["relay_idle_seconds"],
        )
        relay_ready.set()
        go.wait()
        local_stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(local_stop,), daemon=True)
        thread.start()
        stop.wait()
        local_stop.set()
        thread.join(30)
        results.put(("relay", {}))
    except BaseException:  # noqa: BLE001 - reported by the parent
        results.put(("relay", {"error": traceback.format_exc()}))


# --- one service ------------------------------------------------------------------------------------------
@dataclass
class Figure:
    label: str
    events: int = 0
    seconds: float | None = None
    effects: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kinds: collections.Counter = field(default_factory=collections.Counter)
    load: tuple[float, float] | None = None
    profile: list[str] = field(default_factory=list)
    # When the relay had published every event and had the broker's confirms (its outbox empty):
    # if that is close to `seconds`, the producer's side, not the consumer, set the pace.
    published_seconds: float | None = None
    # CPU seconds the worker process used while the burst ran (all its threads): unlike the
    # elapsed time, it hardly depends on what else the machine is doing.
    worker_cpu: float | None = None

    @property
    def rate(self) -> float | None:
        return self.events / self.seconds if self.seconds else None


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _exists(database: Database, table: str, where: str) -> bool:
    """Whether a row is there: polled every few milliseconds, so not a count (it would read every row)."""
    with database.engine.connect() as c:
        return bool(c.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table} {where})")).scalar())


def _count(database: Database, table: str, where: str = "") -> int:
    with database.engine.connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar() or 0)


# What a service's worker still has to expand into its effects after the commit of the events'
# inbox rows (services/notifications/.../service_layer/deferred.py): the clock runs until it is empty.
PENDING = {"notifications": ("event_plans",)}
EFFECTS = {
    "notifications": [
        ("notifications planned", "notifications", ""),
        ("deliveries planned", "deliveries", ""),
        ("issue snapshots kept", "subjects", "WHERE subject_type = 'issue'"),
        ("follows", "follows", ""),
        ("reminders", "reminders", ""),
    ],
    "meetings": [
        ("issues in the replica", "issue_replica", ""),
        ("supporters in the replica", "issue_replica_supporters", ""),
    ],
    "issues": [
        ("meeting links", "issue_meetings", ""),
        ("decision follow-ups", "issue_decisions", ""),
        ("timeline entries", "issue_updates", ""),
        ("events published by the handlers", "outbox", "WHERE event_type LIKE 'issues.%'"),
    ],
}


def run_service(service: str, args, run_id: str, admin_url: str, amqp_url: str, workdir: Path) -> Figure:
    figure = Figure(service)
    rng = random.Random(f"{args.seed}-{service}")
    bus = BusNames(
        exchange=f"bench.{run_id}.{service}.events",
        dead_letter_exchange=f"bench.{run_id}.{service}.dead",
        queue_prefix=f"bench.{run_id}.{service}.",
    )
    databases = infra.PostgresDatabases(admin_url, f"bench_{run_id}_{service}")
    platform = Platform(databases, amqp_url, bus, "unused", "unused", workdir / service)
    platform.extra_env = {"LOG_LEVEL": "WARNING", "DELIVERY_INTERVAL_SECONDS": "3600"}
    producer = None
    database = None
    procs: list = []
    profiler = None
    try:
        print(f"{service}: migrating and seeding ...", flush=True)
        platform.migrate(service)
        database = Database(platform.database_url(service))
        burst = BURSTS[service](args.events, rng)
        _with_env(platform.env(service), lambda: burst.seed(database))
        with database.transaction() as session:  # the seed's own events are not what is measured
            session.execute(text("UPDATE outbox SET published_at = now() WHERE published_at IS NULL"))
        figure.events = burst.unique
        figure.kinds = burst.kinds
        producer = Database(databases.create("producer"))
        producer_metadata.create_all(producer.engine)
        with producer.transaction() as session:
            for start in range(0, len(burst.events), 1000):
                now = datetime.now(UTC)
                session.execute(
                    insert(producer_outbox),
                    [
                        {"event_id": e.id, "event_type": e.type, "payload": e.to_json(), "created_at": now}
                        for e in burst.events[start : start + 1000]
                    ],
                )
        print(
            f"{service}: {len(burst.events):,} events ({burst.unique:,} distinct) in the outbox; "
            "starting the worker ...",
            flush=True,
        )
        worker = platform.start_worker(service)
        settings = load_settings(service)
        options = {"relay_batch_size": settings.relay_batch_size, "relay_idle_seconds": settings.relay_idle_seconds}
        ctx = mp.get_context("spawn")
        relay_ready, go, stop = ctx.Event(), ctx.Event(), ctx.Event()
        results = ctx.Queue()
        relay = ctx.Process(
            target=relay_process, args=(producer.url, amqp_url, bus, options, relay_ready, go, stop, results)
        )
        relay.start()
        procs.append((relay, stop, results))
        if not relay_ready.wait(60):
            figure.problems.append("the relay never became ready")
            return figure
        if args.profile:
            profiler = _start_profiler(worker.popen.pid, workdir / f"{service}.pyspy.txt")
        load_before = os.getloadavg()[0]
        print(f"{service}: relay let go ...", flush=True)
        cpu_before = _cpu_seconds(worker.popen.pid)
        start = time.time()
        go.set()
        deadline = start + PHASE_TIMEOUT
        handled = 0
        while time.time() < deadline:
            if figure.published_seconds is None and not _exists(producer, "outbox", "WHERE published_at IS NULL"):
                figure.published_seconds = time.time() - start
            handled = _count(database, "inbox")
            # The inbox row commits with the handler's effects; where a service expands them after
            # the commit (the notifications' plans of a batch), not before they are all expanded.
            if handled >= burst.unique and all(_count(database, table) == 0 for table in PENDING.get(service, ())):
                figure.seconds = time.time() - start
                figure.worker_cpu = _cpu_seconds(worker.popen.pid) - cpu_before
                break
            if worker.popen.poll() is not None:
                figure.problems.append(f"the worker exited:\n{worker.log_tail()}")
                break
            time.sleep(0.02)
        else:
            figure.problems.append(f"timed out: {handled:,} of {burst.unique:,} events handled")
        figure.load = (load_before, os.getloadavg()[0])
        if profiler is not None:
            figure.profile = _stop_profiler(profiler, workdir / f"{service}.pyspy.txt")
        time.sleep(1.0)  # the duplicates still on their way: acked and skipped
        inbox = _count(database, "inbox")
        if inbox != burst.unique:
            figure.problems.append(f"{inbox:,} inbox rows for {burst.unique:,} distinct events")
        figure.effects = [f"{label}: {_count(database, table, where):,}" for label, table, where in EFFECTS[service]]
        dead = _queue_depth(amqp_url, bus.dead_letter_queue(service))
        if dead:
            figure.problems.append(f"{dead} events dead-lettered (see {workdir / service})")
        errors = [line for line in worker.log_tail(400).splitlines() if '"ERROR"' in line or "Traceback" in line]
        if errors:
            figure.problems.append(f"{len(errors)} error lines in the worker's log, e.g. {errors[0][:300]}")
    except Exception:  # noqa: BLE001 - reported with the figures
        figure.problems.append(traceback.format_exc())
    finally:
        for relay, stop, _results in procs:
            stop.set()
            relay.join(20)
            if relay.is_alive():
                relay.terminate()
        platform.stop_all()
        for db in (producer, database):
            if db is not None:
                db.dispose()
        try:
            databases.drop_all()
        except Exception as exc:  # noqa: BLE001
            print(f"could not drop the bench databases: {exc}", file=sys.stderr)
        try:
            infra.delete_bus(
                amqp_url,
                bus.exchange,
                bus.dead_letter_exchange,
                [bus.queue(service), bus.dead_letter_queue(service), f"{bus.exchange}.unrouted"],
            )
        except Exception as exc:  # noqa: BLE001
            print(f"could not delete the bench exchanges and queues: {exc}", file=sys.stderr)
    return figure


def _with_env(env: dict[str, str], action: Callable[[], None]) -> None:
    """Run the seeding in this process with the service's settings (its database, its bus names)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        action()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _queue_depth(amqp_url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    except Exception:  # noqa: BLE001 - no such queue: nothing in it
        return 0
    finally:
        if conn.is_open:
            conn.close()


# --- profiling ------------------------------------------------------------------------------------------
def _start_profiler(pid: int, out: Path) -> subprocess.Popen | None:
    py_spy = _peer_venv("tools", ["py-spy"]) / "bin" / "py-spy"
    if not py_spy.exists():
        return None
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--output", str(out), "--rate", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Leaf frames of a thread that waits for work (not counted), and of one waiting on PostgreSQL.
IDLE_FRAMES = {"Condition.wait", "Event.wait", "PollPoller.poll", "wait", "sleep", "select", "poll", "acquire"}
DATABASE_WAIT_FRAMES = {"Connection.wait", "wait_c", "wait_conn"}
# Which thread of the worker a sample is from, by a frame only that thread runs.
THREADS = {
    "consumer, handling batches (handlers, inbox, commit)": "_handle_in_one_transaction",
    "consumer, its connection (receiving, parsing, acking)": "_Link.run",
    "the worker's own relay": "OutboxRelay.run",
    "timers": "Worker._timer_loop",
}


def _stop_profiler(profiler: subprocess.Popen, out: Path, rate: int = 200, top: int = 20) -> list[str]:
    profiler.send_signal(2)
    try:
        profiler.wait(30)
    except subprocess.TimeoutExpired:
        profiler.kill()
    if not out.exists():
        return ["(py-spy wrote nothing)"]
    per_thread: collections.Counter = collections.Counter()
    waiting: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    own: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread = next((name for name, marker in THREADS.items() if any(marker in f for f in frames)), "other")
        n = int(count)
        leaf = frames[-1].split(" (")[0]
        # py-spy sees a thread blocked in a wait as busy here: tell the waits apart from Python at work.
        if leaf in IDLE_FRAMES:
            waiting[thread]["idle"] += n
            continue
        if leaf in DATABASE_WAIT_FRAMES:
            waiting[thread]["database"] += n
        per_thread[thread] += n
        own[thread][_frame(frames[-1])] += n
        for f in {_frame(f) for f in frames}:
            inclusive[thread][f] += n
    lines = [
        f"seconds seen busy while the burst ran (sampled {rate}/s), by thread: in all (of which waiting on PostgreSQL)"
    ]
    for thread, n in per_thread.most_common():
        lines.append(f"  {n / rate:6.2f} s ({waiting[thread]['database'] / rate:6.2f} s)  {thread}")
    for thread in list(THREADS)[:2]:
        total = per_thread[thread]
        if not total:
            continue
        lines.append(f"{thread}: inclusive (the frame or what it called)")
        for name, n in inclusive[thread].most_common(top):
            lines.append(f"  {100 * n / total:5.1f} %  {name}")
        lines.append(f"{thread}: own time")
        for name, n in own[thread].most_common(10):
            lines.append(f"  {100 * n / total:5.1f} %  {name}")
    return lines


def _frame(frame: str) -> str:
    # py-spy's raw frames: "function (path/to/file.py:line)"; keep function and file, drop the line.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# --- peers ----------------------------------------------------------------------------------------------
def _peer_venv(name: str, requirements: list[str]) -> Path:
    """The peer's own virtual environment under var/peers, made with pip the first time."""
    venv = PEERS / name
    if not (venv / ".installed").exists():
        print(f"installing {' '.join(requirements)} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *requirements], check=True)
        (venv / ".installed").touch()
    return venv


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def run_peer(name: str, args, run_id: str, admin_url: str, amqp_url: str, payload: dict, workdir: Path) -> Figure:
    figure = Figure(
        {
            "celery": "celery 5.7, acks_late, 2 prefork workers, no confirms",
            "nameko": "nameko 2.14, EventDispatcher -> event_handler",
        }[name]
    )
    figure.events = args.peer_events
    databases = infra.PostgresDatabases(admin_url, f"bench_{run_id}_{name}")
    database = None
    worker = None
    queue = f"bench.{run_id}.celery"
    source = f"bench{run_id}".replace("-", "")
    try:
        venv = _peer_venv(name, PEER_REQUIREMENTS[name])
        database = Database(databases.create("peer"))
        peer_metadata.create_all(database.engine)
        payload_file = workdir / f"{name}-payload.json"
        payload_file.write_text(json.dumps(payload), encoding="utf-8")
        env = {
            **os.environ,
            "PEER_AMQP_URL": amqp_url,
            "PEER_DATABASE_URL": _libpq(database.url),
            "PEER_QUEUE": queue,
            "PEER_SOURCE": source,
            "PYTHONPATH": str(ROOT / "bench" / "peers"),
        }
        log = (workdir / f"{name}-worker.log").open("ab")
        if name == "celery":
            argv = [
                str(venv / "bin" / "celery"),
                "-A",
                "celery_peer",
                "worker",
                "-c",
                "2",
                "-P",
                "prefork",
                "-Q",
                queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ]
            consumer_queue = queue
        else:
            config = workdir / "nameko.yaml"
            config.write_text(f"AMQP_URI: '{amqp_url}'\n")
            argv = [str(venv / "bin" / "nameko"), "run", "nameko_peer:Consumer", "--config", str(config)]
            consumer_queue = f"evt-{source}-bench_event--{source}consumer.handle"
        worker = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.time() + 120
        while _consumers(amqp_url, consumer_queue) < 1:
            if worker.poll() is not None or time.time() > deadline:
                figure.problems.append(f"the {name} worker did not start; see {workdir / (name + '-worker.log')}")
                return figure
            time.sleep(0.2)
        print(f"{figure.label}: publishing {args.peer_events:,} events ...", flush=True)
        load_before = os.getloadavg()[0]
        publisher = subprocess.Popen(
            [
                str(venv / "bin" / "python"),
                str(ROOT / "bench" / "peers" / f"{name}_peer.py"),
                "publish",
                str(args.peer_events),
                str(payload_file),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=workdir,
        )
        end = None
        deadline = time.time() + PHASE_TIMEOUT
        done = 0
        while time.time() < deadline:
            done = _count(database, "peer_effects")
            if done >= args.peer_events:
                end = time.time()
                break
            if publisher.poll() not in (None, 0):
                break
            time.sleep(0.02)
        out, err = publisher.communicate(timeout=60)
        if publisher.returncode != 0:
            figure.problems.append(f"the {name} publisher failed: {err[-2000:]}")
        elif end is None:
            figure.problems.append(f"timed out: {done:,} of {args.peer_events:,} effects")
        else:
            start = json.loads(out.strip().splitlines()[-1])["start"]
            figure.seconds = end - start
        figure.load = (load_before, os.getloadavg()[0])
        effects = _count(database, "peer_effects")
        figure.effects = [f"effects: {effects:,}, inbox rows: {_count(database, 'peer_inbox'):,}"]
    except Exception:  # noqa: BLE001
        figure.problems.append(traceback.format_exc())
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        if database is not None:
            database.dispose()
        try:
            databases.drop_all()
        except Exception as exc:  # noqa: BLE001
            print(f"could not drop the peer databases: {exc}", file=sys.stderr)
        _delete_peer_bus(amqp_url, name, queue, source)
    return figure


def _consumers(amqp_url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    except Exception:  # noqa: BLE001 - not declared yet
        return 0
    finally:
        if conn.is_open:
            conn.close()


def _delete_peer_bus(amqp_url: str, name: str, queue: str, source: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        if name == "celery":
            channel.queue_delete(queue)
        else:
            channel.queue_delete(f"evt-{source}-bench_event--{source}consumer.handle")
            channel.exchange_delete(f"{source}.events")
    except Exception as exc:  # noqa: BLE001
        print(f"could not delete the {name} queues: {exc}", file=sys.stderr)
    finally:
        if conn.is_open:
            conn.close()


# --- the report -----------------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else f"{value:{spec}}"


def report(figures: list[Figure], peers: dict[str, Figure], versions: dict[str, str], load_before: float) -> None:
    line = "-" * 100
    print()
    print(line)
    print(
        f"Events through the real services   {datetime.now(UTC):%Y-%m-%d %H:%M} UTC   {os.cpu_count()} CPUs   "
        f"RabbitMQ {versions.get('rabbitmq', '?')}   PostgreSQL {versions.get('postgres', '?')}"
    )
    after = os.getloadavg()[0]
    busy = max(load_before, after) > (os.cpu_count() or 1) * 0.75
    print(
        f"load average (1 min): at the start {load_before:.1f}, at the end {after:.1f}"
        + ("  -- the machine was busy with other work: compare only within this run" if busy else "")
    )
    print(line)
    print(f"{'pipeline':<58}{'events':>9}{'seconds':>9}{'events/s':>10}{'load':>12}")
    for f in [*figures, *peers.values()]:
        load = f"{f.load[0]:.1f}-{f.load[1]:.1f}" if f.load else "n/a"
        print(f"{f.label:<58}{f.events:>9,}{_fmt(f.seconds, '.2f'):>9}{_fmt(f.rate):>10}{load:>12}")
        if f.kinds:
            print("    " + ", ".join(f"{k.split('.', 1)[1]} {n:,}" for k, n in sorted(f.kinds.items())))
        if f.published_seconds is not None:
            print(
                f"    the relay had published every event (confirmed) after {f.published_seconds:.2f} s"
                f" ({f.events / max(f.published_seconds, 1e-9):,.0f} distinct events/s)"
            )
        if f.worker_cpu is not None and f.events:
            print(
                f"    the worker's CPU while the burst ran: {f.worker_cpu:.2f} s"
                f" ({f.worker_cpu * 1e6 / f.events:,.0f} us per event; the whole process, every thread)"
            )
        for effect in f.effects:
            print(f"    {effect}")
    print(line)
    celery = peers.get("celery").rate if peers.get("celery") else None
    nameko = peers.get("nameko").rate if peers.get("nameko") else None
    print(
        f"targets: >= {TARGET_EVENTS_PER_SECOND:,} events/s per service, >= {TARGET_CELERY_RATIO:g}x celery, "
        f">= {TARGET_NAMEKO_RATIO:g}x nameko (this run)"
    )
    for f in figures:
        rate = f.rate
        verdicts = ["n/a" if rate is None else ("meets" if rate >= TARGET_EVENTS_PER_SECOND else "BELOW")]
        for peer, target, name in ((celery, TARGET_CELERY_RATIO, "celery"), (nameko, TARGET_NAMEKO_RATIO, "nameko")):
            if rate and peer:
                ratio = rate / peer
                verdicts.append(f"{ratio:.1f}x {name} ({'meets' if ratio >= target else 'BELOW'})")
        print(f"  {f.label:<16}{_fmt(rate):>8} events/s -> " + "; ".join(verdicts))
    for f in [*figures, *peers.values()]:
        if f.profile:
            print(line)
            print(f"where the {f.label} worker's consumer spent its time (py-spy):")
            for p in f.profile:
                print(f"  {p}")
        for problem in f.problems:
            print(f"PROBLEM ({f.label}): {problem}")
    print(line, flush=True)


def _versions(admin_url: str, amqp_url: str) -> dict[str, str]:
    versions = {}
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        versions["rabbitmq"] = str(conn._impl.server_properties.get("version", "?"))
        conn.close()
        database = Database(admin_url)
        with database.engine.connect() as c:
            versions["postgres"] = str(c.execute(text("SHOW server_version")).scalar()).split()[0]
        database.dispose()
    except Exception:  # noqa: BLE001 - only for the heading
        pass
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per service (default 20000)")
    parser.add_argument("--services", nargs="+", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--skip-peers", action="store_true", help="measure our services only")
    parser.add_argument("--peers", nargs="+", choices=("celery", "nameko"), default=["celery", "nameko"])
    parser.add_argument("--peer-events", type=int, default=None, help="events for each peer (default: --events)")
    parser.add_argument("--profile", action="store_true", help="record each service's worker with py-spy")
    parser.add_argument("--seed", default="linli", help="seed of the random mix (default: linli)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, profiles)")
    args = parser.parse_args(argv)
    args.peer_events = args.peer_events or args.events

    admin_url, pg_container = infra.find_postgres()
    amqp_url, mq_container = infra.find_rabbitmq()
    run_id = infra.new_run_id()
    workdir = Path(tempfile.mkdtemp(prefix=f"linli-bench-{run_id}-"))
    print(
        f"bench run {run_id}: PostgreSQL {admin_url.split('@')[-1]}, RabbitMQ {amqp_url.split('@')[-1]}; "
        f"logs in {workdir}"
    )
    load_before = os.getloadavg()[0]
    figures: list[Figure] = []
    peers: dict[str, Figure] = {}
    try:
        for service in args.services:
            figures.append(run_service(service, args, run_id, admin_url, amqp_url, workdir))
        if not args.skip_peers:
            sample = BURSTS["meetings"](200, random.Random(args.seed)).events
            size = sum(len(e.to_json()) for e in sample) // len(sample)
            payload = json.loads(sample[0].to_json())
            payload["data"]["n"] = 0
            payload["data"]["title"] = payload["data"]["title"] + "x" * max(0, size - len(json.dumps(payload)))
            for name in args.peers:
                peers[name] = run_peer(name, args, run_id, admin_url, amqp_url, payload, workdir)
        report(figures, peers, _versions(admin_url, amqp_url), load_before)
    finally:
        if not args.keep and not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)
        for container in (pg_container, mq_container):
            if container is not None:
                container.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
