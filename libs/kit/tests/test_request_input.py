"""What every app refuses before a service sees it: text no database can store, pages and dates out
of range; and the error body its OpenAPI document promises."""

from __future__ import annotations

import json

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.schemas import AwareDateTime, BoundedDate
from linli_kit.web import create_app

blp = Blueprint("echo", __name__, url_prefix="/echo")


class EchoQuery(Schema):
    day = BoundedDate(load_default=None)
    at = AwareDateTime(load_default=None)


@blp.route("/")
class Echo(MethodView):
    @blp.arguments(EchoQuery, location="query")
    @blp.response(200)
    def get(self, query: dict) -> dict:
        return {k: str(v) for k, v in query.items() if v is not None}

    @blp.response(201)
    def post(self) -> dict:
        from flask import request

        return request.get_json()


class Item(Schema):
    n = fields.Integer()


@blp.route("/list")
class EchoList(MethodView):
    @blp.response(200, Item(many=True))
    @blp.paginate()
    def get(self, pagination_parameters) -> list[int]:
        pagination_parameters.item_count = 3
        return [{"n": n} for n in (1, 2, 3)]


def make_client(monkeypatch, tmp_path, token_keys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'probe.db'}")
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    settings = load_settings("probe")
    client = create_app(settings, Database(settings.database_url), title="probe", blueprints=[blp]).test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # these tests read the English messages
    return client


def test_unstorable_text_is_422_naming_the_field(monkeypatch, tmp_path, token_keys):
    client = make_client(monkeypatch, tmp_path, token_keys)
    answer = client.post(
        "/echo/", data=json.dumps({"title": "ok", "tags": ["fine", "bad\u0000"]}), content_type="application/json"
    )
    assert answer.status_code == 422
    assert answer.json["error"]["fields"] == {"tags.1": [answer.json["error"]["fields"]["tags.1"][0]]}
    lone = client.post("/echo/", data='{"note": "\\ud800"}', content_type="application/json")
    assert lone.status_code == 422 and "note" in lone.json["error"]["fields"]
    query = client.get("/echo/?day=2026-01-01&q=a%00b")
    assert query.status_code == 422 and "q" in query.json["error"]["fields"]
    assert client.post("/echo/", json={"title": "你好 ok"}).status_code == 201


def test_unstorable_text_in_every_form_a_json_body_can_carry_it(monkeypatch, tmp_path, token_keys):
    """A body is walked only when its bytes may hold NUL or a lone surrogate: each way one can come
    (escaped, raw UTF-8 surrogate bytes the parser lets through, a UTF-16 document) is still refused."""
    client = make_client(monkeypatch, tmp_path, token_keys)
    raw_surrogate = b'{"note": "a' + "\ud800".encode("utf-8", "surrogatepass") + b'"}'
    utf16 = '{"note": "a\\u0000b"}'.encode("utf-16")
    for body in (b'{"note": "a\\u0000"}', raw_surrogate, utf16, b'{"k\\u0000": 1}'):
        answer = client.post("/echo/", data=body, content_type="application/json")
        assert answer.status_code == 422, (body, answer.json)
    # A backslash written before a `u` is no escape of one: the walk finds nothing and lets it by.
    for document in ({"note": "C:\\users\\u0000"}, {"title": "한국어 fine"}, {"n": 1}):
        answer = client.post("/echo/", data=json.dumps(document), content_type="application/json")
        assert answer.status_code == 201 and answer.json == document


def test_dates_and_pages_out_of_range_are_422(monkeypatch, tmp_path, token_keys):
    client = make_client(monkeypatch, tmp_path, token_keys)
    assert client.get("/echo/?day=0001-01-01").json["error"]["fields"] == {
        "day": ["must be between 1970-01-01 and 2999-12-31"]
    }
    for at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        answer = client.get("/echo/", query_string={"at": at})
        assert answer.status_code == 422 and "at" in answer.json["error"]["fields"], answer.json
    assert client.get("/echo/", query_string={"at": "2026-12-03T08:00:00+08:00"}).json == {
        "at": "2026-12-03 00:00:00+00:00"
    }
    assert client.get("/echo/list?page=9223372036854775807").status_code == 422
    assert client.get("/echo/list?page=2").status_code == 200


def test_the_documented_error_body_is_the_one_answered(monkeypatch, tmp_path, token_keys):
    client = make_client(monkeypatch, tmp_path, token_keys)
    document = client.get("/openapi.json").json
    error = document["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "request_id"} and error["additionalProperties"] is False
    detail = document["components"]["schemas"]["ErrorDetail"]["properties"]
    answered = client.get("/echo/?day=0001-01-01").json
    assert set(answered) <= set(error["properties"])
    assert set(answered["error"]) <= set(detail)
    page = next(p for p in document["paths"]["/echo/list"]["get"]["parameters"] if p["name"] == "page")
    assert page["schema"]["maximum"] == 100_000
