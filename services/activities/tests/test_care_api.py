"""Mutual-aid groups, talents, services and bookings, support flags over HTTP: flows, privacy, bad input."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def created(response):
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_group_members_and_help_hours(client, world):
    staff = world.headers("community_staff")
    coordinator, coordinator_h = world.person()
    group = created(
        client.post(
            "/groups",
            json={
                "community_id": world.community_a,
                "name": "Caring grandmas",
                "purpose": "visit elderly neighbours",
                "coordinator_id": coordinator,
            },
            headers=staff,
        )
    )
    gid = group["id"]
    dup = client.post(
        "/groups",
        json={"community_id": world.community_a, "name": "Caring grandmas", "coordinator_id": coordinator},
        headers=staff,
    )
    assert dup.status_code == 409

    member, member_h = world.person()
    created(client.post(f"/groups/{gid}/members", json={"display_name": "Auntie Wang"}, headers=member_h))
    assert client.post(f"/groups/{gid}/members", json={"display_name": "again"}, headers=member_h).status_code == 409
    outsider_user, outsider = world.person(community=world.community_b)
    assert client.post(f"/groups/{gid}/members", json={"display_name": "x"}, headers=outsider).status_code == 404

    log = created(
        client.post(
            f"/groups/{gid}/help",
            json={
                "helped_description": "Mr Li, Building 3",
                "helped_on": "2026-11-30",
                "hours": 1.5,
            },
            headers=member_h,
        )
    )
    assert log["helper_id"] == member
    # Someone who is not a member cannot log help; nobody logs more than a day or the future.
    assert (
        client.post(
            f"/groups/{gid}/help",
            json={"helped_description": "x", "helped_on": "2026-11-30", "hours": 1},
            headers=world.headers(),
        ).status_code
        == 403
    )
    bad = client.post(
        f"/groups/{gid}/help",
        json={"helped_description": "x", "helped_on": "2027-01-01", "hours": 30},
        headers=member_h,
    )
    assert bad.status_code == 422 and "hours" in bad.get_json()["error"]["fields"]
    future = client.post(
        f"/groups/{gid}/help", json={"helped_description": "x", "helped_on": "2027-01-01", "hours": 2}, headers=member_h
    )
    assert future.status_code == 422 and "helped_on" in future.get_json()["error"]["fields"]
    # The coordinator logs for a member; the log itself is for the coordinator and staff.
    created(
        client.post(
            f"/groups/{gid}/help",
            json={"helper_id": member, "helped_description": "Mrs Zhao", "helped_on": "2026-11-29", "hours": 2},
            headers=coordinator_h,
        )
    )
    assert client.get(f"/groups/{gid}/help", headers=member_h).status_code == 403
    logs = client.get(f"/groups/{gid}/help", headers=staff).get_json()
    assert sorted(e["hours"] for e in logs) == [1.5, 2.0]
    assert [m["user_id"] for m in client.get(f"/groups/{gid}/members", headers=member_h).get_json()] == [member]
    assert client.get(f"/groups/{gid}", headers=outsider).status_code == 404


def test_talent_pool_contacts_only_for_staff(client, world):
    talent_user, talent_h = world.person()
    talent = created(
        client.post(
            "/talents",
            json={
                "display_name": "Zhang Ronghu",
                "skills": ["massage", "care"],
                "availability": "weekday mornings",
                "contact_note": "room 302, knock twice",
            },
            headers=talent_h,
        )
    )
    assert (talent["community_id"], talent["vetting_status"]) == (world.community_a, "pending")
    staff = world.headers("community_staff")
    # Not vetted yet: residents do not see the entry (but the talent does).
    assert talent["id"] not in [t["id"] for t in client.get("/talents", headers=world.headers()).get_json()]
    assert (
        client.post(
            f"/talents/{talent['id']}/vetting", json={"decision": "approve", "note": "x"}, headers=talent_h
        ).status_code
        == 403
    )
    vetted = client.post(
        f"/talents/{talent['id']}/vetting",
        json={"decision": "approve", "note": "known to neighbours for years"},
        headers=staff,
    ).get_json()
    assert (vetted["vetting_status"], vetted["vetting_note"]) == ("approved", "known to neighbours for years")
    by_skill = client.get("/talents", query_string={"skill": "massage"}, headers=staff).get_json()
    assert [t["contact_note"] for t in by_skill if t["id"] == talent["id"]] == ["room 302, knock twice"]
    assert not [
        t
        for t in client.get("/talents", query_string={"skill": "legal"}, headers=staff).get_json()
        if t["id"] == talent["id"]
    ]
    neighbour = client.get("/talents", headers=world.headers()).get_json()
    assert [t["contact_note"] for t in neighbour if t["id"] == talent["id"]] == [None]
    other = client.get("/talents", headers=world.headers(community=world.community_b)).get_json()
    assert talent["id"] not in [t["id"] for t in other]
    assert (
        client.post("/talents", json={"display_name": "x", "skills": ["juggling"]}, headers=talent_h).status_code == 422
    )
    # Matching a talent to an issue is staff work.
    issue = str(uuid.uuid4())
    assert (
        client.post(f"/talents/{talent['id']}/matches", json={"issue_id": issue}, headers=talent_h).status_code == 403
    )
    match = created(client.post(f"/talents/{talent['id']}/matches", json={"issue_id": issue}, headers=staff))
    assert match["issue_id"] == issue
    assert client.post(f"/talents/{talent['id']}/matches", json={}, headers=staff).status_code == 422


def test_door_to_door_booking_by_staff_to_completion(client, world):
    staff = world.headers("community_staff")
    post = created(
        client.post(
            "/posts",
            json={"community_id": world.community_a, "name": "Inn", "latitude": 38.5, "longitude": 106.9},
            headers=staff,
        )
    )
    offering = created(
        client.post(
            "/offerings",
            json={
                "community_id": world.community_a,
                "name": "Haircut",
                "kind": "haircut",
                "post_id": post["id"],
                "provider_type": "business",
                "provider_name": "Li's barbershop",
                "door_to_door": True,
            },
            headers=staff,
        )
    )
    resident = str(uuid.uuid4())  # has no phone: staff book for them
    slot = {"slot_start": "2026-12-03T09:00:00+08:00", "slot_end": "2026-12-03T09:30:00+08:00"}
    no_address = client.post(
        "/bookings",
        json={"offering_id": offering["id"], "resident_id": resident, "door_to_door": True, **slot},
        headers=staff,
    )
    assert no_address.status_code == 422 and "address" in no_address.get_json()["error"]["fields"]
    booking = created(
        client.post(
            "/bookings",
            json={
                "offering_id": offering["id"],
                "resident_id": resident,
                "door_to_door": True,
                "address": "Building 7, unit 2, room 401",
                **slot,
            },
            headers=staff,
        )
    )
    assert booking["status"] == "requested" and booking["booked_by"] != resident
    bid = booking["id"]
    assert client.post(f"/bookings/{bid}/complete", json={}, headers=staff).status_code == 409  # not confirmed yet
    # A neighbour does not see someone else's booking (404); the resident served may not confirm it (403).
    assert client.post(f"/bookings/{bid}/confirm", json={}, headers=world.headers()).status_code == 404
    assert client.post(f"/bookings/{bid}/confirm", json={}, headers=world.headers(user=resident)).status_code == 403
    assert client.post(f"/bookings/{bid}/confirm", json={}, headers=staff).get_json()["status"] == "confirmed"
    done = client.post(f"/bookings/{bid}/complete", json={"person_times": 2}, headers=staff).get_json()
    assert (done["status"], done["person_times"]) == ("completed", 2)
    resident_h = world.headers(user=resident)
    assert client.get(f"/bookings/{bid}", headers=resident_h).get_json()["address"] == "Building 7, unit 2, room 401"
    assert client.get(f"/bookings/{bid}", headers=world.headers()).status_code == 404
    feedback = client.post(f"/bookings/{bid}/feedback", json={"rating": 5, "comment": "very kind"}, headers=resident_h)
    assert feedback.get_json()["feedback_rating"] == 5
    assert client.post(f"/bookings/{bid}/feedback", json={"rating": 4}, headers=resident_h).status_code == 409
    assert client.post(f"/bookings/{bid}/feedback", json={"rating": 9}, headers=resident_h).status_code == 422
    mine = client.get("/bookings", headers=resident_h).get_json()
    assert [b["id"] for b in mine] == [bid]


def test_a_resident_books_for_themselves_and_cancels(client, world):
    staff = world.headers("community_staff")
    talent = created(
        client.post("/talents", json={"display_name": "Ms Ma", "skills": ["handcraft"]}, headers=world.headers())
    )
    offering = created(
        client.post(
            "/offerings",
            json={
                "community_id": world.community_a,
                "name": "Paper cutting",
                "kind": "handcraft",
                "provider_type": "talent",
                "provider_id": talent["id"],
                "provider_name": "Ms Ma",
                "at_post": False,
                "door_to_door": True,
            },
            headers=staff,
        )
    )
    user, headers = world.person()
    at_post = client.post(
        "/bookings",
        json={"offering_id": offering["id"], "slot_start": "2026-12-03T09:00:00Z", "slot_end": "2026-12-03T10:00:00Z"},
        headers=headers,
    )
    assert at_post.status_code == 422 and "door_to_door" in at_post.get_json()["error"]["fields"]
    booking = created(
        client.post(
            "/bookings",
            json={
                "offering_id": offering["id"],
                "slot_start": "2026-12-03T09:00:00Z",
                "slot_end": "2026-12-03T10:00:00Z",
                "door_to_door": True,
                "address": "Building 1",
            },
            headers=headers,
        )
    )
    assert booking["resident_id"] == user
    other = world.headers(community=world.community_b)
    # Another community's offering is unknown to them: 422 naming the field, as for an unknown id.
    foreign = client.post(
        "/bookings",
        json={
            "offering_id": offering["id"],
            "slot_start": "2026-12-03T09:00:00Z",
            "slot_end": "2026-12-03T10:00:00Z",
            "door_to_door": True,
            "address": "x",
        },
        headers=other,
    )
    assert foreign.status_code == 422 and "offering_id" in foreign.get_json()["error"]["fields"]
    # Staff match another talent to the booking: it becomes the provider.
    helper_user, helper_h = world.person()
    helper = created(client.post("/talents", json={"display_name": "Mr Hu", "skills": ["handcraft"]}, headers=helper_h))
    vet = {"decision": "approve", "note": "skilled and kind"}
    assert client.post(f"/talents/{helper['id']}/vetting", json=vet, headers=staff).status_code == 200
    match = created(client.post(f"/talents/{helper['id']}/matches", json={"booking_id": booking["id"]}, headers=staff))
    # Asked, not yet provider: the talent accepts, then they are.
    assert client.get(f"/bookings/{booking['id']}", headers=headers).get_json()["provider_talent_id"] is None
    assert client.post(f"/talents/matches/{match['id']}/accept", headers=helper_h).get_json()["status"] == "accepted"
    assert client.get(f"/bookings/{booking['id']}", headers=headers).get_json()["provider_talent_id"] == helper["id"]
    assert client.post(f"/bookings/{booking['id']}/cancel", headers=headers).get_json()["status"] == "cancelled"
    assert client.post(f"/bookings/{booking['id']}/cancel", headers=headers).status_code == 409


def test_support_flags_only_for_the_communitys_own_staff(client, world):
    staff = world.headers("community_staff")
    flag = created(
        client.post(
            "/support",
            json={
                "community_id": world.community_a,
                "display_name": "Grandpa Liu",
                "needs": ["elderly_alone", "mobility"],
                "address": "Building 2, room 101",
            },
            headers=staff,
        )
    )
    listed = client.get(
        "/support", query_string={"community_id": world.community_a, "need": "mobility"}, headers=staff
    ).get_json()
    assert [f["id"] for f in listed] == [flag["id"]]
    for headers in (
        world.headers(),  # a neighbour
        world.headers("community_staff", community=world.community_b),
        world.headers("street_official"),
        world.headers("city_admin"),
    ):
        assert (
            client.get("/support", query_string={"community_id": world.community_a}, headers=headers).status_code == 403
        )
    assert (
        client.patch(
            f"/support/{flag['id']}",
            json={"active": False},
            headers=world.headers("community_staff", community=world.community_b),
        ).status_code
        == 404
    )
    bad = client.post("/support", json={"community_id": world.community_a, "needs": ["lonely"]}, headers=staff)
    assert bad.status_code == 422 and "needs" in bad.get_json()["error"]["fields"]
    no_name = client.post("/support", json={"community_id": world.community_a, "needs": ["disability"]}, headers=staff)
    assert no_name.status_code == 422 and "display_name" in no_name.get_json()["error"]["fields"]


def test_a_group_organises_an_activity(client, world):
    staff = world.headers("community_staff")
    group = created(
        client.post(
            "/groups",
            json={
                "community_id": world.community_a,
                "name": "Small mutual aid society",
                "coordinator_id": str(uuid.uuid4()),
            },
            headers=staff,
        )
    )
    body = {
        "community_ids": [world.community_a],
        "kind": "volunteering",
        "title": "Clean-up",
        "starts_at": "2026-12-06T09:00:00+08:00",
        "ends_at": "2026-12-06T11:00:00+08:00",
        "organiser_type": "group",
        "organiser_id": group["id"],
    }
    activity = created(client.post("/", json=body, headers=staff))
    assert (activity["organiser_type"], activity["organiser_id"]) == ("group", group["id"])
    unknown = client.post("/", json={**body, "organiser_id": str(uuid.uuid4())}, headers=staff)
    assert unknown.status_code == 422 and "organiser_id" in unknown.get_json()["error"]["fields"]
