"""How the meetings service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path

from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_meetings import SERVICE
from linli_meetings.adapters.tables import messaging, metadata, replica
from linli_meetings.service_layer.candidates import issue_handlers

definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica), **issue_handlers()},
)
