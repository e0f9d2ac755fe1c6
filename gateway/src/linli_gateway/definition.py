"""How the gateway plugs into the shared runtime: tables, migrations, its own commands."""

from __future__ import annotations

import sys
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
from linli_kit.worker import Timer


def _republish(_settings: Settings, database: Database, _args: list[str]) -> int:
    count = republish_directory(GatewayUnitOfWork(database))
    print(f"linli-gateway: {count} directory events written to the outbox; the worker publishes them")
    return 0


def _init_keys(settings: Settings, _database: Database, _args: list[str]) -> int:
    private = load_gateway_settings(settings).private_key_file
    made = ensure_keypair(private, settings.jwt_public_key_file)
    print(f"linli-gateway: {'generated' if made else 'kept'} token key pair at {private}")
    return 0


def _create_admin(settings: Settings, database: Database, args: list[str]) -> int:
    """The first city admin, who then creates everyone else (idempotent for the same phone)."""
    import argparse

    from linli_gateway.domain.accounts import AccountError
    from linli_gateway.service_layer.accounts import Identity, register_user
    from linli_kit.auth import Principal, Role, TokenSigner

    parser = argparse.ArgumentParser(prog="linli-gateway create-admin")
    parser.add_argument("--phone", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--name", default="City administrator")
    options = parser.parse_args(args)
    bootstrap = Principal(user_id="bootstrap", role=Role.CITY_ADMIN)
    identity = Identity(TokenSigner(load_gateway_settings(settings).private_key(), issuer=settings.jwt_issuer))
    try:
        user = register_user(
            GatewayUnitOfWork(database),
            bootstrap,
            identity,
            display_name=options.name,
            role=Role.CITY_ADMIN,
            phone=options.phone,
            password=options.password,
        )
    except AccountError as exc:
        if exc.kind == "conflict":
            print("linli-gateway: an account with this phone already exists; nothing changed")
            return 0
        print(f"linli-gateway: {exc.message}", file=sys.stderr)
        return 2
    print(f"linli-gateway: city admin {user.display_name} created (id {user.id})")
    return 0


def _timers(_settings: Settings, database: Database) -> list[Timer]:
    from datetime import UTC, datetime

    from linli_gateway.service_layer.accounts import prune

    return [Timer("prune-accounts", 600, lambda: prune(GatewayUnitOfWork(database), datetime.now(UTC)))]


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    timers=_timers,
    commands={"republish-directory": _republish, "init-keys": _init_keys, "create-admin": _create_admin},
    check_settings=load_gateway_settings,
)
