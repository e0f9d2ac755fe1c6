"""The gateway as residents' apps and third-party clients meet it: real gunicorn and worker processes,
PostgreSQL, RabbitMQ; stand-in services on loopback where the proxy's mechanics are under test."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import jwt
import openpyxl
import pika
import pytest
import requests
from sqlalchemy import select, update

from linli_gateway.adapters.tables import login_lockouts, one_time_codes, users
from linli_kit.auth import TokenSigner
from linli_kit.db import Database
from linli_kit.events.topology import declare_exchanges
from linli_kit.keys import generate_keypair
from linli_kit.testing.platform import free_port
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
PHONE = "13800138000"


class BusTap:
    """What the gateway published: a queue bound to the test exchange."""

    def __init__(self, amqp_url, bus, keys=("accounts.#",)):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        for key in keys:
            self.channel.queue_bind(self.queue, bus.exchange, routing_key=key)
        self.seen: list[dict] = []

    def events(self, event_type: str) -> list[dict]:
        while True:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                break
            self.seen.append(json.loads(body))
        return [e for e in self.seen if e["type"] == event_type]

    def close(self):
        self.conn.close()


@pytest.fixture
def tap(amqp_url, bus_names):
    t = BusTap(amqp_url, bus_names)
    yield t
    t.close()


def bearer(token: str) -> dict:
    # These tests read the API's English messages; Chinese, the default, is tested in test_languages.py.
    return {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


def make_community(api: str, admin: dict) -> tuple[str, str]:
    street = requests.post(f"{api}/directory/streets", json={"name": "Chengqu"}, headers=admin).json()["id"]
    community = requests.post(
        f"{api}/directory/communities", json={"street_id": street, "name": "Xihu"}, headers=admin
    ).json()["id"]
    return street, community


def aware(text: str) -> datetime:
    """An instant as the gateway answers it: ISO 8601 with its UTC offset."""
    value = datetime.fromisoformat(text)
    assert value.utcoffset() is not None, f"{text!r} carries no offset"
    return value


class GatewayClock:
    """Moves the gateway's stored instants back, as if minutes had passed (the processes keep running)."""

    def __init__(self, database_url: str) -> None:
        self.database = Database(database_url)

    def codes_sent_long_ago(self, phone: str) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(one_time_codes)
                .where(one_time_codes.c.phone == phone)
                .values(created_at=datetime.now(UTC) - timedelta(minutes=2))
            )

    def lockout_over(self, phone: str) -> None:
        with self.database.transaction() as session:
            account = select(users.c.id).where(users.c.phone == phone).scalar_subquery()
            changed = session.execute(
                update(login_lockouts)
                .where(login_lockouts.c.user_id == account, login_lockouts.c.locked_until.is_not(None))
                .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
            assert changed.rowcount == 1

    def close(self) -> None:
        self.database.engine.dispose()


def latest_code(tap: BusTap, phone: str, purpose: str, seen: int) -> str:
    """The code of the `seen`-th code event for this phone and purpose (1-based), once it is out."""
    events = eventually(
        lambda: [
            e
            for e in tap.events("accounts.code.requested")
            if e["data"]["phone"] == phone and e["data"]["purpose"] == purpose
        ][seen - 1 :],
        what=f"code event #{seen} ({purpose})",
    )
    return events[0]["data"]["code"]


def test_account_flows_on_each_database(any_platform, token_signer, tap, upstream_factory):
    """Codes, sign-up, approval, login, refresh, lockout with its expiry and lifting, logout, password
    reset and API keys, through the real gateway on SQLite (what `make run` uses) and PostgreSQL."""
    platform = any_platform
    echo = upstream_factory()
    platform.extra_env.update({"ISSUES_URL": echo.url, "RATE_LIMIT_AUTH": "1000/minute"})
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    clock = GatewayClock(platform.database_url("gateway"))
    api = gateway.url + "/api/v1"
    phone = "+86" + PHONE
    admin_token = token_signer.sign(user_id="00000000-0000-4000-8000-000000000001", role="city_admin")
    admin = bearer(admin_token)
    street_id, community_id = make_community(api, admin)
    try:
        # A resident asks for a code; it leaves through the outbox for the notifications service.
        assert requests.post(f"{api}/auth/codes", json={"phone": "12"}).status_code == 422
        sent = requests.post(f"{api}/auth/codes", json={"phone": PHONE})
        assert sent.status_code == 202, sent.text
        assert aware(sent.json()["expires_at"]) > datetime.now(UTC)
        first_code = latest_code(tap, phone, "signup", 1)
        again = requests.post(f"{api}/auth/codes", json={"phone": PHONE})
        assert again.status_code == 429 and again.json()["error"]["code"] == "locked_out"  # one a minute
        clock.codes_sent_long_ago(phone)
        resent = requests.post(f"{api}/auth/codes", json={"phone": PHONE})
        assert resent.status_code == 202, resent.text
        code = latest_code(tap, phone, "signup", 2)

        signup = {"phone": PHONE, "password": "wall-7-safe", "display_name": "Yang Jing", "community_id": community_id}
        wrong = requests.post(f"{api}/auth/signup", json={**signup, "code": "000000" if code != "000000" else "111111"})
        assert wrong.status_code == 422 and "code" in wrong.json()["error"]["fields"], wrong.text
        created = requests.post(f"{api}/auth/signup", json={**signup, "code": code})
        assert created.status_code == 201, created.text
        resident_id = created.json()["id"]
        assert created.json()["status"] == "pending"
        used = requests.post(f"{api}/auth/signup", json={**signup, "code": code})
        assert used.status_code == 409, used.text
        pending = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"})
        assert pending.status_code == 403 and pending.json()["error"]["code"] == "pending_approval"

        # Community staff (registered by a city admin) approve the new resident.
        staff_created = requests.post(
            f"{api}/auth/users",
            json={
                "display_name": "Tang Kun",
                "role": "community_staff",
                "phone": "13900139000",
                "community_ids": [community_id],
                "password": "round-table-1",
            },
            headers=admin,
        )
        assert staff_created.status_code == 201, staff_created.text
        staff_login = requests.post(f"{api}/auth/login", json={"phone": "13900139000", "password": "round-table-1"})
        assert staff_login.status_code == 200, staff_login.text
        staff = bearer(staff_login.json()["access_token"])
        assert staff_login.json()["user"]["street_id"] == street_id
        claims = jwt.decode(staff_login.json()["access_token"], options={"verify_signature": False})
        assert claims["role"] == "community_staff" and claims["community_ids"] == [community_id]
        seen_by_staff = requests.get(f"{api}/auth/users/{resident_id}", headers=staff).json()
        assert seen_by_staff["phone"] == "+86138****8000"  # staff see a masked number
        approved = requests.post(f"{api}/auth/users/{resident_id}/approve", headers=staff)
        assert approved.status_code == 200 and approved.json()["status"] == "active", approved.text
        assert requests.post(f"{api}/auth/users/{resident_id}/approve", headers=staff).status_code == 409
        # An elderly resident without a smartphone: registered by staff, no password.
        elderly = requests.post(
            f"{api}/auth/users",
            json={
                "display_name": "Grandma Li",
                "role": "resident",
                "phone": "13700137000",
                "community_ids": [community_id],
            },
            headers=staff,
        )
        assert elderly.status_code == 201 and elderly.json()["status"] == "active"
        not_staff_work = requests.post(
            f"{api}/auth/users",
            json={
                "display_name": "X",
                "role": "community_staff",
                "community_ids": [community_id],
                "phone": "13600136000",
            },
            headers=staff,
        )
        assert not_staff_work.status_code == 403

        login = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"})
        assert login.status_code == 200, login.text
        pair = login.json()
        me = requests.get(f"{api}/auth/me", headers=bearer(pair["access_token"])).json()
        assert me["phone"] == phone and me["community_ids"] == [community_id]

        # Refresh rotates; presenting the old refresh token again ends the whole session family.
        rotated = requests.post(f"{api}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["refresh_token"] != pair["refresh_token"]
        assert requests.get(f"{api}/auth/me", headers=bearer(rotated.json()["access_token"])).status_code == 200
        reused = requests.post(f"{api}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert reused.status_code == 401, reused.text
        after_theft = requests.post(f"{api}/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
        assert after_theft.status_code == 401, after_theft.text

        # Logout revokes both the access token and the refresh token.
        fresh = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"}).json()
        out = requests.post(
            f"{api}/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=bearer(fresh["access_token"])
        )
        assert out.status_code == 204, out.text
        # At once in the worker that served the logout, within a second in the others.
        eventually(
            lambda: requests.get(f"{api}/auth/me", headers=bearer(fresh["access_token"])).status_code == 401,
            timeout=1.5,
            interval=0.1,
            what="the logged-out token refused by every worker",
        )
        assert requests.post(f"{api}/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 401

        # Repeated wrong passwords lock the account, even against the right one, for a while...
        def lock_out() -> None:
            statuses = [
                requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": f"wrong-{i}x"}).status_code
                for i in range(5)
            ]
            assert statuses == [401, 401, 401, 401, 429], statuses
            locked = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"})
            assert locked.status_code == 429 and locked.json()["error"]["code"] == "locked_out", locked.text

        lock_out()
        # ...which ends by itself (as if the 15 minutes had passed)...
        clock.lockout_over(phone)
        unlocked = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"})
        assert unlocked.status_code == 200, unlocked.text
        # ...or when the owner sets a new password with a code sent to their phone.
        lock_out()
        clock.codes_sent_long_ago(phone)
        reset_sent = requests.post(f"{api}/auth/codes", json={"phone": PHONE, "purpose": "reset"})
        assert reset_sent.status_code == 202, reset_sent.text
        reset_code = latest_code(tap, phone, "reset", 1)
        reset = {"phone": PHONE, "code": reset_code, "password": "bench-8-talk"}
        assert requests.post(f"{api}/auth/password-reset", json={**reset, "code": first_code}).status_code == 422
        done = requests.post(f"{api}/auth/password-reset", json=reset)
        assert done.status_code == 204, done.text
        assert requests.post(f"{api}/auth/password-reset", json=reset).status_code == 422  # a code works once
        assert requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "wall-7-safe"}).status_code == 401
        relogged = requests.post(f"{api}/auth/login", json={"phone": PHONE, "password": "bench-8-talk"})
        assert relogged.status_code == 200, relogged.text
        # The reset ended every session the old password had opened.
        assert (
            requests.post(f"{api}/auth/refresh", json={"refresh_token": unlocked.json()["refresh_token"]}).status_code
            == 401
        )

        # API keys: issued by an admin, listed, exchanged for a scoped token, revoked.
        made = requests.post(
            f"{api}/auth/api-keys", json={"name": "city hotline", "community_ids": [community_id]}, headers=admin
        )
        assert made.status_code == 201, made.text
        assert aware(made.json()["created_at"]) <= datetime.now(UTC) and made.json()["revoked_at"] is None
        key = made.json()["key"]
        listed = requests.get(f"{api}/auth/api-keys", headers=admin)
        assert listed.status_code == 200, listed.text
        [entry] = [k for k in listed.json() if k["id"] == made.json()["id"]]
        assert aware(entry["created_at"]) == aware(made.json()["created_at"]) and "key" not in entry
        via_key = requests.post(gateway.url + "/open311/v2/requests.json", data={"api_key": key, "description": "d"})
        assert via_key.status_code == 200, via_key.text
        forwarded = jwt.decode(
            via_key.json()["headers"]["Authorization"].split()[1], options={"verify_signature": False}
        )
        assert forwarded["role"] == "api_client" and forwarded["community_ids"] == [community_id]
        revoked = requests.delete(f"{api}/auth/api-keys/{made.json()['id']}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        assert aware(revoked.json()["revoked_at"]) >= aware(made.json()["created_at"])
        listed_again = [k for k in requests.get(f"{api}/auth/api-keys", headers=admin).json() if k["id"] == entry["id"]]
        assert aware(listed_again[0]["revoked_at"]) == aware(revoked.json()["revoked_at"])
        assert requests.post(f"{api}/issues/", json={}, headers={"X-API-Key": key}).status_code == 401

        # Account events carry what notifications needs; the code itself never reaches a log.
        registered = eventually(lambda: tap.events("accounts.user.registered"), what="registered events")
        assert {e["data"]["user_id"] for e in registered} >= {resident_id, staff_created.json()["id"]}
        updated = eventually(lambda: tap.events("accounts.user.updated"), what="approval event")
        assert updated[-1]["data"]["active"] is True and updated[-1]["data"]["phone"] == phone
        logs = "".join(p.log_path.read_text() for p in platform.processes)
        assert code not in logs and PHONE not in logs and "Traceback" not in logs
    finally:
        clock.close()


def test_bad_tokens_are_refused(platform, token_signer, token_keys):
    gateway = platform.start_web("gateway")
    me = gateway.url + "/api/v1/auth/me"
    good = token_signer.sign(user_id="00000000-0000-4000-8000-000000000002", role="city_admin")
    expired = token_signer.sign(user_id="u", role="city_admin", ttl=timedelta(minutes=-5))
    header, payload, signature = good.split(".")
    tampered_claims = jwt.utils.base64url_encode(
        json.dumps({**jwt.decode(good, options={"verify_signature": False}), "role": "street_official"}).encode()
    ).decode()
    unsigned = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, algorithm="none")
    stranger = TokenSigner(generate_keypair()[0], issuer="linli-gateway").sign(user_id="u", role="city_admin")
    hs256 = jwt.encode(jwt.decode(good, options={"verify_signature": False}), "x" * 32, algorithm="HS256")
    for token in (expired, f"{header}.{tampered_claims}.{signature}", unsigned, stranger, hs256, "garbage"):
        response = requests.get(me, headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "unauthorized"
    assert requests.get(me, headers={"Authorization": "Basic abc"}).status_code == 401
    assert requests.get(me).status_code == 401


def test_routing_forwards_requests_faithfully_and_guards_writes(platform, token_signer, upstream_factory):
    echo = upstream_factory()
    platform.extra_env.update({"ISSUES_URL": echo.url, "NOTIFICATIONS_URL": echo.url})
    gateway = platform.start_web("gateway")
    api = gateway.url + "/api/v1"
    admin_token = token_signer.sign(user_id="00000000-0000-4000-8000-000000000003", role="city_admin")

    got = requests.patch(
        f"{api}/issues/abc/def?x=1&y=two",
        json={"title": "wall"},
        headers={
            **bearer(admin_token),
            "X-Custom": "kept",
            "Keep-Alive": "timeout=5",
            "X-Request-ID": "req-123",
            # A client's own claims about the public address are not believed (no trusted proxy).
            "X-Forwarded-Host": "phish.example",
            "X-Forwarded-Proto": "ftp",
            "X-Forwarded-Prefix": "/elsewhere",
        },
    )
    assert got.status_code == 200, got.text
    seen = got.json()
    assert seen["method"] == "PATCH" and seen["path"] == "/abc/def?x=1&y=two"
    assert json.loads(seen["body"]) == {"title": "wall"}
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    # The service gets a token for it alone, standing for the caller (never the caller's own).
    minted = jwt.decode(headers["authorization"].split()[1], options={"verify_signature": False})
    assert headers["authorization"] != f"Bearer {admin_token}" and headers["x-custom"] == "kept"
    assert (minted["sub"], minted["role"], minted["aud"]) == (
        "00000000-0000-4000-8000-000000000003",
        "city_admin",
        "issues",
    )
    assert headers["x-request-id"] == "req-123" and "keep-alive" not in headers
    assert got.headers["X-Upstream"] == "echo" and got.headers["X-Request-ID"] == "req-123"
    # The public address, scheme and removed prefix, for links the service writes (Open311 discovery).
    public_host = gateway.url.removeprefix("http://")
    assert headers["x-forwarded-host"] == public_host and headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-prefix"] == "/api/v1/issues" and headers["x-forwarded-for"] == "127.0.0.1"
    generated = requests.get(f"{api}/issues/").json()["headers"]
    assert {k.lower() for k in generated} >= {"x-request-id"} and "Authorization" not in generated

    before = len(echo.requests)
    assert requests.post(f"{api}/issues/", json={"title": "x"}).status_code == 401  # anonymous write
    assert requests.get(f"{api}/issues/", headers=bearer("bad")).status_code == 401  # invalid token
    assert len(echo.requests) == before  # the service never saw either
    assert requests.get(f"{api}/issues/missing").status_code == 404  # the service's own answers pass
    assert requests.get(f"{api}/nosuch/thing").status_code == 404

    open311 = requests.get(gateway.url + "/open311/v2/services.json")
    assert open311.json()["path"] == "/open311/v2/services.json"
    open311_headers = {k.lower(): v for k, v in open311.json()["headers"].items()}
    assert open311_headers["x-forwarded-host"] == public_host and open311_headers["x-forwarded-proto"] == "http"
    assert "x-forwarded-prefix" not in open311_headers  # Open311 paths are not rewritten

    # GeoReport v2: a missing or bad key is 403 in the spec's error format, JSON or XML by the path.
    before = len(echo.requests)
    for data in ({"description": "d"}, {"api_key": "lk_nope_secret", "description": "d"}):
        refused = requests.post(gateway.url + "/open311/v2/requests.json", data=data)
        assert refused.status_code == 403, refused.text
        [error] = refused.json()
        assert error["code"] == 403 and error["description"]
        refused_xml = requests.post(gateway.url + "/open311/v2/requests.xml", data=data)
        assert refused_xml.status_code == 403 and refused_xml.headers["Content-Type"].startswith("text/xml")
        root = ElementTree.fromstring(refused_xml.content)
        assert root.tag == "errors" and root.find("error/code").text == "403"
        assert root.find("error/description").text == error["description"]
    bad_token = requests.get(gateway.url + "/open311/v2/requests.json", headers=bearer("garbage"))
    assert bad_token.status_code == 403 and bad_token.json()[0]["code"] == 403
    assert len(echo.requests) == before

    # API keys: issued by an admin, exchanged for a scoped short-lived token, revocable.
    street = requests.post(f"{api}/directory/streets", json={"name": "S"}, headers=bearer(admin_token)).json()["id"]
    community = requests.post(
        f"{api}/directory/communities", json={"street_id": street, "name": "C"}, headers=bearer(admin_token)
    ).json()["id"]
    made = requests.post(
        f"{api}/auth/api-keys", json={"name": "city hotline", "community_ids": [community]}, headers=bearer(admin_token)
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    via_key = requests.post(gateway.url + "/open311/v2/requests.json", data={"api_key": key, "description": "d"})
    assert via_key.json()["body"] == f"api_key={key}&description=d"  # the form reaches the service whole
    forwarded = via_key.json()["headers"]
    claims = jwt.decode(forwarded["Authorization"].split()[1], options={"verify_signature": False})
    assert claims["role"] == "api_client" and claims["community_ids"] == [community]
    assert claims["client_name"] == "city hotline" and claims["aud"] == "issues"
    assert requests.delete(f"{api}/auth/api-keys/{made.json()['id']}", headers=bearer(admin_token)).status_code == 200
    refused = requests.post(f"{api}/issues/", json={}, headers={"X-API-Key": key})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    revoked_key = requests.post(gateway.url + "/open311/v2/requests.json", data={"api_key": key, "description": "d"})
    assert revoked_key.status_code == 403 and revoked_key.json()[0]["description"] == "invalid or revoked API key"

    spec = requests.get(gateway.url + "/api/openapi.json").json()
    assert "/api/v1/issues/{id}" in spec["paths"] and "/api/v1/notifications/{id}" in spec["paths"]
    assert "IssuesThing" in spec["components"]["schemas"] and "/api/v1/auth/login" in spec["paths"]
    assert set(spec["info"]["x-missing-services"]) == {"meetings", "activities"}
    assert "swagger-ui" in requests.get(gateway.url + "/api/docs").text
    assert requests.get(gateway.url + "/api/docs/static/swagger-ui-bundle.js").status_code == 200


def slow_and_flaky(echo) -> Counter:
    """Makes the loopback stand-in hang on `/deliveries/...` (until it is closed) and answer 503 on
    `/flaky`, like one stuck route and one failing service; every other path still echoes. Returns
    the count of requests it received per method and path, counted as they arrive."""
    hits: Counter = Counter()
    base = echo.server.RequestHandlerClass

    class SlowAndFlaky(base):
        def _dispatch(self) -> None:
            hits[f"{self.command} {self.path.split('?')[0]}"] += 1
            if self.path.startswith("/deliveries/"):
                echo.released.wait(60)
            if self.path.startswith("/nodb"):
                body = json.dumps(
                    {"error": {"status": 503, "code": "database_unavailable", "message": "no db", "fields": {}}}
                ).encode()
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path.startswith("/flaky"):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            base._answer(self)

        do_GET = do_POST = _dispatch

    echo.server.RequestHandlerClass = SlowAndFlaky
    return hits


def test_one_slow_route_never_takes_its_service_down_and_dead_services_answer_503(
    platform, token_signer, upstream_factory
):
    echo = upstream_factory()
    hits = slow_and_flaky(echo)
    platform.extra_env.update(
        {
            "NOTIFICATIONS_URL": echo.url,
            "NOTIFICATIONS_TIMEOUT_SECONDS": "1",
            "MEETINGS_URL": echo.url,
            "MEETINGS_TIMEOUT_SECONDS": "60",
            "ISSUES_URL": echo.url,
            "ACTIVITIES_URL": f"http://127.0.0.1:{free_port()}",
            "PROXY_BUDGET_SECONDS": "6",
            "PROXY_RETRIES": "2",
            "BREAKER_FAIL_MAX": "2",
            "BREAKER_RESET_SECONDS": "30",
        }
    )
    gateway = platform.start_web("gateway")
    api = gateway.url + "/api/v1"
    official = bearer(
        token_signer.sign(
            user_id="00000000-0000-4000-8000-000000000004",
            role="street_official",
            street_id="00000000-0000-4000-8000-0000000000aa",
        )
    )

    # A street official's delivery that hangs: each try waits the service's 1 s, is never repeated,
    # and however often they try, the circuit stays closed: other routes of the service answer.
    for attempt in range(1, 5):
        hung = requests.get(f"{api}/notifications/deliveries/d-1", headers=official, timeout=15)
        assert hung.status_code == 503, hung.text
        assert hung.json()["error"]["code"] == "service_unavailable"
        assert "did not answer in time" in hung.json()["error"]["message"] and "Retry-After" in hung.headers
        assert hits["GET /deliveries/d-1"] == attempt  # no retry after a read timeout
        other = requests.get(f"{api}/notifications/outbox", headers=official, timeout=15)
        assert other.status_code == 200 and other.json()["path"] == "/outbox", other.text

    # While one request hangs, the same service keeps answering everyone else at once (nothing is
    # serialised behind it), and the hanging one ends when its time budget runs out.
    outcome: list[requests.Response] = []
    slow = threading.Thread(
        target=lambda: outcome.append(requests.get(f"{api}/meetings/deliveries/d-2", headers=official, timeout=30))
    )
    slow.start()
    eventually(lambda: hits["GET /deliveries/d-2"] == 1, what="the slow request reaches the service")
    meanwhile = requests.get(f"{api}/meetings/", headers=official, timeout=5)
    assert meanwhile.status_code == 200 and slow.is_alive()
    slow.join(30)
    assert outcome and outcome[0].status_code == 503 and "did not answer in time" in outcome[0].text
    assert hits["GET /deliveries/d-2"] == 1

    # A service that answers at once that its database is away is up: the caller hears why, and
    # however often, the circuit stays closed, so everyone is served again the moment it is back.
    for _ in range(4):
        nodb = requests.get(f"{api}/meetings/nodb", headers=official, timeout=15)
        assert nodb.status_code == 503 and nodb.json()["error"]["code"] == "database_unavailable", nodb.text
    assert requests.get(f"{api}/meetings/", headers=official, timeout=5).status_code == 200

    # A service answering 503: safe reads are retried (twice), writes are not; requests in a row
    # that find it down open its circuit, which then answers without bothering it.
    flaky_read = requests.get(f"{api}/issues/flaky", headers=official, timeout=15)
    assert flaky_read.status_code == 503 and hits["GET /flaky"] == 3
    flaky_write = requests.post(f"{api}/issues/flaky", json={}, headers=official, timeout=15)
    assert flaky_write.status_code == 503 and hits["POST /flaky"] == 1
    seen = sum(hits.values())
    opened = requests.get(f"{api}/issues/anything", headers=official, timeout=15)
    assert opened.status_code == 503 and "circuit open" in opened.json()["error"]["message"]
    assert int(opened.headers["Retry-After"]) >= 1 and sum(hits.values()) == seen

    # A service that is not there at all: refused connections (retried, then 503), then the circuit.
    for _ in range(2):
        dead = requests.get(f"{api}/activities/", headers=official, timeout=15)
        assert dead.status_code == 503 and "unreachable" in dead.json()["error"]["message"], dead.text
    dead = requests.get(f"{api}/activities/", headers=official, timeout=15)
    assert dead.status_code == 503 and "circuit open" in dead.json()["error"]["message"]
    assert dead.json()["request_id"] == dead.headers["X-Request-ID"]

    # None of it touched the rest of the platform.
    assert requests.get(f"{api}/notifications/outbox", headers=official, timeout=15).status_code == 200
    assert requests.get(f"{api}/directory/streets", timeout=5).status_code == 200
    assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200


def test_rate_limit_answers_429_and_recovers(platform, token_signer):
    # Windows wide enough that a loaded machine still sends the burst inside them.
    platform.extra_env.update({"RATE_LIMIT_PER_CLIENT": "6 per 5 seconds", "RATE_LIMIT_AUTH": "3/minute"})
    gateway = platform.start_web("gateway")
    streets = gateway.url + "/api/v1/directory/streets"
    answers = [requests.get(streets) for _ in range(10)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["error"]["code"] == "rate_limited" and int(limited[0].headers["Retry-After"]) >= 0
    # The kit's error body, like every error the gateway answers itself.
    assert set(limited[0].json()) == {"error", "request_id"}
    assert limited[0].json()["request_id"] == limited[0].headers["X-Request-ID"]
    assert limited[0].json()["error"]["status"] == 429 and limited[0].json()["error"]["message"]
    eventually(lambda: requests.get(streets).status_code == 200, timeout=15, interval=0.5, what="limit recovers")
    assert requests.get(gateway.url + "/healthz").status_code == 200  # probes are never limited
    logins = [
        requests.post(gateway.url + "/api/v1/auth/login", json={"phone": PHONE, "password": "x"}) for _ in range(5)
    ]
    assert [r.status_code for r in logins[:3]] == [401, 401, 401]
    assert [r.status_code for r in logins[3:]] == [429, 429]
    assert logins[3].json()["error"]["code"] == "rate_limited" and logins[3].json()["request_id"]


def test_statistics_use_the_platform_period_refuse_extreme_dates_and_export_names_as_text(platform, token_signer):
    # No service runs: the overview still answers, naming each as missing, with the directory's names.
    gateway = platform.start_web("gateway")
    api = gateway.url + "/api/v1"
    admin = bearer(token_signer.sign(user_id="00000000-0000-4000-8000-000000000005", role="city_admin"))
    street = requests.post(f"{api}/directory/streets", json={"name": "Chengqu"}, headers=admin).json()["id"]
    nasty = '=HYPERLINK("http://x","y")\x07'
    made = requests.post(f"{api}/directory/communities", json={"street_id": street, "name": nasty}, headers=admin)
    assert made.status_code == 201, made.text

    overview = requests.get(f"{api}/stats/overview", headers=admin)
    assert overview.status_code == 200, overview.text
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    year, month = divmod(today.year * 12 + today.month - 1 - 11, 12)
    first = date(year, month + 1, 1)  # the twelve calendar months ending with this one
    assert overview.json()["period"] == {"from": first.isoformat(), "to": today.isoformat()}
    assert {m["service"] for m in overview.json()["missing"]} == {"issues", "meetings", "activities", "notifications"}
    for path in ("overview", "rankings?metric=overdue", "export"):
        for bad in ("from=0001-01-01", "to=9999-12-31", "from=2026-03-01&to=2026-02-01"):
            refused = requests.get(f"{api}/stats/{path}{'&' if '?' in path else '?'}{bad}", headers=admin)
            assert refused.status_code == 422, (path, bad, refused.text)
            assert set(refused.json()["error"]["fields"]) & {"from", "to"}, refused.text

    csv_file = requests.get(f"{api}/stats/export?format=csv", headers=admin)
    assert csv_file.status_code == 200 and csv_file.headers["Content-Type"].startswith("text/csv")
    assert "'=HYPERLINK" in csv_file.content.decode("utf-8-sig")  # read as text, not run as a formula
    xlsx = requests.get(f"{api}/stats/export?format=xlsx", headers=admin)
    assert xlsx.status_code == 200, xlsx.text
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["communities"]
    name_cell = sheet.cell(row=2, column=2)
    assert name_cell.data_type == "s" and name_cell.value == nasty.replace("\x07", "")

    spec = requests.get(gateway.url + "/openapi.json").json()
    export_doc = spec["paths"]["/api/v1/stats/export"]["get"]["responses"]["200"]["content"]
    assert set(export_doc) == {"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    overview_doc = spec["paths"]["/api/v1/stats/overview"]["get"]["responses"]["200"]["content"]["application/json"]
    assert overview_doc["schema"]["$ref"].endswith("/Overview")
