"""How the meetings service plugs into the shared runtime: tables, migrations, event handlers."""

import time
from pathlib import Path

from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_kit.worker import Timer
from linli_meetings import SERVICE
from linli_meetings.adapters import counts
from linli_meetings.adapters.tables import messaging, metadata, replica
from linli_meetings.service_layer.candidates import issue_handlers
from linli_meetings.service_layer.meetings import announce_due
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


def timers(settings: Settings, database: Database) -> list[Timer]:
    def announce() -> None:
        announce_due(MeetingsUnitOfWork(database, timezone=settings.timezone))

    return [Timer("announce-occurrences", 60.0, announce)]


def rebuild_counts(settings: Settings, database: Database, args: list[str]) -> int:
    """Build the statistics' counts again from the history (adapters/counts.py).

    Migration 0012 builds them and every change keeps them; a street's rows follow the street the
    directory gave each community when its meetings changed, so after communities move to another
    street (or to repair a database edited by hand) build them again. Writers wait while it runs
    (one transaction)."""
    del settings, args  # the command line was parsed in cli.py
    started = time.perf_counter()
    with database.transaction() as session:
        counted = counts.rebuild(session)
    print(f"linli-meetings: counts of {counted} meeting(s) built in {time.perf_counter() - started:.1f} s")
    return 0


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica), **issue_handlers()},
    timers=timers,
    commands={"rebuild-counts": rebuild_counts},
)
