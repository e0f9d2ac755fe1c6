"""Responses dumped by compiled functions that give what marshmallow's `Schema.dump` gives.

flask-smorest dumps every response body through its schema (`@blp.response(200, Schema)`):
marshmallow walks each field through `serialize`, `get_value` and the accessor, a few calls per
field for values that are mostly already strings, integers and booleans. `compile_dumper` makes,
once per schema, a function doing the same per field: the value is read as marshmallow reads it
(`utils.get_value`: by key, else by attribute), a missing one takes the field's `dump_default` or is
left out, a str of a String, an int of an Integer or a bool of a Boolean is taken as it is (what
their `_serialize` returns for it), and anything else goes to the field's own `_serialize` (None,
other types, or custom fields such as instants and labels: to `serialize`, whole). A schema with
dump hooks, `only`/`exclude` nesting of its own, or another accessor is left to marshmallow.
libs/kit/tests/test_dumping.py compares it with `Schema.dump`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow.utils import get_value

Dumper = Callable[[Any], dict[str, Any]]

# Field kinds whose `_serialize` returns a value of exactly this type unchanged.
_AS_IS: dict[type, type] = {fields.String: str, fields.Integer: int, fields.Boolean: bool}


def compile_dumper(schema: ma.Schema) -> Dumper | None:
    """What `schema.dump(obj)` returns for one object (many=False), or None: leave it to marshmallow."""
    hooks = getattr(schema, "_hooks", None)
    if hooks is None or any(hooks.values()):
        return None
    if type(schema).get_attribute is not ma.Schema.get_attribute or schema.dict_class is not dict:
        return None
    steps: list[Callable[[Any, dict[str, Any]], None]] = []
    for attr_name, field in schema.dump_fields.items():
        step = _step(schema, attr_name, field)
        if step is None:
            return None
        steps.append(step)
    frozen = tuple(steps)

    def dump(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for step in frozen:
            step(obj, out)
        return out

    return dump


def _step(schema: ma.Schema, attr_name: str, field: fields.Field) -> Callable[[Any, dict[str, Any]], None] | None:
    key = field.data_key if field.data_key is not None else attr_name
    source = field.attribute or attr_name
    kind = type(field)
    plain = _AS_IS.get(kind)
    if plain is None or getattr(field, "as_string", False) or "." in source:
        accessor = schema.get_attribute

        def generic(obj: Any, out: dict[str, Any]) -> None:
            value = field.serialize(attr_name, obj, accessor=accessor)
            if value is not ma.missing:
                out[key] = value

        return generic
    default = field.dump_default
    serialize = field._serialize

    def simple(obj: Any, out: dict[str, Any]) -> None:
        value = get_value(obj, source, ma.missing)
        if value is ma.missing:
            if default is ma.missing:
                return
            value = default() if callable(default) else default
        out[key] = value if type(value) is plain else serialize(value, attr_name, obj)

    return simple


def install(schema: ma.Schema) -> ma.Schema:
    """Make `schema.dump` the compiled one where it can be (the instance keeps marshmallow's for
    any call it does not cover); the schema is returned."""
    one = compile_dumper(schema)
    if one is None or getattr(schema, "_linli_compiled", False):
        return schema
    marshmallows = schema.dump
    many_by_default = bool(schema.many)

    def dump(obj: Any, *, many: bool | None = None) -> Any:
        as_many = many_by_default if many is None else bool(many)
        if not as_many:
            return one(obj)
        if obj is None:
            return marshmallows(obj, many=many)
        return [one(item) for item in obj]

    schema.dump = dump  # type: ignore[method-assign]
    schema._linli_compiled = True  # type: ignore[attr-defined]
    schema._linli_marshmallow_dump = marshmallows  # type: ignore[attr-defined]
    return schema
