"""Limits that hold: keys only from verified identities, counts shared by every worker through Redis,
and lockouts per account and address that a stranger cannot turn against the owner."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from linli_kit.auth import TokenSigner
from linli_kit.keys import generate_keypair

STREETS = "/api/v1/directory/streets"
ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_made_up_api_keys_count_against_the_callers_address(make_app, token_signer):
    client = make_app(RATE_LIMIT_PER_CLIENT="4/minute").test_client()
    statuses = [
        client.get(STREETS, headers={"X-API-Key": f"lk_{uuid.uuid4().hex[:12]}_made-up"}, environ_base=ATTACKER)
        for _ in range(6)
    ]
    assert [r.status_code for r in statuses] == [200] * 4 + [429] * 2
    spoofed_query = client.get(f"{STREETS}?api_key=lk_{uuid.uuid4().hex[:12]}_x", environ_base=ATTACKER)
    assert spoofed_query.status_code == 429
    # Someone else, at another address, is not affected.
    assert client.get(STREETS, environ_base=OWNER).status_code == 200


def test_a_real_api_key_has_its_own_count(make_app, token_signer):
    client = make_app(RATE_LIMIT_PER_CLIENT="4/minute").test_client()
    admin = bearer(token_signer.sign(user_id="admin", role="city_admin"))
    made = client.post("/api/v1/auth/api-keys", json={"name": "hotline"}, headers=admin, environ_base=OWNER)
    assert made.status_code == 201, made.get_json()
    key = {"X-API-Key": made.get_json()["key"]}
    for _ in range(3):
        client.get(STREETS, environ_base=ATTACKER)
    assert client.get(STREETS, environ_base=ATTACKER).status_code == 200
    assert client.get(STREETS, environ_base=ATTACKER).status_code == 429
    # The hotline calls from the same address, with its key: its own allowance.
    assert [client.get(STREETS, headers=key, environ_base=ATTACKER).status_code for _ in range(5)] == [200] * 4 + [429]
    # Its secret guessed wrong: the address's count, already spent.
    forged = {"X-API-Key": key["X-API-Key"][:-3] + "xyz"}
    assert client.get(STREETS, headers=forged, environ_base=OWNER).status_code == 200


def test_forged_tokens_naming_someone_cannot_use_up_their_allowance(make_app, token_signer):
    app = make_app(
        RATE_LIMIT_PER_ACCOUNT="3/minute",
        RATE_LIMIT_PER_CLIENT="100/minute",
        ISSUES_URL="http://127.0.0.1:9",  # nothing there: the victim's own requests answer 503
        PROXY_RETRIES="0",
        BREAKER_FAIL_MAX="100",
    )
    client = app.test_client()
    victim = str(uuid.uuid4())
    forger = TokenSigner(generate_keypair()[0], issuer="linli-gateway")
    forged = bearer(forger.sign(user_id=victim, role="resident", community_ids=["c"]))
    for _ in range(5):
        assert client.get("/api/v1/issues/", headers=forged, environ_base=ATTACKER).status_code in (401, 429)
    real = bearer(token_signer.sign(user_id=victim, role="resident", community_ids=["c"]))
    answers = [client.get("/api/v1/issues/", headers=real, environ_base=OWNER).status_code for _ in range(4)]
    assert answers == [503, 503, 503, 429], answers
    # An expired token of the victim's is no verified identity either.
    expired = bearer(token_signer.sign(user_id=str(uuid.uuid4()), role="resident", ttl=-timedelta(minutes=5)))
    elsewhere = {"REMOTE_ADDR": "192.0.2.1"}
    assert [client.get("/api/v1/issues/", headers=expired, environ_base=elsewhere).status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_worker_counts_in_the_same_redis(make_app):
    settings = {
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "RATELIMIT_KEY_PREFIX": f"linli-test-{uuid.uuid4().hex}",
        "RATE_LIMIT_PER_CLIENT": "4/minute",
    }
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert [first.get(STREETS, environ_base=ATTACKER).status_code for _ in range(4)] == [200] * 4
    assert second.get(STREETS, environ_base=ATTACKER).status_code == 429
    assert second.get(STREETS, environ_base=OWNER).status_code == 200


def test_an_unknown_store_is_a_configuration_error(gateway_env, monkeypatch):
    from linli_gateway.settings import load_gateway_settings
    from linli_kit.config import ConfigError, load_settings

    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "postgres://somewhere")
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        load_gateway_settings(load_settings("gateway"))


def test_a_stranger_locks_the_account_out_only_where_they_are_and_staff_lift_it(make_app, token_signer):
    client = make_app(RATE_LIMIT_AUTH="1000/minute").test_client()
    admin = bearer(token_signer.sign(user_id="admin", role="city_admin"))
    street = client.post(STREETS, json={"name": "East"}, headers=admin).get_json()["id"]
    made = client.post(
        "/api/v1/auth/users",
        json={"display_name": "Official", "role": "street_official", "street_id": street,
              "phone": "13800000001", "password": "wall-7-safe"},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    official = made.get_json()["id"]

    def login(password: str, where: dict) -> int:
        body = {"phone": "13800000001", "password": password}
        return client.post("/api/v1/auth/login", json=body, environ_base=where).status_code

    assert [login("guess-1234", ATTACKER) for _ in range(6)] == [401] * 4 + [429] * 2
    assert login("wall-7-safe", ATTACKER) == 429  # the right password, from there: still locked out
    assert login("wall-7-safe", OWNER) == 200  # from the owner's address: in
    # Only those who manage the account lift the lockout.
    lockouts = f"/api/v1/auth/users/{official}/lockouts"
    other = bearer(token_signer.sign(user_id="o", role="street_official", street_id=str(uuid.uuid4())))
    assert client.delete(lockouts, headers=other).status_code == 404
    assert login("wall-7-safe", ATTACKER) == 429
    assert client.delete(lockouts, headers=admin).status_code == 204
    assert login("wall-7-safe", ATTACKER) == 200


def test_old_lockouts_and_revocations_are_pruned(uow):
    from datetime import UTC, datetime

    from linli_gateway.domain.accounts import LOCKOUT, LoginLockout, User
    from linli_gateway.service_layer.accounts import prune

    now = datetime.now(UTC)
    with uow() as unit:
        user = User(phone="+8613800000003", display_name="A", role="resident")
        unit.accounts.add(user)
        unit.session.flush()
        unit.accounts.add(LoginLockout(user_id=user.id, client="old", failures=2, updated_at=now - 2 * LOCKOUT))
        unit.accounts.add(LoginLockout(user_id=user.id, client="new", failures=2, updated_at=now))
        unit.accounts.revoke_access_token("gone", now - timedelta(seconds=1))
        unit.accounts.revoke_access_token("kept", now + timedelta(minutes=5))
        unit.commit()
    prune(uow(), now)
    with uow() as unit:
        assert unit.accounts.lockout(user.id, "old") is None and unit.accounts.lockout(user.id, "new") is not None


def test_made_up_api_keys_do_not_buy_more_logins_or_codes(make_app):
    client = make_app(RATE_LIMIT_AUTH="3/minute").test_client()

    def post(path: str, body: dict) -> int:
        made_up = {"X-API-Key": f"lk_{uuid.uuid4().hex[:12]}_made-up"}
        return client.post(path, json=body, headers=made_up, environ_base=ATTACKER).status_code

    logins = [post("/api/v1/auth/login", {"phone": "13800000004", "password": "guess-1234"}) for _ in range(5)]
    assert logins == [401, 401, 401, 429, 429]
    codes = [post("/api/v1/auth/codes", {"phone": f"1380000001{n}"}) for n in range(5)]
    assert codes == [202, 202, 202, 429, 429]


def test_counting_in_memory_starts_no_thread_per_request_and_still_sweeps(make_app, monkeypatch):
    """Without Redis (`make run`) the counts live in the process: limits' own memory storage started
    a new thread on nearly every request to drop expired entries. Ours sweeps from one thread."""
    import threading
    import time

    from linli_gateway.entrypoints.limits import SweptMemoryStorage

    client = make_app(RATE_LIMIT_PER_CLIENT="5/minute").test_client()
    storage = client.application.extensions["linli.rate_limits"].storage
    assert isinstance(storage, SweptMemoryStorage)
    started = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread.name) or start(thread))
    statuses = [client.get(STREETS, environ_base=OWNER).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2 and started == []
    # An entry past its window is swept (here at once, instead of within the second).
    key = next(iter(storage.events))
    for entry in storage.events[key]:
        entry.expiry = time.time() - 1
    storage._MemoryStorage__expire_events()
    assert storage.events[key] == []


def test_each_route_counts_where_flask_limiter_counted_it_with_its_headers(make_app, token_signer):
    """The same storage keys as Flask-Limiter's (gateways of both kinds count together in one Redis
    during a rolling deploy), the same limit per kind of route, the same headers."""
    app = make_app(
        RATE_LIMIT_PER_CLIENT="3/minute",
        RATE_LIMIT_PER_ACCOUNT="2/minute",
        RATE_LIMIT_AUTH="1/minute",
        ISSUES_URL="http://127.0.0.1:9",
        PROXY_RETRIES="0",
        BREAKER_FAIL_MAX="100",
    )
    client = app.test_client()
    resident = bearer(token_signer.sign(user_id="u1", role="resident", community_ids=["c"]))
    proxied = [client.get("/api/v1/issues/", headers=resident, environ_base=OWNER) for _ in range(3)]
    assert [r.status_code for r in proxied] == [503, 503, 429]
    assert proxied[0].headers["X-RateLimit-Limit"] == "2" and proxied[0].headers["X-RateLimit-Remaining"] == "1"
    assert proxied[0].headers["Retry-After"] == "1"  # the 503's own, not the limit's
    assert proxied[2].get_json()["error"] == {"code": "rate_limited", "message": "2 per 1 minute", "status": 429}
    assert 55 <= int(proxied[2].headers["Retry-After"]) <= 60
    assert int(proxied[2].headers["X-RateLimit-Reset"]) >= int(proxied[0].headers["X-RateLimit-Reset"])
    # Open311 has its own count of the account limit; the directory, the caller's address's.
    assert client.get("/open311/v2/services.json", headers=resident, environ_base=OWNER).status_code == 503
    streets = client.get(STREETS, headers=resident, environ_base=OWNER)
    assert streets.status_code == 200 and streets.headers["X-RateLimit-Limit"] == "3"
    assert "Retry-After" not in streets.headers
    # Signing in: the auth limit for its POSTs, the default for the rest of the blueprint.
    login = {"phone": "13800000009", "password": "guess-1234"}
    posts = [client.post("/api/v1/auth/login", json=login, environ_base=ATTACKER).status_code for _ in range(2)]
    assert posts == [401, 429]
    assert client.get("/api/v1/auth/me", headers=resident, environ_base=ATTACKER).headers["X-RateLimit-Limit"] == "3"
    # Probes and the front's files count against nothing.
    assert all("X-RateLimit-Limit" not in client.get("/healthz", environ_base=OWNER).headers for _ in range(5))
    keys = sorted(app.extensions["linli.rate_limits"].storage.events)
    assert keys == [
        "LIMITER/linli/account:resident:u1/open311/2/1/minute",
        "LIMITER/linli/account:resident:u1/route/2/1/minute",
        "LIMITER/linli/ip:198.51.100.7/directory.Streets/3/1/minute",
        "LIMITER/linli/ip:203.0.113.66/auth.Me/3/1/minute",
        "LIMITER/linli/ip:203.0.113.66/auth.login/1/1/minute",
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_redis_unreachable_the_limits_are_counted_in_memory(make_app):
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0", RATE_LIMIT_PER_CLIENT="3/minute")
    client = app.test_client()
    answers = [client.get(STREETS, environ_base=OWNER) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert client.get(STREETS, environ_base=ATTACKER).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_redis_a_request_is_counted_and_its_headers_read_in_one_round_trip(make_app, monkeypatch):
    from redis.client import Pipeline

    app = make_app(
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
        RATELIMIT_KEY_PREFIX=f"linli-test-{uuid.uuid4().hex}",
        RATE_LIMIT_PER_CLIENT="3/minute",
    )
    client = app.test_client()
    storage = app.extensions["linli.rate_limits"].storage
    # Redis has not got the scripts (say, it was flushed): limits' own calls load them, once.
    monkeypatch.setattr(storage.lua_acquire_moving_window, "sha", "0" * 40)
    monkeypatch.setattr(storage.lua_moving_window, "sha", "1" * 40)
    first = client.get(STREETS, environ_base=OWNER)
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "2"
    trips: list[str] = []
    pipeline_execute = Pipeline.execute
    monkeypatch.setattr(
        Pipeline, "execute", lambda pipe, **kw: trips.append("pipeline") or pipeline_execute(pipe, **kw)
    )
    single = type(storage.storage).execute_command
    monkeypatch.setattr(
        type(storage.storage), "execute_command", lambda redis, *a, **kw: trips.append(a[0]) or single(redis, *a, **kw)
    )
    answers = [client.get(STREETS, environ_base=OWNER) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]
    assert 55 <= int(answers[2].headers["Retry-After"]) <= 60
    assert trips == ["pipeline"] * 3
