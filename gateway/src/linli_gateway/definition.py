"""How the gateway plugs into the shared runtime: tables, migrations, its own commands."""

from __future__ import annotations

from pathlib import Path

from linli_gateway import SERVICE
from linli_gateway.adapters.tables import messaging, metadata
from linli_gateway.service_layer.directory import republish_directory
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_gateway.settings import load_gateway_settings
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.keys import ensure_keypair
from linli_kit.service import ServiceDefinition


def _republish(_settings: Settings, database: Database, _args: list[str]) -> int:
    count = republish_directory(GatewayUnitOfWork(database))
    print(f"linli-gateway: {count} directory events written to the outbox; the worker publishes them")
    return 0


def _init_keys(settings: Settings, _database: Database, _args: list[str]) -> int:
    private = load_gateway_settings(settings).private_key_file
    made = ensure_keypair(private, settings.jwt_public_key_file)
    print(f"linli-gateway: {'generated' if made else 'kept'} token key pair at {private}")
    return 0


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    commands={"republish-directory": _republish, "init-keys": _init_keys},
)
