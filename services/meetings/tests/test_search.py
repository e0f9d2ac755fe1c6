"""Search of meetings (`GET /search`), in Chinese, on PostgreSQL (pg_trgm) and SQLite (FTS5
trigram): a caller finds exactly the meetings their list shows."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)]


def _ids(client, headers, q: str) -> list[str]:
    response = client.get("/search", query_string={"q": q}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [hit["id"] for hit in response.get_json()]


def test_chinese_words_find_the_meetings_one_may_see(client, world, staff, meeting_body, documented):
    def schedule(headers=staff, **fields) -> str:
        response = client.post("/", json=meeting_body(**fields), headers=headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    wall = schedule(title="文化墙安全隐患圆桌会", description="物业、业主委员会和居民代表商量加固方案")
    roof = schedule(title="板凳会", description="7号楼楼顶漏水，第六次协商", meeting_type="bench")
    participant_id, participant = world.person()
    closed = schedule(
        title="文化墙责任认定（不公开）",
        public=False,
        participants=[{"role": "resident", "user_id": participant_id}],
    )
    other_staff = world.headers("community_staff", community_id=world.other_community_id)
    elsewhere = schedule(headers=other_staff, title="文化墙改造", community_id=world.other_community_id)

    resident = world.headers("resident")
    response = client.get("/search", query_string={"q": "文化墙"}, headers=resident)
    documented(response, "/search")
    hits = response.get_json()
    assert [h["id"] for h in hits] == [wall]
    assert hits[0]["kind"] == "meeting" and hits[0]["community_id"] == world.community_id
    assert hits[0]["score"] == 1.0 and hits[0]["snippet"] == "物业、业主委员会和居民代表商量加固方案"

    # Two characters (no trigram), found in the description; the private meeting only by those in it.
    assert _ids(client, resident, "漏水") == [roof]
    assert set(_ids(client, participant, "文化墙")) == {wall, closed}
    assert set(_ids(client, staff, "文化墙")) == {wall, closed}
    assert _ids(client, world.headers("resident", community_id=world.other_community_id), "文化墙") == [elsewhere]
    assert _ids(client, world.headers("agency"), "文化墙") == []

    bad = client.get("/search", query_string={"q": " "}, headers=resident)
    assert bad.status_code == 422 and "empty" in bad.get_json()["error"]["fields"]["q"][0]
    too_long = client.get("/search", query_string={"q": "会" * 101}, headers=resident)
    assert too_long.status_code == 422 and "too long" in too_long.get_json()["error"]["fields"]["q"][0]
