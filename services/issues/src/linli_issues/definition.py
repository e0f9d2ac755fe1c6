"""How the issues service plugs into the shared runtime: tables, migrations, event handlers, timers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from linli_issues import SERVICE
from linli_issues.adapters.tables import messaging, metadata, replica
from linli_issues.config import load_issues_config
from linli_issues.service_layer.consultations import meeting_handlers
from linli_issues.service_layer.deadlines import close_unrated, escalate_overdue
from linli_issues.service_layer.issues import utc_now
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.events.consumer import Handler
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_kit.worker import Timer


def handlers(_settings: Settings, _database: Database) -> dict[str, Handler]:
    return {**replica_handlers(replica), **meeting_handlers()}


def timers(_settings: Settings, database: Database, clock: Callable[[], datetime] = utc_now) -> list[Timer]:
    """Deadline escalation and auto-closing; `clock` is injectable so tests need not wait."""
    config = load_issues_config()
    return [
        Timer(
            "escalate-overdue",
            config.deadline_check_seconds,
            lambda: escalate_overdue(IssuesUnitOfWork(database), clock()),
        ),
        Timer(
            "close-unrated",
            config.deadline_check_seconds,
            lambda: close_unrated(IssuesUnitOfWork(database), clock(), config.auto_close_after),
        ),
    ]


def run_deadlines(_settings: Settings, database: Database, args: list[str]) -> int:
    """Run the deadline pass now (the worker's timer does it every minute). `--as-of` runs it as of
    another instant: a drill sees what will have escalated by then, a demo need not wait a day."""
    import argparse

    parser = argparse.ArgumentParser(prog="linli-issues run-deadlines")
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=None, help="ISO 8601 with offset")
    options = parser.parse_args(args)
    when = options.as_of or utc_now()
    if when.tzinfo is None:
        parser.error("--as-of needs a UTC offset")
    handled = escalate_overdue(IssuesUnitOfWork(database), when)
    print(f"linli-issues: {handled} overdue issue(s) reported and escalated as of {when.isoformat()}")
    return 0


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    timers=timers,
    commands={"run-deadlines": run_deadlines},
)
