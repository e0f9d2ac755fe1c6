"""Fixtures of the notifications tests: a migrated PostgreSQL database, the app, the consumer on a
thread, a fixed clock, and one loopback HTTP server playing Alibaba Cloud SMS, Twilio, JPush and FCM
(checking auth and signatures the way they do, answering with their documented bodies)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlparse

import jwt
import pika
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.events.consumer import EventConsumer
from linli_kit.events.topology import declare_exchanges
from linli_kit.migrations import upgrade
from linli_kit.testing import english_test_clients
from linli_notifications.adapters.tables import messaging
from linli_notifications.domain.clock import FixedClock

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "linli_notifications" / "migrations"
# A Tuesday, 10:00 in Shanghai: outside quiet hours.
DAYTIME = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
ALIYUN_KEY, ALIYUN_SECRET = "LTAI-test-key", "aliyun-test-secret"
TWILIO_SID, TWILIO_TOKEN = "AC" + "0" * 32, "twilio-test-token"
JPUSH_KEY, JPUSH_SECRET = "jpush-app-key", "jpush-master-secret"

# What the test account "had approved" at Alibaba Cloud, written out as an operator applies for it
# (README, "Alibaba Cloud SMS"), not derived from the code: a template whose variables change in
# the code without a new application is refused here as it would be there.
# kind -> (code for zh-CN, code for en, its variables); `code` is a verification code (4-6 digits),
# every other variable "others" (1-35 characters).
ALIYUN_APPROVED = {
    "account.code": ("SMS_460001", "SMS_461001", {"code", "minutes"}),
    "issue.reported": ("SMS_460010", "SMS_461010", {"community", "title", "urgency"}),
    "issue.progress": ("SMS_460011", "SMS_461011", {"title", "status"}),
    "issue.escalated": ("SMS_460012", "SMS_461012", {"title", "tier"}),
    "issue.overdue": ("SMS_460013", "SMS_461013", {"title"}),
    "issue.on_agenda": ("SMS_460014", "SMS_461014", {"title", "when", "meeting"}),
    "meeting.scheduled": ("SMS_460020", "SMS_461020", {"meeting", "when", "place"}),
    "meeting.rescheduled": ("SMS_460021", "SMS_461021", {"meeting", "when", "place"}),
    "meeting.cancelled": ("SMS_460022", "SMS_461022", {"meeting", "when", "reason"}),
    "meeting.reminder": ("SMS_460023", "SMS_461023", {"meeting", "when", "place"}),
    "decision.recorded": ("SMS_460024", "SMS_461024", {"meeting", "motion", "outcome"}),
    "action_item.assigned": ("SMS_460025", "SMS_461025", {"title", "due"}),
    "action_item.completed": ("SMS_460026", "SMS_461026", {"title"}),
    "activity.published": ("SMS_460030", "SMS_461030", {"title", "when", "place"}),
    "activity.rescheduled": ("SMS_460031", "SMS_461031", {"title", "when"}),
    "activity.cancelled": ("SMS_460032", "SMS_461032", {"title", "when", "reason"}),
    "activity.reminder": ("SMS_460033", "SMS_461033", {"title", "when"}),
    "registration.confirmed": ("SMS_460034", "SMS_461034", {"title", "when"}),
    "registration.waitlisted": ("SMS_460035", "SMS_461035", {"title", "position"}),
    "registration.promoted": ("SMS_460036", "SMS_461036", {"title", "when"}),
    "registration.cancelled": ("SMS_460037", "SMS_461037", {"title"}),
    "booking.requested": ("SMS_460040", "SMS_461040", {"service", "when"}),
    "booking.confirmed": ("SMS_460041", "SMS_461041", {"service", "when"}),
    "broadcast.notice": ("SMS_460050", "SMS_461050", {"title", "body"}),
    "talent.vetted": ("SMS_460060", "SMS_461060", {"outcome"}),
    "talent.matched": ("SMS_460061", "SMS_461061", {"note"}),
    "talent.answered": ("SMS_460062", "SMS_461062", {"answer"}),
    "proposal.submitted": ("SMS_460070", "SMS_461070", {"issue", "meeting_type", "reason"}),
    "proposal.accepted": ("SMS_460071", "SMS_461071", {"title", "when", "place"}),
    "proposal.declined": ("SMS_460072", "SMS_461072", {"issue", "reason"}),
    "decision.completed": ("SMS_460027", "SMS_461027", {"issue"}),
    "activity_proposal.submitted": ("SMS_460073", "SMS_461073", {"title", "reason"}),
    "activity_proposal.accepted": ("SMS_460074", "SMS_461074", {"title", "when"}),
    "activity_proposal.declined": ("SMS_460075", "SMS_461075", {"title", "reason"}),
}
ALIYUN_SIGN_NAMES = {"zh-CN": "邻里", "en": "Linli"}


def aliyun_templates_setting(approved=ALIYUN_APPROVED) -> str:
    return json.dumps({kind: {"zh-CN": zh, "en": en} for kind, (zh, en, _) in approved.items()})


def aliyun_refusal(template_code: str, sign_name: str, params: dict) -> tuple[str, str] | None:
    """(Code, Message) as Alibaba Cloud answers a SendSms it refuses, or None: the error codes of
    https://help.aliyun.com/document_detail/101346.html, for the rules of its template guidelines."""
    variables = {code: names for zh, en, names in ALIYUN_APPROVED.values() for code in (zh, en)}
    if template_code not in variables:
        return "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"
    if sign_name not in ALIYUN_SIGN_NAMES.values():
        return "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名"
    names = variables[template_code]
    if not isinstance(params, dict) or set(params) - names:
        # Variable names that are not the template's: "模板变量名称与模板对应变量的名称不相符".
        return "isv.SMS_TEMPLATE_ILLEGAL", "模板变量与模板不相符"
    if names - set(params) or any(str(v) == "" for v in params.values()):
        return "isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量"
    for name, value in params.items():
        value = str(value)
        if name == "code" and not (value.isdigit() and 4 <= len(value) <= 6):
            return "isv.TEMPLATE_PARAMS_ILLEGAL", "模板变量里包含非法关键字"
        if len(value) > 35:
            return "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"
    return None


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(DAYTIME)


@pytest.fixture
def database(pg_databases) -> Database:
    db = Database(pg_databases.create_migrated("notif", MIGRATIONS))
    yield db
    db.dispose()


@pytest.fixture
def sqlite_database(tmp_path) -> Database:
    """The embedded default: a migrated SQLite file, with the kit's engine (BEGIN IMMEDIATE)."""
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade(MIGRATIONS, url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_app(monkeypatch, sqlite_database, amqp_url, bus_names, token_keys, clock):
    """The web app on the SQLite file (in this process: requests through its test client)."""
    from linli_notifications.config import load_config
    from linli_notifications.entrypoints.web import create_app

    monkeypatch.setenv("DATABASE_URL", sqlite_database.url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_EXCHANGE", bus_names.exchange)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_JSON", "false")
    flask_app = create_app(clock=clock, config=load_config({}))
    flask_app.testing = True
    return flask_app


@pytest.fixture
def env(monkeypatch, database, amqp_url, bus_names, token_keys):
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_EXCHANGE", bus_names.exchange)
    monkeypatch.setenv("DEAD_LETTER_EXCHANGE", bus_names.dead_letter_exchange)
    monkeypatch.setenv("QUEUE_PREFIX", bus_names.queue_prefix)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_JSON", "false")
    return monkeypatch


@pytest.fixture
def settings(env):
    return load_settings("notifications")


@pytest.fixture
def bus(settings, database, amqp_url, bus_names, clock, threads):
    """The service's consumer on a thread, with the expander of its batches' plans as the worker
    runs it, and `publish(type, data, ...)` for producers' events."""
    from linli_notifications.definition import handlers, plan_queue

    plans = plan_queue(database)
    if plans is not None:
        plans.poll_seconds = 0.1  # the thread sees the test's end soon

        def expand(stop):
            while not stop.is_set():
                plans.run()

        threads(expand)
    consumer = EventConsumer(
        database,
        messaging.inbox,
        amqp_url,
        bus_names,
        service="notifications",
        handlers=handlers(settings, database, clock),
        batch_size=50,
    )
    consumer.declare()
    threads(consumer.run)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_exchanges(channel, bus_names)
    channel.confirm_delivery()

    class Bus:
        def publish(self, event_type, data, *, producer=None, event=None, **envelope):
            event = event or new_event(event_type, data, producer=producer or event_type.split(".")[0], **envelope)
            channel.basic_publish(
                bus_names.exchange,
                event.type,
                event.to_json().encode(),
                pika.BasicProperties(message_id=event.id, type=event.type, delivery_mode=2),
            )
            return event

        def handled(self, event):
            """Handled, and its notices and deliveries there: its batch's plan expanded."""
            from sqlalchemy import exists, select

            from linli_notifications.adapters.tables import event_plans

            with database.session() as s:
                if not s.scalar(select(messaging.inbox.c.event_id).where(messaging.inbox.c.event_id == event.id)):
                    return False
                return database.is_sqlite or not s.scalar(select(exists().select_from(event_plans)))

    yield Bus()
    connection.close()


@pytest.fixture
def app(env, database, clock):
    from linli_notifications.config import load_config
    from linli_notifications.entrypoints.web import create_app

    env.setenv("ALIYUN_CALLBACK_TOKEN", "callback-secret")
    env.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    flask_app = create_app(clock=clock, config=load_config())
    flask_app.testing = True
    return flask_app


@pytest.fixture
def auth(token_signer):
    def headers(user_id, role="resident", community_ids=(), street_id=None):
        token = token_signer.sign(user_id=user_id, role=role, community_ids=list(community_ids), street_id=street_id)
        return {"Authorization": f"Bearer {token}"}

    return headers


# --- the provider fakes -------------------------------------------------------------------------
def _numbers(params: dict) -> list[str]:
    if params.get("Action") == "SendBatchSms":
        return json.loads(params["PhoneNumberJson"])
    return [params.get("PhoneNumbers")]


def _aliyun_percent(value: str) -> str:
    # Written from the documentation, independently of the adapter: URL-encode with UTF-8, then
    # "+" -> "%20", "*" -> "%2A", "%7E" -> "~".
    return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


class LoopbackServer(ThreadingHTTPServer):
    # Up to DELIVERY_CONCURRENCY connections arrive at once; the default backlog of 5 would refuse some.
    request_queue_size = 128
    daemon_threads = True


class FakeProviders:
    def __init__(self) -> None:
        self.requests: dict[str, list[dict]] = defaultdict(list)
        self.script: dict[str, list] = defaultdict(list)  # api -> [(status, body) | "hang"]
        self.unregistered: set[str] = set()
        self.nonces: set[str] = set()
        self.hang = threading.Event()  # set: hanging requests may finish
        self.latency = 0.0  # seconds every send call takes: a slow provider
        self.clock = lambda: datetime.now(UTC)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fcm_private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.fcm_public = key.public_key()
        self.fcm_tokens: set[str] = set()
        self.jpush_sent: dict[str, list[str]] = {}  # msg_id -> registration ids it went to
        self.jpush_not_received: set[str] = set()  # registration ids whose device never got it
        self.server = LoopbackServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received_at(self) -> str:
        """The provider's own clock; tests move it along with the service's fixed clock."""
        return (self.clock() + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")

    def count(self, api: str) -> int:
        return len(self.requests[api])

    def deliverer(self, database: Database, clock, **env: str):
        """A Deliverer sending SMS through Alibaba Cloud to these fakes (first retry after 10 s, a
        read timeout of 1 s), with `env` over those settings."""
        from linli_notifications.config import build_providers, load_config
        from linli_notifications.service_layer.delivery import Deliverer

        config = load_config({**self.env(), "SMS_PROVIDERS": "aliyun", "DELIVERY_RETRY_FIRST_SECONDS": "10", **env})
        providers = build_providers(config)
        for provider in providers.values():
            if hasattr(provider, "read_timeout"):
                provider.read_timeout = 1.0
        return Deliverer(database, config, providers, clock=clock, city_timezone="Asia/Shanghai")

    def env(self) -> dict[str, str]:
        return {
            "ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY,
            "ALIYUN_ACCESS_KEY_SECRET": ALIYUN_SECRET,
            "ALIYUN_SMS_SIGN_NAME": ALIYUN_SIGN_NAMES["zh-CN"],
            "ALIYUN_SMS_SIGN_NAME_EN": ALIYUN_SIGN_NAMES["en"],
            "ALIYUN_SMS_TEMPLATES": aliyun_templates_setting(),
            "ALIYUN_SMS_ENDPOINT": self.url + "/aliyun/",
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_BASE_URL": self.url + "/twilio",
            "JPUSH_APP_KEY": JPUSH_KEY,
            "JPUSH_MASTER_SECRET": JPUSH_SECRET,
            "JPUSH_ENDPOINT": self.url + "/jpush/v3/push",
            "JPUSH_REPORT_ENDPOINT": self.url + "/jpush-report/v3/received/detail",
            "FCM_PROJECT_ID": "linli-test",
            "FCM_CLIENT_EMAIL": "sender@linli-test.iam.gserviceaccount.com",
            "FCM_PRIVATE_KEY": self.fcm_private_pem,
            "FCM_TOKEN_URI": self.url + "/oauth2/token",
            "FCM_BASE_URL": self.url + "/fcm",
        }

    def _scripted(self, api: str):
        if self.script[api]:
            return self.script[api].pop(0)
        return None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reply(self, status, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _basic(self):
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                return tuple(base64.b64decode(header[6:]).decode().split(":", 1))

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def _route(self, method):
                path = urlparse(self.path)
                raw = self._body()
                if path.path.startswith("/aliyun"):
                    return self._aliyun(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
                if path.path.startswith("/twilio"):
                    return self._twilio(method, path, raw)
                if path.path.startswith("/jpush-report"):
                    return self._jpush_report(method, path)
                if path.path.startswith("/jpush"):
                    return self._jpush(raw)
                if path.path.startswith("/oauth2/token"):
                    return self._oauth(dict(parse_qsl(raw.decode())))
                if path.path.startswith("/fcm"):
                    return self._fcm(path, raw)
                return self._reply(404, {"error": "no such fake"})

            def _maybe_scripted(self, api):
                step = fake._scripted(api)
                if step == "hang":
                    fake.hang.wait(30)  # longer than the client's read timeout
                    return "hung"
                if step is not None:
                    self._reply(*step)
                    return True
                return False

            # Alibaba Cloud Dysmsapi RPC ---------------------------------------------------------
            def _aliyun(self, params):
                signature = params.pop("Signature", "")
                canonical = "&".join(f"{_aliyun_percent(k)}={_aliyun_percent(v)}" for k, v in sorted(params.items()))
                to_sign = "POST&%2F&" + _aliyun_percent(canonical)
                expected = base64.b64encode(
                    hmac.new((ALIYUN_SECRET + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
                ).decode()
                request_id = str(uuid.uuid4()).upper()
                if params.get("AccessKeyId") != ALIYUN_KEY:
                    return self._reply(
                        404,
                        {
                            "RequestId": request_id,
                            "Message": "Specified access key is not found.",
                            "Code": "InvalidAccessKeyId.NotFound",
                        },
                    )
                if signature != expected:
                    return self._reply(
                        400,
                        {
                            "RequestId": request_id,
                            "Message": "Specified signature is not matched with our calculation.",
                            "Code": "SignatureDoesNotMatch",
                        },
                    )
                nonce = params.get("SignatureNonce")
                if nonce in fake.nonces:
                    return self._reply(
                        400,
                        {
                            "RequestId": request_id,
                            "Message": "Specified signature nonce was used already.",
                            "Code": "SignatureNonceUsed",
                        },
                    )
                fake.nonces.add(nonce)
                for name in ("Format", "SignatureMethod", "SignatureVersion", "Timestamp", "Version", "RegionId"):
                    if name not in params:
                        return self._reply(
                            400,
                            {
                                "RequestId": request_id,
                                "Code": "MissingParameter",
                                "Message": f"{name} is mandatory for this action.",
                            },
                        )
                datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
                action = params.get("Action")
                if action in ("SendSms", "SendBatchSms"):
                    if fake.latency:
                        fake.hang.wait(fake.latency)  # a slow provider (unless the fake is closing)
                    # Alibaba Cloud keeps what it accepted, with the time in Beijing (SendDate).
                    params["_received"] = fake.received_at()
                    fake.requests["aliyun"].append(params)
                    outcome = self._maybe_scripted("aliyun")
                    if outcome:
                        if outcome == "hung":
                            return None
                        return None
                    phones = [params["PhoneNumbers"]] if action == "SendSms" else json.loads(params["PhoneNumberJson"])
                    if action == "SendBatchSms":
                        assert len(phones) <= 100
                        signs = json.loads(params["SignNameJson"])
                        template_params = json.loads(params["TemplateParamJson"])
                        assert len(template_params) == len(phones) and len(signs) == len(phones)
                    else:
                        signs, template_params = [params["SignName"]], [json.loads(params["TemplateParam"])]
                    for sign_name, values in zip(signs, template_params, strict=True):
                        refusal = aliyun_refusal(params["TemplateCode"], sign_name, values)
                        if refusal is not None:
                            params["_refused"] = refusal[0]
                            return self._reply(
                                200, {"Message": refusal[1], "RequestId": request_id, "Code": refusal[0]}
                            )
                    biz_id = f"{uuid.uuid4().int % 10**18}^0"
                    params["_biz_id"] = biz_id
                    return self._reply(200, {"Message": "OK", "RequestId": request_id, "BizId": biz_id, "Code": "OK"})
                if action == "QuerySendDetails":
                    fake.requests["aliyun_query"].append(params)
                    details = [
                        {
                            "SendStatus": 3,
                            "ErrCode": "DELIVERED",
                            "TemplateCode": p["TemplateCode"],
                            "PhoneNum": params["PhoneNumber"],
                            "OutId": p.get("OutId"),
                            "BizId": p.get("_biz_id"),
                            "SendDate": p["_received"],
                            "ReceiveDate": p["_received"],
                            "Content": "...",
                        }
                        for p in fake.requests["aliyun"]
                        if params["PhoneNumber"] in _numbers(p) and "_refused" not in p
                    ]
                    return self._reply(
                        200,
                        {
                            "TotalCount": len(details),
                            "Message": "OK",
                            "RequestId": request_id,
                            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
                            "Code": "OK",
                        },
                    )
                return self._reply(
                    400,
                    {
                        "RequestId": request_id,
                        "Code": "InvalidAction.NotFound",
                        "Message": "Specified api is not found, please check your url and method.",
                    },
                )

            # Twilio REST ----------------------------------------------------------------------
            def _twilio(self, method, path, raw):
                if self._basic() != (TWILIO_SID, TWILIO_TOKEN):
                    return self._reply(
                        401,
                        {
                            "code": 20003,
                            "message": "Authenticate",
                            "more_info": "https://www.twilio.com/docs/errors/20003",
                            "status": 401,
                        },
                    )
                expected = f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
                if path.path != expected:
                    return self._reply(
                        404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
                    )
                if method == "GET":
                    query = dict(parse_qsl(path.query))
                    sent = [m for m in fake.requests["twilio"] if m["To"] == query.get("To") and "_sid" in m]
                    return self._reply(
                        200,
                        {
                            "messages": [
                                {
                                    "sid": m["_sid"],
                                    "to": m["To"],
                                    "from": m["From"],
                                    "body": m["Body"],
                                    "status": "delivered",
                                }
                                for m in sent
                            ],
                            "page": 0,
                            "page_size": 50,
                        },
                    )
                form = dict(parse_qsl(raw.decode()))
                fake.requests["twilio"].append(form)
                if self._maybe_scripted("twilio"):
                    return None
                if not form.get("To", "").startswith("+") or len(form["To"]) < 8:
                    return self._reply(
                        400,
                        {
                            "code": 21211,
                            "message": f"The 'To' number {form.get('To')} is not a valid phone number.",
                            "more_info": "https://www.twilio.com/docs/errors/21211",
                            "status": 400,
                        },
                    )
                sid = "SM" + uuid.uuid4().hex
                form["_sid"] = sid
                return self._reply(
                    201,
                    {
                        "sid": sid,
                        "account_sid": TWILIO_SID,
                        "to": form["To"],
                        "from": form["From"],
                        "body": form["Body"],
                        "status": "queued",
                        "num_segments": "1",
                        "error_code": None,
                        "error_message": None,
                        "api_version": "2010-04-01",
                        "direction": "outbound-api",
                    },
                )

            # JPush v3 --------------------------------------------------------------------------
            def _jpush(self, raw):
                if self._basic() != (JPUSH_KEY, JPUSH_SECRET):
                    return self._reply(401, {"error": {"code": 1004, "message": "Authen failed"}})
                payload = json.loads(raw)
                fake.requests["jpush"].append(payload)
                if self._maybe_scripted("jpush"):
                    return None
                ids = payload["audience"]["registration_id"]
                assert payload["platform"] == "all" and payload["notification"]["alert"]
                if all(i in fake.unregistered for i in ids):
                    return self._reply(
                        400,
                        {
                            "error": {
                                "code": 1011,
                                "message": "cannot find user by this audience "
                                "or has been inactive for more than 255 days",
                            }
                        },
                    )
                msg_id = str(uuid.uuid4().int % 10**17)
                fake.jpush_sent[msg_id] = list(ids)
                return self._reply(200, {"sendno": "0", "msg_id": msg_id})

            def _jpush_report(self, method, path):
                # Report API v3, GET /v3/received/detail?msg_ids=a,b (at most 100), basic auth.
                if self._basic() != (JPUSH_KEY, JPUSH_SECRET):
                    return self._reply(401, {"error": {"code": 1004, "message": "Authen failed"}})
                if method != "GET" or path.path != "/jpush-report/v3/received/detail":
                    return self._reply(404, {"error": {"code": 1003, "message": "Parameter value is invalid"}})
                fake.requests["jpush_report"].append(path.query)
                if self._maybe_scripted("jpush_report"):
                    return None
                ids = [i for i in dict(parse_qsl(path.query)).get("msg_ids", "").split(",") if i]
                if not ids or len(ids) > 100:
                    return self._reply(400, {"error": {"code": 1003, "message": "msg_ids is invalid"}})
                entries = []
                for msg_id in ids:
                    got = [r for r in fake.jpush_sent.get(msg_id, []) if r not in fake.jpush_not_received]
                    # Counts per channel, as JPush reports them (null where a channel was not used).
                    entries.append(
                        {
                            "msg_id": msg_id,
                            "jpush_received": len(got) - len(got) // 2,
                            "android_pns_sent": len(got) // 2,
                            "android_pns_received": len(got) // 2,
                            "ios_apns_sent": 0,
                            "ios_apns_received": None,
                            "ios_msg_received": 0,
                            "live_acivity_sent": 0,
                            "live_acivity_received": 0,
                            "wp_mpns_sent": 0,
                            "quickapp_jpush_received": 0,
                            "quickapp_pns_sent": 0,
                            "hmos_hmpns_received": 0,
                            "hmos_hmpns_sent": 0,
                        }
                    )
                return self._reply(200, entries)

            # Google OAuth2 and FCM v1 -------------------------------------------------------------
            def _oauth(self, form):
                if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                    return self._reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant"})
                try:
                    claims = jwt.decode(
                        form["assertion"], fake.fcm_public, algorithms=["RS256"], audience=fake.url + "/oauth2/token"
                    )
                except jwt.InvalidTokenError:
                    return self._reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
                token = "ya29." + uuid.uuid4().hex
                fake.fcm_tokens.add(token)
                fake.requests["oauth"].append(claims)
                return self._reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

            def _fcm(self, path, raw):
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if bearer not in fake.fcm_tokens:
                    return self._reply(
                        401,
                        {
                            "error": {
                                "code": 401,
                                "message": "Request had invalid authentication credentials.",
                                "status": "UNAUTHENTICATED",
                            }
                        },
                    )
                assert path.path == "/fcm/v1/projects/linli-test/messages:send"
                message = json.loads(raw)["message"]
                fake.requests["fcm"].append(message)
                if self._maybe_scripted("fcm"):
                    return None
                if message["token"] in fake.unregistered:
                    return self._reply(
                        404,
                        {
                            "error": {
                                "code": 404,
                                "message": "Requested entity was not found.",
                                "status": "NOT_FOUND",
                                "details": [
                                    {
                                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                        "errorCode": "UNREGISTERED",
                                    }
                                ],
                            }
                        },
                    )
                return self._reply(200, {"name": f"projects/linli-test/messages/0:{uuid.uuid4().hex}"})

        return Handler

    def close(self) -> None:
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fakes(clock):
    server = FakeProviders()
    server.clock = clock
    yield server
    server.close()


@pytest.fixture
def aliyun_account():
    """The test account's approved templates (`approved`) and its ALIYUN_SMS_TEMPLATES (`setting()`)."""
    from types import SimpleNamespace

    return SimpleNamespace(approved=ALIYUN_APPROVED, setting=aliyun_templates_setting)


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """These tests read the API's messages in English; Chinese, the default, has tests of its own."""
    english_test_clients(monkeypatch)
