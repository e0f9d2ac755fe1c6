"""`linli-activities migrate | worker | check-config | declare`, each with a complete `--help`.

The commands themselves are the kit's (`linli_kit.service.service_main`), shared by every service;
this module documents them for this service (the kit's own help names no service, and says nothing
of options, exit codes or settings) and checks the activities service's own settings too.
"""

from __future__ import annotations

import argparse
import os
import sys

from linli_activities import SERVICE
from linli_activities.config import REMINDER_VARIABLE, WALKING_SPEED_VARIABLE, load_activities_config
from linli_activities.definition import definition
from linli_kit.config import ConfigError
from linli_kit.service import service_main

PROG = f"linli-{SERVICE}"

DESCRIPTION = """\
The activities service of Linli: activities, registrations and check-ins, service posts and the
15-minute circle, mutual-aid groups, the talent pool, service offerings and bookings, support
flags, and their statistics.

The web process is not a command: run
  gunicorn -c python:linli_kit.gunicorn_conf 'linli_activities.entrypoints.web:create_app()'

Settings come from the environment (all optional on a laptop):
  DATABASE_URL or ACTIVITIES_DATABASE_URL  sqlite:///... (default var/activities.db) or postgresql://...
  AMQP_URL                                 RabbitMQ (default amqp://guest:guest@127.0.0.1:5672/%2F)
  EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE, QUEUE_PREFIX   names on the broker
  JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE    the gateway's token key (default var/jwt_public.pem)
  LINLI_TIMEZONE                           the city's time zone for statistics (default Asia/Shanghai)
  ACTIVITIES_WALKING_SPEED_M_PER_MIN       walking speed for the 15-minute circle (default 80, 20-200)
  ACTIVITIES_REMINDER_MINUTES              minutes before an activity its registrants are reminded
                                           (default 1440,60; "none": no reminders)
  LOG_LEVEL, LOG_JSON                      logging
See services/activities/README.md for all of them."""

EPILOG = f"Run '{PROG} <command> --help' for what a command does, its options and its exit codes."

# command: (one line for the list, the full description of its own --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "migrate": (
        "bring the database to the newest schema (Alembic)",
        """\
Apply the service's Alembic migrations to DATABASE_URL, creating the database file on SQLite.
Safe to run again: at the newest revision it changes nothing. Run it before starting the web
process or the worker after an upgrade.

Exit status: 0 when the database is at the newest revision; 1 when the database cannot be
reached or a migration fails; 2 when the settings are invalid.""",
    ),
    "worker": (
        "run the worker: outbox relay, event consumer and the reminders timer",
        """\
Run the worker until SIGTERM or SIGINT: it relays the service's outbox to RabbitMQ (the
activities.* events, published in commit order, each marked only after the broker confirmed it)
and consumes directory.street/community/compound.upserted into the local directory replica that
scope rules and the 15-minute circle read. Every 30 seconds a timer publishes
activities.activity.reminder for the activities whose reminder has come due
(ACTIVITIES_REMINDER_MINUTES before the start). While the database or the broker is away it keeps
trying, with back-off; nothing is lost meanwhile.

Exit status: 0 after a clean stop; 2 when the settings are invalid.""",
    ),
    "check-config": (
        "check the settings, the database and the broker",
        f"""\
Check the settings (the shared ones, {WALKING_SPEED_VARIABLE} and {REMINDER_VARIABLE}), then that the database and
RabbitMQ answer; print what is in force, or each problem on standard error.

Exit status: 0 when everything is usable; 1 when the database or the broker does not answer;
2 when a setting is invalid.""",
    ),
    "declare": (
        "declare the service's queue and bindings on RabbitMQ",
        """\
Declare the exchanges, the service's quorum queue (<QUEUE_PREFIX>activities.events) bound to the
events it consumes, and its dead-letter queue. The worker does this itself when it starts; this
command is for preparing a broker ahead of a deployment.

Exit status: 0 when declared; 1 when RabbitMQ does not answer; 2 when the settings are invalid.""",
    ),
    "rebuild-counts": (
        "build the statistics' counts again from the history",
        """\
Build the counts /stats adds up (per community, street and month of LINLI_TIMEZONE) again from
the history, in one transaction (writers wait meanwhile). Needed once for a database that had
activities, check-ins, bookings, groups or visits before the counts existed (migration 0015), after
a change of the city's time zone, or after communities moved to another street; until then /stats
reads the history, exactly but slowly.

Exit status: 0 when built; 1 when the database cannot be reached; 2 when the settings are invalid.""",
    ),
}


def parser() -> argparse.ArgumentParser:
    """The documented command line: its `--help` texts and its usage errors."""
    root = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="<command>", title="commands")
    for name, (summary, description) in COMMANDS.items():
        command = sub.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if name == "worker":
            command.add_argument(
                "--health-port",
                type=int,
                metavar="PORT",
                default=int(os.environ.get("WORKER_HEALTH_PORT", "0")) or None,
                help="serve /healthz, /readyz and /metrics on this port (default: WORKER_HEALTH_PORT, or none)",
            )
    return root


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)  # --help, and usage errors (exit 2), as documented above
    if args.command == "check-config":
        try:
            activities = load_activities_config()
        except ConfigError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        print(f"{PROG}: {WALKING_SPEED_VARIABLE}={activities.walking.speed_m_per_min:g}")
        leads = ",".join(str(m) for m in activities.reminder_minutes) or "none"
        print(f"{PROG}: {REMINDER_VARIABLE}={leads}")
    return service_main(definition, argv)


def main() -> None:
    sys.exit(run(sys.argv[1:]))
