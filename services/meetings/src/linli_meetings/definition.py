"""How the meetings service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path

from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_kit.worker import Timer
from linli_meetings import SERVICE
from linli_meetings.adapters.tables import messaging, metadata, replica
from linli_meetings.service_layer.candidates import issue_handlers
from linli_meetings.service_layer.meetings import announce_due
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


def timers(settings: Settings, database: Database) -> list[Timer]:
    def announce() -> None:
        announce_due(MeetingsUnitOfWork(database, timezone=settings.timezone))

    return [Timer("announce-occurrences", 60.0, announce)]


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica), **issue_handlers()},
    timers=timers,
)
