"""How the notifications service plugs into the shared runtime: tables, migrations, event handlers."""

from pathlib import Path

from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition
from linli_notifications import SERVICE
from linli_notifications.adapters.tables import messaging, metadata, replica

definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=lambda _settings, _database: {**replica_handlers(replica)},
)
