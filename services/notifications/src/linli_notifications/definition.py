"""How the notifications service plugs into the shared runtime: tables, migrations, event handlers,
and the worker's loops (delivery, reminders, broadcast planning and retention)."""

from __future__ import annotations

import argparse
import json
import sys
import weakref
from pathlib import Path

from linli_kit.config import ConfigError, Settings
from linli_kit.db import Database
from linli_kit.events.consumer import BatchHandler, Handler
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_kit.worker import Timer
from linli_notifications import SERVICE
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.adapters.tables import messaging, metadata, replica
from linli_notifications.config import build_providers, check_settings, load_config
from linli_notifications.domain.clock import Clock, system_clock
from linli_notifications.service_layer.broadcasts import plan_broadcasts
from linli_notifications.service_layer.deferred import PlanQueue, retry_set_aside, set_aside
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.handlers import fire_due_reminders, has_due_reminders, make_handlers
from linli_notifications.service_layer.receipts import poll_jpush_receipts
from linli_notifications.service_layer.recipient import has_stale_devices, prune_stale_devices
from linli_notifications.service_layer.retention import prune

# One per database (PostgreSQL): the consumer's handlers write plans to it, and the expander
# timer of the same worker expands them (service_layer/deferred.py).
_plan_queues: weakref.WeakKeyDictionary[Database, PlanQueue] = weakref.WeakKeyDictionary()


def plan_queue(database: Database | None) -> PlanQueue | None:
    """The queue of `database`'s deferred plans; None on SQLite, where batches plan in their own
    transaction (its writer is alone anyway), and without a database (the handlers only listed, as
    deploy/k8s/generate.py lists the routing keys each queue binds)."""
    if database is None or database.is_sqlite:
        return None
    if database not in _plan_queues:
        _plan_queues[database] = PlanQueue(database)
    return _plan_queues[database]


def handlers(settings: Settings, database: Database, clock: Clock = system_clock) -> dict[str, Handler | BatchHandler]:
    return {**replica_handlers(replica), **make_handlers(clock, settings.timezone, plan_queue(database))}


def timers(settings: Settings, database: Database, clock: Clock = system_clock) -> list[Timer]:
    try:
        config = load_config()
        providers = build_providers(config)
    except ConfigError as exc:
        # The worker does not start with a provider it could not use (a missing template, a key):
        # it says which, as `check-config` does, instead of failing message after message.
        print(f"linli-notifications: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    deliverer = Deliverer(database, config, providers, clock=clock, city_timezone=settings.timezone)
    reads = ReadSessions(database)

    def reminders() -> None:
        now = clock()
        # Most ticks find nothing to do: find that out without taking SQLite's write lock.
        with reads.reading() as session:
            work = has_due_reminders(session, now) or has_stale_devices(session, now)
        if work:
            with database.transaction() as session:
                fire_due_reminders(session, clock, settings.timezone)
                prune_stale_devices(session, now)

    found = [
        # The delivery round returns at once when nothing is due; a short interval keeps latency low.
        Timer("deliver", config.delivery_interval_seconds, lambda: deliverer.drain(max_rounds=50)),
        # Hands each chunk's deliveries, claimed as they are planned, to the delivery loop's deliverer.
        Timer("broadcasts", 1.0, lambda: plan_broadcasts(database, clock, settings.timezone, deliverer)),
        Timer("reminders", config.reminder_interval_seconds, reminders),
        # Phone numbers, receipts and read notices past their retention (service_layer/retention.py).
        Timer("retention", config.retention.interval_seconds, lambda: prune(database, config.retention, clock())),
    ]
    plans = plan_queue(database)
    if plans is not None:
        # Each turn waits for a batch's commit (or the queue's poll) itself: no pause between turns.
        found.append(Timer("plans", 0.0, plans.run))
    jpush = deliverer.providers.get("jpush")
    if jpush is not None:
        # JPush calls nobody back: its Report API is asked what was received.
        found.append(
            Timer(
                "push-receipts",
                config.push_receipt_interval_seconds,
                lambda: poll_jpush_receipts(database, jpush, clock()),
            )
        )
    return found


def check_providers(_settings: Settings, _database: Database, args: list[str]) -> int:
    """Check the SMS and push provider settings; print the provider chains in force."""
    parser = argparse.ArgumentParser(
        prog="linli-notifications providers",
        description=(
            "Check the SMS and push provider settings (SMS_PROVIDERS, PUSH_PROVIDERS and each "
            "provider's credentials) without sending anything, and print the provider chains in "
            "force. Exit status 0 when they are complete, 2 (naming what is missing) when not."
        ),
    )
    parser.parse_args(args)
    try:
        config = load_config()
        build_providers(config)
    except ConfigError as exc:
        print(f"linli-notifications: {exc}", file=sys.stderr)
        return 2
    print(
        f"linli-notifications: sms via {' > '.join(config.sms_providers)}; push via {', '.join(config.push_providers)}"
    )
    return 0


def event_plans(_settings: Settings, database: Database, args: list[str]) -> int:
    """List the event plans set aside (their expansion kept failing), or give them back to the
    expander once what failed them is fixed (service_layer/deferred.py)."""
    parser = argparse.ArgumentParser(
        prog="linli-notifications plans",
        description="Event plans set aside after failed expansions: list them, or retry them.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the plans set aside, as JSON lines (id, planned_at, tries, failed_at, error)")
    retry = sub.add_parser("retry", help="give the plans set aside back to the expander")
    retry.add_argument("--id", type=int, help="this plan only")
    parsed = parser.parse_args(args)
    if parsed.action == "list":
        for plan in set_aside(database):
            print(json.dumps(plan, default=str, ensure_ascii=False))
        return 0
    count = retry_set_aside(database, parsed.id)
    print(f"linli-notifications: {count} plan(s) given back to the expander")
    return 0 if count or parsed.id is None else 1


def make_vapid_keys(_settings: Settings, _database: Database, args: list[str]) -> int:
    """Make the VAPID key pair of the `webpush` provider: the private key to a file (PEM, mode 0600;
    an existing file is kept), and the settings that go with it printed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from linli_notifications.adapters.providers.webpush import VapidKeys

    parser = argparse.ArgumentParser(
        prog="linli-notifications vapid-keys",
        description="Make a VAPID key pair for Web Push (kept if the file exists) and print its settings.",
    )
    parser.add_argument("path", type=Path, help="where the private key is kept (PEM)")
    path = parser.parse_args(args).path
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        print(f"linli-notifications: {path} is not an elliptic-curve key", file=sys.stderr)
        return 2
    print(f"VAPID_PRIVATE_KEY_FILE={path}")
    print(f"VAPID_PUBLIC_KEY={VapidKeys(key, '').public_key}")
    return 0


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    timers=timers,
    commands={"providers": check_providers, "vapid-keys": make_vapid_keys, "plans": event_plans},
    check_settings=check_settings,
    # A batch of events keeps its intents, rows and snapshots alive until it is planned: without
    # this, collections mid-batch (and full ones over the whole start-up heap) were about a sixth
    # of the consumer's CPU on a burst of events.
    worker_gc_threshold=10_000,
    # A batch of events is read and written with a fixed number of statements (the issue book, the
    # planning's look-ups, one insert of every notice and delivery, the inbox claim) and one commit:
    # batches of 1,000 share those among twice the events (EVENTS_BATCH_SIZE and EVENTS_PREFETCH
    # still decide when set).
    events_batch_size=1000,
    events_prefetch=2000,
)
