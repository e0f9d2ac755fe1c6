"""The rules of accounts, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linli_gateway.domain.accounts import (
    CODE_MAX_ATTEMPTS,
    LOCKOUT,
    MAX_FAILED_LOGINS,
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
    normalise_phone,
)
from linli_kit.auth import Principal, Role

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+447700900123", "+447700900123"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "23800138000", "phone", "", "+0123456789"])
def test_bad_phone_numbers_are_refused_naming_the_field(raw):
    with pytest.raises(AccountError) as caught:
        normalise_phone(raw)
    assert caught.value.field_name == "phone" and caught.value.kind == "invalid"


@pytest.mark.parametrize("password", ["short1", "onlyletters", "1234567890"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(AccountError):
        check_password_strength(password)
    check_password_strength("wall-7-safe")


def test_repeated_failures_lock_the_account_out_from_that_address_for_a_while():
    lockout = LoginLockout(user_id="u1", client="203.0.113.9")
    for _ in range(MAX_FAILED_LOGINS - 1):
        lockout.record_failure(NOW)
        lockout.check(NOW)
    lockout.record_failure(NOW)
    with pytest.raises(AccountError) as caught:
        lockout.check(NOW + timedelta(minutes=1))
    assert caught.value.kind == "locked"
    lockout.check(NOW + LOCKOUT + timedelta(seconds=1))


def test_failures_long_ago_are_forgotten():
    lockout = LoginLockout(user_id="u1", client="203.0.113.9")
    for _ in range(MAX_FAILED_LOGINS - 1):
        lockout.record_failure(NOW)
    lockout.record_failure(NOW + LOCKOUT + timedelta(seconds=1))
    assert not lockout.is_locked(NOW + LOCKOUT + timedelta(seconds=2)) and lockout.failures == 1


def test_pending_and_passwordless_accounts_cannot_log_in():
    pending = User(phone="+8613800138000", display_name="A", role="resident", status="pending", password_hash="x")
    with pytest.raises(AccountError) as caught:
        pending.check_can_log_in()
    assert caught.value.kind == "pending"
    elderly = User(phone=None, display_name="Grandma Li", role="resident")
    with pytest.raises(AccountError):
        elderly.check_can_log_in()
    elderly.check_can_log_in("code")  # an SMS code lets someone with no password in
    with pytest.raises(AccountError) as caught:
        pending.check_can_log_in("code")
    assert caught.value.kind == "pending"
    disabled = User(phone=None, display_name="B", role="resident", status="disabled")
    with pytest.raises(AccountError) as caught:
        disabled.check_can_log_in("code")
    assert caught.value.kind == "unauthorized"


def make_code(code: str = "123456", **kw) -> OneTimeCode:
    phone = "+8613800138000"
    return OneTimeCode(
        phone=phone,
        code_hash=hash_secret(f"{phone}:{code}"),
        purpose="signup",
        expires_at=NOW + timedelta(minutes=5),
        created_at=NOW,
        **kw,
    )


def test_codes_expire_count_attempts_and_work_once():
    code = make_code()
    with pytest.raises(AccountError):
        code.verify("000000", NOW)
    code.verify("123456", NOW)
    with pytest.raises(AccountError):
        code.verify("123456", NOW)  # used
    with pytest.raises(AccountError):
        make_code().verify("123456", NOW + timedelta(minutes=6))
    worn = make_code(attempts=CODE_MAX_ATTEMPTS)
    with pytest.raises(AccountError):
        worn.verify("123456", NOW)  # even the right code, after too many wrong ones


def test_codes_are_rate_limited_per_phone():
    with pytest.raises(AccountError):
        check_code_rate([make_code()], NOW + timedelta(seconds=30))
    check_code_rate([make_code()], NOW + timedelta(seconds=61))
    hourly = [
        OneTimeCode(
            phone="p", code_hash="h", purpose="signup", expires_at=NOW, created_at=NOW - timedelta(minutes=10 * i + 2)
        )
        for i in range(5)
    ]
    with pytest.raises(AccountError):
        check_code_rate(hourly, NOW)


def test_refresh_and_api_key_secrets_are_stored_hashed():
    token, presented = RefreshToken.issue("u1", NOW)
    token_id, secret = RefreshToken.split(presented)
    assert token_id == token.id and token.matches(secret) and secret not in token.secret_hash
    assert not token.matches(secret + "x")
    key, plain = ApiKey.issue("hotline", "admin", None, ["c1"])
    key_id, key_secret = ApiKey.split(plain)
    assert key_id == key.id and key.matches(key_secret)
    key.revoked_at = NOW
    assert not key.matches(key_secret)
    with pytest.raises(AccountError):
        ApiKey.split("not-a-key")


def test_who_may_create_whom():
    admin = Principal(user_id="a", role=Role.CITY_ADMIN)
    official = Principal(user_id="o", role=Role.STREET_OFFICIAL, street_id="s1")
    staff = Principal(user_id="s", role=Role.COMMUNITY_STAFF, community_ids=("c1",))
    resident = Principal(user_id="r", role=Role.RESIDENT, community_ids=("c1",))
    streets = {"c1": "s1", "c2": "s2"}

    check_may_create(admin, "street_official", street_of=streets, street_id="s2", community_ids=[])
    check_may_create(official, "community_staff", street_of=streets, street_id=None, community_ids=["c1"])
    check_may_create(staff, "resident", street_of=streets, street_id=None, community_ids=["c1"])
    refused = [
        (official, "street_official", None, []),
        (official, "community_staff", None, ["c2"]),
        (staff, "community_staff", None, ["c1"]),
        (staff, "resident", None, ["c2"]),
        (resident, "resident", None, ["c1"]),
    ]
    for creator, role, street, communities in refused:
        with pytest.raises(AccountError) as caught:
            check_may_create(creator, role, street_of=streets, street_id=street, community_ids=communities)
        assert caught.value.kind == "forbidden"


def test_each_role_is_bound_to_its_scope():
    check_scope_shape("resident", street_id=None, community_ids=["c1"], organisation_id=None)
    for role, kwargs in [
        ("resident", {"street_id": None, "community_ids": [], "organisation_id": None}),
        ("street_official", {"street_id": None, "community_ids": [], "organisation_id": None}),
        ("property_manager", {"street_id": None, "community_ids": ["c1"], "organisation_id": None}),
        ("agency", {"street_id": None, "community_ids": [], "organisation_id": None}),
    ]:
        with pytest.raises(AccountError):
            check_scope_shape(role, **kwargs)
