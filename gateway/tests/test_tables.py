"""The gateway's schema: every instant read back aware on SQLite as on PostgreSQL, and the migrations
still describe exactly the tables the code uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, create_engine

from linli_gateway.adapters.tables import messaging, metadata
from linli_gateway.definition import definition
from linli_gateway.domain.accounts import ApiKey, LoginLockout, OneTimeCode, RefreshToken, User
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_kit.tables import UtcDateTime

# The outbox and inbox are the kit's tables, with its own rules for them.
KIT_TABLES = {messaging.outbox.name, messaging.inbox.name}


def test_every_instant_of_the_gateway_is_a_utc_datetime():
    instants = [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        if table.name not in KIT_TABLES
        for column in table.columns
        if isinstance(column.type, DateTime | UtcDateTime)
    ]
    assert len(instants) == 12, instants
    plain = [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        if table.name not in KIT_TABLES
        for column in table.columns
        if isinstance(column.type, DateTime)
    ]
    assert plain == []


def test_sqlite_hands_back_aware_instants_that_compare_with_now(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(definition.migrations_dir, url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()

    database = Database(url)
    now = datetime.now(UTC)
    beijing = timezone(timedelta(hours=8))
    user = User(phone="+8613800138000", display_name="Yang", role="resident", created_at=now)
    lockout = LoginLockout(
        user_id=user.id, client="203.0.113.9", locked_until=(now + timedelta(minutes=15)).astimezone(beijing)
    )
    code = OneTimeCode(
        phone=user.phone, code_hash="h", purpose="signup", expires_at=now + timedelta(minutes=5), created_at=now
    )
    token, _ = RefreshToken.issue(user.id, now)
    key, _ = ApiKey.issue("hotline", user.id, None, [])
    key.created_at = now
    with GatewayUnitOfWork(database) as uow:
        uow.accounts.add(user)
        uow.session.flush()  # the refresh token refers to the user
        for entry in (code, token, key, lockout):
            uow.accounts.add(entry)
        uow.commit()

    with GatewayUnitOfWork(database) as uow:
        stored = uow.accounts.user(user.id)
        locked = uow.accounts.lockout(user.id, "203.0.113.9")
        assert locked.locked_until == now + timedelta(minutes=15) and locked.locked_until.tzinfo is not None
        assert locked.locked_until > now and stored.created_at == now
        [recent] = uow.accounts.recent_codes(user.phone, now - timedelta(hours=1))
        assert recent.created_at == now and recent.expires_at > now
        assert uow.accounts.refresh_token(token.id).expires_at > now
        assert uow.accounts.api_key(key.id).created_at.utcoffset() == timedelta(0)
        uow.accounts.revoke_access_token("jti-1", now + timedelta(minutes=1))
        uow.commit()
    database.engine.dispose()
