"""A sign-up's answer, written by orjson without the schema's walk (the hottest write), is what
RegistrationSchema dumps of the registration, byte for byte after parsing, keys in its order, in
the reader's language: confirmed, waitlisted, and registered by staff for a resident. On SQLite and
PostgreSQL (the sign-up paths differ)."""

from __future__ import annotations

import json

import pytest

from linli_activities.domain.activities import Registration
from linli_activities.entrypoints.activities_api import RegistrationSchema

pytestmark = pytest.mark.integration

START = "2026-12-05T09:00:00+08:00"
END = "2026-12-05T11:00:00+08:00"


def test_a_sign_up_answers_what_the_schema_dumps(any_app, any_client, any_world):
    client, world = any_client, any_world
    database = any_app.extensions["linli.database"]
    staff = world.headers("community_staff")
    body = {"community_ids": [world.community_a], "kind": "sports", "title": "Sports day", "starts_at": START,
            "ends_at": END, "capacity": 2, "max_party_size": 2, "publish": True}  # fmt: skip
    created = client.post("/", json=body, headers=staff)
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    resident, _headers = world.person()
    answers = [
        client.post(
            f"/{aid}/registrations", json={"party_size": 2}, headers={**world.headers(), "Accept-Language": "en"}
        ),
        client.post(f"/{aid}/registrations", json={}, headers={**world.headers(), "Accept-Language": "zh-CN"}),
        client.post(
            f"/{aid}/registrations",
            json={"user_id": resident, "community_id": world.community_a},
            headers={**staff, "Accept-Language": "en"},
        ),
    ]
    schema = RegistrationSchema()
    statuses = []
    for response, language, position in zip(answers, ("en", "zh-CN", "en"), (None, 1, 2), strict=True):
        assert response.status_code == 201, response.get_json()
        assert response.content_type == "application/json"
        answered = json.loads(response.data)
        with database.session() as s, any_app.test_request_context("/", headers={"Accept-Language": language}):
            registration = s.get(Registration, answered["id"])
            values = {
                k: getattr(registration, k) for k in schema.fields if k not in ("status_label", "waitlist_position")
            }
            dumped = schema.dump({**values, "waitlist_position": position})
        expected = json.loads(json.dumps(dumped))
        assert answered == expected
        assert list(answered) == list(expected)  # the schema's order
        statuses.append((answered["status"], answered["status_label"]))
    assert statuses[0] == ("confirmed", "Place confirmed")
    assert [s for s, _label in statuses] == ["confirmed", "waitlisted", "waitlisted"]
    assert statuses[1][1] != statuses[2][1]  # worded in each reader's language
