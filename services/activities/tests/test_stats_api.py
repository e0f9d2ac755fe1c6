"""`GET /stats` on a street with two communities, every figure checked against what was done."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.integration


def ok(response, status=201):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_statistics_of_a_street_a_community_and_who_may_ask(client, world, clock):
    a, b = world.community_a, world.community_b
    staff_a = world.headers("community_staff", community=a)
    staff_b = world.headers("community_staff", community=b)
    both = world.headers("community_staff", communities=[a, b])
    clock.now = datetime(2026, 11, 1, tzinfo=UTC)

    def activity(communities, kind, start, end, headers=both):
        return ok(
            client.post(
                "/",
                json={
                    "community_ids": communities,
                    "kind": kind,
                    "title": kind,
                    "starts_at": start,
                    "ends_at": end,
                    "capacity": 10,
                    "publish": True,
                },
                headers=headers,
            )
        )["id"]

    sports = activity([a], "sports", "2026-11-20T10:00:00+08:00", "2026-11-20T12:00:00+08:00")
    festival = activity([a, b], "festival", "2026-11-25T10:00:00+08:00", "2026-11-25T16:00:00+08:00")
    activity([b], "culture", "2026-10-10T19:00:00+08:00", "2026-10-10T21:00:00+08:00")
    cancelled = activity([a], "education", "2026-11-22T10:00:00+08:00", "2026-11-22T11:00:00+08:00")
    ok(client.post(f"/{cancelled}/cancel", json={"reason": "teacher ill"}, headers=staff_a), 200)
    activity([a], "volunteering", "2026-12-01T12:00:00+08:00", "2026-12-01T14:00:00+08:00")  # not yet held

    r1 = ok(client.post(f"/{sports}/registrations", json={"party_size": 3}, headers=world.headers(community=a)))
    r2 = ok(client.post(f"/{sports}/registrations", json={"party_size": 2}, headers=world.headers(community=a)))
    ok(client.post(f"/{sports}/registrations", json={"party_size": 1}, headers=world.headers(community=a)))
    rb = ok(client.post(f"/{festival}/registrations", json={"party_size": 2}, headers=world.headers(community=b)))

    clock.now = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    ok(client.post(f"/{sports}/checkins", json={"registration_id": r1["id"]}, headers=staff_a))
    ok(client.post(f"/{sports}/checkins", json={"registration_id": r2["id"], "participants": 1}, headers=staff_a))
    ok(client.post(f"/{sports}/walk-ins", json={"community_id": a, "participants": 4}, headers=staff_a))
    clock.now = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    ok(client.post(f"/{festival}/checkins", json={"registration_id": rb["id"]}, headers=staff_b))

    for community, served in ((a, 700), (b, 300)):
        ok(
            client.post(
                "/posts",
                json={
                    "community_id": community,
                    "name": "Inn",
                    "latitude": 37.0,
                    "longitude": 105.0,
                    "residents_served": served,
                },
                headers=both,
            )
        )
    coordinator, coordinator_h = world.person(community=a)
    group = ok(
        client.post(
            "/groups",
            json={"community_id": a, "name": "Woodpecker patrol", "coordinator_id": coordinator},
            headers=staff_a,
        )
    )["id"]
    ok(client.post(f"/groups/{group}/members", json={"display_name": "Coordinator"}, headers=coordinator_h))
    member, member_h = world.person(community=a)
    ok(client.post(f"/groups/{group}/members", json={"display_name": "Member"}, headers=member_h))
    ok(
        client.post(
            f"/groups/{group}/help",
            json={"helped_description": "x", "helped_on": "2026-11-15", "hours": 1.5},
            headers=member_h,
        )
    )
    ok(
        client.post(
            f"/groups/{group}/help",
            json={"helped_description": "y", "helped_on": "2026-10-03", "hours": 2},
            headers=member_h,
        )
    )
    ok(
        client.post(
            f"/groups/{group}/help",
            json={"helped_description": "z", "helped_on": "2026-09-30", "hours": 5},
            headers=member_h,
        )
    )  # before the period
    ok(
        client.post(
            "/talents", json={"display_name": "Fixer", "skills": ["repair"]}, headers=world.headers(community=a)
        )
    )

    def offering(community):
        return ok(
            client.post(
                "/offerings",
                json={
                    "community_id": community,
                    "name": "Massage",
                    "kind": "massage",
                    "provider_type": "business",
                    "provider_name": "Zhang",
                    "at_post": False,
                    "door_to_door": True,
                },
                headers=both,
            )
        )["id"]

    slot = {"slot_start": "2026-11-26T09:00:00+08:00", "slot_end": "2026-11-26T10:00:00+08:00"}
    # Door-to-door: 2 person-times in a, 1 in b, and one still only requested in a.
    for community, times in ((a, 2), (b, 1), (a, None)):
        body = {
            "offering_id": offering(community),
            "resident_id": world.person()[0],
            "door_to_door": True,
            "address": "Building 1",
            **slot,
        }
        booking = ok(client.post("/bookings", json=body, headers=both))["id"]
        if times is not None:
            ok(client.post(f"/bookings/{booking}/confirm", json={}, headers=both), 200)
            ok(client.post(f"/bookings/{booking}/complete", json={"person_times": times}, headers=both), 200)
    # At a post: 3 person-times in b.
    post_b = client.get("/posts", query_string={"community_id": b}, headers=both).get_json()[0]["id"]
    at_post = ok(
        client.post(
            "/offerings",
            json={
                "community_id": b,
                "name": "Haircut",
                "kind": "haircut",
                "post_id": post_b,
                "provider_type": "business",
                "provider_name": "Li",
            },
            headers=both,
        )
    )["id"]
    booking = ok(
        client.post("/bookings", json={"offering_id": at_post, "resident_id": world.person()[0], **slot}, headers=both)
    )["id"]
    ok(client.post(f"/bookings/{booking}/confirm", json={}, headers=both), 200)
    ok(client.post(f"/bookings/{booking}/complete", json={"person_times": 3}, headers=both), 200)

    clock.now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    official = world.headers("street_official")
    body = ok(
        client.get(
            "/stats",
            query_string={"street_id": world.street_id, "from": "2026-10-01", "to": "2026-11-30"},
            headers=official,
        ),
        200,
    )
    assert body["scope"] == {"street_id": world.street_id}
    assert body["period"]["from"] == "2026-10-01" and body["period"]["to"] == "2026-11-30"
    t = body["totals"]
    assert t["activities_held"] == 3
    assert t["activities_by_kind"] == {"sports": 1, "festival": 1, "culture": 1}
    assert (t["participant_times"], t["distinct_participants"]) == (3 + 1 + 4 + 2, 3)
    assert (t["registrations"], t["registered_places"], t["registrations_attended"]) == (4, 8, 3)
    assert t["attendance_rate"] == 0.75
    assert (t["service_posts"], t["residents_covered"]) == (2, 1000)
    assert (t["mutual_aid_groups"], t["group_members"], t["help_hours"]) == (1, 2, 3.5)
    assert t["talents"] == 1
    # Completed services: 2 + 1 door-to-door, 3 at a post; the requested one is not counted.
    assert (t["service_person_times"], t["door_to_door_person_times"], t["services_completed"]) == (6, 3, 3)
    assert t["door_to_door_share"] == 0.5
    by_community = {row["community_id"]: row for row in body["by_community"]}
    assert set(by_community) == {a, b}
    assert (by_community[a]["activities_held"], by_community[b]["activities_held"]) == (2, 2)
    assert (by_community[a]["participant_times"], by_community[b]["participant_times"]) == (8, 2)
    assert (by_community[a]["residents_covered"], by_community[b]["service_person_times"]) == (700, 4)
    months = {row["month"]: row for row in body["monthly"]}
    assert list(months) == ["2026-10", "2026-11"]
    assert (months["2026-10"]["activities_held"], months["2026-11"]["activities_held"]) == (1, 2)
    assert (months["2026-11"]["participant_times"], months["2026-10"]["help_hours"]) == (10, 2.0)

    # Community staff get their own community; the default period is the last twelve months to today.
    mine = ok(client.get("/stats", query_string={"community_id": a}, headers=staff_a), 200)
    assert mine["period"] == {"from": "2026-01-01", "to": "2026-12-01", "timezone": "Asia/Shanghai"}
    assert mine["totals"]["activities_held"] == 2 and mine["totals"]["help_hours"] == 8.5
    assert len(mine["monthly"]) == 12
    # Who may not ask.
    assert client.get("/stats", query_string={"community_id": b}, headers=staff_a).status_code == 403
    assert client.get("/stats", headers=world.headers()).status_code == 403
    other_street = world.headers("street_official", street="00000000-0000-0000-0000-000000000001")
    assert client.get("/stats", query_string={"street_id": world.street_id}, headers=other_street).status_code == 403
    admin = ok(
        client.get(
            "/stats",
            query_string={"street_id": world.street_id, "from": "2026-10-01", "to": "2026-11-30"},
            headers=world.headers("city_admin"),
        ),
        200,
    )
    assert admin["totals"] == body["totals"]
    # Per street: the communities' figures added up, but an activity held for both communities,
    # and a resident who took part in both, counted once.
    per_street = ok(
        client.get(
            "/stats",
            query_string={"street_id": world.street_id, "from": "2026-10-01", "to": "2026-11-30", "by": "street"},
            headers=official,
        ),
        200,
    )
    assert per_street["by_community"] == [] and per_street["totals"] == body["totals"]
    [street] = per_street["by_street"]
    assert street == {"street_id": world.street_id, **{k: v for k, v in t.items() if k != "activities_by_kind"}}
    assert client.get("/stats", query_string={"by": "everyone"}, headers=official).status_code == 422
    bad = client.get("/stats", query_string={"from": "2026-12-01", "to": "2026-01-01"}, headers=official)
    assert bad.status_code == 422 and "from" in bad.get_json()["error"]["fields"]
    assert client.get("/stats", query_string={"from": "yesterday"}, headers=official).status_code == 422
