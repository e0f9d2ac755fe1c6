"""The talent pool as the article asks: staff vet a talent before residents see them (a note, who,
when), suggest talents for a need by skill and walking distance, ask one, who accepts or declines;
the events that tell people. Over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import messaging
from linli_kit.events.catalogue import CATALOGUE

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


def events(database, event_type, **match):
    with database.session() as s:
        outbox = messaging.outbox
        # In the order they were written: PostgreSQL returns rows in no set order without one.
        query = select(outbox.c.payload).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
        payloads = s.scalars(query)
        found = [json.loads(p) for p in payloads]
    mine = [e for e in found if all(e["data"].get(k) == v for k, v in match.items())]
    for e in mine:
        CATALOGUE.validate(e["type"], e["version"], e["data"])
    return [e["data"] for e in mine]


def test_vetting_before_residents_see_a_talent(any_client, any_world, any_database):
    client, world = any_client, any_world
    staff_user, staff = world.person("community_staff")
    user, talent_h = world.person()
    talent = created(
        client.post("/talents", json={"display_name": "Grandpa Ma", "skills": ["teaching"]}, headers=talent_h)
    )
    neighbour = world.headers()
    assert talent["id"] not in [t["id"] for t in client.get("/talents", headers=neighbour).get_json()]
    # Not seen by residents until vetted: 404, as for an id that does not exist.
    assert client.patch(f"/talents/{talent['id']}", json={"active": False}, headers=neighbour).status_code == 404
    pending = client.get("/talents", query_string={"vetting": "pending"}, headers=staff).get_json()
    assert talent["id"] in [t["id"] for t in pending]
    invalid(client.post(f"/talents/{talent['id']}/vetting", json={"decision": "approve"}, headers=staff), "note")
    invalid(
        client.post(f"/talents/{talent['id']}/vetting", json={"decision": "maybe", "note": "x"}, headers=staff),
        "decision",
    )
    # Asking an unvetted talent to help is refused.
    asked = client.post(f"/talents/{talent['id']}/matches", json={"issue_id": str(uuid.uuid4())}, headers=staff)
    assert asked.status_code == 409
    declined = ok(
        client.post(
            f"/talents/{talent['id']}/vetting",
            json={"decision": "decline", "note": "not enough experience yet"},
            headers=staff,
        )
    )
    assert (declined["vetting_status"], declined["vetted_by"]) == ("declined", staff_user)
    approved = ok(
        client.post(
            f"/talents/{talent['id']}/vetting",
            json={"decision": "approve", "note": "has taught the children for ten years"},
            headers=staff,
        )
    )
    assert approved["vetted_at"].endswith("+00:00")
    seen = [t for t in client.get("/talents", headers=neighbour).get_json() if t["id"] == talent["id"]]
    assert [(t["vetting_status"], t["vetting_note"], t["vetted_by"]) for t in seen] == [("approved", None, None)]
    own = [t for t in client.get("/talents", headers=talent_h).get_json() if t["id"] == talent["id"]]
    assert own[0]["vetting_note"] == "has taught the children for ten years"
    told = events(any_database, "activities.talent.vetted", talent_id=talent["id"])
    assert [(e["status"], e["user_id"]) for e in told] == [("declined", user), ("approved", user)]
    # Changing what they claim sends the entry back to vetting; staff changing it does not.
    assert (
        ok(client.patch(f"/talents/{talent['id']}", json={"availability": "afternoons"}, headers=staff))[
            "vetting_status"
        ]
        == "approved"
    )
    assert (
        ok(client.patch(f"/talents/{talent['id']}", json={"skills": ["teaching", "legal"]}, headers=talent_h))[
            "vetting_status"
        ]
        == "pending"
    )


def test_suggest_by_skill_and_walk_then_the_talent_answers(any_client, any_world, any_database):
    client, world = any_client, any_world
    staff_user, staff = world.person("community_staff")
    # The need is at Sunny Garden; one talent lives next door, one 600 m away, one 3 km away, one unlocated.
    need = world.add_compound(world.community_a, "Sunny Garden", 38.1000, 106.3000)
    next_door = world.add_compound(world.community_a, "Next door", 38.1010, 106.3000)
    walk_away = world.add_compound(world.community_a, "Down the road", 38.1054, 106.3000)
    far = world.add_compound(world.community_a, "Far side", 38.1270, 106.3000)
    people = {}
    for name, compound in (("near", next_door), ("middle", walk_away), ("far", far), ("unknown", None)):
        user, headers = world.person()
        body = {"display_name": name, "skills": ["repair"], "compound_id": compound}
        talent = created(client.post("/talents", json=body, headers=headers))
        ok(client.post(f"/talents/{talent['id']}/vetting", json={"decision": "approve", "note": "ok"}, headers=staff))
        people[name] = (talent, user, headers)
    unvetted = created(
        client.post(
            "/talents",
            json={"display_name": "new", "skills": ["repair"], "compound_id": next_door},
            headers=world.headers(),
        )
    )
    invalid(
        client.post(
            "/talents",
            json={"display_name": "x", "skills": ["repair"], "compound_id": str(uuid.uuid4())},
            headers=world.headers(),
        ),
        "compound_id",
    )

    found = ok(client.get("/talents/suggestions", query_string={"skill": "repair", "compound_id": need}, headers=staff))
    assert [s["talent"]["display_name"] for s in found] == ["near", "middle", "unknown"]
    assert found[0]["walking_minutes"] < found[1]["walking_minutes"] <= 15 and found[2]["walking_minutes"] is None
    assert unvetted["id"] not in [s["talent"]["id"] for s in found]
    assert (
        client.get("/talents/suggestions", query_string={"skill": "repair"}, headers=world.headers()).status_code == 403
    )
    invalid(client.get("/talents/suggestions", query_string={"compound_id": need}, headers=staff), "skill")
    invalid(
        client.get(
            "/talents/suggestions", query_string={"skill": "repair", "compound_id": str(uuid.uuid4())}, headers=staff
        ),
        "compound_id",
    )
    invalid(
        client.get("/talents/suggestions", query_string={"skill": "repair", "latitude": 38.1}, headers=staff),
        "latitude",
    )

    # For a booking: the skill of its service, and only those free at its time.
    offering = created(
        client.post(
            "/offerings",
            json={
                "community_id": world.community_a,
                "name": "Repairs at home",
                "kind": "repair",
                "provider_type": "business",
                "provider_name": "Handyman Liu",
                "at_post": False,
                "door_to_door": True,
            },
            headers=staff,
        )
    )
    slot = {"slot_start": "2026-12-03T09:00:00+08:00", "slot_end": "2026-12-03T10:00:00+08:00"}
    booking = created(
        client.post(
            "/bookings",
            json={"offering_id": offering["id"], "door_to_door": True, "address": "Building 3", **slot},
            headers=world.headers(),
        )
    )
    near_talent, near_user, near_h = people["near"]
    own_offering = created(
        client.post(
            "/offerings",
            json={
                "community_id": world.community_a,
                "name": "Fix-it",
                "kind": "repair",
                "provider_type": "talent",
                "provider_id": near_talent["id"],
                "provider_name": "near",
                "at_post": False,
                "door_to_door": True,
            },
            headers=staff,
        )
    )
    created(
        client.post(
            "/bookings",
            json={"offering_id": own_offering["id"], "door_to_door": True, "address": "Building 9", **slot},
            headers=world.headers(),
        )
    )
    for_booking = ok(
        client.get(
            "/talents/suggestions", query_string={"booking_id": booking["id"], "compound_id": need}, headers=staff
        )
    )
    assert [s["talent"]["display_name"] for s in for_booking] == ["middle", "unknown"]  # "near" is busy then
    busy = client.post(f"/talents/{near_talent['id']}/matches", json={"booking_id": booking["id"]}, headers=staff)
    assert busy.status_code == 409 and "booking_id" in busy.get_json()["error"]["fields"]

    # Ask "middle": told by an event; only they answer; someone else does not see the match.
    middle, middle_user, middle_h = people["middle"]
    match = created(
        client.post(
            f"/talents/{middle['id']}/matches",
            json={"booking_id": booking["id"], "note": "Mrs Li's tap"},
            headers=staff,
        )
    )
    assert match["status"] == "proposed"
    [asked] = events(any_database, "activities.talent.matched", match_id=match["id"])
    assert (asked["talent_user_id"], asked["matched_by_id"], asked["note"]) == (middle_user, staff_user, "Mrs Li's tap")
    assert [m["id"] for m in ok(client.get("/talents/matches", headers=middle_h))] == [match["id"]]
    assert client.post(f"/talents/matches/{match['id']}/accept", headers=near_h).status_code == 404
    assert client.post(f"/talents/matches/{match['id']}/accept", headers=staff).status_code == 403
    declined = ok(
        client.post(f"/talents/matches/{match['id']}/decline", json={"reason": "away that week"}, headers=middle_h)
    )
    assert (declined["status"], declined["decline_reason"]) == ("declined", "away that week")
    assert client.post(f"/talents/matches/{match['id']}/accept", headers=middle_h).status_code == 409
    [answer] = events(any_database, "activities.talent.match_declined", match_id=match["id"])
    assert answer["decline_reason"] == "away that week"
    assert client.get(f"/bookings/{booking['id']}", headers=staff).get_json()["provider_talent_id"] is None
    # "unknown" accepts: they become the booking's provider.
    other, other_user, other_h = people["unknown"]
    second = created(client.post(f"/talents/{other['id']}/matches", json={"booking_id": booking["id"]}, headers=staff))
    ok(client.post(f"/talents/matches/{second['id']}/accept", headers=other_h))
    assert client.get(f"/bookings/{booking['id']}", headers=staff).get_json()["provider_talent_id"] == other["id"]
    assert events(any_database, "activities.talent.match_accepted", match_id=second["id"])
    statuses = {m["id"]: m["status"] for m in ok(client.get("/talents/matches", headers=staff))}
    assert (statuses[match["id"]], statuses[second["id"]]) == ("declined", "accepted")
