"""Recurring series with exceptions, and festivals with their own figures, over HTTP on SQLite and
PostgreSQL: occurrences one registers for, skipped and moved ones, announcements two weeks ahead,
scope before state, 422 naming the field."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import messaging
from linli_activities.service_layer import activities
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork

pytestmark = pytest.mark.integration


def created(response):
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def invalid(response, field):
    body = response.get_json()
    assert response.status_code == 422, body
    assert field in body["error"]["fields"], body
    return body


def published_events(database, series_id):
    with database.session() as s:
        payloads = s.scalars(
            select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == "activities.activity.published")
        ).all()
    return [e for e in map(json.loads, payloads) if e["data"].get("series_id") == series_id]


def weekly_class(world, **overrides):
    return {
        "community_ids": [world.community_a],
        "kind": "education",
        "title": "Calligraphy class",
        "capacity": 10,
        "frequency": "weekly",
        "weekdays": ["TU", "TH"],
        "first_date": "2026-12-01",
        "start_time": "19:00",
        "duration_minutes": 90,
        "count": 6,
        "publish": True,
        **overrides,
    }


def test_a_weekly_class_with_a_skipped_and_a_moved_occurrence(any_client, any_world, any_database, clock):
    client, world = any_client, any_world
    staff = world.headers("community_staff")
    # Residents do not create series; bad rules are 422 naming the field, nothing created.
    assert client.post("/series", json=weekly_class(world), headers=world.headers()).status_code == 403
    invalid(client.post("/series", json=weekly_class(world, until="2027-01-01"), headers=staff), "count")
    invalid(client.post("/series", json=weekly_class(world, frequency="daily"), headers=staff), "weekdays")
    invalid(client.post("/series", json=weekly_class(world, weekdays=["XX"]), headers=staff), "weekdays")
    invalid(
        client.post(
            "/series",
            json=weekly_class(world, frequency="daily", weekdays=[], count=None, until="2028-01-01"),
            headers=staff,
        ),
        "until",
    )
    invalid(client.post("/series", json=weekly_class(world, start_time="25:00"), headers=staff), "start_time")

    series = created(client.post("/series", json=weekly_class(world), headers=staff))
    assert (series["occurrences"], series["status"], series["timezone"]) == (6, "active", "Asia/Shanghai")
    listed = client.get("/", query_string={"series_id": series["id"]}, headers=world.headers()).get_json()
    # Tuesdays and Thursdays at 19:00 in Shanghai, 11:00 UTC, from 1 December 2026.
    assert [a["occurrence_date"] for a in listed] == [
        "2026-12-01",
        "2026-12-03",
        "2026-12-08",
        "2026-12-10",
        "2026-12-15",
        "2026-12-17",
    ]
    assert {a["starts_at"][11:] for a in listed} == {"11:00:00+00:00"}
    assert {a["series_id"] for a in listed} == {series["id"]}

    # An occurrence is an activity one registers for.
    third = listed[2]
    user, resident = world.person()
    assert created(client.post(f"/{third['id']}/registrations", json={}, headers=resident))["status"] == "confirmed"

    # Skipping needs a reason; a date not in the rule is 422 naming it; moving needs the new time.
    skip = {"occurrence_date": "2026-12-08", "action": "skip"}
    invalid(client.post(f"/series/{series['id']}/exceptions", json=skip, headers=staff), "reason")
    invalid(
        client.post(
            f"/series/{series['id']}/exceptions",
            json={**skip, "occurrence_date": "2026-12-09", "reason": "x"},
            headers=staff,
        ),
        "occurrence_date",
    )
    # Scope before state: a resident is refused (403), someone of another street does not see it (404).
    assert (
        client.post(f"/series/{series['id']}/exceptions", json={**skip, "reason": "x"}, headers=resident).status_code
        == 403
    )
    stranger = world.headers(community=str(uuid.uuid4()))
    assert (
        client.post(f"/series/{series['id']}/exceptions", json={**skip, "reason": "x"}, headers=stranger).status_code
        == 404
    )
    skipped = client.post(
        f"/series/{series['id']}/exceptions", json={**skip, "reason": "the teacher is ill"}, headers=staff
    )
    assert skipped.status_code == 200, skipped.get_json()
    assert (skipped.get_json()["status"], skipped.get_json()["series_exception"]) == ("cancelled", "skipped")
    again = client.post(f"/series/{series['id']}/exceptions", json={**skip, "reason": "x"}, headers=staff)
    assert again.status_code == 409
    move = {"occurrence_date": "2026-12-10", "action": "move"}
    invalid(client.post(f"/series/{series['id']}/exceptions", json=move, headers=staff), "starts_at")
    moved = client.post(
        f"/series/{series['id']}/exceptions",
        json={**move, "starts_at": "2026-12-11T19:00:00+08:00", "ends_at": "2026-12-11T20:30:00+08:00"},
        headers=staff,
    ).get_json()
    assert (moved["series_exception"], moved["starts_at"]) == ("moved", "2026-12-11T11:00:00+00:00")
    assert client.get(f"/{third['id']}", headers=resident).get_json()["status"] == "cancelled"

    # Ending the series cancels what has not started yet.
    clock.now = clock.now.replace(day=14)
    ended = client.post(f"/series/{series['id']}/cancel", json={"reason": "term over"}, headers=staff).get_json()
    assert ended["status"] == "cancelled"
    statuses = [
        a["status"] for a in client.get("/", query_string={"series_id": series["id"]}, headers=staff).get_json()
    ]
    assert statuses == ["published", "published", "cancelled", "published", "cancelled", "cancelled"]
    assert [s["id"] for s in client.get("/series", headers=world.headers()).get_json()] == [series["id"]]


def test_a_daily_programme_is_announced_two_weeks_ahead(any_client, any_world, any_database, clock):
    client, world = any_client, any_world
    staff = world.headers("community_staff")
    body = {
        "community_ids": [world.community_a],
        "kind": "culture",
        "title": "Singing and chess at the inn",
        "frequency": "daily",
        "first_date": "2026-12-02",
        "start_time": "09:00",
        "duration_minutes": 180,
        "until": "2027-03-01",
    }
    draft = created(client.post("/series", json=body, headers=staff))
    assert draft["occurrences"] == 90 and draft["status"] == "draft"
    assert client.get(f"/series/{draft['id']}", headers=world.headers()).status_code == 404  # a draft
    assert published_events(any_database, draft["id"]) == []
    published = client.post(f"/series/{draft['id']}/publish", headers=staff).get_json()
    assert published["status"] == "active"
    assert client.post(f"/series/{draft['id']}/publish", headers=staff).status_code == 409
    # Now 1 December, 10:00 in Shanghai: the occurrences of the next two weeks are announced.
    announced = published_events(any_database, draft["id"])
    assert len(announced) == 14
    clock.advance(days=3)
    activities.announce_due(ActivitiesUnitOfWork(any_database, clock))
    assert len(published_events(any_database, draft["id"])) == 17
    # Someone signing up for an occurrence far ahead gets it announced (its changes concern them).
    far = client.get(
        "/", query_string={"series_id": draft["id"], "from": "2027-02-01T00:00:00+08:00"}, headers=world.headers()
    ).get_json()[0]
    created(client.post(f"/{far['id']}/registrations", json={}, headers=world.headers()))
    assert len(published_events(any_database, draft["id"])) == 18


def test_a_festival_groups_activities_across_communities_with_its_figures(any_client, any_world, clock):
    client, world = any_client, any_world
    admin = world.headers("city_admin")
    official = world.headers("street_official")
    staff_a = world.headers("community_staff", community=world.community_a)
    staff_b = world.headers("community_staff", community=world.community_b)
    festival = {"name": "Neighbourhood Festival", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}
    assert client.post("/festivals", json=festival, headers=staff_a).status_code == 403
    invalid(client.post("/festivals", json={**festival, "ends_on": "2026-11-01"}, headers=admin), "ends_on")
    invalid(client.post("/festivals", json={**festival, "street_id": str(uuid.uuid4())}, headers=admin), "street_id")
    city_wide = created(client.post("/festivals", json=festival, headers=admin))
    assert city_wide["street_id"] is None
    street = created(client.post("/festivals", json={**festival, "name": "Street fair"}, headers=official))
    assert street["street_id"] == world.street_id
    elsewhere = world.headers(community=str(uuid.uuid4()))
    assert client.get(f"/festivals/{street['id']}", headers=elsewhere).status_code == 404
    assert client.get(f"/festivals/{city_wide['id']}", headers=elsewhere).status_code == 200

    def activity(community, staff, **extra):
        return created(
            client.post(
                "/",
                json={
                    "community_ids": [community],
                    "kind": "festival",
                    "title": "Festival day",
                    "starts_at": "2026-12-01T11:00:00+08:00",
                    "ends_at": "2026-12-01T15:00:00+08:00",
                    "festival_id": city_wide["id"],
                    "publish": True,
                    **extra,
                },
                headers=staff,
            )
        )

    outside = client.post(
        "/",
        json={
            "community_ids": [world.community_a],
            "kind": "festival",
            "title": "Too late",
            "starts_at": "2027-01-05T11:00:00+08:00",
            "ends_at": "2027-01-05T15:00:00+08:00",
            "festival_id": city_wide["id"],
        },
        headers=staff_a,
    )
    invalid(outside, "festival_id")
    invalid(
        client.post(
            "/",
            json={
                "community_ids": [world.community_a],
                "kind": "festival",
                "title": "Unknown festival",
                "starts_at": "2026-12-05T11:00:00+08:00",
                "ends_at": "2026-12-05T15:00:00+08:00",
                "festival_id": str(uuid.uuid4()),
            },
            headers=staff_a,
        ),
        "festival_id",
    )
    in_a = activity(world.community_a, staff_a)
    in_b = activity(world.community_b, staff_b)
    later = activity(
        world.community_b, staff_b, starts_at="2026-12-20T11:00:00+08:00", ends_at="2026-12-20T15:00:00+08:00"
    )
    residents = [world.headers(community=world.community_a) for _ in range(2)]
    for headers in residents:
        created(client.post(f"/{in_a['id']}/registrations", json={"party_size": 2}, headers=headers))
    created(client.post(f"/{in_b['id']}/registrations", json={}, headers=world.headers(community=world.community_b)))
    clock.now = clock.now.replace(hour=4)  # 12:00 in Shanghai: under way
    created(
        client.post(
            f"/{in_b['id']}/walk-ins", json={"community_id": world.community_b, "participants": 5}, headers=staff_b
        )
    )
    code = client.get(f"/{in_a['id']}", headers=staff_a).get_json()["checkin_code"]
    created(client.post(f"/{in_a['id']}/checkins", json={"code": code}, headers=residents[0]))

    listed = client.get("/", query_string={"festival_id": city_wide["id"]}, headers=admin).get_json()
    assert {a["id"] for a in listed} == {in_a["id"], in_b["id"], later["id"]}
    figures = client.get(f"/festivals/{city_wide['id']}/stats", headers=admin).get_json()
    assert figures["totals"] == {
        "activities": 3,
        "activities_held": 2,
        "communities": 2,
        "registrations": 3,
        "registered_places": 5,
        "participant_times": 7,
    }
    assert [c["community_id"] for c in figures["by_community"]] == sorted([world.community_a, world.community_b])
    # Community staff see the festival's totals and their own community's figures only.
    own = client.get(f"/festivals/{city_wide['id']}/stats", headers=staff_a).get_json()
    assert own["totals"]["participant_times"] == 7
    assert [(c["community_id"], c["participant_times"]) for c in own["by_community"]] == [(world.community_a, 2)]
    assert client.get(f"/festivals/{city_wide['id']}/stats", headers=residents[1]).status_code == 403
    assert client.get(f"/festivals/{street['id']}/stats", headers=elsewhere).status_code == 404
    # Moving an activity out of the festival's dates is refused, nothing changed.
    moved = client.patch(
        f"/{later['id']}",
        json={"starts_at": "2027-01-20T11:00:00+08:00", "ends_at": "2027-01-20T15:00:00+08:00"},
        headers=staff_b,
    )
    invalid(moved, "festival_id")
    assert client.get(f"/{later['id']}", headers=staff_b).get_json()["starts_at"].startswith("2026-12-20")
