"""How the activities service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path
from zoneinfo import ZoneInfo

from linli_activities import SERVICE
from linli_activities.adapters import counts
from linli_activities.adapters.tables import messaging, metadata, replica
from linli_activities.config import load_activities_config
from linli_activities.service_layer.activities import announce_due, send_due_reminders
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition, rebuild_counts_command
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


rebuild_counts = rebuild_counts_command(
    SERVICE,
    lambda session, settings: counts.rebuild(session, ZoneInfo(settings.timezone)),
    "row(s)",
    """Build the statistics' counts per community, street and month again from the history.

    /stats adds up counts kept with every change (per community and month of LINLI_TIMEZONE, per
    street, activities held once per street and city, the people checked in by the first month
    they appear in) instead of aggregating the history. A database that had activities, check-ins,
    bookings, groups or visits before the counts existed (migration 0015), or a city whose time
    zone changed, needs them built once: until then /stats reads the history, exactly but slowly.
    A street's rows follow the street the directory gave each community when its rows changed:
    after communities move to another street, build them again. Writers wait while it runs (one
    transaction).

    Exit status: 0 when built; 1 when the database cannot be reached.
""",
)


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica)},
    timers=timers,
    commands={"rebuild-counts": rebuild_counts},
)
