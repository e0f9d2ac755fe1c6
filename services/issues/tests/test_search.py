"""Search of issues (`GET /search`), in Chinese, on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm):
what a caller finds is exactly what their lists show, with text masked and no reporter named."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration
both_databases = pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)

PHONE = "13812345678"


def _search(client, headers, q: str, **params) -> list[dict]:
    response = client.get("/search", query_string={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@both_databases
def test_chinese_words_find_the_issues_of_ones_scope_titles_first(client, tokens, report):
    wall, _ = report(title="文化墙倒塌险些砸到孩子", description="南门的文化墙松动，需要尽快加固。")
    roof, _ = report(title="7号楼楼顶漏水", description=f"下雨天顶层住户家里漏水，联系电话{PHONE}")
    mention, _ = report(title="楼道灯坏了", description="顺便说一下，文化墙旁边的路灯也不亮。")
    elsewhere, _ = report(
        title="文化墙需要重新粉刷", description="另一个社区的墙", community_id=tokens.d.community_b1, compound_id=None
    )
    resident = tokens.resident()

    found = _search(client, resident, "文化墙")
    # Both issues of A1 that speak of the wall, the one titled by it first; B1's is not in scope.
    assert [h["id"] for h in found] == [wall["id"], mention["id"]]
    assert found[0] == {
        "kind": "issue",
        "id": wall["id"],
        "title": "文化墙倒塌险些砸到孩子",
        "snippet": "南门的文化墙松动，需要尽快加固。",
        "community_id": tokens.d.community_a1,
        "date": wall["created_at"],
        "score": 1.0,
    }
    assert found[1]["score"] == 0.5 and "文化墙旁边" in found[1]["snippet"]

    # Two characters have no trigram: found all the same, in the title and in the text.
    leaking = _search(client, resident, "漏水")
    assert [h["id"] for h in leaking] == [roof["id"]]
    # A neighbour reads the text masked, the phone number too.
    assert PHONE not in leaking[0]["snippet"] and "联系电话***********" in leaking[0]["snippet"]

    # Every word must be found, wherever it is; case does not matter for Latin letters.
    assert [h["id"] for h in _search(client, resident, "楼顶 顶层")] == [roof["id"]]
    assert _search(client, resident, "楼顶 文化墙") == []
    assert [h["id"] for h in _search(client, tokens.street_official(), "文化墙")] == [
        wall["id"],
        mention["id"],
    ]
    assert {h["id"] for h in _search(client, tokens.admin(), "文化墙")} == {
        wall["id"],
        mention["id"],
        elsewhere["id"],
    }
    assert _search(client, resident, "文化墙", limit=1) == [found[0]]


@both_databases
def test_private_issues_and_anonymous_reporters_stay_hidden(client, tokens, report):
    reporter_id = str(uuid.uuid4())
    secret, reporter = report(reporter_id, anonymous=True, title="邻居噪音扰民", description=f"请打{PHONE}")
    other_community, _ = report(
        title="垃圾站异味", description="B社区的私人问题", community_id=tokens.d.community_b1, compound_id=None
    )
    staff_b = tokens.staff(community_id=tokens.d.community_b1)
    assert (
        tokens and client.put(f"/{other_community['id']}/privacy", json={"private": True}, headers=staff_b)
    ).status_code == 200

    # A resident of community A1 does not find B1's private issue, nor a neighbour's anonymous one.
    resident_a = tokens.resident()
    assert _search(client, resident_a, "垃圾站") == []
    assert _search(client, resident_a, "噪音") == []
    # Not even a resident of B1 finds B1's private issue: it is their neighbour's.
    assert _search(client, tokens.resident(community_id=tokens.d.community_b1), "垃圾站异味") == []
    assert [h["id"] for h in _search(client, staff_b, "垃圾站异味")] == [other_community["id"]]

    # The reporter and the staff of the scope find the anonymous report; no hit names anybody.
    for insider in (reporter, tokens.staff(), tokens.street_official()):
        hits = _search(client, insider, "噪音")
        assert [h["id"] for h in hits] == [secret["id"]]
        assert reporter_id not in str(hits) and "reporter_id" not in hits[0]


@both_databases
def test_search_follows_changes_in_the_same_transaction(client, tokens, report, database):
    from sqlalchemy import text

    issue, _ = report(title="电梯故障", description="三号楼电梯停在五层")
    staff = tokens.staff()
    assert [h["id"] for h in _search(client, staff, "电梯故障")] == [issue["id"]]
    assert _search(client, staff, issue["id"][:8]) == []  # the index holds the id, but searches only text
    with database.transaction() as session:
        session.execute(text("UPDATE issues SET title = '电梯已修好' WHERE id = :id"), {"id": issue["id"]})
    assert _search(client, staff, "电梯故障") == []
    assert [h["id"] for h in _search(client, staff, "电梯已修好")] == [issue["id"]]
    with database.transaction() as session:
        session.execute(text("DELETE FROM issue_updates WHERE issue_id = :id"), {"id": issue["id"]})
        session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": issue["id"]})
    assert _search(client, staff, "电梯") == []


BAD_QUERIES = [
    ({"q": ""}, "must not be empty"),
    ({"q": "   "}, "must not be empty"),
    ({"q": "漏" * 101}, "too long"),
    ({"q": "一 二 三 四 五 六 七 八 九"}, "too many words"),
    ({}, "Missing data"),
]


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)  # refused before any database is read
def test_bad_queries_are_refused_naming_what_is_wrong(client, tokens):
    resident = tokens.resident()
    for query, message in BAD_QUERIES:
        response = client.get("/search", query_string=query, headers=resident)
        assert response.status_code == 422, query
        body = response.get_json()["error"]
        assert body["code"] == "validation_error" and message in body["fields"]["q"][0], body
    response = client.get("/search", query_string={"q": "墙", "kinds": "meeting"}, headers=resident)
    assert response.status_code == 422 and "kinds" in response.get_json()["error"]["fields"]
    assert client.get("/search", query_string={"q": "墙"}).status_code == 401


@both_databases
def test_the_index_serves_chinese_words(database):
    """The query a search makes is answered from the text index: pg_trgm's GIN index (which makes
    trigrams of Chinese characters under this database's ctype), or SQLite's FTS5 table."""
    from sqlalchemy import select, text

    from linli_issues.adapters.repository import ISSUE_TEXT
    from linli_issues.adapters.tables import issues

    with database.session() as session:
        dialect = session.get_bind().dialect
        query = select(issues.c.id).where(ISSUE_TEXT.matches(issues, ["文化墙"], dialect.name))
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "postgresql":
            # Four trigrams (with the padding); under a plain C ctype there would be none.
            assert len(session.scalar(text("SELECT show_trgm('文化墙')"))) == 4
            session.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: make it show its index
            plan = "\n".join(session.scalars(text(f"EXPLAIN {sql}")))
            assert "search_issues_trgm" in plan, plan
        else:
            plan = str(session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all())
            assert "search_issues VIRTUAL TABLE INDEX" in plan, plan
