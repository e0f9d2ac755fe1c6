"""JSON bodies loaded without marshmallow's walk when they are surely valid, the service's own field
types included.

The kit's parser (linli_kit.arguments) loads surely valid arguments with compiled loaders, but knows
only marshmallow's own field classes: a body holding the service's `Text` (a string the databases
can store) or `Instant` (an instant with its offset) went through `Schema.load`, which cost an
activity's create more than its validation's rules (bench/main_pages_http.py). `BodyParser` is the
kit's parser whose JSON loaders (`compile_body_loader`) load those fields too, each value by the
same operations as the field's own `deserialize`: its class's conversion (a string taken as it is,
`uuid.UUID`, an int, a bool; `Text` refusing what `_storable` refuses), written out for the common
classes, or the field's `deserialize` itself for the others it knows (instants, URLs, dates,
floats), then its validators. When a value is not surely valid (any of these refuses it, or its
field is of a kind not known here) the loader answers None and marshmallow loads the whole body as
before: what is accepted and refused, and every error message and status, stay marshmallow's and
webargs'. Schemas with hooks are left to the kit's parser. tests/test_body_loading.py holds the
loader to `Schema.load` on valid and mutated bodies of every schema of the activities' API.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import EXCLUDE, RAISE, ValidationError, fields

from linli_activities.entrypoints.common import Instant, Text, Url, _storable
from linli_kit.arguments import ArgumentsParser
from linli_kit.periods import EARLIEST, LATEST

Loader = Callable[[Any], dict[str, Any] | None]
Convert = Callable[[Any], Any]

_MISSING = object()
_UNSURE = object()
# Loaded by the field's own `deserialize` (no schema context, no nested schema): exact by
# construction, only without the schema's walk around it.
_BY_THEIR_OWN_DESERIALIZE = (Url, fields.Date, fields.DateTime, fields.AwareDateTime, fields.Float)


def _validated(field: fields.Field, convert: Convert) -> Convert:
    """`convert`, then the field's validators on what it gave (as `Field._validate` runs them)."""
    validators = tuple(field.validators)
    if not validators:
        return convert

    def load(value: Any) -> Any:
        loaded = convert(value)
        if loaded is _UNSURE:
            return _UNSURE
        for validator in validators:
            try:
                if validator(loaded) is False:
                    return _UNSURE
            except Exception:  # noqa: BLE001 - ValidationError or worse: marshmallow decides and words it
                return _UNSURE
        return loaded

    return load


def _text(value: Any) -> Any:
    # String._deserialize takes str (JSON gives no bytes); Text's `_storable` then refuses NUL and
    # lone surrogates.
    if type(value) is not str:
        return _UNSURE
    try:
        return _storable(value)
    except ValidationError:
        return _UNSURE


def _string(value: Any) -> Any:
    return value if type(value) is str else _UNSURE


def _uuid(value: Any) -> Any:
    if type(value) is not str:
        return _UNSURE
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return _UNSURE


def _integer(value: Any) -> Any:
    # Only ints (bool is refused by marshmallow, and is not `int` by type): int(value) is value.
    return value if type(value) is int else _UNSURE


def _boolean(field: fields.Boolean) -> Convert:
    truthy, falsy = field.truthy, field.falsy
    if not truthy or True not in truthy or False not in falsy:
        return lambda _value: _UNSURE

    def load(value: Any) -> Any:
        return value if value is True or value is False else _UNSURE

    return load


def _instant(field: Instant) -> Convert:
    """An Instant: `datetime.fromisoformat` (marshmallow's ISO parser), an offset required, in UTC;
    written out for the instants surely within the platform's bounds (a year strictly between
    those of its first and last dates), the field's own `deserialize` for any other."""
    own = _own_deserialize(field)
    if field.format not in (None, "iso", "iso8601") or field.default_timezone is not None:
        return own
    parse, after, before = datetime.fromisoformat, EARLIEST.year, LATEST.year

    def load(value: Any) -> Any:
        if type(value) is not str:
            return own(value)
        try:
            parsed = parse(value)
        except (TypeError, ValueError):
            return _UNSURE
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return _UNSURE  # naive: refused, as the field refuses it
        if not after < parsed.year < before:
            return own(value)
        instant = parsed.astimezone(UTC)
        return instant if after < instant.year < before else own(value)

    return load


def _own_deserialize(field: fields.Field) -> Convert:
    deserialize = field.deserialize

    def load(value: Any) -> Any:
        try:
            return deserialize(value)
        except ValidationError:
            return _UNSURE

    return load


def _list(field: fields.List) -> Convert | None:
    inner = _field_loader(field.inner)
    if inner is None:
        return None

    def load(value: Any) -> Any:
        if type(value) is not list:
            return _UNSURE
        loaded = [inner(each) for each in value]
        return _UNSURE if _UNSURE in loaded else loaded

    return load


def _field_loader(field: fields.Field) -> Convert | None:
    """What a present, non-null value of the field loads as (or `_UNSURE`); None: a field this
    module does not load (marshmallow does, whenever it is present)."""
    if field.pre_load or field.post_load:  # marshmallow 4's field-level processors
        return None
    kind = type(field)
    convert: Convert | None
    if kind is Text:
        convert = _text
    elif kind is fields.String:
        convert = _string
    elif kind is fields.UUID:
        convert = _uuid
    elif kind is fields.Integer and not field.strict:
        convert = _integer
    elif kind is fields.Boolean:
        return _boolean(field) if not field.validators else _own_deserialize(field)
    elif kind is fields.List:
        convert = _list(field)
    elif kind is Instant:
        convert = _instant(field)
    elif kind in _BY_THEIR_OWN_DESERIALIZE:
        return _own_deserialize(field)  # its validators run by `deserialize` itself
    else:
        return None
    return None if convert is None else _validated(field, convert)


def _never(_data: Any) -> None:
    return None


def compile_body_loader(schema: ma.Schema, *, unknown: str | None) -> Loader | None:
    """A function of a JSON body: what `schema.load(data, unknown=unknown)` returns when it is
    surely valid, None when not. None instead of a function for a schema with hooks (or an
    `unknown` of INCLUDE): the kit's parser then loads it."""
    if any(getattr(schema, "_hooks", {None: True}).values()):
        return None
    unknown = unknown or schema.unknown
    if unknown not in (EXCLUDE, RAISE):
        return None
    rows: list[tuple[str, str, bool, bool, Any, Convert]] = []
    for name, field in schema.load_fields.items():
        convert = _field_loader(field)
        if convert is None:
            # Loaded when absent (its default), never when present: marshmallow decides.
            def convert(_value: Any) -> Any:
                return _UNSURE

        rows.append(
            (
                field.data_key if field.data_key is not None else name,
                field.attribute or name,
                bool(field.required),
                bool(field.allow_none),
                field.load_default,
                convert,
            )
        )
    known = frozenset(key for key, *_ in rows)
    only_known = unknown == RAISE
    frozen = tuple(rows)

    def load(data: Any) -> dict[str, Any] | None:
        if not isinstance(data, Mapping) or (only_known and not known.issuperset(data)):
            return None
        result: dict[str, Any] = {}
        get = data.get
        for key, target, required, allow_none, default, convert in frozen:
            value = get(key, _MISSING)
            if value is _MISSING or value is ma.missing:
                if required:
                    return None
                if default is not ma.missing:
                    result[target] = default() if callable(default) else default
            elif value is None:
                if not allow_none:
                    return None
                result[target] = None
            else:
                loaded = convert(value)
                if loaded is _UNSURE:
                    return None
                result[target] = loaded
        return result

    return load


class BodyParser(ArgumentsParser):
    """The kit's arguments parser, its JSON bodies loaded by `compile_body_loader` (the kit's loaders
    for every other location, and for schemas `compile_body_loader` leaves to it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body_loaders: weakref.WeakKeyDictionary[ma.Schema, dict[str | None, Loader]] = weakref.WeakKeyDictionary()

    def _loader(self, schema: ma.Schema, location: str, unknown: str | None) -> Loader:
        if location != "json":
            return super()._loader(schema, location, unknown)
        by_unknown = self._body_loaders.get(schema)
        if by_unknown is None:
            by_unknown = self._body_loaders[schema] = {}
        loader = by_unknown.get(unknown)
        if loader is None:
            loader = by_unknown[unknown] = compile_body_loader(schema, unknown=unknown) or super()._loader(
                schema, location, unknown
            )
        return loader


__all__ = ["BodyParser", "compile_body_loader"]
