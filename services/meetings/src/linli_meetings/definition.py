"""How the meetings service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path

from sqlalchemy.orm import Session

from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.events import Event
from linli_kit.events.consumer import BatchHandler, Handler
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition, rebuild_counts_command
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


rebuild_counts = rebuild_counts_command(
    SERVICE,
    lambda session, _settings: counts.rebuild(session),
    "meeting(s)",
    """Build the statistics' counts again from the history (adapters/counts.py).

    Migration 0012 builds them and every change keeps them (a community the directory moves to
    another street takes its amounts along): run it after editing the tables by hand. Writers wait
    while it runs (one transaction).
""",
)


def keeping_streets(handle: Handler) -> Handler:
    """The replica's handler of `directory.community.upserted`, moving the community's statistics
    counts to its new street's rows when the event moves it (adapters/counts.py)."""

    def moving(session: Session, event: Event) -> None:
        community_id = event.data["community_id"]
        now = counts.streets_of(session.connection(), [community_id])[community_id]
        if (event.data.get("street_id") or "") == now:
            handle(session, event)  # not a move (nor a community new with a street): nothing to move
        else:
            counts.move_community(session, community_id, lambda: handle(session, event))

    return moving


def handlers(_settings: Settings, _database: Database) -> dict[str, Handler | BatchHandler]:
    kept: dict[str, Handler | BatchHandler] = {**replica_handlers(replica), **issue_handlers()}
    kept["directory.community.upserted"] = keeping_streets(replica_handlers(replica)["directory.community.upserted"])
    return kept


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    timers=timers,
    commands={"rebuild-counts": rebuild_counts},
)
