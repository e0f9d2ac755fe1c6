"""The app factory every service shares: error format, request ids, probes, identity, log hygiene."""

from __future__ import annotations

import json
import logging

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from linli_kit.auth import TokenVerifier
from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.errors import Conflict
from linli_kit.logs import RedactingFilter, redact
from linli_kit.testing.plugin import TEST_ISSUER
from linli_kit.web import create_app, require_principal

blp = Blueprint("things", __name__, url_prefix="/things")


class ThingIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=3))
    size = fields.Integer(required=True, validate=validate.Range(1, 10))


@blp.route("/")
class Things(MethodView):
    @blp.arguments(ThingIn)
    @blp.response(201, ThingIn)
    def post(self, body: dict) -> dict:
        require_principal()
        if body["title"] == "taken":
            raise Conflict("a thing with this title exists", fields={"title": ["already exists"]})
        return body


@blp.route("/count")
def count() -> dict:
    from flask import current_app

    with current_app.extensions["linli.database"].session() as session:
        return {"count": session.scalar(text("SELECT 1"))}


def make_app(monkeypatch, token_keys, database_url: str, amqp_url: str):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    settings = load_settings("probe")
    return create_app(
        settings,
        Database(settings.database_url),
        title="probe",
        blueprints=[blp],
        verifier=TokenVerifier(token_keys[1], issuer=TEST_ISSUER),
    )


@pytest.fixture
def client(monkeypatch, token_keys, pg_databases, amqp_url):
    return make_app(monkeypatch, token_keys, pg_databases.create("web"), amqp_url).test_client()


def test_bad_input_names_every_field_and_errors_share_one_shape(client, token_signer):
    auth = {"Authorization": "Bearer " + token_signer.sign(user_id="u1", role="resident", community_ids=["c"])}
    bad = client.post("/things/", json={"title": "x", "size": 99}, headers=auth)
    assert bad.status_code == 422
    error = bad.get_json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == {"title", "size"}
    assert client.post("/things/", json={"title": "taken", "size": 1}, headers=auth).get_json()["error"] == {
        "status": 409,
        "code": "conflict",
        "message": "a thing with this title exists",
        "fields": {"title": ["already exists"]},
    }
    unauthenticated = client.post("/things/", json={"title": "abc", "size": 1})
    assert unauthenticated.status_code == 401 and unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/nowhere").get_json()["error"]["code"] == "not_found"
    not_json = client.post("/things/", data="{", headers={**auth, "Content-Type": "application/json"})
    assert not_json.status_code in (400, 422) and "error" in not_json.get_json()


def test_request_ids_pass_through_or_are_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert made and made != "bad id with spaces"


def test_probes_and_metrics(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}
    client.get("/things/count")
    assert 'linli_http_requests_total{endpoint="/things/count"' in client.get("/metrics").get_data(as_text=True)
    spec = client.get("/openapi.json").get_json()
    assert "/things/" in spec["paths"] and "bearerAuth" in spec["components"]["securitySchemes"]


def test_an_unreachable_database_answers_503_and_not_ready(monkeypatch, token_keys, amqp_url):
    app = make_app(monkeypatch, token_keys, "postgresql://postgres@127.0.0.1:1/nothing", amqp_url)
    client = app.test_client()
    down = client.get("/things/count")
    assert down.status_code == 503 and down.get_json()["error"]["code"] == "database_unavailable"
    assert down.headers["Retry-After"] == "1"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"].startswith("unavailable")


def test_logs_never_show_phone_numbers_codes_or_tokens(token_signer):
    token = token_signer.sign(user_id="u1", role="resident")
    assert redact(f"calling 13800138000 and +8613900139000 with Bearer {token}") == (
        "calling [phone] and [phone] with Bearer [redacted]"
    )
    record = logging.makeLogRecord(
        {
            "msg": "sending the sign-up code to %s",
            "args": ("+8613800138000",),
            "phone": "+8613800138000",
            "code": "123456",
            "detail": {"token": token, "note": f"jwt {token}"},
        }
    )
    RedactingFilter("probe").filter(record)
    rendered = json.dumps({k: v for k, v in vars(record).items() if k in {"msg", "phone", "code", "detail"}})
    # Values under personal keys are masked whatever they look like; numbers in text when they look like phones.
    assert "13800138000" not in rendered and "123456" not in rendered
    assert token not in rendered and record.phone == "[redacted]" and record.code == "[redacted]"
