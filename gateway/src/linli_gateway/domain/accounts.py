"""Accounts, one-time codes, refresh tokens and API keys: the rules, with no framework or storage.

Who may create whom follows the city's hierarchy: a city admin creates street officials (and
anyone else); a street official creates community staff, property managers and bureau accounts
for the communities of their street; community staff register and approve the residents of their
community, including elderly residents with no smartphone (an account with no password).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from linli_kit.auth import Principal, Role
from linli_kit.errors import Label, Text

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
CODE_TTL = timedelta(minutes=5)
CODE_MAX_ATTEMPTS = 5
CODE_RESEND_AFTER = timedelta(seconds=60)
CODES_PER_PHONE_PER_HOUR = 5
REFRESH_TTL = timedelta(days=30)
MIN_PASSWORD_LENGTH = 8

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class AccountError(Exception):
    """A rule of accounts was broken; `kind` says which HTTP answer fits."""

    def __init__(self, kind: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # invalid | forbidden | conflict | unauthorized | locked | not_found | pending
        self.message = message
        self.field_name = field_name


def normalise_phone(raw: str) -> str:
    """E.164. A bare 11-digit mainland mobile number gets +86."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if _CN_MOBILE.match(digits):
        return "+86" + digits
    if digits.startswith("0086"):
        digits = "+" + digits[2:]
    if _E164.match(digits):
        return digits
    raise AccountError("invalid", "not a valid mobile number", "phone")


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "invalid",
            Text("at least {MIN_PASSWORD_LENGTH} characters", MIN_PASSWORD_LENGTH=MIN_PASSWORD_LENGTH),
            "password",
        )
    if password.isdigit() or password.isalpha():
        raise AccountError("invalid", "mix letters with digits or symbols", "password")


@dataclass
class User:
    phone: str | None
    display_name: str
    role: str
    street_id: str | None = None
    community_ids: list[str] = field(default_factory=list)
    organisation_id: str | None = None
    organisation_name: str | None = None
    locale: str = "zh-CN"
    status: str = "active"  # active | pending | disabled
    password_hash: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    revision: int = 1
    created_at: datetime | None = None
    # The one community of a resident or staff member (indexed, for "residents of my community").
    home_community_id: str | None = None
    # Access tokens issued before this instant are refused (disabled, password reset, logged out
    # everywhere): the sessions end at once, not when their tokens expire.
    tokens_not_before: datetime | None = None

    def __post_init__(self) -> None:
        self.home_community_id = self.community_ids[0] if len(self.community_ids) == 1 else None

    def touch(self) -> None:
        self.revision += 1

    # --- logging in -------------------------------------------------------------------------
    def end_sessions(self, now: datetime) -> None:
        self.tokens_not_before = now

    def check_can_log_in(self, method: str = "password") -> None:
        """`method`: "password", or "code" (an SMS code: also for an account with no password, such
        as an elderly resident registered by staff)."""
        wrong = f"wrong phone number or {method}"
        if self.status == "pending":
            raise AccountError("pending", "awaiting approval by community staff")
        if self.status != "active":
            raise AccountError("unauthorized", wrong)
        if method == "password" and self.password_hash is None:
            raise AccountError("unauthorized", wrong)

    def claims_scope(self) -> dict[str, object]:
        return {
            "street_id": self.street_id,
            "community_ids": list(self.community_ids),
            "organisation_id": self.organisation_id,
        }


@dataclass
class LoginLockout:
    """Failed logins to one account from one client address. Repeated failures lock the account out
    for that address only: a stranger guessing elsewhere cannot lock its owner out, and the owner's
    mistakes do not open the door to the stranger. Failures older than the lockout are forgotten."""

    user_id: str
    client: str
    failures: int = 0
    locked_until: datetime | None = None
    updated_at: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def check(self, now: datetime) -> None:
        if self.is_locked(now):
            raise AccountError("locked", "too many failed attempts from here; try again later")

    def record_failure(self, now: datetime) -> None:
        if self.updated_at is not None and now - self.updated_at > LOCKOUT:
            self.failures = 0
        self.failures += 1
        self.updated_at = now
        if self.failures >= MAX_FAILED_LOGINS:
            self.locked_until = now + LOCKOUT
            self.failures = 0


def check_may_create(
    creator: Principal, role: str, *, street_of: dict[str, str], street_id: str | None, community_ids: list[str]
) -> None:
    """May `creator` create an account of `role` with this scope? `street_of`: community -> street."""
    if creator.role == Role.CITY_ADMIN:
        return
    if creator.role == Role.STREET_OFFICIAL:
        if role in {Role.CITY_ADMIN, Role.STREET_OFFICIAL}:
            raise AccountError("forbidden", "only a city admin creates street officials")
        if street_id is not None and street_id != creator.street_id:
            raise AccountError("forbidden", "outside your street")
        if any(street_of.get(c) != creator.street_id for c in community_ids):
            raise AccountError("forbidden", "a community outside your street")
        return
    if creator.role == Role.COMMUNITY_STAFF:
        if role != Role.RESIDENT:
            raise AccountError("forbidden", "community staff register residents only")
        if not community_ids or any(c not in creator.community_ids for c in community_ids):
            raise AccountError("forbidden", "outside your community")
        return
    raise AccountError("forbidden", Text("role {role} may not create accounts", role=Label("role", creator.role)))


def check_scope_shape(
    role: str, *, street_id: str | None, community_ids: list[str], organisation_id: str | None
) -> None:
    """Each role is bound to its scope (DESIGN section 4)."""
    if role in {Role.RESIDENT, Role.COMMUNITY_STAFF} and len(community_ids) != 1:
        raise AccountError("invalid", "exactly one community", "community_ids")
    if role == Role.STREET_OFFICIAL and not street_id:
        raise AccountError("invalid", "a street official needs a street", "street_id")
    if role == Role.PROPERTY_MANAGER and (not community_ids or not organisation_id):
        raise AccountError(
            "invalid",
            "a property manager needs a company and the communities it serves",
            "organisation_id" if not organisation_id else "community_ids",
        )
    if role == Role.AGENCY and not organisation_id:
        raise AccountError("invalid", "a bureau account needs its bureau", "organisation_id")


# --- one-time codes ----------------------------------------------------------------------------
def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class OneTimeCode:
    phone: str
    code_hash: str
    purpose: str
    expires_at: datetime
    created_at: datetime
    attempts: int = 0
    used: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def verify(self, code: str, now: datetime) -> None:
        if self.used or self.expires_at <= now:
            raise AccountError("invalid", "the code has expired; ask for a new one", "code")
        if self.attempts >= CODE_MAX_ATTEMPTS:
            raise AccountError("invalid", "too many wrong codes; ask for a new one", "code")
        self.attempts += 1
        if not hmac.compare_digest(self.code_hash, hash_secret(f"{self.phone}:{code}")):
            raise AccountError("invalid", "wrong code", "code")
        self.used = True


def check_code_rate(recent: list[OneTimeCode], now: datetime) -> None:
    """One code a minute and a few an hour per phone number, so nobody floods a phone with SMS."""
    if any(c.created_at > now - CODE_RESEND_AFTER for c in recent):
        raise AccountError("locked", "a code was sent less than a minute ago")
    if len([c for c in recent if c.created_at > now - timedelta(hours=1)]) >= CODES_PER_PHONE_PER_HOUR:
        raise AccountError("locked", "too many codes for this number; try again in an hour")


# --- refresh tokens ------------------------------------------------------------------------------
@dataclass
class RefreshToken:
    """Opaque `<id>.<secret>`; only the secret's hash is stored. Rotated at every use; a token used
    twice means it was stolen, so its whole family (every descendant) is revoked."""

    user_id: str
    family_id: str
    secret_hash: str
    expires_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    @staticmethod
    def issue(user_id: str, now: datetime, family_id: str | None = None) -> tuple[RefreshToken, str]:
        secret = secrets.token_urlsafe(32)
        token = RefreshToken(
            user_id=user_id,
            family_id=family_id or str(uuid.uuid4()),
            secret_hash=hash_secret(secret),
            expires_at=now + REFRESH_TTL,
        )
        return token, f"{token.id}.{secret}"

    @staticmethod
    def split(presented: str) -> tuple[str, str]:
        token_id, _, secret = (presented or "").partition(".")
        if not token_id or not secret:
            raise AccountError("unauthorized", "invalid refresh token")
        return token_id, secret

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))


# --- API keys --------------------------------------------------------------------------------------
@dataclass
class ApiKey:
    """A third-party client's key (`lk_<id>_<secret>`), scoped to a street or communities."""

    name: str
    created_by: str
    secret_hash: str
    street_id: str | None = None
    community_ids: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    revoked_at: datetime | None = None
    created_at: datetime | None = None

    @staticmethod
    def issue(name: str, created_by: str, street_id: str | None, community_ids: list[str]) -> tuple[ApiKey, str]:
        secret = secrets.token_urlsafe(24)
        key = ApiKey(
            name=name,
            created_by=created_by,
            secret_hash=hash_secret(secret),
            street_id=street_id,
            community_ids=community_ids,
        )
        return key, f"lk_{key.id}_{secret}"

    @staticmethod
    def split(presented: str) -> tuple[str, str]:
        parts = (presented or "").split("_", 2)
        if len(parts) != 3 or parts[0] != "lk":
            raise AccountError("unauthorized", "invalid API key")
        return parts[1], parts[2]

    def matches(self, secret: str) -> bool:
        return self.revoked_at is None and hmac.compare_digest(self.secret_hash, hash_secret(secret))
