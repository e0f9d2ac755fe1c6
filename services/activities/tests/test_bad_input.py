"""Bad input is a 422 naming the field, never a 500, and changes nothing: dates and instants outside
the platform's range (1970-01-01 to 2999-12-31), and text no database can store. On PostgreSQL."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

SLOT = {"slot_start": "2026-12-03T09:00:00+08:00", "slot_end": "2026-12-03T10:00:00+08:00"}


def invalid(response, field):
    body = response.get_json()
    assert response.status_code == 422, body
    # A field, or an item of it (the kit names an item of a list as "services.0").
    assert any(name == field or name.startswith(field + ".") for name in body["error"]["fields"]), body
    return body


def activity_body(world, **overrides):
    return {
        "community_ids": [world.community_a],
        "kind": "sports",
        "title": "Sports day",
        "starts_at": "2026-12-05T09:00:00+08:00",
        "ends_at": "2026-12-05T11:00:00+08:00",
        **overrides,
    }


def test_statistics_of_extreme_periods_are_422_naming_the_field(client, world):
    official = world.headers("street_official")
    # Was a 500: the first instant of year 1 in the city's zone is before datetime.min in UTC.
    invalid(client.get("/stats", query_string={"from": "0001-01-01", "to": "0001-01-02"}, headers=official), "from")
    invalid(client.get("/stats", query_string={"to": "9999-12-31"}, headers=official), "to")
    invalid(client.get("/stats", query_string={"from": "1969-12-31"}, headers=official), "from")
    # The whole supported range is answered, every month of it listed.
    whole = client.get("/stats", query_string={"from": "1970-01-01", "to": "2999-12-31"}, headers=official)
    assert whole.status_code == 200 and len(whole.get_json()["monthly"]) == 12 * 1030


def test_instants_and_dates_out_of_range_are_422_naming_the_field(client, world):
    staff = world.headers("community_staff")
    invalid(client.get("/", query_string={"from": "0001-01-01T00:00:00Z"}, headers=staff), "from")
    invalid(client.get("/", query_string={"to": "9999-12-31T23:59:59+00:00"}, headers=staff), "to")
    invalid(
        client.post("/", json=activity_body(world, starts_at="0001-01-01T00:00:00+14:00"), headers=staff), "starts_at"
    )
    invalid(client.post("/", json=activity_body(world, ends_at="9999-12-31T23:59:59-12:00"), headers=staff), "ends_at")
    aid = client.post("/", json=activity_body(world, publish=True), headers=staff).get_json()["id"]
    invalid(
        client.patch(f"/{aid}", json={"registration_opens_at": "0001-01-01T00:00:00Z"}, headers=staff),
        "registration_opens_at",
    )
    assert client.get(f"/{aid}", headers=staff).get_json()["registration_opens_at"] is None  # nothing changed

    coordinator, coordinator_h = world.person()
    group = client.post(
        "/groups",
        json={"community_id": world.community_a, "name": "Patrol", "coordinator_id": coordinator},
        headers=staff,
    ).get_json()
    help_entry = {"helped_description": "x", "helped_on": "0001-01-01", "hours": 1}
    invalid(client.post(f"/groups/{group['id']}/help", json=help_entry, headers=coordinator_h), "helped_on")
    assert client.get(f"/groups/{group['id']}/help", headers=staff).get_json() == []

    offering = client.post(
        "/offerings",
        json={
            "community_id": world.community_a,
            "name": "Massage",
            "kind": "massage",
            "provider_type": "business",
            "provider_name": "Zhang",
            "at_post": False,
            "door_to_door": True,
        },
        headers=staff,
    ).get_json()
    booking = {"offering_id": offering["id"], "door_to_door": True, "address": "Building 1", **SLOT}
    # Was a 500: year 1 at +14:00 overflows when converted to UTC.
    invalid(
        client.post("/bookings", json={**booking, "slot_start": "0001-01-01T00:00:00+14:00"}, headers=staff),
        "slot_start",
    )


def test_text_no_database_can_store_is_422_naming_the_field(client, world):
    staff = world.headers("community_staff")
    # PostgreSQL refuses NUL in text: was a 500 at the INSERT.
    invalid(client.post("/", json=activity_body(world, title="Opera\x00night"), headers=staff), "title")
    invalid(
        client.post(
            "/posts",
            json={
                "community_id": world.community_a,
                "name": "Inn",
                "latitude": 1,
                "longitude": 1,
                "services": ["tea\x00"],
            },
            headers=staff,
        ),
        "services",
    )
    # A lone surrogate is valid in JSON's \u escapes but cannot be encoded at all.
    post = {"community_id": world.community_a, "name": "SURROGATE", "latitude": 1, "longitude": 1}
    raw = json.dumps(post).replace('"SURROGATE"', '"\\ud800"')
    invalid(client.post("/posts", data=raw, content_type="application/json", headers=staff), "name")
    assert client.get("/posts", query_string={"community_id": world.community_a}, headers=staff).get_json() == []


def test_pages_past_the_bound_are_422(client, world):
    staff = world.headers("community_staff")
    for path in ("/", "/posts", "/groups", "/talents", "/offerings", "/bookings", "/registrations/mine"):
        invalid(client.get(path, query_string={"page": 10**12}, headers=staff), "page")
        assert client.get(path, query_string={"page": 100_000}, headers=staff).status_code == 200


def test_unknown_ids_in_a_body_are_422_naming_the_field(client, world):
    staff = world.headers("community_staff")
    aid = client.post("/", json=activity_body(world, publish=True), headers=staff).get_json()["id"]
    unknown = "00000000-0000-0000-0000-000000000000"
    # Was a 404, as if the activity itself were unknown.
    invalid(client.post(f"/{aid}/checkins", json={"registration_id": unknown}, headers=staff), "registration_id")
    invalid(client.post("/bookings", json={"offering_id": unknown, **SLOT}, headers=staff), "offering_id")
    talent = client.post("/talents", json={"display_name": "Fixer", "skills": ["repair"]}, headers=world.headers())
    matched = client.post(f"/talents/{talent.get_json()['id']}/matches", json={"booking_id": unknown}, headers=staff)
    invalid(matched, "booking_id")
    invalid(client.post("/", json=activity_body(world, post_id=unknown), headers=staff), "post_id")
