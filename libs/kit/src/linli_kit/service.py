"""What a service declares about itself, and the command line every service shares.

linli-<service> migrate        apply the service's Alembic migrations
linli-<service> worker         run relay, consumer and timers (with probes on --health-port)
linli-<service> check-config   print the settings in force, or what is wrong with them
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from linli_kit import migrations
from linli_kit.config import (
    DEFAULT_EVENTS_BATCH_SIZE,
    DEFAULT_EVENTS_PREFETCH,
    ConfigError,
    Settings,
    load_settings,
)
from linli_kit.db import Database
from linli_kit.events.consumer import AnyHandler
from linli_kit.events.topology import describe_brokers
from linli_kit.logs import configure_logging
from linli_kit.tables import MessagingTables
from linli_kit.web import broker_check
from linli_kit.worker import Timer, Worker

# A service's own command: its settings, its database, the arguments after its name; the exit status.
Command = Callable[[Settings, Database, list[str]], int]


@dataclass
class ServiceDefinition:
    name: str
    metadata: MetaData
    messaging: MessagingTables
    migrations_dir: Path
    handlers: Callable[[Settings, Database], dict[str, AnyHandler]] = lambda _s, _d: {}
    timers: Callable[[Settings, Database], list[Timer]] = lambda _s, _d: []
    commands: dict[str, Command] = field(default_factory=dict)
    # The service's own settings, read and checked by `check-config` (raise ConfigError naming them).
    check_settings: Callable[[Settings], object] | None = None
    # The worker process's garbage collector tuned for batches of events (`tune_gc_for_batches`):
    # the young generation's threshold, or None for Python's defaults.
    worker_gc_threshold: int | None = None
    # The consumer's batch and prefetch for this service when EVENTS_BATCH_SIZE / EVENTS_PREFETCH
    # are not set: a service whose batch handlers cost a fixed number of statements per batch
    # gains from larger batches (those statements, and the commit, shared by more events).
    events_batch_size: int = DEFAULT_EVENTS_BATCH_SIZE
    events_prefetch: int = DEFAULT_EVENTS_PREFETCH

    def settings(self) -> Settings:
        return load_settings(self.name, events_batch_size=self.events_batch_size, events_prefetch=self.events_prefetch)

    def build_worker(self, settings: Settings, database: Database) -> Worker:
        return Worker(
            settings,
            database,
            self.messaging,
            handlers=self.handlers(settings, database),
            timers=self.timers(settings, database),
            gc_young_threshold=self.worker_gc_threshold,
        )


def rebuild_counts_command(
    service: str, rebuild: Callable[[Session, Settings], int], counted: str, doc: str
) -> Command:
    """A service's `rebuild-counts` command: its read models of counts built again from the history,
    in one transaction (writers wait while it runs). `rebuild` builds them and answers how many
    `counted` things it read; `doc` is the command's help (first line the summary)."""
    summary, _, details = doc.partition("\n")

    def command(settings: Settings, database: Database, args: list[str]) -> int:
        argparse.ArgumentParser(
            prog=f"linli-{service} rebuild-counts",
            description=f"{summary}\n{textwrap.dedent(details)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        ).parse_args(args)
        started = time.perf_counter()
        with database.transaction() as session:
            amount = rebuild(session, settings)
        elapsed = time.perf_counter() - started
        print(f"linli-{service}: counts of {amount} {counted} built in {settings.timezone} in {elapsed:.1f} s")
        return 0

    command.__doc__ = doc
    return command


def service_main(definition: ServiceDefinition, argv: list[str] | None = None) -> int:
    shared = {
        "migrate": "apply the service's database migrations (Alembic) up to the newest",
        "worker": "run the worker: outbox relay, event consumer and timers, until SIGTERM",
        "check-config": "check the settings, the database and the broker; say what is wrong",
        "declare": "declare the service's queue and its bindings on the broker (idempotent)",
    }
    # A command's help is the first paragraph of its docstring.
    own = {
        name: " ".join((command.__doc__ or "").strip().split("\n\n")[0].split())
        for name, command in definition.commands.items()
    }
    parser = argparse.ArgumentParser(
        prog=f"linli-{definition.name}",
        description=f"The {definition.name} service's commands. Settings come from the environment "
        f"(see services/{definition.name}/README.md, or gateway/README.md).",
        epilog="exit status: 0 done, 1 a check or command failed, 2 bad configuration or usage. "
        f"`linli-{definition.name} COMMAND --help` tells more of a command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help=shared["migrate"], description=shared["migrate"])
    worker = sub.add_parser("worker", help=shared["worker"], description=shared["worker"])
    worker.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("WORKER_HEALTH_PORT", "0")) or None,
        help="serve /healthz, /readyz and /metrics on this port (default: WORKER_HEALTH_PORT, else none)",
    )
    sub.add_parser("check-config", help=shared["check-config"], description=shared["check-config"])
    sub.add_parser("declare", help=shared["declare"], description=shared["declare"])
    for name, text in own.items():
        sub.add_parser(name, help=text or None, add_help=False)
    # A service's own commands parse their own options: hand them whatever follows their name.
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in definition.commands:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = definition.settings()
    except ConfigError as exc:
        print(f"linli-{definition.name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.service, level=settings.log_level, json_format=settings.log_json)
    database = Database(settings.database_url)
    if args.command == "migrate":
        migrations.upgrade(definition.migrations_dir, settings.database_url)
        print(f"linli-{definition.name}: database at head")
        return 0
    if args.command == "check-config":
        if definition.check_settings is not None:
            try:
                definition.check_settings(settings)
            except ConfigError as exc:
                print(f"linli-{definition.name}: {exc}", file=sys.stderr)
                return 2
        return _check(definition.name, settings, database)
    if args.command == "declare":
        consumer = definition.build_worker(settings, database).consumer
        if consumer is not None:
            consumer.declare()
        return 0
    if args.command == "worker":
        definition.build_worker(settings, database).serve_forever(args.health_port)
        return 0
    return definition.commands[args.command](settings, database, rest)


def _check(name: str, settings: Settings, database: Database) -> int:
    problems = []
    try:
        database.ping()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.append(f"database unreachable at {database.engine.url.render_as_string()}: {exc}")
    try:
        broker_check(settings.amqp_url)()
    except Exception as exc:  # noqa: BLE001
        problems.append(
            f"RabbitMQ unreachable at {describe_brokers(settings.amqp_url)} ({type(exc).__name__}); "
            "start it (rabbitmq-server -detached) or set AMQP_URL"
        )
    if problems:
        for problem in problems:
            print(f"linli-{name}: {problem}", file=sys.stderr)
        return 1
    print(
        f"linli-{name}: configuration ok (database {database.engine.url.get_backend_name()}, "
        f"exchange {settings.bus.exchange})"
    )
    return 0
