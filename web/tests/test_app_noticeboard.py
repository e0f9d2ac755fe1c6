"""The community's noticeboard (公示) page on the stand-in gateway: what it asks the APIs, what it
shows of decisions, tasks, resolved issues, meetings and conventions, and what it keeps off the
board (private issues; the private meetings' part unless staff ask)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from linli_web.viewmodels.noticeboard import build_board, publishable_resolved

SHANGPINYUAN = "22222222-2222-4222-8222-222222222222"
OTHER = "44444444-4444-4444-8444-444444444444"
STREET = "33333333-3333-4333-8333-333333333333"
WALL = "55555555-5555-4555-8555-555555555555"
ROOF = "66666666-6666-4666-8666-666666666666"
QUARREL = "77777777-7777-4777-8777-777777777777"
MEETING = "abababab-abab-4bab-8bab-abababababab"
NEXT_MEETING = "bcbcbcbc-bcbc-4cbc-8cbc-bcbcbcbcbcbc"
DECISION = "efefefef-efef-4fef-8fef-efefefefefef"


def task(title: str, status: str, **changes: Any) -> dict[str, Any]:
    return {"id": f"t-{title}", "decision_id": DECISION, "meeting_id": MEETING, "issue_id": WALL, "title": title,
            "owner_body": "property_company", "owner_user_id": None, "owner_organisation_id": None,
            "owner_organisation_name": None, "due_date": "2026-12-20", "status": status, "progress": 0,
            "overdue": False, "note": None, "completed_at": None, **changes}  # fmt: skip


BOARD = {
    "community_id": SHANGPINYUAN,
    "generated_at": "2026-12-03T08:00:00+00:00",
    "public_only": True,
    "decisions": [
        {
            "id": DECISION,
            "meeting_id": MEETING,
            "meeting_title": "文化墙圆桌会",
            "meeting_type": "round_table",
            "meeting_date": "2026-11-20",
            "issue_id": WALL,
            "motion": "拆除并重建文化墙",
            "outcome": "adopted",
            "rule": "two_thirds",
            "threshold": "two_thirds",
            "votes_for": 11,
            "votes_against": 2,
            "abstentions": 1,
            "issue_effect": "resolution_plan",
            "resolution_plan": "物业公司两周内拆除",
            "recorded_at": "2026-11-20T08:00:00+00:00",
            "follow_up": {"action_items": 2, "done": 1, "complete": False},
            "action_items": [
                task("拆除旧墙", "done", progress=100),
                task(
                    "重建新墙",
                    "in_progress",
                    progress=40,
                    owner_body="party_organisation",
                    owner_organisation_name="尚品苑社区党支部",
                ),
            ],
        },
    ],  # fmt: skip
    "open_action_items": [
        task(
            "重建新墙",
            "in_progress",
            progress=40,
            owner_body="party_organisation",
            owner_organisation_name="尚品苑社区党支部",
        ),
        task("清理楼道", "open", due_date="2026-11-30", overdue=True, owner_body="residents"),
    ],  # fmt: skip
    "upcoming_meetings": [
        {
            "id": NEXT_MEETING,
            "meeting_type": "bench",
            "title": "七号楼板凳会",
            "starts_at": "2026-12-10T06:00:00+00:00",
            "ends_at": "2026-12-10T07:00:00+00:00",
            "local_date": "2026-12-10",
            "place": "七号楼下",
            "online_url": None,
            "status": "scheduled",
            "public": True,
            "agenda": [
                {
                    "id": "a1",
                    "position": 1,
                    "title": "七号楼漏水",
                    "duration_minutes": None,
                    "issue_id": ROOF,
                    "notes": None,
                }
            ],
        },
    ],  # fmt: skip
    "convention": {
        "id": "c1",
        "community_id": SHANGPINYUAN,
        "kind": "convention",
        "version": 2,
        "title": "尚品苑居民公约",
        "body": "爱护公共设施。",
        "rules": None,
        "decision_id": None,
        "meeting_id": None,
        "adopted_at": "2026-10-01T00:00:00+00:00",
    },  # fmt: skip
    "rules_of_procedure": None,
}


def issue(issue_id: str, title: str, **changes: Any) -> dict[str, Any]:
    """An issue as the issues list summarises it (the fields the board reads)."""
    return {"id": issue_id, "community_id": SHANGPINYUAN, "title": title, "status": "resolved",
            "visibility": "community", "rating": None, "resolution_summary": None,
            "resolved_at": "2026-11-25T00:00:00+00:00", "updated_at": "2026-11-25T00:00:00+00:00",
            **changes}  # fmt: skip


ISSUES = {
    WALL: issue(WALL, "文化墙险些砸到孩子", rating=5, resolution_summary="旧墙已拆除"),
    ROOF: issue(ROOF, "七号楼屋顶漏水", status="closed", rating=4, resolved_at="2026-11-10T00:00:00+00:00"),
    # Private (about a person): its reporter may read it, but it is never posted on the board.
    QUARREL: issue(QUARREL, "邻里纠纷：某某家", visibility="private", rating=1),
}


class Gateway:
    """The stand-in gateway's answers for the noticeboard; every query kept in `asked`."""

    def __init__(self, stub, role: str = "resident") -> None:
        self.stub, self.asked, self.board_status = stub, [], 200
        self.tokens: dict[str, bool] = {}  # path -> whether a token came with it
        changes: dict[str, Any] = {"role": role}
        if role == "street_official":
            changes.update(community_ids=[], street_id=STREET)
        stub.user = {**stub.user, **changes}
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/api/v1/auth/"):
            return self.original(method, target, raw, headers)
        self.asked.append((path, query))
        if path == "/api/v1/meetings/noticeboard":
            self.tokens[path] = "Authorization" in headers
            if self.board_status != 200:
                return self.stub._error(self.board_status, "forbidden" if self.board_status == 403 else "not_found")
            return 200, {**BOARD, "public_only": query.get("include_private") != "true"}, {}
        if path == f"/api/v1/directory/communities/{SHANGPINYUAN}":
            return 200, {"id": SHANGPINYUAN, "name": "尚品苑社区"}, {}
        if path in ("/api/v1/directory/communities", "/api/v1/directory/streets") and "page" in query:
            if path.endswith("streets"):
                return 200, [{"id": STREET, "name": "城区街道"}], {}
            return 200, [{"id": SHANGPINYUAN, "name": "尚品苑社区", "street_id": STREET}], {}
        if path == "/api/v1/directory/communities":
            return 200, [{"id": SHANGPINYUAN, "name": "尚品苑社区"}, {"id": OTHER, "name": "西湖社区"}], {}
        if path == "/api/v1/issues/":
            return 200, list(ISSUES.values()), {}
        return self.original(method, target, raw, headers)


def sign_in(client) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    answer = client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "right-password"})
    assert answer.status_code == 303


@pytest.fixture
def gateway(stub, client):
    fake = Gateway(stub)
    sign_in(client)
    return fake


def test_a_resident_reads_what_was_decided_and_what_became_of_it(gateway, client):
    page = client.get("/noticeboard").get_data(as_text=True)
    assert "尚品苑社区" in page
    # The decision with its votes, its tasks with owner, due date and progress.
    assert "拆除并重建文化墙" in page and "11" in page and "物业公司两周内拆除" in page
    assert 'max="2" value="1"' in page and "尚品苑社区党支部" in page and "40%" in page
    # The task still open past its due date is marked.
    assert "清理楼道" in page and "tag-overdue" in page
    # Resolved issues with their ratings and average; the private one stays off the board.
    assert "文化墙险些砸到孩子" in page and "旧墙已拆除" in page and "七号楼屋顶漏水" in page
    assert "4.5" in page and "邻里纠纷" not in page
    # Meetings to come with their agenda; the convention in force.
    assert "七号楼板凳会" in page and "七号楼漏水" in page and "尚品苑居民公约" in page and "爱护公共设施" in page
    board_query = next(q for p, q in gateway.asked if p == "/api/v1/meetings/noticeboard")
    assert board_query == {"community_id": SHANGPINYUAN}
    issues_query = next(q for p, q in gateway.asked if p == "/api/v1/issues/")
    assert issues_query["community_id"] == SHANGPINYUAN and issues_query["status"] == "resolved,closed"
    # The list's summaries are enough: not one call per issue.
    assert [p for p, _ in gateway.asked if p.startswith("/api/v1/issues/")] == ["/api/v1/issues/"]


def test_the_board_in_english(gateway, client):
    client.set_cookie("linli_lang", "en")
    page = client.get("/noticeboard").get_data(as_text=True)
    assert "Noticeboard" in page and "Tasks still open" in page and "1 of 2 tasks done" in page


def test_the_board_in_chinese_by_default(gateway, client):
    page = client.get("/noticeboard").get_data(as_text=True)
    assert "公示" in page and "Tasks still open" not in page


def test_a_resident_cannot_ask_for_the_private_meetings(gateway, client):
    page = client.get(f"/noticeboard/{SHANGPINYUAN}?private=1").get_data(as_text=True)
    assert ("/api/v1/meetings/noticeboard", {"community_id": SHANGPINYUAN}) in gateway.asked
    assert "包括不公开的会议" not in page  # no such link offered to a resident


def test_staff_may_include_the_private_meetings(stub, client):
    gateway = Gateway(stub, role="community_staff")
    sign_in(client)
    page = client.get(f"/noticeboard/{SHANGPINYUAN}?private=1").get_data(as_text=True)
    board_query = next(q for p, q in gateway.asked if p == "/api/v1/meetings/noticeboard")
    assert board_query == {"community_id": SHANGPINYUAN, "include_private": "true"}
    assert "Show the public board" in page or "显示公开的公示" in page


def test_a_street_official_chooses_the_community_first(stub, client):
    Gateway(stub, role="street_official")
    sign_in(client)
    page = client.get("/noticeboard").get_data(as_text=True)
    assert f"/noticeboard/{SHANGPINYUAN}" in page and f"/noticeboard/{OTHER}" in page


def test_anyone_reads_the_public_board_without_signing_in(stub, client):
    gateway = Gateway(stub)
    choose = client.get("/noticeboard")
    assert choose.status_code == 200 and f"/noticeboard/{SHANGPINYUAN}" in choose.get_data(as_text=True)
    page = client.get(f"/noticeboard/{SHANGPINYUAN}?private=1").get_data(as_text=True)
    # The meetings API asked without a token, for the public board only; the issues API not at all.
    assert gateway.tokens == {"/api/v1/meetings/noticeboard": False}
    assert ("/api/v1/meetings/noticeboard", {"community_id": SHANGPINYUAN}) in gateway.asked
    assert not [p for p, _ in gateway.asked if p.startswith("/api/v1/issues/")]
    assert "拆除并重建文化墙" in page and "尚品苑居民公约" in page and "文化墙险些砸到孩子" not in page
    assert "登录后" in page and "包括不公开的会议" not in page
    gateway.board_status = 404
    assert client.get(f"/noticeboard/{OTHER}").status_code == 404


def test_a_board_out_of_scope_is_refused(stub, client):
    gateway = Gateway(stub)
    sign_in(client)
    gateway.board_status = 403
    answer = client.get(f"/noticeboard/{OTHER}")
    assert answer.status_code == 403 and "拆除并重建文化墙" not in answer.get_data(as_text=True)


def test_the_view_model_counts_and_keeps_private_issues_off():
    board = build_board(BOARD, "尚品苑社区", list(ISSUES.values()))
    [decision] = board.decisions
    assert (decision.done, decision.total, decision.progress_percent) == (1, 2, 50)
    assert board.overdue_count == 1 and board.average_rating == 4.5
    assert [i["id"] for i in board.resolved_issues] == [WALL, ROOF]
    assert not board.includes_private_meetings and not board.empty
    assert publishable_resolved([issue(WALL, "x", status="resolving")]) == []
    assert build_board({"public_only": False}, "").empty
