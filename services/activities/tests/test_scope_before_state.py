"""Scope is checked before state on every endpoint: someone outside an object's scope gets 404 (as
for an id that does not exist), never a 409 or 422 that tells them what state it is in; someone who
sees it but may not act on it gets 403. On the real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration

START = "2026-12-05T09:00:00+08:00"
END = "2026-12-05T11:00:00+08:00"


def created(response, status=201):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def refused(response, status=404):
    """The answer, checked: the status, and no word about the object's state."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"]["code"] == {404: "not_found", 403: "forbidden"}[status]
    return body


@pytest.fixture
def activity(client, world):
    staff = world.headers("community_staff")
    body = {
        "community_ids": [world.community_a],
        "kind": "sports",
        "title": "Sports day",
        "starts_at": START,
        "ends_at": END,
        "capacity": 5,
        "publish": True,
    }
    return created(client.post("/", json=body, headers=staff)), staff


def foreigners(world):
    """Residents and staff of a community of another street, and the official of another street."""
    elsewhere = str(uuid.uuid4())
    return {
        "resident": world.headers("resident", community=elsewhere),
        "community_staff": world.headers("community_staff", community=elsewhere),
        "street_official": world.headers("street_official", street=str(uuid.uuid4())),
        "agency": world.headers("agency", community=elsewhere),
        "property_manager": world.headers("property_manager", community=elsewhere),
    }


def test_check_in_by_a_resident_of_another_street_is_404_not_409(client, world, clock, activity):
    (act, _staff), foreign = activity, foreigners(world)["resident"]
    clock.now = clock.now.replace(day=5, hour=0, minute=50)  # check-in is open
    # Even with the code read at the door, and with a wrong one: nothing about registrations or codes.
    refused(client.post(f"/{act['id']}/checkins", json={"code": act["checkin_code"]}, headers=foreign))
    refused(client.post(f"/{act['id']}/checkins", json={"code": "000000"}, headers=foreign))
    refused(client.post(f"/{act['id']}/checkins", json={"registration_id": str(uuid.uuid4())}, headers=foreign))
    # A neighbour of the activity's own community, without a registration, is told so (409).
    neighbour = world.headers("resident")
    assert (
        client.post(f"/{act['id']}/checkins", json={"code": act["checkin_code"]}, headers=neighbour).status_code == 409
    )


def test_every_activity_endpoint_answers_outsiders_404_whatever_the_state(client, world, clock, activity):
    staff, aid = activity[1], activity[0]["id"]
    _resident, resident_h = world.person()
    registration = created(client.post(f"/{aid}/registrations", json={}, headers=resident_h))
    created(client.post(f"/{aid}/cancel", json={"reason": "rain"}, headers=staff), 200)
    # The activity is cancelled: to its own people every change is a 409 ...
    assert client.post(f"/{aid}/cancel", json={"reason": "again"}, headers=staff).status_code == 409
    assert client.post(f"/{aid}/publish", headers=staff).status_code == 409
    assert client.patch(f"/{aid}", json={"title": "x"}, headers=staff).status_code == 409
    clock.now = clock.now.replace(day=30)  # check-in long closed
    walk_in = {"community_id": world.community_a, "participants": 1}
    assert client.post(f"/{aid}/walk-ins", json=walk_in, headers=staff).status_code == 409
    # ... and to everyone outside its scope, whatever their role, a 404 as for an unknown id.
    for role, headers in foreigners(world).items():
        requests = [
            client.get(f"/{aid}", headers=headers),
            client.patch(f"/{aid}", json={"title": "x"}, headers=headers),
            client.post(f"/{aid}/publish", headers=headers),
            client.post(f"/{aid}/cancel", json={"reason": "again"}, headers=headers),
            client.get(f"/{aid}/registrations", headers=headers),
            client.post(f"/{aid}/registrations", json={}, headers=headers),
            client.post(f"/{aid}/registrations/{registration['id']}/cancel", headers=headers),
            client.get(f"/{aid}/checkins", headers=headers),
            client.post(f"/{aid}/checkins", json={"registration_id": registration["id"]}, headers=headers),
            client.post(f"/{aid}/walk-ins", json=walk_in, headers=headers),
        ]
        for response in requests:
            assert response.status_code == 404, (role, response.request.method, response.request.path)
    # Someone who sees the activity but may not act: 403 before any word on its state.
    refused(client.post(f"/{aid}/cancel", json={"reason": "again"}, headers=resident_h), 403)
    refused(client.post(f"/{aid}/walk-ins", json=walk_in, headers=resident_h), 403)
    # Another resident's registration is not theirs to see: 404, though it is already cancelled.
    refused(client.post(f"/{aid}/registrations/{registration['id']}/cancel", headers=world.headers()))


def test_drafts_are_unknown_to_residents_even_when_they_try_to_register(client, world):
    staff = world.headers("community_staff")
    draft = created(
        client.post(
            "/",
            json={
                "community_ids": [world.community_a],
                "kind": "culture",
                "title": "t",
                "starts_at": START,
                "ends_at": END,
            },
            headers=staff,
        )
    )
    resident = world.headers()
    refused(client.get(f"/{draft['id']}", headers=resident))
    # Before: 409 "activity is draft; registration is closed", confirming the draft exists.
    refused(client.post(f"/{draft['id']}/registrations", json={}, headers=resident))


def test_mutual_aid_talents_bookings_and_support_answer_outsiders_404(client, world):
    staff = world.headers("community_staff")
    coordinator, coordinator_h = world.person()
    group = created(
        client.post(
            "/groups",
            json={"community_id": world.community_a, "name": f"Patrol {uuid.uuid4()}", "coordinator_id": coordinator},
            headers=staff,
        )
    )
    gid = group["id"]
    member, member_h = world.person()
    created(client.post(f"/groups/{gid}/members", json={"display_name": "M"}, headers=member_h))
    talent = created(client.post("/talents", json={"display_name": "Fixer", "skills": ["repair"]}, headers=member_h))
    offering = created(
        client.post(
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
        )
    )
    slot = {"slot_start": "2026-12-03T09:00:00+08:00", "slot_end": "2026-12-03T10:00:00+08:00"}
    booking = created(
        client.post(
            "/bookings",
            json={"offering_id": offering["id"], "door_to_door": True, "address": "Building 1", **slot},
            headers=member_h,
        )
    )
    created(client.post(f"/bookings/{booking['id']}/cancel", headers=member_h), 200)
    flag = created(
        client.post(
            "/support",
            json={"community_id": world.community_a, "display_name": "Mr Wu", "needs": ["mobility"]},
            headers=staff,
        )
    )
    # To the people it belongs to, the booking's state speaks: cancelled twice is a 409.
    assert client.post(f"/bookings/{booking['id']}/cancel", headers=member_h).status_code == 409
    assert client.post(f"/bookings/{booking['id']}/feedback", json={"rating": 5}, headers=member_h).status_code == 409
    help_entry = {"helped_description": "x", "helped_on": "2026-11-30", "hours": 1}
    for role, headers in foreigners(world).items():
        requests = [
            client.get(f"/groups/{gid}", headers=headers),
            client.get(f"/groups/{gid}/members", headers=headers),
            client.post(f"/groups/{gid}/members", json={"display_name": "x"}, headers=headers),
            client.delete(f"/groups/{gid}/members/{member}", headers=headers),
            client.get(f"/groups/{gid}/help", headers=headers),
            client.post(f"/groups/{gid}/help", json=help_entry, headers=headers),
            client.patch(f"/talents/{talent['id']}", json={"active": False}, headers=headers),
            client.post(f"/talents/{talent['id']}/matches", json={"issue_id": str(uuid.uuid4())}, headers=headers),
            client.get(f"/bookings/{booking['id']}", headers=headers),
            client.post(f"/bookings/{booking['id']}/cancel", headers=headers),
            client.post(f"/bookings/{booking['id']}/confirm", json={}, headers=headers),
            client.post(f"/bookings/{booking['id']}/complete", json={}, headers=headers),
            client.post(f"/bookings/{booking['id']}/feedback", json={"rating": 5}, headers=headers),
            client.patch(f"/support/{flag['id']}", json={"active": False}, headers=headers),
        ]
        for response in requests:
            assert response.status_code == 404, (role, response.request.method, response.request.path)
    # Seen but not theirs to do: 403 (a member reading the help log, a neighbour matching a talent).
    refused(client.get(f"/groups/{gid}/help", headers=member_h), 403)
    refused(
        client.post(f"/talents/{talent['id']}/matches", json={"issue_id": str(uuid.uuid4())}, headers=member_h), 403
    )
    refused(client.post(f"/bookings/{booking['id']}/confirm", json={}, headers=member_h), 403)
    # A support record is seen by its community's staff only: a street official gets 404 too.
    refused(client.patch(f"/support/{flag['id']}", json={"active": False}, headers=world.headers("street_official")))
