"""The activities' JSON bodies loaded without marshmallow's walk (entrypoints/loading.py) give what
`Schema.load` gives, or leave the body to it: on valid bodies of every schema of the API and on
each of them mutated field by field (wrong types, bounds, unstorable text, odd UUIDs and instants,
unknown and missing keys)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pytest
from marshmallow import ValidationError

from linli_activities.entrypoints import activities_api
from linli_activities.entrypoints.loading import BodyParser, compile_body_loader

ID = str(uuid.uuid4())
VALID: dict[str, list[dict[str, Any]]] = {
    "ActivitySchema": [
        {"community_ids": [ID], "kind": "culture", "title": "Calligraphy afternoon",
         "description": "Bring a brush; paper and ink are provided.", "starts_at": "2099-01-01T14:00:00+08:00",
         "ends_at": "2099-01-01T16:00:00+08:00", "capacity": 30, "publish": True},
        {"community_ids": [ID, str(uuid.uuid4())], "kind": "sports", "title": "跑步", "place": "Hall 2",
         "post_id": ID, "organiser_type": "group", "organiser_id": ID, "audience": ["elderly", "families"],
         "photos": ["https://x.example/p.png"], "starts_at": "2027-03-01T02:00:00Z",
         "ends_at": "2027-03-01T04:00:00.250000+00:00", "capacity": None, "max_party_size": 2,
         "registration_opens_at": "2027-02-01T00:00:00-05:30", "registration_closes_at": None, "publish": False,
         "festival_id": None},
    ],
    "ActivityPatchSchema": [
        {"title": "New title", "starts_at": "2099-01-01T14:00:00+08:00", "capacity": 5, "audience": []},
        {"description": "", "place": None, "post_id": None, "registration_opens_at": "2030-01-01T00:00:00+00:00"},
    ],
    "CancelSchema": [{"reason": "rain"}],
    "RegistrationInSchema": [{}, {"party_size": 3, "user_id": ID, "community_id": ID}],
    "CheckinInSchema": [{"code": "123456"}, {"registration_id": ID, "participants": 2}],
    "WalkInSchema": [{"community_id": ID}, {"community_id": ID, "participants": 12, "user_id": ID}],
}  # fmt: skip
ODD_VALUES = [
    None, True, False, 0, 1, -1, 3, 20, 21, 100_001, 1.0, 1.5, "", "x", "3", "true", "a" * 301, "a" * 10_001,
    "bad\x00text", "lone \ud800 surrogate", "https://x.example/p.png", "not a url", ID, ID.upper(), f"{{{ID}}}",
    ID.replace("-", ""), f"urn:uuid:{ID}", ID[:-1], "culture", "festival", "staff", "group", "elderly",
    "2099-01-01T14:00:00", "2099-01-01T14:00:00Z", "2099-01-01", "2099-02-30T00:00:00Z", "2099-01-01T14:00:00+23:59",
    "1970-01-01T00:00:00Z", "1970-01-02T00:00:00+00:00", "1970-01-02T07:00:00+08:00", "1969-12-31T23:00:00Z",
    "2999-12-30T00:00:00Z", "2999-12-30T23:00:00-05:00", "2999-12-31T12:00:00Z", "3000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", " 2099-01-01T14:00:00Z", "2099-01-01 14:00:00+08:00",
    [], [ID], [ID, ID], ["x"], [None], [1], ["elderly", "nobody"], ["https://x.example/p.png"] * 21, [ID] * 201,
    {}, {"a": 1},
]  # fmt: skip

SCHEMAS = {name: getattr(activities_api, name)() for name in VALID}


def _plain(value: Any) -> Any:
    """Values compared strictly: an instant by its text (offset included), a list item by item."""
    if isinstance(value, datetime | date):
        return (type(value).__name__, value.isoformat())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return (type(value).__name__, value)


def _bodies(name: str) -> list[dict[str, Any]]:
    schema = SCHEMAS[name]
    keys = [f.data_key or n for n, f in schema.load_fields.items()]
    bodies = list(VALID[name])
    for valid in VALID[name]:
        for key in keys:
            bodies.extend({**valid, key: odd} for odd in ODD_VALUES)
            bodies.append({k: v for k, v in valid.items() if k != key})
        bodies.append({**valid, "id": ID})  # dump-only
        bodies.append({**valid, "colour": "red"})  # unknown
    return bodies


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_loader_gives_what_marshmallow_gives_or_leaves_the_body_to_it(name: str) -> None:
    schema = SCHEMAS[name]
    load = compile_body_loader(schema, unknown=None)
    assert load is not None
    loaded_fast = 0
    for body in _bodies(name):
        fast = load(body)
        try:
            expected = schema.load(body)
        except ValidationError:
            assert fast is None, body
            continue
        if fast is not None:
            loaded_fast += 1
            assert _plain(fast) == _plain(expected), body
    for body in VALID[name]:  # the bodies it is for are loaded by it
        assert load(body) is not None, body
    assert loaded_fast > len(VALID[name])


def test_every_body_of_the_activities_api_is_loaded_by_the_body_parser() -> None:
    """The blueprint's arguments go through BodyParser: its JSON bodies by `compile_body_loader`."""
    parser = activities_api.blp.ARGUMENTS_PARSER
    assert isinstance(parser, BodyParser)
    for schema in SCHEMAS.values():
        assert parser._loader(schema, "json", None)(VALID[type(schema).__name__][0]) is not None
