"""The compiled argument loaders give exactly what marshmallow loads, or step aside.

`ArgumentsParser` answers a request with a compiled loader's result when it has one and asks
marshmallow otherwise; so it is equivalent to webargs + marshmallow if every result a loader gives
equals `schema.load` of the same data (and marshmallow accepts that data). That is tried here on
schemas of every field kind the loaders handle, query strings and JSON bodies, with each field
given each value of a pool of right and wrong ones. The common valid requests must also be
loaded by the loader itself, or the parser would still pay marshmallow's price on them.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from flask import Flask
from flask_smorest import Api, Blueprint, pagination
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates
from webargs.fields import DelimitedList
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from linli_kit import web  # noqa: F401 - installs the parser and the pagination metadata
from linli_kit.arguments import ArgumentsParser, compile_loader
from linli_kit.schemas import AwareDateTime

AN_ID = "4f3c2b1a-9d8e-4c7b-a6f5-0e1d2c3b4a59"


def _at_least_three(value: str) -> None:
    if len(value.strip()) < 3:
        raise ValidationError("at least three non-blank characters")


class Body(Schema):
    community_id = fields.UUID(required=True)
    other_id = fields.UUID(load_default=None, allow_none=True)
    title = fields.String(required=True, validate=[validate.Length(min=3, max=20), _at_least_three])
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=10))
    urgency = fields.String(load_default="normal", validate=validate.OneOf(("low", "normal", "high")))
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    count = fields.Integer(load_default=0, validate=validate.Range(min=0, max=50))
    flag = fields.Boolean(load_default=False)
    tags = fields.List(fields.String(validate=validate.Length(max=5)), load_default=list)
    when = AwareDateTime(load_default=None)
    renamed = fields.String(data_key="other-name", attribute="stored_as", load_default=None)


class Query(Schema):
    community_id = fields.UUID(load_default=None)
    status = DelimitedList(fields.String(validate=validate.OneOf(("open", "done"))))
    mine = fields.Boolean(load_default=False)
    overdue = fields.Boolean(load_default=None)
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=10))
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(("created_at", "-created_at")))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    since = AwareDateTime(load_default=None)


class WithPostLoad(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))

    @post_load
    def wrap(self, data: dict[str, Any], **_kwargs: Any) -> tuple[str, dict[str, Any]]:
        return ("wrapped", data)


class WithValidates(Schema):
    name = fields.String(load_default=None)

    @validates("name")
    def check_name(self, value: str, **_kwargs: Any) -> None:
        if value == "bad":
            raise ValidationError("bad name")


JSON_VALUES: list[Any] = [
    None, 0, 1, -1, 60, 2**70, 1.5, 100.0, math.nan, math.inf, True, False, "", " ", "abc", "   ab", "x" * 30,
    "low", "high", "LOW", "5", "1.5", "true", [], ["a"], ["toolong"], [None], [1], {}, {"a": 1},
    AN_ID, AN_ID.upper(), AN_ID.replace("-", ""), "not-a-uuid", AN_ID + "\n", "2026-01-02T03:04:05+08:00",
]  # fmt: skip
TEXT_VALUES: list[str] = [
    "", " ", "0", "1", "20", "020", "+5", "-1", " 5", "5 ", "1_0", "101", "1.5", "٣", "true", "True", "false", "on",
    "off", "yes", "maybe", "open", "done", "open,done", "open,", ",", "open,nope", "x" * 11, "created_at",
    "-created_at", AN_ID, AN_ID.upper(), "{" + AN_ID + "}", "not-a-uuid", "2026-01-02T03:04:05+08:00",
]  # fmt: skip


def marshmallow_load(schema: Schema, data: Any, unknown: str | None) -> tuple[bool, Any]:
    try:
        return True, schema.load(data, **({"unknown": unknown} if unknown else {}))
    except ValidationError:
        return False, None


def assert_agrees(schema: Schema, data: Any, *, unknown: str | None, strings: bool) -> bool:
    """The loader's answer equals marshmallow's, or it has none; whether it had one."""
    loaded = compile_loader(schema, unknown=unknown, strings=strings)(data)
    if loaded is None:
        return False
    accepted, expected = marshmallow_load(schema, data, unknown)
    assert accepted, f"loader accepted what marshmallow refuses: {data!r} -> {loaded!r}"
    assert loaded == expected, f"{data!r}: loader {loaded!r} != marshmallow {expected!r}"
    assert [type(v) for v in _values(loaded)] == [type(v) for v in _values(expected)]
    return True


def _values(thing: Any) -> list[Any]:
    return list(thing.values()) if isinstance(thing, dict) else [thing]


VALID_BODY = {"community_id": AN_ID, "title": "Roof leaks"}


@pytest.mark.parametrize("unknown", [None, "exclude"])
def test_json_bodies_load_as_marshmallow_loads_them(unknown: str | None) -> None:
    schema = Body()
    assert assert_agrees(schema, dict(VALID_BODY), unknown=unknown, strings=False)
    full = {**VALID_BODY, "other_id": AN_ID, "note": "n", "urgency": "high", "latitude": 12, "count": 3,
            "flag": True, "tags": ["a", "b"], "other-name": "x"}  # fmt: skip
    assert assert_agrees(schema, full, unknown=unknown, strings=False)
    for key in [*full, "when", "extra"]:
        base = {k: v for k, v in full.items() if k != key}
        assert_agrees(schema, base, unknown=unknown, strings=False)
        for value in JSON_VALUES:
            assert_agrees(schema, {**full, key: value}, unknown=unknown, strings=False)
    for value in ([], "text", None, 5):
        assert compile_loader(schema, unknown=unknown, strings=False)(value) is None


def query(pairs: list[tuple[str, str]], schema: Schema) -> MultiDictProxy:
    return MultiDictProxy(MultiDict(pairs), schema)


def test_query_strings_load_as_marshmallow_loads_them() -> None:
    schema = Query()
    assert assert_agrees(schema, query([], schema), unknown="exclude", strings=True)
    common = [("community_id", AN_ID), ("status", "open"), ("sort", "-created_at"), ("page_size", "20")]
    assert assert_agrees(schema, query(common, schema), unknown="exclude", strings=True)
    for key in ["community_id", "status", "mine", "overdue", "q", "sort", "limit", "since", "other"]:
        for value in TEXT_VALUES:
            assert_agrees(schema, query([*common, (key, value)], schema), unknown="exclude", strings=True)
        for first, second in itertools.product(("open", "20", "true"), repeat=2):
            assert_agrees(schema, query([(key, first), (key, second)], schema), unknown="exclude", strings=True)


def test_hooks_run_or_leave_the_schema_to_marshmallow() -> None:
    wrapped = WithPostLoad()
    assert compile_loader(wrapped, unknown="exclude", strings=True)(query([("page", "2")], wrapped)) == (
        "wrapped",
        {"page": 2},
    )
    validated = WithValidates()
    assert compile_loader(validated, unknown="exclude", strings=True)(query([("name", "ok")], validated)) is None


def test_flask_smorest_pagination_parameters_load_without_marshmallow() -> None:
    schema = pagination._pagination_parameters_schema_factory(1, 10, 100)()
    for pairs in ([], [("page", "3")], [("page_size", "100")], [("page", "2"), ("page_size", "7")]):
        loaded = compile_loader(schema, unknown="exclude", strings=True)(query(pairs, schema))
        expected = schema.load(query(pairs, schema), unknown="exclude")
        assert (loaded.page, loaded.page_size) == (expected.page, expected.page_size)
    for value in ("0", "101", "-1", "x", "1.0", "100001"):
        assert compile_loader(schema, unknown="exclude", strings=True)(query([("page_size", value)], schema)) is None


def test_pagination_header_is_flask_smorests() -> None:
    original = pagination.PaginationMixin.__dict__["_make_pagination_metadata"].__func__
    ours = Blueprint._make_pagination_metadata
    assert ours is not original
    for page, size, count in itertools.product((1, 2, 5, 9), (1, 3, 20), (0, 1, 2, 19, 20, 21, 100)):
        assert list(ours(page, size, count).items()) == list(original(page, size, count).items())


def test_the_parser_answers_bad_input_as_webargs_does() -> None:
    assert isinstance(Blueprint.ARGUMENTS_PARSER, ArgumentsParser)
    app = Flask("t")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("t", "t", url_prefix="")

    @blp.route("/things", methods=["GET"])
    @blp.arguments(Query, location="query")
    def things(args: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: str(v) for k, v in args.items()}}

    @blp.route("/things", methods=["POST"])
    @blp.arguments(Body)
    def make(body: dict[str, Any]) -> dict[str, Any]:
        return {"title": body["title"]}

    api.register_blueprint(blp)
    client = app.test_client()
    good = client.get(f"/things?community_id={AN_ID}&status=open,done")
    assert good.status_code == 200 and good.json["args"]["status"] == "['open', 'done']"
    bad = client.get("/things?status=nope&limit=0")
    assert bad.status_code == 422
    assert set(bad.json["errors"]["query"]) == {"status", "limit"}
    assert client.post("/things", json=VALID_BODY).status_code == 200
    refused = client.post("/things", json={**VALID_BODY, "title": "  a ", "extra": 1})
    assert refused.status_code == 422 and set(refused.json["errors"]["json"]) == {"title", "extra"}


def test_a_paginated_view_loads_its_page_with_one_schema_and_one_loader() -> None:
    """flask-smorest hands the parser its pagination schema as a class: one instance serves every
    request (and its compiled loader with it), and pages load and are refused as before."""
    parser = Blueprint.PAGINATION_ARGUMENTS_PARSER
    assert isinstance(parser, ArgumentsParser)
    app = Flask("paged")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("paged", "paged", url_prefix="")

    @blp.route("/rows")
    @blp.response(200)
    @blp.paginate()
    def rows(pagination_parameters: Any) -> list[int]:
        pagination_parameters.item_count = 95
        first = pagination_parameters.first_item
        return list(range(first, min(first + pagination_parameters.page_size, 95)))

    api.register_blueprint(blp)
    client = app.test_client()
    before = len(parser._schemas_of_classes)
    assert client.get("/rows?page=2&page_size=10").json == list(range(10, 20))
    assert len(parser._schemas_of_classes) == before + 1
    schema = next(s for c, s in parser._schemas_of_classes.items() if c.__name__.startswith("Bounded"))
    assert client.get("/rows?page=10&page_size=10").json == list(range(90, 95))
    assert client.get("/rows").json == list(range(10))
    assert len(parser._schemas_of_classes) == before + 1
    assert parser._get_schema(type(schema), None) is schema
    refused = client.get("/rows?page=0&page_size=1000")
    assert refused.status_code == 422 and set(refused.json["errors"]["query"]) == {"page", "page_size"}
