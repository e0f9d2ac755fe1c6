"""Logging in with an SMS code instead of a password: the same answer, limits and lockouts, a code
that works once, and accounts with no password (an elderly resident registered by staff) let in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from linli_gateway.adapters.tables import messaging, one_time_codes

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}
PHONE = "13800000021"
LOGIN = "/api/v1/auth/login"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def gateway(make_app, token_signer):
    """A gateway, its database, and a resident registered by staff with no password."""
    app = make_app(RATE_LIMIT_AUTH="1000/minute")
    client = app.test_client()
    admin = bearer(token_signer.sign(user_id="admin", role="city_admin"))
    street = client.post("/api/v1/directory/streets", json={"name": "East"}, headers=admin).get_json()["id"]
    community = client.post(
        "/api/v1/directory/communities", json={"street_id": street, "name": "Yucai"}, headers=admin
    ).get_json()["id"]
    body = {"display_name": "Grandma Li", "role": "resident", "community_ids": [community], "phone": PHONE}
    made = client.post("/api/v1/auth/users", json=body, headers=admin)
    assert made.status_code == 201, made.get_json()
    return {
        "client": client,
        "database": app.extensions["linli.database"],
        "admin": admin,
        "user_id": made.get_json()["id"],
        "community": community,
    }


def sent_codes(database, purpose: str = "login") -> list[str]:
    """The codes the gateway asked the notifications service to send, oldest first."""
    with database.reading() as conn:
        rows = conn.execute(
            select(messaging.outbox.c.payload)
            .where(messaging.outbox.c.event_type == "accounts.code.requested")
            .order_by(messaging.outbox.c.id)
        ).all()
    events = [json.loads(row.payload)["data"] for row in rows]
    return [e["code"] for e in events if e["purpose"] == purpose]


def send_code(gateway, phone: str = PHONE) -> str | None:
    answer = gateway["client"].post("/api/v1/auth/codes", json={"phone": phone, "purpose": "login"})
    assert answer.status_code == 202, answer.get_json()
    codes = sent_codes(gateway["database"])
    return codes[-1] if codes else None


def allow_another_code(database) -> None:
    """Make the codes sent so far look older than a minute (one code a minute per number)."""
    with database.engine.begin() as conn:
        conn.execute(update(one_time_codes).values(created_at=datetime.now(UTC) - timedelta(minutes=2)))


def test_a_code_logs_in_someone_with_no_password_once(gateway):
    client = gateway["client"]
    code = send_code(gateway)
    assert code is not None
    answer = client.post(LOGIN, json={"phone": PHONE, "code": code})
    assert answer.status_code == 200, answer.get_json()
    pair = answer.get_json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert pair["user"]["id"] == gateway["user_id"] and pair["user"]["phone"] == "+86" + PHONE
    me = client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200 and me.get_json()["display_name"] == "Grandma Li"
    again = client.post(LOGIN, json={"phone": PHONE, "code": code})
    assert again.status_code == 401 and again.get_json()["error"]["message"] == "wrong phone number or code"
    # A password login for the same account still has no password to match.
    assert client.post(LOGIN, json={"phone": PHONE, "password": "any-pass-1"}).status_code == 401


def test_no_code_is_sent_to_a_number_without_an_account(gateway):
    assert send_code(gateway, "13800000099") is None
    answer = gateway["client"].post(LOGIN, json={"phone": "13800000099", "code": "123456"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": PHONE}, "password"),
        ({"phone": PHONE, "password": "wall-7-safe", "code": "123456"}, "code"),
        ({"phone": PHONE, "code": "12ab56"}, "code"),
    ],
)
def test_exactly_one_of_password_and_code(gateway, body, field):
    answer = gateway["client"].post(LOGIN, json=body)
    assert answer.status_code == 422
    assert list(answer.get_json()["error"]["fields"]) == [field], answer.get_json()


def test_wrong_codes_count_towards_the_lockout_of_that_address_only(gateway):
    client = gateway["client"]
    code = send_code(gateway)
    wrong = "000000" if code != "000000" else "111111"

    def login(secret: str, where: dict) -> int:
        return client.post(LOGIN, json={"phone": PHONE, "code": secret}, environ_base=where).status_code

    assert [login(wrong, ATTACKER) for _ in range(6)] == [401] * 4 + [429] * 2
    assert login(code, ATTACKER) == 429  # the right code, from there: still locked out
    # Five wrong attempts wore the code out: the owner asks for a new one, and is in.
    assert login(code, OWNER) == 401
    allow_another_code(gateway["database"])
    assert login(send_code(gateway), OWNER) == 200
    # Staff who manage the account lift the lockout for the other address.
    lifted = client.delete(f"/api/v1/auth/users/{gateway['user_id']}/lockouts", headers=gateway["admin"])
    assert lifted.status_code == 204


def test_password_and_code_failures_add_up(gateway):
    client = gateway["client"]
    phone = "13800000041"
    body = {"display_name": "Yang", "role": "resident", "community_ids": [gateway["community"]], "phone": phone,
            "password": "wall-7-safe"}  # fmt: skip
    assert client.post("/api/v1/auth/users", json=body, headers=gateway["admin"]).status_code == 201
    code = send_code(gateway, phone)
    wrong = "000000" if code != "000000" else "111111"
    statuses = [client.post(LOGIN, json={"phone": phone, "password": "guess-1234"}).status_code for _ in range(3)]
    statuses += [client.post(LOGIN, json={"phone": phone, "code": wrong}).status_code for _ in range(2)]
    assert statuses == [401] * 4 + [429]
    assert client.post(LOGIN, json={"phone": phone, "password": "wall-7-safe"}).status_code == 429


def test_pending_and_disabled_accounts_are_refused_with_codes_too(gateway):
    client = gateway["client"]
    disabled = client.patch(
        f"/api/v1/auth/users/{gateway['user_id']}", json={"status": "disabled"}, headers=gateway["admin"]
    )
    assert disabled.status_code == 200, disabled.get_json()
    code = send_code(gateway)
    assert client.post(LOGIN, json={"phone": PHONE, "code": code}).status_code == 401

    # A resident who signed up and awaits approval.
    signup_phone = "13800000031"
    asked = client.post("/api/v1/auth/codes", json={"phone": signup_phone, "purpose": "signup"})
    assert asked.status_code == 202
    signup = sent_codes(gateway["database"], "signup")[-1]
    body = {"phone": signup_phone, "code": signup, "password": "wall-7-safe", "display_name": "Wang",
            "community_id": gateway["community"]}  # fmt: skip
    assert client.post("/api/v1/auth/signup", json=body).status_code == 201
    allow_another_code(gateway["database"])
    login_code = send_code(gateway, signup_phone)
    pending = client.post(LOGIN, json={"phone": signup_phone, "code": login_code})
    assert pending.status_code == 403 and pending.get_json()["error"]["code"] == "pending_approval"


def test_code_logins_share_the_auth_rate_limit(make_app):
    client = make_app(RATE_LIMIT_AUTH="3/minute").test_client()
    statuses = [
        client.post(LOGIN, json={"phone": PHONE, "code": "123456"}, environ_base=ATTACKER).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
