"""Tokens: each service gets one made for it alone; disabling an account, resetting its password or
logging out ends its sessions in every gateway process within a second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from linli_gateway.adapters.tables import one_time_codes
from linli_gateway.domain.accounts import hash_secret
from linli_kit.auth import TokenVerifier
from linli_kit.errors import Unauthorized
from linli_kit.testing.waiting import eventually

PHONE = "+8613800000002"
PASSWORD = "wall-7-safe"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def two_gateways(make_app, echo):
    """Two gateway processes (each its own revocation copy) on one database, routing to the echo."""
    env = {"ISSUES_URL": echo["url"], "RATE_LIMIT_AUTH": "1000/minute"}
    return make_app(**env).test_client(), make_app(**env).test_client()


@pytest.fixture
def resident(two_gateways, token_signer) -> str:
    first, _ = two_gateways
    admin = bearer(token_signer.sign(user_id="admin", role="city_admin"))
    street = first.post("/api/v1/directory/streets", json={"name": "East"}, headers=admin).get_json()["id"]
    community = first.post(
        "/api/v1/directory/communities", json={"street_id": street, "name": "Yucai"}, headers=admin
    ).get_json()["id"]
    body = {"display_name": "Yang Jing", "role": "resident", "community_ids": [community], "phone": PHONE}
    made = first.post("/api/v1/auth/users", json=body | {"password": PASSWORD}, headers=admin)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def log_in(client, password: str = PASSWORD) -> dict:
    answer = client.post("/api/v1/auth/login", json={"phone": PHONE, "password": password})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def refused_within_a_second(client, token: str) -> None:
    eventually(
        lambda: client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401,
        timeout=1.5,
        interval=0.05,
        what="the other gateway refusing the token",
    )
    assert client.get("/api/v1/issues/", headers=bearer(token)).status_code == 401


def test_each_service_gets_a_token_for_it_alone(two_gateways, resident, echo, token_keys):
    first, _ = two_gateways
    session = log_in(first)
    own = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert own["aud"] == "gateway" and own["sub"] == resident
    assert first.get("/api/v1/issues/x", headers=bearer(session["access_token"])).status_code == 200
    forwarded = echo["seen"][-1]["Authorization"].split()[1]
    issues = TokenVerifier(token_keys[1], issuer="linli-gateway", audience="issues")
    meetings = TokenVerifier(token_keys[1], issuer="linli-gateway", audience="meetings")
    principal = issues.verify(forwarded)
    assert (principal.user_id, principal.role, principal.community_ids) == (
        resident,
        "resident",
        tuple(own["community_ids"]),
    )
    with pytest.raises(Unauthorized):
        meetings.verify(forwarded)  # the issues service's token is no good at the meetings service
    with pytest.raises(Unauthorized):
        issues.verify(session["access_token"])  # nor is the person's own token at any service
    # The gateway does not take a service's token back either.
    assert first.get("/api/v1/auth/me", headers=bearer(forwarded)).status_code == 401
    # The same session asking again reuses the token it was given (no signature per request).
    first.get("/api/v1/issues/y", headers=bearer(session["access_token"]))
    assert echo["seen"][-1]["Authorization"].split()[1] == forwarded


def test_disabling_an_account_ends_its_sessions_in_every_gateway(two_gateways, resident, token_signer):
    first, second = two_gateways
    session = log_in(first)
    assert second.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 200
    admin = bearer(token_signer.sign(user_id="admin", role="city_admin"))
    disabled = first.patch(f"/api/v1/auth/users/{resident}", json={"status": "disabled"}, headers=admin)
    assert disabled.status_code == 200
    assert first.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 401  # at once
    refused_within_a_second(second, session["access_token"])
    assert second.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_a_password_reset_ends_every_session_but_the_new_one_works(two_gateways, resident, database):
    first, second = two_gateways
    old = log_in(first)
    assert second.get("/api/v1/auth/me", headers=bearer(old["access_token"])).status_code == 200
    now = datetime.now(UTC)
    with database.transaction() as session:  # the code the SMS would have carried
        session.execute(
            one_time_codes.insert().values(
                id="code-1", phone=PHONE, code_hash=hash_secret(f"{PHONE}:123456"), purpose="reset",
                expires_at=now + timedelta(minutes=5), created_at=now, attempts=0, used=False,
            )
        )  # fmt: skip
    reset = first.post(
        "/api/v1/auth/password-reset", json={"phone": PHONE, "code": "123456", "password": "bench-8-talk"}
    )
    assert reset.status_code == 204, reset.get_json()
    refused_within_a_second(second, old["access_token"])
    new = log_in(first, "bench-8-talk")
    assert second.get("/api/v1/auth/me", headers=bearer(new["access_token"])).status_code == 200


def test_logging_out_ends_that_session_or_every_session(two_gateways, resident):
    first, second = two_gateways
    phone, laptop = log_in(first), log_in(first)
    out = first.post("/api/v1/auth/logout", json={}, headers=bearer(phone["access_token"]))
    assert out.status_code == 204
    refused_within_a_second(second, phone["access_token"])
    assert second.get("/api/v1/auth/me", headers=bearer(laptop["access_token"])).status_code == 200
    everywhere = first.post("/api/v1/auth/logout", json={"everywhere": True}, headers=bearer(laptop["access_token"]))
    assert everywhere.status_code == 204
    refused_within_a_second(second, laptop["access_token"])
    assert second.post("/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]}).status_code == 401
    assert second.get("/api/v1/auth/me", headers=bearer(log_in(second)["access_token"])).status_code == 200
