"""Use cases of identity: registering people, sign-up by SMS code, login, token refresh and logout,
approvals, profile changes and API keys. Account changes go out as `accounts.user.*` events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from linli_gateway import SERVICE
from linli_gateway.adapters.passwords import hash_password, verify_password
from linli_gateway.domain.accounts import (
    CODE_TTL,
    AccountError,
    ApiKey,
    LoginLockout,
    OneTimeCode,
    RefreshToken,
    User,
    check_code_rate,
    check_may_create,
    check_password_strength,
    check_scope_shape,
    hash_secret,
    new_code,
    normalise_phone,
)
from linli_gateway.domain.directory import ORGANISATION_KINDS_OF_ROLE, Community, Organisation, Street
from linli_gateway.service_layer.directory import may_manage_organisation, places_of
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.auth import STAFF_ROLES, Principal, Role, TokenSigner
from linli_kit.errors import Label, Text
from linli_kit.events import Event, new_event

API_CLIENT_TOKEN_TTL = timedelta(minutes=5)


@dataclass
class Identity:
    """What issuing tokens needs: the signer (private key) and a clock tests can set."""

    signer: TokenSigner
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Checks a password against its stored hash (None: an unknown number, checked against a dummy
    # hash at the same cost); the web app's runs in the bounded pool of hashing workers.
    check_password: Callable[[str | None, str], bool] = verify_password


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    token_type: str = "Bearer"


def user_event(kind: str, user: User) -> Event:
    return new_event(
        f"accounts.user.{kind}",
        {
            "user_id": user.id,
            "role": user.role,
            "display_name": user.display_name,
            "phone": user.phone,
            "locale": user.locale,
            "street_id": user.street_id,
            "community_ids": list(user.community_ids),
            "organisation_id": user.organisation_id,
            "organisation_name": user.organisation_name,
            "active": user.status == "active",
            "revision": user.revision,
        },
        producer=SERVICE,
        street_id=user.street_id,
        community_id=user.home_community_id,
    )


# --- registering people -------------------------------------------------------------------------
def _streets_of(uow: GatewayUnitOfWork, community_ids: list[str]) -> dict[str, str]:
    streets = {}
    for community_id in community_ids:
        community = uow.directory.get(Community, community_id)
        if community is None:
            raise AccountError(
                "invalid", Text("no community {community_id}", community_id=community_id), "community_ids"
            )
        streets[community_id] = community.street_id
    return streets


def register_user(
    uow: GatewayUnitOfWork,
    creator: Principal,
    identity: Identity,
    *,
    display_name: str,
    role: str,
    phone: str | None = None,
    community_ids: list[str] | None = None,
    street_id: str | None = None,
    organisation_id: str | None = None,
    organisation_name: str | None = None,
    password: str | None = None,
    locale: str = "zh-CN",
) -> User:
    """Staff register someone. The password may be left out (an elderly resident with no smartphone):
    they can still be reached by SMS, and may set a password later with a code."""
    community_ids = [str(c) for c in community_ids or []]
    check_scope_shape(role, street_id=street_id, community_ids=community_ids, organisation_id=organisation_id)
    if password is not None:
        check_password_strength(password)
    normalised = normalise_phone(phone) if phone else None
    with uow:
        streets = _streets_of(uow, community_ids)
        if street_id is not None and uow.directory.get(Street, street_id) is None:
            raise AccountError("invalid", Text("no street {street_id}", street_id=street_id), "street_id")
        check_may_create(creator, role, street_of=streets, street_id=street_id, community_ids=community_ids)
        if role in ORGANISATION_KINDS_OF_ROLE:
            organisation_name = _organisation_of_account(uow, creator, role, organisation_id or "", community_ids)
        elif role == Role.RESIDENT and organisation_id is not None:
            organisation_name = _committee_of_member(uow, creator, organisation_id, community_ids)
        elif organisation_id is not None:
            raise AccountError(
                "invalid", Text("a {role} acts for no organisation", role=Label("role", role)), "organisation_id"
            )
        if normalised and uow.accounts.user_by_phone(normalised):
            raise AccountError("conflict", "an account with this phone number exists", "phone")
        if street_id is None and role in {Role.RESIDENT, Role.COMMUNITY_STAFF} and community_ids:
            street_id = streets[community_ids[0]]
        user = User(
            phone=normalised,
            display_name=display_name,
            role=role,
            street_id=street_id,
            community_ids=community_ids,
            organisation_id=organisation_id,
            organisation_name=organisation_name,
            locale=locale,
            password_hash=hash_password(password) if password else None,
            created_at=identity.clock(),
        )
        uow.accounts.add(user)
        uow.publish(user_event("registered", user))
        uow.commit()
        return user


def _organisation_of_account(
    uow: GatewayUnitOfWork, creator: Principal, role: str, organisation_id: str, community_ids: list[str]
) -> str:
    """The registered organisation a property manager or bureau account acts for must be of the
    right kind, active, and in the creator's scope; its name comes from the register."""
    organisation = uow.directory.get(Organisation, organisation_id)
    if organisation is None:
        raise AccountError(
            "invalid",
            Text("no registered organisation {organisation_id}", organisation_id=organisation_id),
            "organisation_id",
        )
    kinds = ORGANISATION_KINDS_OF_ROLE[role]
    if organisation.kind not in kinds:
        raise AccountError(
            "invalid",
            Text(
                "a {role} acts for a {kinds}, not a {kind}",
                role=Label("role", role),
                kinds=Label("organisation_kinds_of_role", role),
                kind=Label("organisation_kind", organisation.kind),
            ),
            "organisation_id",
        )
    if not organisation.active:
        raise AccountError("invalid", "the organisation is no longer active", "organisation_id")
    places = places_of(uow, organisation)
    if role == "property_manager":
        served = {community for _street, community in places}
        missing = [c for c in community_ids if c not in served]
        if missing:
            raise AccountError(
                "invalid",
                Text("the company serves no compound in community {community_id}", community_id=missing[0]),
                "organisation_id",
            )
    elif not may_manage_organisation(creator, organisation.kind, places):
        raise AccountError("forbidden", "the organisation is outside your scope", "organisation_id")
    return organisation.name


def _committee_of_member(
    uow: GatewayUnitOfWork, creator: Principal, organisation_id: str, community_ids: list[str]
) -> str:
    """A resident may sit on the owners' committee of a compound of their own community (its members
    are owners, elected among the residents) and then act for it: accept what is assigned to it,
    record inspections, vote for it at a round table. The committee must be registered, active and
    one the creator manages; its name comes from the register."""
    organisation = uow.directory.get(Organisation, organisation_id)
    if organisation is None:
        raise AccountError(
            "invalid",
            Text("no registered organisation {organisation_id}", organisation_id=organisation_id),
            "organisation_id",
        )
    places = places_of(uow, organisation)
    # Scope before state: a body outside the creator's scope is refused before anything is said of it.
    if not may_manage_organisation(creator, organisation.kind, places):
        raise AccountError("forbidden", "the organisation is outside your scope", "organisation_id")
    if organisation.kind != "owners_committee":
        raise AccountError(
            "invalid",
            Text(
                "a resident acts only for an owners' committee, not a {kind}",
                kind=Label("organisation_kind", organisation.kind),
            ),
            "organisation_id",
        )
    if not organisation.active:
        raise AccountError("invalid", "the organisation is no longer active", "organisation_id")
    if not all(community in community_ids for _street, community in places):
        raise AccountError("invalid", "the committee is of a compound in another community", "organisation_id")
    return organisation.name


def request_code(uow: GatewayUnitOfWork, identity: Identity, *, phone: str, purpose: str, locale: str) -> datetime:
    """Send a one-time code by SMS (through the notifications service): `signup` to a number with no
    account, `reset` and `login` to one with an account. Answers the same whether or not the number
    has an account, so nobody can probe which numbers are registered."""
    normalised = normalise_phone(phone)
    now = identity.clock()
    with uow:
        check_code_rate(uow.accounts.recent_codes(normalised, now - timedelta(hours=1)), now)
        code = new_code()
        record = OneTimeCode(
            phone=normalised,
            code_hash=hash_secret(f"{normalised}:{code}"),
            purpose=purpose,
            expires_at=now + CODE_TTL,
            created_at=now,
        )
        uow.accounts.add(record)
        exists = uow.accounts.user_by_phone(normalised) is not None
        if (purpose == "signup") != exists:
            uow.publish(
                new_event(
                    "accounts.code.requested",
                    {
                        "phone": normalised,
                        "code": code,
                        "purpose": purpose,
                        "locale": locale,
                        "expires_at": record.expires_at,
                    },
                    producer=SERVICE,
                )
            )
        uow.commit()
        return record.expires_at


def _use_code(uow: GatewayUnitOfWork, phone: str, code: str, purpose: str, now: datetime) -> None:
    record = uow.accounts.latest_code(phone, purpose)
    if record is None:
        raise AccountError("invalid", "no code was sent to this number", "code")
    try:
        record.verify(code, now)
    finally:
        # A wrong attempt counts even though the request fails.
        uow.session.commit()


def sign_up(
    uow: GatewayUnitOfWork,
    identity: Identity,
    *,
    phone: str,
    code: str,
    password: str,
    display_name: str,
    community_id: str,
    locale: str = "zh-CN",
) -> User:
    """A resident signs up with a verified phone; community staff approve before they can log in."""
    normalised = normalise_phone(phone)
    check_password_strength(password)
    now = identity.clock()
    with uow:
        community = uow.directory.get(Community, community_id)
        if community is None:
            raise AccountError(
                "invalid", Text("no community {community_id}", community_id=community_id), "community_id"
            )
        if uow.accounts.user_by_phone(normalised):
            raise AccountError("conflict", "an account with this phone number exists", "phone")
        _use_code(uow, normalised, code, "signup", now)
        user = User(
            phone=normalised,
            display_name=display_name,
            role=Role.RESIDENT,
            street_id=community.street_id,
            community_ids=[community_id],
            locale=locale,
            status="pending",
            password_hash=hash_password(password),
            created_at=now,
        )
        uow.accounts.add(user)
        uow.publish(user_event("registered", user))
        uow.commit()
        return user


def reset_password(uow: GatewayUnitOfWork, identity: Identity, *, phone: str, code: str, password: str) -> User:
    """Set a new password with a code sent to the phone; every session of the account ends."""
    normalised = normalise_phone(phone)
    check_password_strength(password)
    now = identity.clock()
    with uow:
        user = uow.accounts.user_by_phone(normalised)
        if user is None:
            raise AccountError("invalid", "wrong code", "code")
        _use_code(uow, normalised, code, "reset", now)
        user.password_hash = hash_password(password)
        # Whoever holds the phone is the owner: they log in again from anywhere.
        uow.accounts.lift_lockouts(user.id)
        uow.accounts.revoke_user_tokens(user.id, now)
        user.end_sessions(now)
        uow.commit()
        return user


# --- tokens -------------------------------------------------------------------------------------------
def _issue(uow: GatewayUnitOfWork, identity: Identity, user: User, family_id: str | None = None) -> TokenPair:
    now = identity.clock()
    refresh, presented = RefreshToken.issue(user.id, now, family_id)
    uow.accounts.add(refresh)
    # For the gateway alone (the services get tokens made for each); `iat_ms` tells a token issued
    # before the account's sessions ended from one issued after, to the millisecond.
    access = identity.signer.sign(
        user_id=user.id,
        role=user.role,
        **user.claims_scope(),
        audience=SERVICE,
        extra={"iat_ms": int(now.timestamp() * 1000)},
    )
    return TokenPair(access, presented, int(identity.signer.ttl.total_seconds()), user)


def login(
    uow: GatewayUnitOfWork,
    identity: Identity,
    *,
    phone: str,
    password: str | None = None,
    code: str | None = None,
    client: str = "unknown",
) -> TokenPair:
    """Log in with a password or with a code sent by SMS (purpose `login`), exactly one of the two.
    `client`: the caller's address; repeated failures (wrong passwords and wrong codes alike) lock the
    account out from there only. A code works once.

    The password is checked outside any transaction, by `identity.check_password` (the bounded pool of
    hashing workers): a slow hash holds no database connection, and the account is read again after."""
    if (password is None) == (code is None):
        raise AccountError("invalid", "give either a password or an SMS code", "password" if code is None else "code")
    method = "password" if password is not None else "code"
    wrong = AccountError("unauthorized", Text("wrong phone number or {method}", method=method))
    try:
        normalised = normalise_phone(phone)
    except AccountError as exc:
        raise wrong from exc
    checked_hash: str | None = None
    password_good = False
    if password is not None:
        with uow:
            user = uow.accounts.user_by_phone(normalised)
            if user is not None:
                lockout = uow.accounts.lockout(user.id, client)
                if lockout is not None:
                    lockout.check(identity.clock())
                user.check_can_log_in(method)
                checked_hash = user.password_hash
        # An unknown number costs the same hash as a known one: timing does not tell them apart.
        password_good = identity.check_password(checked_hash, password) and checked_hash is not None
        if checked_hash is None:
            raise wrong
    now = identity.clock()
    with uow:
        user = uow.accounts.user_by_phone(normalised)
        if user is None:
            raise wrong
        lockout = uow.accounts.lockout(user.id, client)
        if lockout is not None:
            lockout.check(now)
        user.check_can_log_in(method)
        if code is not None:
            good = _login_code_matches(uow, normalised, code, now)
        else:
            # The password changed while it was being checked: the check was against the old one.
            good = password_good and user.password_hash == checked_hash
        if not good:
            if lockout is None:
                lockout = LoginLockout(user_id=user.id, client=client)
                uow.accounts.add(lockout)
            lockout.record_failure(now)
            try:
                uow.commit()
            except IntegrityError:
                # A failure from the same address at the same instant was counted first.
                uow.rollback()
                raise wrong from None
            if lockout.is_locked(now):
                raise AccountError("locked", "too many failed attempts from here; try again later")
            raise wrong
        if lockout is not None:
            uow.accounts.lift_lockouts(user.id, client)
        pair = _issue(uow, identity, user)
        uow.commit()
        return pair


def _login_code_matches(uow: GatewayUnitOfWork, phone: str, code: str, now: datetime) -> bool:
    """Whether `code` is the latest login code sent to `phone`, unused and unexpired; using it marks
    it used (committed with the tokens it buys), a wrong one counts an attempt (committed with the
    failure)."""
    record = uow.accounts.latest_code(phone, "login")  # locked for update: used once, even at once
    if record is None:
        return False
    try:
        record.verify(code, now)
    except AccountError:
        return False
    return True


def lift_lockouts(uow: GatewayUnitOfWork, principal: Principal, user_id: str) -> int:
    """Staff who manage an account let it log in again from everywhere; how many lockouts ended."""
    with uow:
        user = uow.accounts.user(user_id)
        if user is None or not _may_manage(uow, principal, user):
            raise AccountError("not_found", Text("user {user_id} not found", user_id=user_id))
        lifted = uow.accounts.lift_lockouts(user.id)
        uow.commit()
        return lifted


def refresh(uow: GatewayUnitOfWork, identity: Identity, *, refresh_token: str) -> TokenPair:
    token_id, secret = RefreshToken.split(refresh_token)
    now = identity.clock()
    with uow:
        token = uow.accounts.refresh_token(token_id)
        if token is None or not token.matches(secret):
            raise AccountError("unauthorized", "invalid refresh token")
        if token.revoked_at is not None or token.expires_at <= now:
            raise AccountError("unauthorized", "refresh token expired or revoked")
        if token.used_at is not None:
            # Presented twice: someone else has a copy. End the whole session family.
            uow.accounts.revoke_family(token.family_id, now)
            uow.commit()
            raise AccountError("unauthorized", "refresh token reused; please log in again")
        user = uow.accounts.user(token.user_id)
        if user is None or user.status != "active":
            raise AccountError("unauthorized", "account not active")
        token.used_at = now
        pair = _issue(uow, identity, user, token.family_id)
        uow.commit()
        return pair


def logout(
    uow: GatewayUnitOfWork,
    identity: Identity,
    principal: Principal,
    *,
    access_expires_at: datetime,
    refresh_token: str | None,
    everywhere: bool = False,
) -> datetime | None:
    """End this session (its access and refresh tokens), or with `everywhere` every session of the
    account; then the instant before which its tokens are refused."""
    now = identity.clock()
    with uow:
        if everywhere:
            user = uow.accounts.user(principal.user_id)
            if user is None:
                raise AccountError("not_found", "API clients have no sessions to end")
            uow.accounts.revoke_user_tokens(user.id, now)
            user.end_sessions(now)
            uow.commit()
            return now
        if principal.token_id:
            uow.accounts.revoke_access_token(principal.token_id, access_expires_at)
        if refresh_token:
            token_id, secret = RefreshToken.split(refresh_token)
            token = uow.accounts.refresh_token(token_id)
            if token is not None and token.matches(secret) and token.user_id == principal.user_id:
                uow.accounts.revoke_family(token.family_id, now)
        uow.commit()
        return None


# --- people: reading and changing ---------------------------------------------------------------------
def _may_manage(uow: GatewayUnitOfWork, principal: Principal, user: User) -> bool:
    if principal.role == Role.CITY_ADMIN:
        return True
    if principal.role == Role.STREET_OFFICIAL:
        if user.role in {Role.CITY_ADMIN, Role.STREET_OFFICIAL}:
            return False
        return user.street_id == principal.street_id
    if principal.role == Role.COMMUNITY_STAFF:
        return user.role == Role.RESIDENT and user.home_community_id in principal.community_ids
    return False


def get_user(uow: GatewayUnitOfWork, principal: Principal, user_id: str) -> User:
    with uow:
        user = uow.accounts.user(user_id)
        # Someone outside your scope is "not found": existence is not leaked.
        if user is None or (user.id != principal.user_id and not _may_manage(uow, principal, user)):
            raise AccountError("not_found", Text("user {user_id} not found", user_id=user_id))
        return user


def list_users(
    uow: GatewayUnitOfWork, principal: Principal, *, offset: int, limit: int, **filters: Any
) -> tuple[list[User], int]:
    if principal.role not in STAFF_ROLES:
        raise AccountError("forbidden", "staff only")
    with uow:
        community_id = filters.get("community_id")
        if principal.role == Role.COMMUNITY_STAFF:
            if community_id and community_id not in principal.community_ids:
                raise AccountError("forbidden", "outside your community")
            return uow.accounts.users(
                offset=offset,
                limit=limit,
                community_id=principal.community_ids[0],
                role=filters.get("role") or Role.RESIDENT,
                status=filters.get("status"),
            )
        if principal.role == Role.STREET_OFFICIAL:
            street_communities = [
                c.id for c in uow.directory.list(Community, offset=0, limit=100_000, street_id=principal.street_id)[0]
            ]
            if community_id and community_id not in street_communities:
                raise AccountError("forbidden", "outside your street")
            return uow.accounts.users(
                offset=offset,
                limit=limit,
                community_id=community_id,
                street_id=principal.street_id,
                community_ids_of_street=street_communities,
                role=filters.get("role"),
                status=filters.get("status"),
            )
        return uow.accounts.users(
            offset=offset,
            limit=limit,
            community_id=community_id,
            role=filters.get("role"),
            status=filters.get("status"),
        )


def approve_user(uow: GatewayUnitOfWork, principal: Principal, user_id: str) -> User:
    with uow:
        user = uow.accounts.user(user_id)
        if user is None or not _may_manage(uow, principal, user):
            raise AccountError("not_found", Text("user {user_id} not found", user_id=user_id))
        if user.status != "pending":
            raise AccountError("conflict", Text("account is {status}, not awaiting approval", status=user.status))
        user.status = "active"
        user.touch()
        uow.publish(user_event("updated", user))
        uow.commit()
        return user


def update_user(
    uow: GatewayUnitOfWork, identity: Identity, principal: Principal, user_id: str, changes: dict[str, Any]
) -> User:
    """The owner changes their name, locale or password; staff in scope change name, locale, status."""
    with uow:
        user = uow.accounts.user(user_id)
        own = user is not None and user.id == principal.user_id
        if user is None or (not own and not _may_manage(uow, principal, user)):
            raise AccountError("not_found", Text("user {user_id} not found", user_id=user_id))
        if "status" in changes and own:
            raise AccountError("forbidden", "you cannot change your own status")
        if "password" in changes:
            if not own:
                raise AccountError("forbidden", "only the owner sets a password")
            if not identity.check_password(user.password_hash, changes.get("current_password") or ""):
                raise AccountError("invalid", "current password is wrong", "current_password")
            check_password_strength(changes["password"])
            user.password_hash = hash_password(changes["password"])
        for attribute in ("display_name", "locale", "status"):
            if attribute in changes and changes[attribute] != getattr(user, attribute):
                setattr(user, attribute, changes[attribute])
        if changes.get("status") == "disabled":
            uow.accounts.revoke_user_tokens(user.id, identity.clock())
            user.end_sessions(identity.clock())
        user.touch()
        uow.publish(user_event("updated", user))
        uow.commit()
        return user


# --- API keys -------------------------------------------------------------------------------------------
def create_api_key(
    uow: GatewayUnitOfWork,
    principal: Principal,
    identity: Identity,
    *,
    name: str,
    street_id: str | None,
    community_ids: list[str],
) -> tuple[ApiKey, str]:
    principal.require_role(Role.CITY_ADMIN, Role.STREET_OFFICIAL)
    community_ids = [str(c) for c in community_ids]
    with uow:
        streets = _streets_of(uow, community_ids)
        if principal.role == Role.STREET_OFFICIAL:
            street_id = street_id or principal.street_id
            if street_id != principal.street_id or any(s != principal.street_id for s in streets.values()):
                raise AccountError("forbidden", "outside your street")
        elif street_id is not None and uow.directory.get(Street, street_id) is None:
            raise AccountError("invalid", Text("no street {street_id}", street_id=street_id), "street_id")
        key, presented = ApiKey.issue(name, principal.user_id, street_id, community_ids)
        key.created_at = identity.clock()
        uow.accounts.add(key)
        uow.commit()
        return key, presented


def list_api_keys(uow: GatewayUnitOfWork, principal: Principal) -> list[ApiKey]:
    principal.require_role(Role.CITY_ADMIN, Role.STREET_OFFICIAL)
    with uow:
        keys = uow.accounts.api_keys()
        if principal.role == Role.STREET_OFFICIAL:
            keys = [k for k in keys if k.street_id == principal.street_id]
        return keys


def revoke_api_key(uow: GatewayUnitOfWork, principal: Principal, identity: Identity, key_id: str) -> ApiKey:
    principal.require_role(Role.CITY_ADMIN, Role.STREET_OFFICIAL)
    with uow:
        key = uow.accounts.api_key(key_id)
        if key is None or (principal.role == Role.STREET_OFFICIAL and key.street_id != principal.street_id):
            raise AccountError("not_found", Text("API key {key_id} not found", key_id=key_id))
        if key.revoked_at is None:
            key.revoked_at = identity.clock()
        uow.commit()
        return key


def verify_api_key(uow: GatewayUnitOfWork, presented: str) -> str:
    """The id of the API key presented, if it is a key the gateway issued and has not revoked."""
    key_id, secret = ApiKey.split(presented)
    with uow:
        key = uow.accounts.api_key(key_id)
        if key is None or not key.matches(secret):
            raise AccountError("unauthorized", "invalid or revoked API key")
        return key.id


def api_client(uow: GatewayUnitOfWork, presented: str) -> Principal:
    """Who a presented API key stands for: the API client, with the key's scope (the gateway then
    signs each service a short-lived token for it)."""
    key_id, secret = ApiKey.split(presented)
    with uow:
        key = uow.accounts.api_key(key_id)
        if key is None or not key.matches(secret):
            raise AccountError("unauthorized", "invalid or revoked API key")
        return Principal(
            user_id=key.id,
            role=Role.API_CLIENT,
            street_id=key.street_id,
            community_ids=tuple(key.community_ids),
            extra={"client_name": key.name},
        )


def prune(uow: GatewayUnitOfWork, now: datetime) -> None:
    """Forget what no longer matters: revocations of expired tokens, old one-time codes, and failed
    logins older than a lockout."""
    with uow:
        uow.accounts.prune_revocations(now)
        uow.commit()
