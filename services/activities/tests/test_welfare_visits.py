"""Welfare visits: a resident flagged as needing support gets a visit plan (every N days, by whom);
overdue visits wait in the staff queue and count in /stats; a visit is recorded, optionally with
a service booked on the spot. Private: the community's own staff and the visitor. SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def created(response):
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def ok(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def invalid(response, field):
    body = response.get_json()
    assert response.status_code == 422, body
    assert field in body["error"]["fields"], body


def test_a_kept_welfare_visit(any_client, any_world, clock):
    client, world = any_client, any_world
    staff = world.headers("community_staff")  # clock: 1 December 2026, 10:00 in Shanghai
    resident = str(uuid.uuid4())
    flag = created(
        client.post(
            "/support",
            json={
                "community_id": world.community_a,
                "resident_id": resident,
                "display_name": "Grandma Zhou",
                "needs": ["living_alone", "economic_difficulty"],
                "address": "Building 7, room 302",
            },
            headers=staff,
        )
    )
    fid = flag["id"]
    volunteer, volunteer_h = world.person()
    assert client.get(f"/support/{fid}/visit-plan", headers=staff).status_code == 404  # no plan yet
    visit = {"visited_on": "2026-11-30", "condition": "well"}
    assert client.post(f"/support/{fid}/visits", json=visit, headers=staff).status_code == 409  # no plan yet
    plan_body = {"every_days": 7, "visitor_id": volunteer, "visitor_name": "Auntie Wang", "starts_on": "2026-11-25"}
    # Scope before state: street officials and other residents do not see the record at all.
    for outsider in (
        world.headers("street_official"),
        world.headers(),
        world.headers("community_staff", community=world.community_b),
    ):
        assert client.put(f"/support/{fid}/visit-plan", json=plan_body, headers=outsider).status_code == 404
        assert client.post(f"/support/{fid}/visits", json=visit, headers=outsider).status_code == 404
    invalid(client.put(f"/support/{fid}/visit-plan", json={**plan_body, "every_days": 0}, headers=staff), "every_days")
    plan = ok(client.put(f"/support/{fid}/visit-plan", json=plan_body, headers=staff))
    assert (plan["next_due_on"], plan["every_days"]) == ("2026-11-25", 7)

    # Due on 25 November, not visited: overdue by 6 days, in the staff queue and the figures.
    queue = ok(client.get("/visits/queue", headers=staff))
    assert [(q["flag_id"], q["overdue_days"], q["display_name"]) for q in queue] == [(fid, 6, "Grandma Zhou")]
    assert [q["flag_id"] for q in ok(client.get("/visits/queue", headers=volunteer_h))] == [fid]
    assert ok(client.get("/visits/queue", headers=world.headers())) == []
    assert (
        client.get("/visits/queue", query_string={"community_id": world.community_b}, headers=staff).status_code == 403
    )
    stats = ok(client.get("/stats", query_string={"community_id": world.community_a}, headers=staff))
    assert (stats["totals"]["visit_plans"], stats["totals"]["visits_overdue"]) == (1, 1)
    street = ok(client.get("/stats", headers=world.headers("street_official")))
    assert street["totals"]["visits_overdue"] >= 1

    # The volunteer visits; she books a door-to-door massage on the spot.
    offering = created(
        client.post(
            "/offerings",
            json={
                "community_id": world.community_a,
                "name": "Massage at home",
                "kind": "massage",
                "provider_type": "business",
                "provider_name": "The inn's massage room",
                "at_post": False,
                "door_to_door": True,
            },
            headers=staff,
        )
    )
    invalid(
        client.post(f"/support/{fid}/visits", json={**visit, "visited_on": "2026-12-09"}, headers=volunteer_h),
        "visited_on",
    )
    invalid(
        client.post(f"/support/{fid}/visits", json={**visit, "condition": "fine"}, headers=volunteer_h), "condition"
    )
    slot = {"slot_start": "2026-12-03T09:00:00+08:00", "slot_end": "2026-12-03T10:00:00+08:00"}
    bad_slot = {"offering_id": offering["id"], "slot_start": slot["slot_end"], "slot_end": slot["slot_start"]}
    invalid(
        client.post(f"/support/{fid}/visits", json={**visit, "booking": bad_slot}, headers=volunteer_h),
        "booking.slot_end",
    )
    assert ok(client.get(f"/support/{fid}/visit-plan", headers=staff))["last_visited_on"] is None  # nothing kept
    kept = created(
        client.post(
            f"/support/{fid}/visits",
            json={
                **visit,
                "condition": "needs_help",
                "note": "shoulder pain",
                "booking": {"offering_id": offering["id"], **slot},
            },
            headers=volunteer_h,
        )
    )
    assert kept["booking_id"] is not None
    booking = ok(client.get(f"/bookings/{kept['booking_id']}", headers=world.headers(user=resident)))
    assert (booking["door_to_door"], booking["address"], booking["status"]) == (
        True,
        "Building 7, room 302",
        "requested",
    )
    plan = ok(client.get(f"/support/{fid}/visit-plan", headers=staff))
    assert (plan["last_visited_on"], plan["next_due_on"]) == ("2026-11-30", "2026-12-07")
    assert ok(client.get("/visits/queue", headers=staff)) == []
    assert [
        q["overdue_days"] for q in ok(client.get("/visits/queue", query_string={"within_days": 7}, headers=staff))
    ] == [0]
    # The same slot for the same provider on another visit: refused, naming the booking's field.
    again = client.post(
        f"/support/{fid}/visits", json={**visit, "booking": {"offering_id": offering["id"], **slot}}, headers=staff
    )
    assert again.status_code == 409 and "booking.slot_start" in again.get_json()["error"]["fields"]
    # Nobody at home does not count as a visit.
    created(
        client.post(
            f"/support/{fid}/visits", json={"visited_on": "2026-12-01", "condition": "not_home"}, headers=volunteer_h
        )
    )
    assert ok(client.get(f"/support/{fid}/visit-plan", headers=staff))["next_due_on"] == "2026-12-07"
    assert [v["condition"] for v in ok(client.get(f"/support/{fid}/visits", headers=staff))] == [
        "not_home",
        "needs_help",
    ]
    assert client.get(f"/support/{fid}/visits", headers=volunteer_h).status_code == 404  # the record is staff's

    stats = ok(client.get("/stats", query_string={"community_id": world.community_a}, headers=staff))
    assert (stats["totals"]["welfare_visits"], stats["totals"]["visits_overdue"]) == (2, 0)
    assert {m["month"]: m["welfare_visits"] for m in stats["monthly"]}["2026-11"] == 1
    # Eight days on with no visit: overdue again.
    clock.advance(days=8)
    assert [q["overdue_days"] for q in ok(client.get("/visits/queue", headers=staff))] == [2]


def test_a_visit_raises_an_issue_on_the_spot(client, world, database):
    """The visitor finds a problem (a broken stair rail) and raises it as an issue there and then: the
    visit keeps the issue's id; the issues service reports it from activities.visit.concern_raised."""
    import json

    from sqlalchemy import select

    from linli_activities.adapters.tables import messaging
    from linli_kit.events.catalogue import CATALOGUE

    staff = world.headers("community_staff")
    resident = str(uuid.uuid4())
    fid = created(
        client.post(
            "/support",
            json={"community_id": world.community_a, "resident_id": resident, "display_name": "Grandpa Li",
                  "needs": ["disability"], "address": "Building 3, room 101"},
            headers=staff,
        )
    )["id"]  # fmt: skip
    volunteer, volunteer_h = world.person()
    plan = {"every_days": 14, "visitor_id": volunteer, "visitor_name": "Auntie Wang", "starts_on": "2026-11-28"}
    ok(client.put(f"/support/{fid}/visit-plan", json=plan, headers=staff))
    visit = {"visited_on": "2026-11-30", "condition": "needs_help"}
    for bad, field in (
        ({"title": "x", "description": "d"}, "title"),
        ({"title": "Rail", "description": "  "}, "description"),
        ({"title": "Rail", "description": "d", "urgency": "now"}, "urgency"),
    ):
        refused = client.post(f"/support/{fid}/visits", json={**visit, "concern": bad}, headers=volunteer_h)
        assert refused.status_code == 422 and field in refused.get_json()["error"]["fields"]["concern"]
    concern = {"title": "Broken stair rail", "description": "The rail on the 1st floor is loose", "urgency": "high"}
    kept = created(client.post(f"/support/{fid}/visits", json={**visit, "concern": concern}, headers=volunteer_h))
    assert kept["issue_id"] is not None and kept["booking_id"] is None
    with database.session() as s:
        rows = s.scalars(
            select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == "activities.visit.concern_raised")
        )
        raised = [json.loads(p) for p in rows]
    [event] = [e for e in raised if e["data"]["visit_id"] == kept["id"]]
    CATALOGUE.validate(event["type"], event["version"], event["data"])
    assert event["data"]["issue_id"] == kept["issue_id"] and event["community_id"] == world.community_a
    assert (event["data"]["resident_id"], event["data"]["raised_by"]) == (resident, volunteer)
    assert (event["data"]["category"], event["data"]["urgency"]) == ("elderly_vulnerable_support", "high")
    assert event["data"]["address"] == "Building 3, room 101"
