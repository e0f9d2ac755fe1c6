"""Request arguments loaded without marshmallow when they are surely valid; marshmallow otherwise.

Every request of every service had its query string or JSON body loaded by webargs through
`Schema.load`: for a list page or a report, a sizeable part of what the service spends (DESIGN
section 7, bench/issues_http.py). `ArgumentsParser` is webargs' Flask parser with a shortcut: each
schema is compiled once into a loader that, for data it is sure about, returns exactly what
`schema.load` would (the same keys, defaults and converted values), using the checks of
`linli_kit.events.fastcheck` (the same operations marshmallow's fields and validators apply). When
it is not sure (a value it cannot judge, a missing required field, an unknown key refused, a field
type or hook it does not know) it answers None and marshmallow loads as before: what is accepted
and refused, and every error message and status, is marshmallow's and webargs'.

Handled field types (matched by exact class): String, UUID, Integer, Float, Boolean, List of
those (JSON), and in query strings String, UUID, Boolean, Integer and webargs' DelimitedList of
strings. Any other type is judged only when absent (its default is taken as marshmallow takes it);
present, marshmallow loads it. A schema with pre-load hooks or `@validates` methods is always left
to marshmallow; post-load hooks (flask-smorest's pagination parameters) are run as marshmallow runs
them. libs/kit/tests/test_arguments.py checks the loader against `schema.load` on valid and mutated
inputs.
"""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma
from marshmallow import EXCLUDE, RAISE, fields
from marshmallow.decorators import POST_LOAD
from webargs.core import _UNKNOWN_DEFAULT_PARAM
from webargs.fields import DelimitedList
from webargs.flaskparser import FlaskParser

from linli_kit.events import fastcheck

Loader = Callable[[Any], dict[str, Any] | None]
Convert = Callable[[Any], Any]

_MISSING = object()
_UNSURE = object()
_DIGITS = re.compile(r"[0-9]{1,15}").fullmatch


def compile_loader(schema: ma.Schema, *, unknown: str | None, strings: bool) -> Loader:
    """A function of the data (a mapping): what `schema.load(data, unknown=unknown)` returns when
    it is sure of it, None when not. `strings`: the values come from a query string (text)."""
    hooks = getattr(schema, "_hooks", None)
    if hooks is None or any(processors for tag, processors in hooks.items() if tag != POST_LOAD):
        return _never
    unknown = unknown or schema.unknown
    if unknown not in (EXCLUDE, RAISE):
        return _never
    post_load = bool(hooks.get(POST_LOAD))
    rows: list[tuple[str, str, bool, bool, Any, Convert]] = []
    for attr_name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        target = field.attribute or attr_name
        default = field.load_default
        rows.append(
            (key, target, bool(field.required), bool(field.allow_none), default, _field_loader(field, strings=strings))
        )
    known = frozenset(key for key, *_ in rows)
    only_known = unknown == RAISE
    frozen_rows = tuple(rows)

    def load(data: Any) -> dict[str, Any] | None:
        if not isinstance(data, Mapping):
            return None
        if only_known and not known.issuperset(data):
            return None
        result: dict[str, Any] = {}
        get = data.get
        for key, target, required, allow_none, default, convert in frozen_rows:
            value = get(key, _MISSING)
            # webargs' MultiDictProxy answers an absent key with marshmallow's `missing`.
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
        if post_load:
            return schema._invoke_load_processors(  # the schema's own post-load hooks, as load runs them
                POST_LOAD, result, many=False, original_data=data, partial=None, unknown=unknown
            )
        return result

    return load


def _never(_data: Any) -> None:
    return None


def _unsure(_value: Any) -> Any:
    return _UNSURE


def _checked(check: fastcheck.Check, convert: Convert | None = None) -> Convert:
    if convert is None:
        return lambda value: value if check(value) else _UNSURE
    return lambda value: convert(value) if check(value) else _UNSURE


def _field_loader(field: fields.Field, *, strings: bool) -> Convert:
    """What a present, non-null value loads as (or `_UNSURE`)."""
    kind = type(field)
    if kind is DelimitedList:
        return _delimited_loader(field) if strings else _unsure
    if kind is fields.Boolean and strings:
        return _text_boolean_loader(field)
    if kind is fields.Integer and strings:
        return _text_integer_loader(field)
    if strings and kind not in (fields.String, fields.UUID):
        return _unsure
    check = fastcheck._field_check(field)
    if check is fastcheck._unsure:
        return _unsure
    if kind is fields.String:
        return _checked(check)
    if kind is fields.Boolean:
        return _checked(check, bool)
    if kind is fields.UUID:
        return _checked(check, uuid.UUID)
    if kind is fields.Integer:
        return _checked(check)
    if kind is fields.Float:
        return _checked(check, float)
    if kind is fields.List and type(field.inner) in (fields.String, fields.Integer, fields.Boolean):
        return _checked(check, list)
    return _unsure


def _delimited_loader(field: DelimitedList) -> Convert:
    inner = field.inner
    if type(inner) is not fields.String or field.validators or inner.allow_none:
        return _unsure
    item = fastcheck._field_check(inner)
    delimiter = field.delimiter
    empty = field.empty_value

    def load(value: Any) -> Any:
        if type(value) is not str:
            return _UNSURE
        items = [v or empty for v in value.split(delimiter)] if value else []
        for each in items:
            if not item(each):
                return _UNSURE
        return items

    return load


def _text_boolean_loader(field: fields.Boolean) -> Convert:
    if field.validators or not field.truthy:
        return _unsure
    truthy, falsy = field.truthy, field.falsy

    def load(value: Any) -> Any:
        if type(value) is not str:
            return _UNSURE
        if value in truthy:
            return True
        if value in falsy:
            return False
        return _UNSURE

    return load


def _text_integer_loader(field: fields.Integer) -> Convert:
    if field.strict:
        return _unsure
    tests = [fastcheck._validator_test(v) for v in field.validators]

    def load(value: Any) -> Any:
        # Plain digits only: anything else int() might take (signs, blanks, underscores) is
        # marshmallow's to judge.
        if type(value) is not str or _DIGITS(value) is None:
            return _UNSURE
        number = int(value)
        for test in tests:
            if not test(number):
                return _UNSURE
        return number

    return load


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser loading surely valid arguments with compiled loaders (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per schema (flask-smorest makes one per decorated view, once), per location and unknown.
        self._loaders: weakref.WeakKeyDictionary[ma.Schema, dict[tuple[str, str | None], Loader]] = (
            weakref.WeakKeyDictionary()
        )
        self._schemas_of_classes: weakref.WeakKeyDictionary[type[ma.Schema], ma.Schema] = weakref.WeakKeyDictionary()

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        """webargs' schema for `argmap`; for a schema class (flask-smorest's pagination parameters)
        one instance made once, not one per request: marshmallow's schemas keep no state between
        loads (the instances `@blp.arguments` is given are shared the same way), and the loader
        compiled for it is then found again instead of being compiled anew for each request."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas_of_classes.get(argmap)
            if schema is None:
                schema = self._schemas_of_classes[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _loader(self, schema: ma.Schema, location: str, unknown: str | None) -> Loader:
        by_kind = self._loaders.get(schema)
        if by_kind is None:
            by_kind = self._loaders[schema] = {}
        loader = by_kind.get((location, unknown))
        if loader is None:
            if location in ("query", "querystring"):
                loader = compile_loader(schema, unknown=unknown, strings=True)
            elif location == "json":
                loader = compile_loader(schema, unknown=unknown, strings=False)
            else:
                loader = _never
            by_kind[(location, unknown)] = loader
        return loader

    def _process_location_data(
        self,
        location_data: Any,
        schema: ma.Schema,
        req: Any,
        location: str,
        unknown: str | None,
        validators: Any,
    ) -> Any:
        # Which `unknown` webargs would load with: the one given, else the parser's, else the
        # location's (None: the schema's own).
        effective = unknown
        if unknown == _UNKNOWN_DEFAULT_PARAM:
            effective = (
                self.unknown
                if self.unknown != _UNKNOWN_DEFAULT_PARAM
                else self.DEFAULT_UNKNOWN_BY_LOCATION.get(location)
            )
        data = {} if location_data is ma.missing else location_data
        loaded = self._loader(schema, location, effective)(
            self.pre_load(data, schema=schema, req=req, location=location)
        )
        if loaded is None:
            return super()._process_location_data(location_data, schema, req, location, unknown, validators)
        self._validate_arguments(loaded, validators)
        return loaded


__all__ = ["ArgumentsParser", "compile_loader"]
