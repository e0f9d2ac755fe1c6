"""Web Push: the `webpush` provider against a loopback push service that checks the VAPID token as
push services do (ES256 with the key in the header, aud = its origin, exp within 24 hours, a
sub) and decrypts each payload with the browser's private key (RFC 8291, written out here with
`cryptography` alone, not with the library that encrypts); subscriptions registered as devices;
the settings checked at start."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from linli_kit.config import ConfigError
from linli_notifications.adapters.providers.base import OutboundMessage, Outcome
from linli_notifications.adapters.tables import deliveries, devices, recipients
from linli_notifications.config import build_providers, load_config, load_vapid
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.planning import plan

TZ = "Asia/Shanghai"
SUBJECT = "mailto:ops@linli.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class Browser:
    """A browser's subscription: its own key pair and authentication secret."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict:
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": self.keys()}

    def keys(self) -> dict:
        return {"p256dh": b64(point(self.key)), "auth": b64(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3.4 and RFC 8188: one aes128gcm record."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        server_public = body[21 : 21 + idlen]
        assert idlen == 65 and rs >= 18 and len(body) <= 4096  # one record, as RFC 8291 asks
        server_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_public)
        shared = self.key.exchange(ec.ECDH(), server_key)
        info = b"WebPush: info\x00" + point(self.key) + server_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, body[21 + idlen :], None)
        unpadded = padded.rstrip(b"\x00")
        assert unpadded[-1:] == b"\x02"  # the last record's delimiter
        return unpadded[:-1]


class PushService:
    """A push service on 127.0.0.1: 403 for a bad VAPID token, 400 for a payload it cannot decrypt,
    410 for a subscription that has gone, 201 with a Location otherwise."""

    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.browsers: dict[str, Browser] = {}
        self.gone: set[str] = set()
        self.not_found: set[str] = set()
        self.received: list[dict] = []  # accepted: headers, claims, payload
        self.refused: list[tuple[int, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, reason = outer.answer(self.path, dict(self.headers), body)
                data = reason.encode()
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", f"{outer.origin}/message/{uuid.uuid4()}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscribe(self) -> Browser:
        browser = Browser(f"{self.origin}/push/{uuid.uuid4().hex}")
        self.browsers[browser.endpoint.rsplit("/", 1)[1]] = browser
        return browser

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        name = path.rsplit("/", 1)[1]
        if name in self.gone:
            return 410, "push subscription has unsubscribed or expired"
        if name in self.not_found or name not in self.browsers:
            return 404, "no such subscription"
        scheme, _, params = headers.get("Authorization", "").partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme != "vapid" or fields.get("k") != self.vapid_public_key:
            return self.refuse(403, "not a VAPID token for the subscription's key")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(fields["k"]))
        try:
            claims = jwt.decode(
                fields.get("t", ""),
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return self.refuse(403, f"VAPID token: {exc}")
        if claims["exp"] > time.time() + 24 * 3600 or not claims["sub"].startswith(("mailto:", "https:")):
            return self.refuse(403, "VAPID token: exp more than 24 hours away, or no contact")
        if headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in headers:
            return self.refuse(400, "aes128gcm and TTL required")
        try:
            payload = json.loads(self.browsers[name].decrypt(body))
        except Exception as exc:  # noqa: BLE001 - whatever fails, the push service refuses it
            return self.refuse(400, f"cannot decrypt: {type(exc).__name__}")
        self.received.append({"endpoint": name, "headers": headers, "claims": claims, "payload": payload})
        return 201, ""

    def refuse(self, status: int, reason: str) -> tuple[int, str]:
        self.refused.append((status, reason))
        return status, reason

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vapid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def vapid_env(vapid_key):
    raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
    return {
        "PUSH_PROVIDERS": "webpush",
        "VAPID_PRIVATE_KEY": b64(raw),
        "VAPID_PUBLIC_KEY": b64(point(vapid_key)),
        "VAPID_SUBJECT": SUBJECT,
        "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1",
    }


@pytest.fixture
def push_service(vapid_key):
    service = PushService(b64(point(vapid_key)))
    yield service
    service.close()


def message(browser: Browser, **fields) -> OutboundMessage:
    values = dict(
        delivery_id=str(uuid.uuid4()),
        channel=Channel.PUSH,
        address=browser.endpoint,
        locale="zh-CN",
        title="活动有空位了",
        body="您已从候补转为正式报名：亲子运动会",
        sms_text="",
        kind="registration.promoted",
        template_params={},
        data={"kind": "registration.promoted", "notification_id": "n-1"},
        push_keys=browser.keys(),
    )
    return OutboundMessage(**{**values, **fields})


# --- the provider ---------------------------------------------------------------------------------
def test_a_push_carries_a_valid_vapid_token_and_a_payload_only_the_browser_can_read(vapid_env, push_service):
    provider = build_providers(load_config(vapid_env))["webpush"]
    browser = push_service.subscribe()
    [result] = provider.send([message(browser)])
    assert result.outcome == Outcome.OK, push_service.refused
    assert result.message_id.startswith(f"{push_service.origin}/message/")
    [got] = push_service.received
    assert got["payload"]["title"] == "活动有空位了"
    assert got["payload"]["body"] == "您已从候补转为正式报名：亲子运动会"
    assert got["payload"]["tag"] == "n-1" and got["payload"]["data"]["kind"] == "registration.promoted"
    assert got["claims"]["aud"] == push_service.origin and got["claims"]["sub"] == SUBJECT
    assert got["claims"]["exp"] > time.time() + 3600
    assert got["headers"]["TTL"] == "86400" and len(got["headers"]["Topic"]) == 32
    assert got["headers"]["Urgency"] == "normal"
    # Someone else's subscription keys cannot read it: the push service cannot either.
    other = push_service.subscribe()
    stolen = message(browser, push_keys=other.keys())
    [result] = provider.send([stolen])
    assert result.outcome == Outcome.PERMANENT and result.error_code == "400"


def test_a_long_text_is_cut_to_one_record(vapid_env, push_service):
    provider = build_providers(load_config(vapid_env))["webpush"]
    browser = push_service.subscribe()
    [result] = provider.send([message(browser, body="通知" * 3000)])
    assert result.outcome == Outcome.OK, push_service.refused
    body = push_service.received[0]["payload"]["body"]
    assert 1000 < len(body) < 3000 and body.startswith("通知通知")


def test_a_token_signed_with_another_key_is_refused_and_counts_as_the_providers_fault(
    vapid_env, push_service, vapid_key
):
    other = ec.generate_private_key(ec.SECP256R1())
    env = {**vapid_env, "VAPID_PRIVATE_KEY": b64(other.private_numbers().private_value.to_bytes(32, "big"))}
    env.pop("VAPID_PUBLIC_KEY")
    provider = build_providers(load_config(env))["webpush"]
    [result] = provider.send([message(push_service.subscribe())])
    assert result.outcome == Outcome.PROVIDER and result.error_code == "403"
    assert not push_service.received


def test_endpoints_off_the_push_services_and_bad_keys_are_not_sent_to(vapid_env, push_service):
    provider = build_providers(load_config({**vapid_env, "WEBPUSH_ENDPOINT_HOSTS": "fcm.googleapis.com"}))["webpush"]
    browser = push_service.subscribe()
    [result] = provider.send([message(browser)])
    assert result.outcome == Outcome.PERMANENT and "not a push service" in result.error_message
    provider = build_providers(load_config(vapid_env))["webpush"]
    [result] = provider.send([message(browser, push_keys={"p256dh": "AAAA", "auth": b64(os.urandom(16))})])
    assert result.outcome == Outcome.PERMANENT and result.address_gone
    assert not push_service.received


def test_only_https_endpoints_on_the_push_services_hosts_are_accepted():
    from linli_notifications.adapters.providers.webpush import DEFAULT_ENDPOINT_HOSTS, endpoint_problem

    hosts = (*DEFAULT_ENDPOINT_HOSTS, "127.0.0.1")
    assert endpoint_problem("https://fcm.googleapis.com/fcm/send/abc", hosts) is None
    assert endpoint_problem("https://web.push.apple.com/QGx", hosts) is None
    assert endpoint_problem("https://wns2-sg2p.notify.windows.com/w/?token=x", hosts) is None
    assert endpoint_problem("http://127.0.0.1:8080/push/1", hosts) is None  # loopback: tests only
    assert endpoint_problem("http://fcm.googleapis.com/fcm/send/abc", hosts) == "must be an https URL"
    assert "not a push service" in endpoint_problem("https://evilpush.apple.com.example/x", hosts)
    assert "not a push service" in endpoint_problem("https://10.0.0.5/admin", hosts)
    assert endpoint_problem("https://user:pw@fcm.googleapis.com/x", hosts) == "not a push service URL"
    assert endpoint_problem("https://fcm.googleapis.com:x/", hosts) == "not a URL"


# --- settings -------------------------------------------------------------------------------------
def test_vapid_settings_are_checked_at_start(vapid_env, vapid_key, tmp_path):
    def problem(**changes):
        env = {k: v for k, v in {**vapid_env, **changes}.items() if v is not None}
        with pytest.raises(ConfigError) as raised:
            build_providers(load_config(env))
        return str(raised.value)

    assert "VAPID_PRIVATE_KEY or VAPID_PRIVATE_KEY_FILE must be set" in problem(VAPID_PRIVATE_KEY=None)
    assert "not a P-256 key" in problem(VAPID_PRIVATE_KEY="not-a-key")
    assert "VAPID_SUBJECT" in problem(VAPID_SUBJECT=None)
    assert "VAPID_SUBJECT" in problem(VAPID_SUBJECT="ops@linli.example")
    other = b64(point(ec.generate_private_key(ec.SECP256R1())))
    assert "VAPID_PUBLIC_KEY is not the public key" in problem(VAPID_PUBLIC_KEY=other)
    pem = tmp_path / "vapid.pem"
    pem.write_bytes(
        vapid_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert "set one, not both" in problem(VAPID_PRIVATE_KEY_FILE=str(pem))
    assert "cannot read" in problem(VAPID_PRIVATE_KEY=None, VAPID_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"))
    from_file = {**vapid_env, "VAPID_PRIVATE_KEY": None, "VAPID_PRIVATE_KEY_FILE": str(pem)}
    keys = load_vapid(load_config({k: v for k, v in from_file.items() if v is not None}))
    assert keys.public_key == vapid_env["VAPID_PUBLIC_KEY"] and keys.subject == SUBJECT
    with pytest.raises(ConfigError, match="unknown providers"):
        load_config({"PUSH_PROVIDERS": "webpushx"})


# --- the delivery loop and the API (PostgreSQL) ---------------------------------------------------
@pytest.fixture
def webpush_app(env, database, clock, vapid_env):
    from linli_notifications.entrypoints.web import create_app

    for name, value in vapid_env.items():
        env.setenv(name, value)
    flask_app = create_app(clock=clock, config=load_config())
    flask_app.testing = True
    return flask_app


def add_person(database, clock) -> str:
    user_id = str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=user_id,
                role="resident",
                display_name="x",
                phone="+8613800138000",
                locale="zh-CN",
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
    return user_id


def notify(database, clock, user_id, urgent=False):
    intent = Intent(
        source_key=str(uuid.uuid4()),
        source_type="activities.registration.promoted",
        kind="registration.promoted",
        category=Category.ACTIVITY,
        user_ids=(user_id,),
        params={"title": "亲子运动会", "when_at": "2026-11-30T01:00:00Z"},
        urgent=urgent,
        community_id=str(uuid.uuid4()),
    )
    with database.transaction() as s:
        plan(s, intent, clock(), TZ)


def push_states(database) -> list[dict]:
    with database.session() as s:
        rows = s.execute(
            select(deliveries).where(deliveries.c.channel == "push").order_by(deliveries.c.created_at)
        ).mappings()
        return [dict(r) for r in rows]


@pytest.mark.integration
def test_a_subscription_registered_from_the_page_gets_alerts_until_the_push_service_says_it_is_gone(
    webpush_app, auth, database, clock, vapid_env, push_service
):
    client = webpush_app.test_client()
    assert client.get("/push/vapid-public-key").json == {"public_key": vapid_env["VAPID_PUBLIC_KEY"]}
    person = add_person(database, clock)
    browser, other = push_service.subscribe(), push_service.subscribe()
    for b in (browser, other):
        response = client.post(
            "/devices", json={"provider": "webpush", "subscription": b.subscription()}, headers=auth(person)
        )
        assert response.status_code == 201, response.json
        assert response.json["platform"] == "web" and response.json["token"] == b.endpoint
        assert "push_keys" not in response.json  # the auth secret is not echoed
    config = load_config()
    deliverer = Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ)

    notify(database, clock, person)
    deliverer.drain()
    assert [d["state"] for d in push_states(database)] == ["sent"]
    assert sorted(r["endpoint"] for r in push_service.received) == sorted(
        b.endpoint.rsplit("/", 1)[1] for b in (browser, other)
    )
    assert all("亲子运动会" in r["payload"]["title"] + r["payload"]["body"] for r in push_service.received)
    assert {r["headers"]["Urgency"] for r in push_service.received} == {"normal"}

    # The person turned alerts off in one browser (410) and the other was dropped (404).
    push_service.gone.add(browser.endpoint.rsplit("/", 1)[1])
    push_service.not_found.add(other.endpoint.rsplit("/", 1)[1])
    clock.advance(minutes=1)
    notify(database, clock, person)
    deliverer.drain()
    assert [d["state"] for d in push_states(database)] == ["sent", "failed"]
    with database.session() as s:
        pruned = s.execute(select(devices.c.token, devices.c.pruned_at)).all()
    assert {token for token, at in pruned if at is not None} == {browser.endpoint, other.endpoint}

    # No more sends to them.
    before = len(push_service.received) + len(push_service.refused)
    clock.advance(minutes=1)
    notify(database, clock, person)
    deliverer.drain()
    assert len(push_service.received) + len(push_service.refused) == before
    assert push_states(database)[-1]["state"] in ("suppressed", "failed")

    # Turned on again: the same subscription registered again lives, with its keys.
    response = client.post(
        "/devices", json={"provider": "webpush", "subscription": browser.subscription()}, headers=auth(person)
    )
    assert response.status_code == 201 and response.json["pruned_at"] is None


@pytest.mark.integration
def test_a_bad_subscription_is_refused_naming_the_problem_and_nothing_is_stored(webpush_app, auth, database):
    client = webpush_app.test_client()
    person = str(uuid.uuid4())
    good = Browser("http://127.0.0.1:9/push/abc").subscription()

    def refused(body: dict) -> dict:
        response = client.post("/devices", json=body, headers=auth(person))
        assert response.status_code == 422, response.json
        return response.json["error"]["fields"]

    away = {**good, "endpoint": "https://internal.example/admin"}
    assert "not a push service" in json.dumps(refused({"provider": "webpush", "subscription": away}))
    bad_keys = {**good, "keys": {"p256dh": "A" * 87, "auth": "short-secret-xx!"}}
    text = json.dumps(refused({"provider": "webpush", "subscription": bad_keys}))
    assert "keys.p256dh" in text and "keys.auth" in text
    assert "subscription" in refused({"provider": "webpush", "platform": "web"})
    assert "token" in refused({"provider": "webpush", "token": "x" * 20, "subscription": good})
    assert "platform" in refused({"provider": "webpush", "platform": "ios", "subscription": good})
    assert "token" in refused({"provider": "fcm", "platform": "android"})
    # Subscriptions missing their parts (found by the fuzzer: once a 500) are refused by name.
    assert "subscription" in refused({"provider": "webpush", "subscription": {"": [1], "x": 2}})
    assert "subscription" in refused({"provider": "webpush", "subscription": {"endpoint": good["endpoint"]}})
    assert "subscription" in refused({"provider": "webpush", "subscription": {**good, "keys": {"auth": "a" * 22}}})
    app_token = {"provider": "fcm", "platform": "android", "token": "t" * 20}
    assert "subscription" in refused({**app_token, "subscription": good})
    with database.session() as s:
        assert s.execute(select(devices)).all() == []


@pytest.mark.integration
def test_the_vapid_key_is_not_offered_when_web_push_is_off(app):
    response = app.test_client().get("/push/vapid-public-key")
    assert response.status_code == 404 and "PUSH_PROVIDERS" in response.json["error"]["message"]


def test_on_sqlite_a_subscription_keeps_its_keys_and_is_pruned_when_gone(
    sqlite_database, clock, vapid_env, push_service
):
    """The embedded default: the same loop on the SQLite file (the keys in a JSON column)."""
    from linli_kit.auth import Principal
    from linli_notifications.service_layer.recipient import register_device

    database = sqlite_database
    person = add_person(database, clock)
    browser = push_service.subscribe()
    principal = Principal(user_id=person, role="resident")
    with database.session() as s:
        register_device(
            s,
            principal,
            platform="web",
            provider="webpush",
            token=browser.endpoint,
            push_keys=browser.keys(),
            now=clock(),
        )
    config = load_config(vapid_env)
    deliverer = Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ)
    notify(database, clock, person, urgent=True)
    deliverer.drain()
    assert [d["state"] for d in push_states(database)] == ["sent"] and len(push_service.received) == 1
    assert push_service.received[0]["headers"]["Urgency"] == "high"  # a safety notice wakes the phone
    push_service.gone.add(browser.endpoint.rsplit("/", 1)[1])
    clock.advance(minutes=1)
    notify(database, clock, person)
    deliverer.drain()
    with database.session() as s:
        [(keys, pruned_at)] = s.execute(select(devices.c.push_keys, devices.c.pruned_at)).all()
    assert keys == browser.keys() and pruned_at is not None


def test_vapid_keys_command_makes_a_key_once_and_prints_its_settings(tmp_path, capsys):
    from linli_notifications.definition import make_vapid_keys

    path = tmp_path / "keys" / "vapid.pem"
    assert make_vapid_keys(None, None, [str(path)]) == 0
    first = capsys.readouterr().out
    assert path.stat().st_mode & 0o077 == 0  # the private key is the operator's alone
    assert make_vapid_keys(None, None, [str(path)]) == 0
    assert capsys.readouterr().out == first  # kept, not replaced
    settings = dict(line.split("=", 1) for line in first.split())
    assert settings["VAPID_PRIVATE_KEY_FILE"] == str(path)
    keys = load_vapid(load_config({**settings, "VAPID_SUBJECT": SUBJECT}))
    assert keys.public_key == settings["VAPID_PUBLIC_KEY"]
