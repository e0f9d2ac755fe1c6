"""Activities over HTTP on the real PostgreSQL: publishing, registration with capacity, party size,
window and waiting list, check-in, scope, bad input, calendars."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration

START = "2026-12-05T09:00:00+08:00"
END = "2026-12-05T11:00:00+08:00"


def new_activity(client, world, staff, **overrides):
    body = {
        "community_ids": [world.community_a],
        "kind": "sports",
        "title": "Parent-child sports day",
        "starts_at": START,
        "ends_at": END,
        "capacity": 5,
        "max_party_size": 3,
        "publish": True,
        **overrides,
    }
    response = client.post("/", json=body, headers=staff)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def register(client, activity_id, headers, **body):
    return client.post(f"/{activity_id}/registrations", json=body, headers=headers)


def test_capacity_waiting_list_and_promotion_in_order(client, world):
    staff = world.headers("community_staff")
    activity = new_activity(client, world, staff)
    aid = activity["id"]
    assert activity["status"] == "published" and activity["free_places"] == 5
    assert activity["checkin_code"]  # staff see the code

    residents = [world.person() for _ in range(5)]
    first = register(client, aid, residents[0][1], party_size=3).get_json()
    assert first["status"] == "confirmed"
    second = register(client, aid, residents[1][1], party_size=2).get_json()
    assert second["status"] == "confirmed"
    # Full: the next households wait, in order.
    third = register(client, aid, residents[2][1], party_size=2).get_json()
    fourth = register(client, aid, residents[3][1], party_size=1).get_json()
    assert (third["status"], third["waitlist_position"]) == ("waitlisted", 1)
    assert (fourth["status"], fourth["waitlist_position"]) == ("waitlisted", 2)
    # A one-person household arriving now does not jump the line even though... nothing is free.
    fifth = register(client, aid, residents[4][1], party_size=1).get_json()
    assert fifth["waitlist_position"] == 3

    # The three-person household cancels: 3 places free; the head (2) then the next (1) are promoted.
    cancelled = client.post(f"/{aid}/registrations/{first['id']}/cancel", headers=residents[0][1])
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    listing = client.get(f"/{aid}/registrations", headers=staff).get_json()
    by_id = {r["id"]: r for r in listing}
    assert by_id[third["id"]]["status"] == "confirmed"
    assert by_id[fourth["id"]]["status"] == "confirmed"
    assert by_id[fifth["id"]]["status"] == "waitlisted" and by_id[fifth["id"]]["waitlist_position"] == 1
    got = client.get(f"/{aid}", headers=staff).get_json()
    assert (got["confirmed_places"], got["waiting_parties"], got["free_places"]) == (5, 1, 0)

    # Cancelling again is a conflict; a resident sees only their own registration.
    again = client.post(f"/{aid}/registrations/{first['id']}/cancel", headers=residents[0][1])
    assert again.status_code == 409
    mine = client.get(f"/{aid}/registrations", headers=residents[4][1]).get_json()
    assert [r["id"] for r in mine] == [fifth["id"]]
    everywhere = client.get("/registrations/mine", headers=residents[4][1]).get_json()
    assert [(r["id"], r["waitlist_position"]) for r in everywhere] == [(fifth["id"], 1)]


def test_strict_order_a_big_party_at_the_head_is_not_jumped(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff, capacity=4, max_party_size=3)["id"]
    a, b, c = world.person(), world.person(), world.person()
    ra = register(client, aid, a[1], party_size=3).get_json()
    register(client, aid, b[1], party_size=3)  # waits: only 1 place left
    rc = register(client, aid, c[1], party_size=1).get_json()
    # One place is free, yet the later party of one waits behind the party of three.
    assert rc["status"] == "waitlisted" and rc["waitlist_position"] == 2
    client.post(f"/{aid}/registrations/{ra['id']}/cancel", headers=a[1])
    statuses = {r["user_id"]: r["status"] for r in client.get(f"/{aid}/registrations", headers=staff).get_json()}
    assert statuses[b[0]] == "confirmed" and statuses[c[0]] == "confirmed"


def test_no_double_registration_and_party_size_limit(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff)["id"]
    user, headers = world.person()
    assert register(client, aid, headers, party_size=1).status_code == 201
    twice = register(client, aid, headers, party_size=1)
    assert twice.status_code == 409 and "already registered" in twice.get_json()["error"]["message"]
    too_big = register(client, aid, world.person()[1], party_size=4)
    assert too_big.status_code == 422 and "party_size" in too_big.get_json()["error"]["fields"]


def test_registration_window(client, world, clock):
    staff = world.headers("community_staff")
    aid = new_activity(
        client,
        world,
        staff,
        registration_opens_at="2026-12-02T00:00:00+08:00",
        registration_closes_at="2026-12-04T20:00:00+08:00",
    )["id"]
    _user, headers = world.person()
    early = register(client, aid, headers)
    assert early.status_code == 409 and "opens" in early.get_json()["error"]["message"]
    clock.advance(days=2)
    assert register(client, aid, headers).status_code == 201
    clock.advance(days=2)
    late = register(client, aid, world.person()[1])
    assert late.status_code == 409 and "closed" in late.get_json()["error"]["message"]


def test_re_registering_after_cancelling_goes_to_the_end_of_the_line(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff, capacity=1, max_party_size=1)["id"]
    a, b, c = world.person(), world.person(), world.person()
    register(client, aid, a[1])
    rb = register(client, aid, b[1]).get_json()
    register(client, aid, c[1])
    client.post(f"/{aid}/registrations/{rb['id']}/cancel", headers=b[1])
    back = register(client, aid, b[1]).get_json()
    assert back["id"] == rb["id"] and back["status"] == "waitlisted" and back["waitlist_position"] == 2


def test_check_in_by_list_and_by_code_and_twice(client, world, clock):
    staff = world.headers("community_staff")
    activity = new_activity(client, world, staff)
    aid, code = activity["id"], activity["checkin_code"]
    a, b = world.person(), world.person()
    ra = register(client, aid, a[1], party_size=3).get_json()
    register(client, aid, b[1], party_size=2)
    early = client.post(f"/{aid}/checkins", json={"registration_id": ra["id"]}, headers=staff)
    assert early.status_code == 409 and "not opened" in early.get_json()["error"]["message"]

    clock.now = clock.now.replace(day=5, hour=0, minute=50)  # 08:50 in Shanghai, ten minutes before
    listed = client.post(f"/{aid}/checkins", json={"registration_id": ra["id"], "participants": 2}, headers=staff)
    assert listed.status_code == 201 and listed.get_json()["participants"] == 2
    twice = client.post(f"/{aid}/checkins", json={"registration_id": ra["id"]}, headers=staff)
    assert twice.status_code == 409 and "already checked in" in twice.get_json()["error"]["message"]

    wrong = client.post(f"/{aid}/checkins", json={"code": "not-it"}, headers=b[1])
    assert wrong.status_code == 422 and "code" in wrong.get_json()["error"]["fields"]
    by_code = client.post(f"/{aid}/checkins", json={"code": code}, headers=b[1])
    assert by_code.status_code == 201 and by_code.get_json()["method"] == "code"
    assert client.post(f"/{aid}/checkins", json={"code": code}, headers=b[1]).status_code == 409
    # A resident cannot tick the staff list.
    assert client.post(f"/{aid}/checkins", json={"registration_id": ra["id"]}, headers=b[1]).status_code == 403

    walk_in = client.post(
        f"/{aid}/walk-ins", json={"community_id": world.community_a, "participants": 4}, headers=staff
    )
    assert walk_in.status_code == 201
    checkins = client.get(f"/{aid}/checkins", headers=staff).get_json()
    assert sorted(c["participants"] for c in checkins) == [2, 2, 4]
    # A checked-in registration can no longer be cancelled.
    assert client.post(f"/{aid}/registrations/{ra['id']}/cancel", headers=a[1]).status_code == 409


def test_residents_see_no_check_in_code_and_no_other_communities(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff)["id"]
    resident = world.headers()
    seen = client.get(f"/{aid}", headers=resident).get_json()
    assert seen["checkin_code"] is None
    outsider = world.headers(community=world.community_b)
    # Another community's activity is not confirmed to exist: 404, as for an unknown id.
    assert client.get(f"/{aid}", headers=outsider).status_code == 404
    assert register(client, aid, outsider).status_code == 404
    listed = client.get("/", headers=outsider).get_json()
    assert aid not in [a["id"] for a in listed]
    # The street official of the street sees it; staff of the other community do not.
    assert client.get(f"/{aid}", headers=world.headers("street_official")).status_code == 200
    other_staff = world.headers("community_staff", community=world.community_b)
    assert client.patch(f"/{aid}", json={"title": "x"}, headers=other_staff).status_code == 404
    # A resident who sees it may still not change it: 403.
    assert client.patch(f"/{aid}", json={"title": "x"}, headers=resident).status_code == 403
    # Residents cannot create activities; drafts are hidden from them.
    body = {"community_ids": [world.community_a], "kind": "culture", "title": "t", "starts_at": START, "ends_at": END}
    assert client.post("/", json=body, headers=resident).status_code == 403
    draft = client.post("/", json=body, headers=staff).get_json()
    assert client.get(f"/{draft['id']}", headers=resident).status_code == 404
    assert client.get("/", headers=staff, query_string={"status": "draft"}).get_json()[0]["status"] == "draft"
    assert client.get("/").status_code == 401


def test_bad_input_names_each_field_and_changes_nothing(client, world):
    staff = world.headers("community_staff")
    before = client.get("/", headers=staff).headers["X-Pagination"]
    bad = client.post(
        "/",
        json={"community_ids": [], "kind": "party", "title": "", "starts_at": "tomorrow", "capacity": 0},
        headers=staff,
    )
    assert bad.status_code == 422
    assert {"community_ids", "kind", "title", "starts_at", "ends_at", "capacity"} <= set(
        bad.get_json()["error"]["fields"]
    )
    reversed_times = client.post(
        "/",
        json={"community_ids": [world.community_a], "kind": "other", "title": "t", "starts_at": END, "ends_at": START},
        headers=staff,
    )
    assert reversed_times.status_code == 422 and "ends_at" in reversed_times.get_json()["error"]["fields"]
    naive = client.post(
        "/",
        json={
            "community_ids": [world.community_a],
            "kind": "other",
            "title": "t",
            "starts_at": "2026-12-05T09:00:00",
            "ends_at": END,
        },
        headers=staff,
    )
    assert naive.status_code == 422 and "starts_at" in naive.get_json()["error"]["fields"]
    assert client.get("/", headers=staff).headers["X-Pagination"] == before
    assert client.get("/00000000-0000-0000-0000-000000000000", headers=staff).status_code == 404


def test_reschedule_cancel_and_calendars(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff, title="Neighbourhood festival; lanterns, music")["id"]
    moved = client.patch(
        f"/{aid}",
        json={"starts_at": "2026-12-06T09:00:00+08:00", "ends_at": "2026-12-06T12:00:00+08:00"},
        headers=staff,
    )
    assert moved.status_code == 200 and moved.get_json()["starts_at"].startswith("2026-12-06T01:00:00")
    ics = client.get(f"/{aid}/calendar.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    text = ics.get_data(as_text=True)
    assert "DTSTART:20261206T010000Z\r\n" in text and "SUMMARY:Neighbourhood festival\\; lanterns\\, music" in text
    community = client.get(f"/calendar/{world.community_a}.ics").get_data(as_text=True)
    assert f"UID:{aid}@linli" in community
    cancelled = client.post(f"/{aid}/cancel", json={"reason": "rain"}, headers=staff)
    assert cancelled.get_json()["status"] == "cancelled"
    assert "STATUS:CANCELLED" in client.get(f"/{aid}/calendar.ics").get_data(as_text=True)
    assert register(client, aid, world.headers()).status_code == 409
    assert client.post(f"/{aid}/cancel", json={"reason": "again"}, headers=staff).status_code == 409


def test_more_places_promote_the_waiting_and_fewer_than_taken_is_refused(client, world):
    staff = world.headers("community_staff")
    aid = new_activity(client, world, staff, capacity=3, max_party_size=3)["id"]
    register(client, aid, world.person()[1], party_size=3)
    waiting = register(client, aid, world.person()[1], party_size=2).get_json()
    assert waiting["status"] == "waitlisted"
    bigger = client.patch(f"/{aid}", json={"capacity": 5}, headers=staff)
    assert bigger.status_code == 200 and bigger.get_json()["waiting_parties"] == 0
    mine = client.get(f"/{aid}/registrations", headers=staff, query_string={"status": "confirmed"}).get_json()
    assert waiting["id"] in [r["id"] for r in mine]
    smaller = client.patch(f"/{aid}", json={"capacity": 4}, headers=staff)
    assert smaller.status_code == 409 and "capacity" in smaller.get_json()["error"]["fields"]


def test_openapi_documents_the_service(client):
    spec = client.get("/openapi.json").get_json()
    for path in (
        "/",
        "/{activity_id}/registrations",
        "/posts/nearby",
        "/coverage/{community_id}",
        "/groups",
        "/talents",
        "/bookings",
        "/support",
        "/stats",
        "/calendar/{community_id}.ics",
    ):
        assert path in spec["paths"], path


def test_staff_register_a_resident_without_a_phone_and_a_street_wide_festival(client, world):
    both = world.headers("community_staff", communities=[world.community_a, world.community_b])
    aid = new_activity(client, world, both, community_ids=[world.community_a, world.community_b])["id"]
    elder = "6f1c1f5e-8a55-4d55-9a0c-2d1f3c4b5a69"
    staff_a = world.headers("community_staff")
    by_staff = register(client, aid, staff_a, user_id=elder, community_id=world.community_a, party_size=2)
    assert by_staff.status_code == 201
    body = by_staff.get_json()
    assert (body["user_id"], body["community_id"]) == (elder, world.community_a) and body["registered_by"] != elder
    # Staff of one community cannot register people of another; residents cannot register others.
    assert register(client, aid, staff_a, user_id=world.person()[0], community_id=world.community_b).status_code == 403
    assert (
        register(client, aid, world.headers(), user_id=world.person()[0], community_id=world.community_a).status_code
        == 403
    )
    # A resident of the second community signs up as one of theirs.
    from_b = register(client, aid, world.headers(community=world.community_b)).get_json()
    assert from_b["community_id"] == world.community_b
    assert client.get(f"/{aid}", headers=world.headers(community=world.community_b)).status_code == 200
    # The organisers at the door see and tick everyone, whichever community they come from.
    listed = {r["id"] for r in client.get(f"/{aid}/registrations", headers=staff_a).get_json()}
    assert {body["id"], from_b["id"]} <= listed
    outsider_staff = world.headers("community_staff", community=str(uuid.uuid4()))
    assert client.get(f"/{aid}/registrations", headers=outsider_staff).status_code == 404
