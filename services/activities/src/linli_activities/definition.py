"""How the activities service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path

from linli_activities import SERVICE
from linli_activities.adapters.tables import messaging, metadata, replica
from linli_activities.config import load_activities_config
from linli_activities.service_layer.activities import announce_due, send_due_reminders
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_kit.worker import Timer

REMINDER_INTERVAL_SECONDS = 30.0


def timers(settings: Settings, database: Database) -> list[Timer]:
    config = load_activities_config()

    def uow() -> ActivitiesUnitOfWork:
        return ActivitiesUnitOfWork(database, reminder_minutes=config.reminder_minutes, timezone=settings.timezone)

    def remind() -> None:
        # Occurrences coming within two weeks are announced first, so their reminders follow.
        announce_due(uow())
        send_due_reminders(uow())

    return [Timer("activity-reminders", REMINDER_INTERVAL_SECONDS, remind)]


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica)},
    timers=timers,
)
