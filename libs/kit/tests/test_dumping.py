"""Compiled response dumpers give what marshmallow's `Schema.dump` gives, value for value."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import flask_smorest.response
import pytest
from marshmallow import Schema, fields, post_dump

from linli_kit import dumping, web  # noqa: F401 - web installs the dumper into flask-smorest
from linli_kit.schemas import DisplayLabel


class Inner(Schema):
    done = fields.Integer()
    label = fields.String(allow_none=True)


class Outer(Schema):
    id = fields.String()
    count = fields.Integer(allow_none=True)
    flag = fields.Boolean()
    ratio = fields.Float(allow_none=True)
    text = fields.String(allow_none=True, data_key="words")
    source = fields.String(attribute="stored_as")
    counted_text = fields.Integer(as_string=True)
    with_default = fields.String(dump_default="dflt")
    with_callable_default = fields.Integer(dump_default=lambda: 7)
    when = fields.AwareDateTime(allow_none=True)
    status_label = DisplayLabel("issue_status", "status")
    inner = fields.Nested(Inner, allow_none=True)
    tags = fields.List(fields.String())
    loaded_only = fields.String(load_only=True)


@dataclass
class Thing:
    id: Any = "t1"
    count: Any = 3
    flag: Any = True
    ratio: Any = 0.5
    text: Any = "x"
    stored_as: Any = "s"
    counted_text: Any = 12
    when: Any = None
    status: Any = "reported"
    inner: Any = None
    tags: Any = ()
    loaded_only: Any = "secret"


VALUES: list[Any] = [None, 0, 1, 7, True, False, 1.5, "", "abc", "12", datetime(2026, 1, 2, 3, 4, tzinfo=UTC)]


def samples() -> list[Any]:
    base = {
        "id": "a", "count": 1, "flag": False, "ratio": 2, "text": "t", "stored_as": "s", "counted_text": 3,
        "when": datetime(2026, 1, 2, tzinfo=UTC), "status": "accepted", "inner": {"done": 1, "label": None},
        "tags": ["a", "b"], "loaded_only": "no",
    }  # fmt: skip
    found: list[Any] = [base, {}, Thing(), Thing(inner={"done": True})]
    for key in base:
        found.append({k: v for k, v in base.items() if k != key})
        for value in VALUES:
            if key in ("when", "inner", "tags"):
                continue
            found.append({**base, key: value})
            found.append(Thing(**{("stored_as" if key == "stored_as" else key): value}))
    return found


def test_compiled_dump_equals_marshmallows() -> None:
    schema = Outer()
    compiled = dumping.compile_dumper(schema)
    assert compiled is not None
    for obj in samples():
        try:
            expected = schema.dump(obj)
        except (TypeError, ValueError) as refused:  # a value its field cannot turn into its type
            with pytest.raises(type(refused)):
                compiled(obj)
            continue
        got = compiled(obj)
        assert list(got.items()) == list(expected.items()), obj
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()], obj


def test_installed_dump_handles_many_and_keeps_marshmallows_for_the_rest() -> None:
    listed = dumping.install(Outer(many=True))
    objs = samples()[:10]
    assert listed.dump(objs) == Outer(many=True).dump(objs)
    assert listed.dump(objs[0], many=False) == Outer().dump(objs[0])
    assert listed.dump(None) == Outer(many=True).dump(None)
    assert listed._linli_compiled


def test_schemas_with_dump_hooks_are_left_to_marshmallow() -> None:
    class Hooked(Schema):
        name = fields.String()

        @post_dump
        def shout(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
            return {k: v.upper() for k, v in data.items()}

    assert dumping.compile_dumper(Hooked()) is None
    hooked = dumping.install(Hooked())
    assert hooked.dump({"name": "a"}) == {"name": "A"}
    assert not getattr(hooked, "_linli_compiled", False)


def test_flask_smorest_responses_dump_with_the_compiled_function() -> None:
    resolved = flask_smorest.response.resolve_schema_instance(Outer)
    assert isinstance(resolved, Outer) and resolved._linli_compiled
    assert flask_smorest.response.resolve_schema_instance({"type": "string"}) == {"type": "string"}
    for a, b in itertools.pairwise(samples()[:6]):
        assert resolved.dump(a) == Outer().dump(a) and resolved.dump(b) == Outer().dump(b)
