"""The catalogue's compiled checks accept and reject exactly what its marshmallow schemas do.

`Catalogue.validate` skips marshmallow when the compiled check of the type says the data is surely
valid, and asks marshmallow otherwise. So it is equivalent to marshmallow if the check never says
"valid" of data marshmallow refuses: that is tested here for every event type in the catalogue,
on valid examples built from each schema and on mutations of them (each field missing, null, of
the wrong type, a bad id or date, a string or number past its bounds, a list with a bad item, a
nested item with a bad field, extra fields). The valid examples must also pass the check itself,
or the consumer would still pay marshmallow's price on them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from marshmallow import Schema, ValidationError, fields, validate

from linli_kit.events import CATALOGUE, Event, InvalidEvent, fastcheck
from linli_kit.events.fastcheck import compile_schema

ALL = sorted(CATALOGUE._schemas)  # (type, version), every declared one
AN_ID = "4f3c2b1a-9d8e-4c7b-a6f5-0e1d2c3b4a59"

# Values of the wrong kind, or right kind and wrong form, tried in every field.
WRONG_VALUES: list[Any] = [
    0,
    1,
    -1,
    2**70,
    1.5,
    1.0,
    math.nan,
    math.inf,
    True,
    False,
    "",
    "x",
    "5",
    "1.5",
    "true",
    "x" * 5000,
    [],
    [None],
    ["x"],
    {},
    {"a": 1},
    # ids: not one, and other forms uuid.UUID takes
    "not-a-uuid",
    AN_ID.upper(),
    AN_ID.replace("-", ""),
    "{" + AN_ID + "}",
    "urn:uuid:" + AN_ID,
    AN_ID + "\n",
    AN_ID[:-1],
    AN_ID[:-1] + "g",
    # dates and times: aware, naive, date only, out of range, other ISO forms
    "2026-12-03T10:00:00+08:00",
    "2026-12-03T10:00:00Z",
    "2026-12-03T10:00:00",
    "2026-12-03 10:00:00+08:00",
    "2026-12-03T10:00:00.123456+00:00",
    "20261203T100000Z",
    "2026-12-03",
    "2026-13-01T00:00:00Z",
    "2026-02-30",
    "2026-12-03T25:00:00Z",
    "2026-12-03T10:00:00+25:00",
    "2026-12-03\n",
    # phone numbers and codes (the accounts events' patterns)
    "+8613800138000",
    "13800138000\n",
    "12345",
    "123456",
]


def example(schema: Schema, *, full: bool) -> dict[str, Any]:
    """A valid data dict for `schema`: every field (full) or only the required ones."""
    data: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        if field.required or full:
            data[field.data_key or name] = value_for(field)
    return data


def value_for(field: fields.Field) -> Any:
    if isinstance(field, fields.List):
        lengths = [v for v in field.validators if isinstance(v, validate.Length)]
        count = max([1] + [v.min or 0 for v in lengths])
        return [value_for(field.inner) for _ in range(count)]
    if isinstance(field, fields.Nested):
        return example(field.schema, full=True)
    if isinstance(field, fields.UUID):
        return str(uuid.uuid4())
    if isinstance(field, fields.DateTime):
        return "2026-12-03T10:00:00+08:00"
    if isinstance(field, fields.Date):
        return "2026-12-03"
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Integer | fields.Float):
        lows = [v.min for v in field.validators if isinstance(v, validate.Range) and v.min is not None]
        return max(lows) if lows else 3
    for v in field.validators:
        if isinstance(v, validate.OneOf):
            return v.choices[-1]
        if isinstance(v, validate.Regexp):
            return next(s for s in ("+8613800138000", "123456") if v.regex.match(s))
    return "某个标题"


def string_bounds(field: fields.Field) -> list[Any]:
    """Strings at and past a String field's length bounds, and next to its choices."""
    out: list[Any] = []
    for v in field.validators:
        if isinstance(v, validate.Length):
            for n in (v.min, v.max):
                if n is not None:
                    out += ["字" * n, "字" * (n + 1)] + (["字" * (n - 1)] if n > 0 else [])
        if isinstance(v, validate.OneOf):
            for c in v.choices:
                out += [c + "x", c.upper(), " " + c]
        if isinstance(v, validate.Range):
            for n in (v.min, v.max):
                if n is not None:
                    out += [n - 1, n, n + 1, n - 0.5, float(n)]
    return out


def mutations(schema: Schema, data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`data` changed in one place each time."""
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        without = dict(data)
        without.pop(key, None)
        yield without
        for value in [None, *WRONG_VALUES, *string_bounds(field)]:
            yield {**data, key: value}
        if isinstance(field, fields.List):
            good = value_for(field.inner)
            for value in [None, *WRONG_VALUES, *string_bounds(field.inner)]:
                yield {**data, key: [good, value]}
            if isinstance(field.inner, fields.Nested):
                for changed in mutations(field.inner.schema, example(field.inner.schema, full=True)):
                    yield {**data, key: [changed]}
    yield {**data, "something_newer": {"added": [1, 2]}, "with.dot": "x"}


def marshmallow_refusal(schema: Schema, data: dict[str, Any]) -> Any:
    """marshmallow's error messages for `data`, or None when it loads it."""
    try:
        schema.load(data)
    except ValidationError as exc:
        return exc.messages
    return None


def marshmallow_accepts(schema: Schema, data: dict[str, Any]) -> bool:
    return marshmallow_refusal(schema, data) is None


@pytest.mark.parametrize(("event_type", "version"), ALL, ids=[f"{t}-v{v}" for t, v in ALL])
def test_the_compiled_check_never_accepts_what_marshmallow_refuses(event_type: str, version: int) -> None:
    schema = CATALOGUE._schemas[(event_type, version)]
    check = compile_schema(schema)
    counts = {"accepted by both": 0, "refused by both": 0, "left to marshmallow": 0}
    for full in (True, False):
        valid = example(schema, full=full)
        assert marshmallow_accepts(schema, valid), valid
        # The events that really travel are decided by the check alone.
        assert check(valid), valid
        # Every mutation of the full example; of the minimal one (the same fields present, fewer
        # absent), each required field missing in turn.
        cases = mutations(schema, valid) if full else ({k: v for k, v in valid.items() if k != key} for key in valid)
        for data in cases:
            refusal = marshmallow_refusal(schema, data)
            expected = refusal is None
            fast = check(data)
            assert not (fast and not expected), f"the check accepts what marshmallow refuses: {data!r}"
            # And the catalogue, check then marshmallow, decides as marshmallow does, in its words.
            try:
                CATALOGUE.validate(event_type, version, data)
                accepted, message = True, None
            except InvalidEvent as exc:
                accepted, message = False, str(exc)
            assert accepted == expected, data
            if not expected:
                assert message == f"{event_type} v{version}: {refusal}"
                counts["refused by both"] += 1
            elif fast:
                counts["accepted by both"] += 1
            else:
                counts["left to marshmallow"] += 1
    # The mutations did test both ways.
    assert counts["refused by both"] > 0 and counts["accepted by both"] > 0, counts


def test_a_check_that_accepted_too_much_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus above is sharp enough: a check taking bools for ints, or any string for an id,
    meets a mutation marshmallow refuses."""
    for name, too_lenient in (("_is_int", lambda v: isinstance(v, int)), ("_is_uuid", lambda v: isinstance(v, str))):
        monkeypatch.setattr(fastcheck, name, too_lenient)
        caught = False
        for event_type, version in ALL:
            schema = CATALOGUE._schemas[(event_type, version)]
            check = compile_schema(schema)
            valid = example(schema, full=True)
            if any(check(d) and not marshmallow_accepts(schema, d) for d in mutations(schema, valid)):
                caught = True
                break
        assert caught, name
        monkeypatch.undo()


def test_fields_and_hooks_it_does_not_know_are_left_to_marshmallow() -> None:
    from marshmallow import validates_schema

    class Odd(Schema):
        name = fields.String(required=True, validate=lambda v: v != "bad")
        when = fields.Time(load_default=None)
        strict = fields.Integer(strict=True, load_default=None)

    class Hooked(Schema):
        name = fields.String(required=True)

        @validates_schema
        def never(self, data: dict, **_kwargs: Any) -> None:
            raise ValidationError("never")

    odd = compile_schema(Odd())
    assert odd({"name": "good"})
    assert not odd({"name": "bad"})  # the unknown validator said no: marshmallow decides
    assert not odd({"name": "good", "when": "10:00"})  # an unknown field type, present
    assert odd({"name": "good", "strict": 3})
    assert not odd({"name": "good", "strict": 3.0})
    assert not compile_schema(Hooked())({"name": "x"})


def test_envelopes_are_parsed_as_before() -> None:
    data = example(CATALOGUE._schemas[("issues.issue.supported", 1)], full=False)
    good = Event(type="issues.issue.supported", data=data, producer="issues").to_json()
    assert Event.from_json(good.encode()).data == data
    # Ids in another form uuid.UUID takes are still accepted, as they were; others are not.
    upper = good.replace('"id":"', '"id":"X', 1)
    with pytest.raises(InvalidEvent, match="envelope field has a bad value"):
        Event.from_json(upper)
    event = Event(type="issues.issue.supported", data=data, producer="issues")
    for form in (event.id.upper(), event.id.replace("-", ""), "{" + event.id + "}"):
        assert Event.from_json(event.to_json().replace(event.id, form)).id == form
    with pytest.raises(InvalidEvent, match=r"envelope lacks version, data$"):
        Event.from_json(json.dumps({"id": event.id, "type": "t", "occurred_at": "x", "producer": "p"}))
    with pytest.raises(InvalidEvent, match="issues.issue.supported v1: "):
        Event.from_json(good.replace('"supporter_id":"', '"supporter_id":"x', 1))


def test_a_parsed_envelope_is_the_event_its_constructor_makes() -> None:
    data = example(CATALOGUE._schemas[("issues.issue.supported", 1)], full=True)
    made = Event(
        type="issues.issue.supported", data=data, producer="issues", correlation_id="req-1", community_id=AN_ID
    )
    parsed = Event.from_json(made.to_json().encode())
    assert type(parsed) is Event
    assert parsed == made
    assert list(vars(parsed).items()) == list(vars(made).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.type = "other"  # type: ignore[misc]


def test_written_out_tests_answer_as_the_functions_they_stand_for() -> None:
    """`_straight_line` writes some field tests out as expressions (`_inline`): on every value of
    the corpus, each expression says what its function says."""
    inlined = {}
    for event_type, version in ALL:
        for field in CATALOGUE._schemas[(event_type, version)].load_fields.values():
            test = fastcheck._field_check(field)
            if getattr(test, "inline", None) is not None:
                inlined[id(test)] = test
    assert len(inlined) > 10
    values = [*WRONG_VALUES, AN_ID, None, "x" * 80, "x" * 81, "x" * 200, "x" * 201, "reported", "public", 5]
    for test in inlined.values():
        template, constants = test.inline
        expression = eval("lambda v: " + template.format(**{n: n for n in constants}), dict(constants))  # noqa: S307
        for value in values:
            assert bool(expression(value)) == bool(test(value)), (template, value)


def test_the_consumer_rejects_what_the_catalogue_refuses_and_takes_what_marshmallow_takes() -> None:
    """Through the consumer's own parsing step: a refused envelope is rejected (dead-lettered, as
    before); one the check is unsure of but marshmallow loads (a number as a string) goes on."""
    from types import SimpleNamespace

    from linli_kit.events.consumer import _Link

    link = _Link(SimpleNamespace(service="probe"), conn=None, channel=None, stop=None)  # type: ignore[arg-type]
    schema = CATALOGUE._schemas[("issues.issue.supported", 1)]
    good = example(schema, full=True)
    bodies = {
        "valid": good,
        "revision as a string": {**good, "revision": "7"},
        "revision zero": {**good, "revision": 0},
        "supporter id not an id": {**good, "supporter_id": "someone"},
        "title missing": {k: v for k, v in good.items() if k != "title"},
    }
    for tag, data in enumerate(bodies.values(), start=1):
        event = Event(type="issues.issue.supported", data=data, producer="issues")
        link.on_message(None, SimpleNamespace(delivery_tag=tag), None, event.to_json().encode())
    outcomes = {name: (d.outcome, d.event is not None) for name, d in zip(bodies, link.pending, strict=True)}
    assert outcomes == {
        "valid": ("pending", True),
        "revision as a string": ("pending", True),
        "revision zero": ("reject", False),
        "supporter id not an id": ("reject", False),
        "title missing": ("reject", False),
    }


def test_envelope_json_msgspec_takes_is_read_as_json_loads_reads_it_and_the_rest_goes_to_json_loads() -> None:
    """The envelope's JSON is parsed by msgspec where it can: same values; what it refuses is the
    standard library's to accept or to word the error of."""
    data = example(CATALOGUE._schemas[("issues.issue.supported", 1)], full=False)
    good = Event(type="issues.issue.supported", data=data, producer="issues").to_json()
    head = good[: good.index('"data":')]

    def envelope(extra: str) -> str:
        return head + '"extra":' + extra + "," + good[len(head) :]

    # Taken by msgspec: escapes, non-ASCII, big ints, floats, a repeated key (the last one counts).
    for extra in ['"\\u697c\\n\\"\\\\"', '"楼道"', "123456789012345678901234567890", "-0.0", "1E2", "0.1",
                  '{"a":1,"a":2}', "[true,false,null]"]:  # fmt: skip
        body = envelope(extra)
        assert msgspec.json.decode(body) == json.loads(body)
        parsed = Event.from_json(body.encode())
        assert parsed.data == json.loads(body)["data"] and parsed.id == json.loads(body)["id"]
    # Refused by msgspec, accepted by json.loads as before.
    for body in [envelope("NaN"), envelope("1e400"), envelope('"\\ud800"'), "\ufeff" + good]:
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(body.encode())
        assert Event.from_json(body.encode()).data == data
    assert Event.from_json(good.encode("utf-16")).data == data
    # Not JSON: the standard library's words.
    with pytest.raises(InvalidEvent, match=r"^body is not JSON: Expecting value: line 1 column 1 \(char 0\)$"):
        Event.from_json(b"not json")
