"""Search (`GET /search`) of activities, service posts, mutual-aid groups and talents, in Chinese,
on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): only what the caller's lists would show."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

START = "2026-12-05T09:00:00+08:00"
END = "2026-12-05T11:00:00+08:00"


def _created(response) -> dict:
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _found(client, headers, q: str, **params) -> list[tuple[str, str]]:
    response = client.get("/search", query_string={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [(hit["kind"], hit["id"]) for hit in response.get_json()]


def test_chinese_words_find_what_ones_lists_show(any_client, any_world):
    client, world = any_client, any_world
    staff = world.headers("community_staff")

    def activity(headers=staff, **fields) -> str:
        body = {"community_ids": [world.community_a], "kind": "culture", "starts_at": START, "ends_at": END}
        return _created(client.post("/", json=body | fields, headers=headers))["id"]

    festival = activity(title="邻里节文化墙彩绘", description="孩子们和家长一起给文化墙画画", publish=True)
    draft = activity(title="文化墙揭幕（草稿）", publish=False)
    post = _created(
        client.post(
            "/posts",
            json={"community_id": world.community_a, "name": "尚品苑邻里驿站", "latitude": 38.1,
                  "longitude": 106.3, "address": "文化墙东侧一楼", "residents_served": 700},
            headers=staff,
        )
    )["id"]  # fmt: skip
    coordinator, _ = world.person()
    group = _created(
        client.post(
            "/groups",
            json={"community_id": world.community_a, "name": "啄木鸟巡查队", "purpose": "巡查楼道漏水和文化墙",
                  "coordinator_id": coordinator},
            headers=staff,
        )
    )["id"]  # fmt: skip
    talent_id, talent_h = world.person()
    talent = _created(
        client.post(
            "/talents",
            json={"display_name": "王师傅", "skills": ["repair"], "description": "会修水管，处理漏水"},
            headers=talent_h,
        )
    )["id"]
    other_staff = world.headers("community_staff", community=world.community_b)
    elsewhere = activity(headers=other_staff, title="文化墙讲座", community_ids=[world.community_b], publish=True)

    resident = world.headers()
    # Titles holding the words first (the activity, then the post's address and the group's purpose).
    found = _found(client, resident, "文化墙")
    assert found[0] == ("activity", festival)
    assert set(found) == {("activity", festival), ("post", post), ("group", group)}
    hit = client.get("/search", query_string={"q": "文化墙", "kinds": "activity"}, headers=resident).get_json()
    assert hit == [
        {
            "kind": "activity",
            "id": festival,
            "title": "邻里节文化墙彩绘",
            "snippet": "孩子们和家长一起给文化墙画画",
            "community_id": world.community_a,
            "date": "2026-12-05T01:00:00+00:00",
            "score": 1.0,
        }
    ]
    # Staff of the community see their draft; nobody of another community sees any of it.
    assert ("activity", draft) in _found(client, staff, "文化墙")
    assert _found(client, world.headers(community=world.community_b), "文化墙") == [("activity", elsewhere)]

    # A talent is found once vetted (by themself and staff before); two characters, no trigram.
    assert _found(client, resident, "漏水") == [("group", group)]
    assert ("talent", talent) in _found(client, talent_h, "漏水")
    assert ("talent", talent) in _found(client, staff, "漏水", kinds="talent")
    vetting = {"decision": "approve", "note": "邻居都认识他"}
    assert client.post(f"/talents/{talent}/vetting", json=vetting, headers=staff).status_code == 200
    assert _found(client, resident, "修水管") == [("talent", talent)]
    assert talent_id not in str(client.get("/search", query_string={"q": "修水管"}, headers=resident).get_json())

    empty = client.get("/search", query_string={"q": ""}, headers=resident)
    assert empty.status_code == 422 and "empty" in empty.get_json()["error"]["fields"]["q"][0]
    unknown = client.get("/search", query_string={"q": "墙", "kinds": "issue"}, headers=resident)
    assert unknown.status_code == 422 and "kinds" in unknown.get_json()["error"]["fields"]
