"""Compiled checks of event data: a quick "surely valid" for the catalogue's marshmallow schemas.

A consumer validates every envelope it receives against the schema of its type and version; with
marshmallow's `Schema.load` that was most of a worker's connection thread (bench/README.md, "Where
the services' time goes"). `compile_schema` turns a schema, once, into a plain function that answers
True only for data that `schema.load` surely accepts, using the same operations marshmallow's
fields and validators apply (`uuid.UUID`, `datetime.fromisoformat`, the `Length`, `Range`, `OneOf`
and `Regexp` bounds...). Its answer False means "not sure": the catalogue then asks marshmallow,
which either accepts after all or raises with its error messages. So what is accepted and rejected,
and every error message, is marshmallow's; this only skips marshmallow for data that is valid.

It handles the field types and validators the catalogue uses, matched by exact class (a subclass
may behave otherwise): anything else, a schema or field hook, a field option it does not know,
makes its check answer False whenever that field is present, so marshmallow decides.
libs/kit/tests/test_fastcheck.py checks, for every type in the catalogue, valid examples and
mutated invalid ones, that the check never accepts what marshmallow rejects.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, validate

Check = Callable[[Any], bool]

_MISSING = object()
# The canonical form; anything else a str may hold is put to uuid.UUID, as marshmallow does.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def _unsure(_value: Any) -> bool:
    return False


def compile_schema(schema: Schema) -> Check:
    """A function of the data: True if `schema.load(data)` surely succeeds, False if not sure."""
    hooks = getattr(schema, "_hooks", None)
    if hooks is None or any(hooks.values()):
        # Pre- or post-load processors, @validates or @validates_schema: only marshmallow knows.
        return _unsure
    unknown = schema.unknown
    if unknown not in (INCLUDE, EXCLUDE, RAISE):
        return _unsure
    entries: list[tuple[str, bool, bool, Check]] = []
    for attr_name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        entries.append((key, bool(field.required), bool(field.allow_none), _field_check(field)))
    known = frozenset(key for key, *_ in entries) if unknown == RAISE else None
    return _straight_line(entries, known)


def _straight_line(rows: list[tuple[str, bool, bool, Check]], known: frozenset[str] | None) -> Check:
    """The check of data with these fields (key, required, allow_none, test of a present non-null
    value), and no keys but `known` if given: one function written field after field, with the
    commonest tests (`_inline`) written out in it, rather than a loop calling a test per field. A
    consumer runs it on every event it receives: the loop's and the calls' Python steps were most of
    its cost. The source holds only names bound, in its namespace, to the keys and the tests.

    For each field: missing -> False if required; None -> False unless allowed; else its test."""
    namespace: dict[str, Any] = {"MISSING": _MISSING, "known": known}
    lines = ["def check(data):", "    if type(data) is not dict:", "        return False", "    get = data.get"]
    for i, (key, required, allow_none, test) in enumerate(rows):
        inline = getattr(test, "inline", None)
        if inline is not None:
            template, constants = inline
            names = {name: f"{name}_{i}" for name in constants}
            namespace.update({names[name]: value for name, value in constants.items()})
            expression = template.format(**names)
        else:
            namespace[f"test_{i}"] = test
            expression = f"test_{i}(v)"
        namespace[f"key_{i}"] = key
        lines += [
            f"    v = get(key_{i}, MISSING)",
            "    if v is MISSING:",
            "        return False" if required else "        pass",
            "    elif v is None:",
            "        pass" if allow_none else "        return False",
            f"    elif not ({expression}):",
            "        return False",
        ]
    lines.append("    return True" if known is None else "    return known.issuperset(data)")
    exec("\n".join(lines), namespace)  # noqa: S102 - source made here of fixed text and names
    return namespace["check"]


def _inline(test: Check, template: str, **constants: Any) -> Check:
    """Mark `test` as equivalent to the expression `template` of `v` (its `{names}` bound to
    `constants`), for `_straight_line` to write out instead of calling it."""
    test.inline = (template, constants)  # type: ignore[attr-defined]
    return test


def _field_check(field: fields.Field) -> Check:
    """A check of a present, non-null value of the field (required and null are the schema's)."""
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return _unsure
    kind = type(field)
    validators = list(field.validators)
    if kind is fields.String:
        return _string_check(validators)
    if kind is fields.UUID:
        return _with_validators(_is_uuid, uuid.UUID, validators)
    if kind is fields.Integer:
        # Only ints (bool excluded, as marshmallow does): a float or a numeric string is loaded by
        # int(), which marshmallow may accept; it decides those.
        return _int_check(validators)
    if kind is fields.Float:
        return _float_check(field, validators)
    if kind is fields.Boolean:
        return _boolean_check(field) if not validators else _unsure
    if kind in (fields.DateTime, fields.AwareDateTime, fields.Date):
        return _temporal_check(field, validators)
    if kind is fields.List:
        return _list_check(field, validators)
    return _unsure


def _with_validators(accept: Check, convert: Callable[[Any], Any] | None, validators: list[Any]) -> Check:
    """`accept` for the raw value, then the field's validators on what the field loads it as
    (`convert(value)`; the value itself when None)."""
    if not validators:
        return accept
    tests = [_validator_test(v) for v in validators]
    if convert is None and len(tests) == 1:
        # The common case (a bounded string, a choice, a range), without the loop.
        test = tests[0]
        return lambda value: accept(value) and test(value)

    def check(value: Any) -> bool:
        if not accept(value):
            return False
        loaded = value if convert is None else convert(value)
        return not tests or all(test(loaded) for test in tests)  # most have none: no generator

    return check


def _validator_test(validator: Any) -> Check:
    kind = type(validator)
    if kind is validate.Length:
        low, high, equal = validator.min, validator.max, validator.equal
        if equal is not None:
            return lambda value: len(value) == equal
        if low is not None and high is not None:
            return lambda value: low <= len(value) <= high
        return lambda value: (low is None or len(value) >= low) and (high is None or len(value) <= high)
    if kind is validate.Range:
        low, high = validator.min, validator.max
        low_in, high_in = validator.min_inclusive, validator.max_inclusive

        def in_range(value: Any) -> bool:
            if low is not None and (value < low if low_in else value <= low):
                return False
            return not (high is not None and (value > high if high_in else value >= high))

        return in_range
    if kind is validate.OneOf:
        choices = validator.choices
        try:
            allowed: Any = frozenset(choices)
        except TypeError:
            allowed = choices

        def one_of(value: Any) -> bool:
            # Only ever given strings (a String field's): equality and hashing agree for them.
            return type(value) is str and value in allowed

        return one_of
    if kind is validate.Regexp:
        match = validator.regex.match
        return lambda value: match(value) is not None

    def other(value: Any) -> bool:
        # A validator this module does not know: run it; a refusal (or anything odd) is for
        # marshmallow to judge and word.
        try:
            return validator(value) is not False
        except Exception:  # noqa: BLE001 - ValidationError or worse: marshmallow decides
            return False

    return other


def _string_check(validators: list[Any]) -> Check:
    # The catalogue's usual strings, in one function each: they are most of an event's fields.
    if len(validators) == 1 and type(validators[0]) is validate.Length and validators[0].equal is None:
        low, high = validators[0].min or 0, validators[0].max
        if high is not None:
            return _inline(
                lambda value: type(value) is str and low <= len(value) <= high,
                "type(v) is str and {low} <= len(v) <= {high}",
                low=low,
                high=high,
            )
    if len(validators) == 1 and type(validators[0]) is validate.OneOf:
        try:
            allowed = frozenset(validators[0].choices)
        except TypeError:
            allowed = None
        if allowed is not None:
            # Equality and hashing agree for strings: membership is OneOf's `value in choices`.
            return _inline(
                lambda value: type(value) is str and value in allowed,
                "type(v) is str and v in {allowed}",
                allowed=allowed,
            )
    return _with_validators(_is_str, None, validators)


def _int_check(validators: list[Any]) -> Check:
    if len(validators) == 1 and type(validators[0]) is validate.Range:
        r = validators[0]
        if r.min is not None and r.max is None and r.min_inclusive:
            low = r.min
            return _inline(lambda value: type(value) is int and value >= low, "type(v) is int and v >= {low}", low=low)
    return _with_validators(_is_int, None, validators)


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_uuid(value: Any) -> bool:
    if type(value) is not str:
        return False
    if _CANONICAL_UUID(value) is not None:
        return True
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


_inline(_is_str, "type(v) is str")
_inline(_is_int, "type(v) is int")
_inline(
    _is_uuid,
    "type(v) is str and ({canonical}(v) is not None or {is_uuid}(v))",
    canonical=_CANONICAL_UUID,
    is_uuid=_is_uuid,
)


def _float_check(field: fields.Float, validators: list[Any]) -> Check:
    allow_nan = field.allow_nan
    tests = [_validator_test(v) for v in validators]

    def check(value: Any) -> bool:
        kind = type(value)
        if kind is not float and kind is not int:
            return False
        try:
            number = float(value)
        except OverflowError:
            return False
        if allow_nan is False and not math.isfinite(number):
            return False
        return not tests or all(test(number) for test in tests)

    return check


def _boolean_check(field: fields.Boolean) -> Check:
    truthy, falsy = field.truthy, field.falsy
    if not truthy:
        return lambda _value: True  # marshmallow takes bool(value) of anything
    true_ok = True in truthy
    false_ok = False in falsy
    return lambda value: (value is True and true_ok) or (value is False and false_ok)


def _temporal_check(field: fields.Field, validators: list[Any]) -> Check:
    kind = type(field)
    parse = kind.DESERIALIZATION_FUNCS.get(field.format or kind.DEFAULT_FORMAT)
    # Only the ISO formats, which marshmallow loads with the standard library's fromisoformat
    # (marshmallow 4); any other parser (marshmallow 3's, a format string) is left to it.
    if parse not in (dt.datetime.fromisoformat, dt.date.fromisoformat):
        return _unsure
    need_aware = kind is fields.AwareDateTime and field.default_timezone is None
    tests = [_validator_test(v) for v in validators]

    def check(value: Any) -> bool:
        if type(value) is not str:
            return False
        try:
            loaded = parse(value)
        except (TypeError, AttributeError, ValueError):
            return False
        if need_aware and (loaded.tzinfo is None or loaded.tzinfo.utcoffset(loaded) is None):
            return False
        return not tests or all(test(loaded) for test in tests)  # most have none: no generator

    return check


def _list_check(field: fields.List, validators: list[Any]) -> Check:
    # Validators of the list see the loaded list, of the same length: only Length is judged here.
    if any(type(v) is not validate.Length for v in validators):
        return _unsure
    tests = [_validator_test(v) for v in validators]
    inner = field.inner
    item_allow_none = bool(inner.allow_none)
    if type(inner) is fields.Nested:
        item = _nested_check(inner)
    else:
        item = _field_check(inner)

    def check(value: Any) -> bool:
        if type(value) is not list:
            return False
        for each in value:
            if each is None:
                if not item_allow_none:
                    return False
            elif not item(each):
                return False
        return not tests or all(test(value) for test in tests)

    return check


def _nested_check(field: fields.Nested) -> Check:
    if field.many or field.validators or getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return _unsure
    schema = field.schema
    if field.unknown is not None and field.unknown != schema.unknown:
        return _unsure
    return compile_schema(schema)
