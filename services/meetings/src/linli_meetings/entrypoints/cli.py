"""`linli-meetings`: the meetings service's command line (migrate, worker, check-config, rebuild-counts,
declare).

The commands are the kit's (`linli_kit.service.service_main`), which runs them; this module gives
each its complete `--help` for this service (what it does here, its options, the environment it
reads), answering help and usage errors before anything connects to a database or a broker.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from linli_kit.service import service_main
from linli_meetings.definition import definition

DESCRIPTION = """\
The meetings service of Linli: bench, pavilion and round-table meetings, their agenda, people and
attendance, motions and votes, decisions and action items, rules of procedure and conventions.

The web process is gunicorn: gunicorn -c python:linli_kit.gunicorn_conf \\
    'linli_meetings.entrypoints.web:create_app()'
"""

ENVIRONMENT = """\
environment (every command):
  MEETINGS_DATABASE_URL, DATABASE_URL  postgresql://... or sqlite:///... (default: a SQLite file
                                       $LINLI_DATA_DIR/meetings.db; LINLI_DATA_DIR default ./var)
  AMQP_URL                             RabbitMQ (default amqp://guest:guest@127.0.0.1:5672/%2F)
  EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE, QUEUE_PREFIX
                                       exchange and queue names (default linli.events, linli.dead, none)
  EVENTS_DELIVERY_LIMIT, EVENTS_PREFETCH, EVENTS_BATCH_SIZE, OUTBOX_BATCH_SIZE, OUTBOX_IDLE_SECONDS
                                       consumer and outbox relay tuning
  OUTBOX_RETENTION_HOURS, INBOX_RETENTION_DAYS
                                       how long published events and handled-event records are
                                       kept (default 168 hours, 30 days)
  JWT_PUBLIC_KEY, JWT_PUBLIC_KEY_FILE, JWT_ISSUER
                                       verifying tokens (web process)
  LINLI_TIMEZONE                       the city's time zone (default Asia/Shanghai)
  LOG_LEVEL, LOG_JSON                  logging (default INFO, JSON lines)

exit status: 0 done; 1 a check or command failed (check-config: something unreachable; migrate:
the database unreachable or a migration failed); 2 bad arguments or configuration.
"""

COMMANDS = {
    "migrate": (
        "apply the database migrations",
        "Bring the meetings database (PostgreSQL or SQLite) to the latest Alembic revision; "
        "creates a SQLite file if needed. Run before starting the web process or the worker.",
    ),
    "worker": (
        "run the worker: outbox relay, event consumer, timers",
        "Run until SIGTERM or SIGINT: publish the outbox to RabbitMQ (meetings.* events), consume "
        "directory.* events (the replica of streets and communities) and issues.issue.* events "
        "(candidate agenda items), prune published outbox rows and old inbox rows, and every "
        "minute announce the occurrences of recurring meetings that have come within 14 days of "
        "their start.",
    ),
    "check-config": (
        "check the configuration, the database and the broker",
        "Read the settings (exit 2 naming each bad variable), then reach the database and RabbitMQ; "
        "print what is in force and exit 0, or what is unreachable and exit 1.",
    ),
    "rebuild-counts": (
        "build the statistics' counts again from the history",
        "Delete and build again, in one transaction (writers wait), the counts per community, street "
        "and month that GET /stats adds up. Migration 0012 builds them and every change keeps them "
        "(a community the directory moves to another street takes its counts along); run this after "
        "editing the tables by hand, or to check them (the same rows come out).",
    ),
    "declare": (
        "declare the service's queue and its bindings",
        "Declare the exchanges, the meetings.events quorum queue bound to the event types the "
        "worker consumes, and its dead-letter queue, then exit (the worker also does it on start).",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"linli-{definition.name}",
        description=DESCRIPTION,
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, description) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, width=96),
            epilog=ENVIRONMENT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == "worker":
            command.add_argument(
                "--health-port",
                type=int,
                metavar="PORT",
                help="serve /healthz, /readyz (database and broker) and /metrics on this port "
                "(default: $WORKER_HEALTH_PORT; without either, no probes)",
            )
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    build_parser().parse_args(arguments)  # --help and usage errors end here (exit 0 / 2)
    sys.exit(service_main(definition, arguments))
