"""Accounts, codes, refresh tokens and API keys stored with SQLAlchemy."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from linli_gateway.adapters.tables import revoked_access_tokens
from linli_gateway.domain.accounts import LOCKOUT, ApiKey, LoginLockout, OneTimeCode, RefreshToken, User


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: User | OneTimeCode | RefreshToken | ApiKey | LoginLockout) -> None:
        self.session.add(entry)

    def user(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def user_by_phone(self, phone: str) -> User | None:
        return self.session.scalars(select(User).where(User.phone == phone)).first()

    def users(
        self,
        *,
        offset: int,
        limit: int,
        role: str | None = None,
        community_id: str | None = None,
        street_id: str | None = None,
        community_ids_of_street: list[str] | None = None,
        status: str | None = None,
    ) -> tuple[list[User], int]:
        query = select(User)
        if role:
            query = query.where(User.role == role)
        if status:
            query = query.where(User.status == status)
        if community_id:
            query = query.where(User.home_community_id == community_id)
        if street_id is not None:
            query = query.where(
                (User.street_id == street_id) | User.home_community_id.in_(community_ids_of_street or [])
            )
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(User.display_name, User.id).offset(offset).limit(limit)).all()
        return list(rows), total

    def users_of_organisation(self, organisation_id: str) -> list[User]:
        return list(self.session.scalars(select(User).where(User.organisation_id == organisation_id)))

    def lockout(self, user_id: str, client: str) -> LoginLockout | None:
        return self.session.scalars(
            select(LoginLockout).where(LoginLockout.user_id == user_id, LoginLockout.client == client).with_for_update()
        ).first()

    def lift_lockouts(self, user_id: str, client: str | None = None) -> int:
        """Forget the failed logins of an account (from one address, or from all); how many were kept."""
        query = delete(LoginLockout).where(LoginLockout.user_id == user_id)
        if client is not None:
            query = query.where(LoginLockout.client == client)
        return self.session.execute(query).rowcount or 0

    def recent_codes(self, phone: str, since: datetime) -> list[OneTimeCode]:
        return list(
            self.session.scalars(select(OneTimeCode).where(OneTimeCode.phone == phone, OneTimeCode.created_at > since))
        )

    def latest_code(self, phone: str, purpose: str) -> OneTimeCode | None:
        return self.session.scalars(
            select(OneTimeCode)
            .where(OneTimeCode.phone == phone, OneTimeCode.purpose == purpose)
            .order_by(OneTimeCode.created_at.desc())
            .with_for_update()
        ).first()

    def refresh_token(self, token_id: str) -> RefreshToken | None:
        return self.session.scalars(select(RefreshToken).where(RefreshToken.id == token_id).with_for_update()).first()

    def revoke_family(self, family_id: str, now: datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_user_tokens(self, user_id: str, now: datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_access_token(self, jti: str, expires_at: datetime) -> None:
        exists = self.session.scalar(select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.jti == jti))
        if exists is None:
            self.session.execute(insert(revoked_access_tokens).values(jti=jti, expires_at=expires_at))

    def prune_revocations(self, now: datetime) -> None:
        self.session.execute(delete(revoked_access_tokens).where(revoked_access_tokens.c.expires_at < now))
        self.session.execute(delete(OneTimeCode).where(OneTimeCode.created_at < now - timedelta(days=1)))
        self.session.execute(delete(LoginLockout).where(LoginLockout.updated_at < now - LOCKOUT))

    def api_key(self, key_id: str) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def api_keys(self) -> list[ApiKey]:
        return list(self.session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
