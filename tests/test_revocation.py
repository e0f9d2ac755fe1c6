"""Sessions end everywhere: two gateway processes (gunicorn, each with its workers) on one database;
what one of them revokes, the other refuses within a second. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from linli_gateway.adapters.tables import one_time_codes
from linli_gateway.domain.accounts import hash_secret
from linli_kit.db import Database
from linli_kit.testing.platform import free_port
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
PHONE = "13800000009"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_disable_reset_and_logout_reach_every_gateway_process(any_platform, token_signer):
    platform = any_platform
    platform.extra_env.update({"RATE_LIMIT_AUTH": "1000/minute"})
    first = platform.start_web("gateway").url + "/api/v1"
    platform.web_ports["gateway"] = free_port()
    second = platform.start_web("gateway").url + "/api/v1"
    admin = bearer(token_signer.sign(user_id="00000000-0000-4000-8000-0000000000a1", role="city_admin"))
    street = requests.post(f"{first}/directory/streets", json={"name": "East"}, headers=admin).json()["id"]
    user = requests.post(
        f"{first}/auth/users",
        json={"display_name": "Ma Jun", "role": "street_official", "street_id": street, "phone": PHONE,
              "password": "wall-7-safe"},
        headers=admin,
    )  # fmt: skip
    assert user.status_code == 201, user.text

    def log_in(password: str = "wall-7-safe") -> dict:
        answer = requests.post(f"{first}/auth/login", json={"phone": PHONE, "password": password})
        assert answer.status_code == 200, answer.text
        token = answer.json()
        assert requests.get(f"{second}/auth/me", headers=bearer(token["access_token"])).status_code == 200
        return token

    def refused_by_the_other(token: dict, since: float) -> None:
        """Every worker of the other gateway refuses the token (a handful of fresh connections, all
        refused) within a second or so of the revocation that began at `since`."""

        def refused() -> bool:
            return requests.get(f"{second}/auth/me", headers=bearer(token["access_token"])).status_code == 401

        eventually(lambda: all(refused() for _ in range(6)), timeout=1.5, interval=0.05, what="refused everywhere")
        assert time.monotonic() - since < 1.8

    # Logout: that session.
    session = log_in()
    since = time.monotonic()
    assert requests.post(f"{first}/auth/logout", json={}, headers=bearer(session["access_token"])).status_code == 204
    refused_by_the_other(session, since)

    # A password reset by SMS code: every session.
    session = log_in()
    database = Database(platform.database_url("gateway"))
    now = datetime.now(UTC)
    with database.transaction() as transaction:
        transaction.execute(
            one_time_codes.insert().values(
                id="reset-1", phone="+86" + PHONE, code_hash=hash_secret(f"+86{PHONE}:654321"), purpose="reset",
                expires_at=now + timedelta(minutes=5), created_at=now, attempts=0, used=False,
            )
        )  # fmt: skip
    database.engine.dispose()
    reset = {"phone": PHONE, "code": "654321", "password": "bench-8-talk"}
    since = time.monotonic()
    assert requests.post(f"{first}/auth/password-reset", json=reset).status_code == 204
    refused_by_the_other(session, since)

    # Disabling the account: every session, and no new one.
    session = log_in("bench-8-talk")
    user_id = user.json()["id"]
    since = time.monotonic()
    assert (
        requests.patch(f"{first}/auth/users/{user_id}", json={"status": "disabled"}, headers=admin).status_code == 200
    )
    refused_by_the_other(session, since)
    assert requests.post(f"{second}/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
