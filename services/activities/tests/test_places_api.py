"""Service posts and the 15-minute circle over HTTP, with compound coordinates from the replica."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

# A point near Lingwu and posts due north of it; distances computed by hand (see test_places_unit):
# 0.005 degrees of latitude = 555.98 m -> x1.3 = 722.77 m on foot -> 9.03 min at 80 m/min.
BASE = (38.10, 106.30)


def make_post(client, world, staff, name, dlat, **kw):
    body = {
        "community_id": world.community_a,
        "name": name,
        "latitude": BASE[0] + dlat,
        "longitude": BASE[1],
        "facilities": ["activity_room", "massage_room"],
        "services": ["massage", "haircut"],
        "residents_served": 700,
        **kw,
    }
    response = client.post("/posts", json=body, headers=staff)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_posts_within_fifteen_minutes_of_a_point_and_of_a_compound(client, world):
    staff = world.headers("community_staff")
    # Far from every other test's posts: its own longitude band.
    near = make_post(client, world, staff, "Xihu neighbourhood inn", 0.005)
    make_post(client, world, staff, "Beyond the edge", 0.0085)  # 15.36 min: outside
    resident = world.headers()
    found = client.get(
        "/posts/nearby", query_string={"latitude": BASE[0], "longitude": BASE[1]}, headers=resident
    ).get_json()
    names = [f["post"]["name"] for f in found]
    assert "Xihu neighbourhood inn" in names and "Beyond the edge" not in names
    mine = next(f for f in found if f["post"]["id"] == near["id"])
    assert mine["straight_m"] == pytest.approx(555.98, abs=0.1)
    assert mine["walking_m"] == pytest.approx(722.77, abs=0.1)
    assert mine["walking_minutes"] == pytest.approx(9.03, abs=0.01)
    # A longer walk reaches the far post too.
    wider = client.get(
        "/posts/nearby", query_string={"latitude": BASE[0], "longitude": BASE[1], "minutes": 20}, headers=resident
    ).get_json()
    assert "Beyond the edge" in [f["post"]["name"] for f in wider]

    compound = world.add_compound(world.community_a, "Garden compound", BASE[0], BASE[1])
    by_compound = client.get("/posts/nearby", query_string={"compound_id": compound}, headers=resident).get_json()
    assert near["id"] in [f["post"]["id"] for f in by_compound]


def test_coverage_lists_the_gaps(client, world):
    staff = world.headers("community_staff", community=world.community_b)
    lat, lon = 38.30, 106.50  # this test's own corner of the map
    post = client.post(
        "/posts",
        json={"community_id": world.community_b, "name": "Inn", "latitude": lat, "longitude": lon},
        headers=staff,
    ).get_json()
    covered = world.add_compound(world.community_b, "Close", lat + 0.003, lon)  # 333.6 m -> 5.42 min
    gap = world.add_compound(world.community_b, "Far", lat + 0.02, lon)  # 2,223.9 m -> 36.14 min
    unknown = world.add_compound(world.community_b, "No coordinates", None, None)
    response = client.get(f"/coverage/{world.community_b}", headers=staff)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["compounds"], body["covered"]) == (3, 1)
    assert [g["compound_id"] for g in body["gaps"]] == [gap]
    assert body["without_coordinates"] == [unknown]
    close = next(d for d in body["detail"] if d["compound_id"] == covered)
    assert close["nearest_post_id"] == post["id"] and close["walking_minutes"] == pytest.approx(5.42, abs=0.01)
    # Another community's resident may not study this community's map of gaps.
    outsider = world.headers(community=world.community_a)
    assert client.get(f"/coverage/{world.community_b}", headers=outsider).status_code == 403


def test_post_bad_input_and_rights(client, world):
    staff = world.headers("community_staff")
    bad = client.post(
        "/posts",
        json={"community_id": world.community_a, "name": "", "latitude": 99, "longitude": 106, "facilities": ["spa"]},
        headers=staff,
    )
    assert bad.status_code == 422 and {"name", "latitude", "facilities"} <= set(bad.get_json()["error"]["fields"])
    resident = world.headers()
    body = {"community_id": world.community_a, "name": "Mine", "latitude": 38.0, "longitude": 106.0}
    assert client.post("/posts", json=body, headers=resident).status_code == 403
    assert client.get("/posts/nearby", query_string={"latitude": 38.0}, headers=resident).status_code == 422
