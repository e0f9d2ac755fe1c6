"""Residents start things, on the stand-in gateway: a resident proposes an activity and sees what
became of it; staff accept one (the times sent with the city's offset) or decline it with a reason;
bad input is named on the form and nothing is sent."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

COMMUNITY = "22222222-2222-4222-8222-222222222222"
PROPOSAL = "abababab-abab-4bab-8bab-abababababab"
ACTIVITY = "cdcdcdcd-cdcd-4dcd-8dcd-cdcdcdcdcdcd"
ISSUE = "55555555-5555-4555-8555-555555555555"
MEETING = "efefefef-efef-4fef-8fef-efefefefefef"
ISSUE_BODY = {
    "id": ISSUE,
    "community_id": COMMUNITY,
    "title": "七号楼屋顶漏水",
    "description": "漏水",
    "status": "accepted",
    "category": "repairs_facilities",
    "urgency": "normal",
    "tier": "community",
    "reporter_id": "p",
    "supporter_count": 2,
    "consultation_count": 0,
    "follow_up": {"action_items": 0, "done": 0},
    "created_at": "2026-11-20T02:00:00+00:00",
    "visibility": "community",
    "rating": None,
}
MEETING_PROPOSAL = {"id": PROPOSAL, "community_id": COMMUNITY, "issue_id": ISSUE, "issue_title": "七号楼屋顶漏水",
                    "proposer_id": "p", "meeting_type": "bench", "reason": "雨季快到了", "status": "pending",
                    "decided_by": None, "decided_at": None, "decision_reason": None, "meeting_id": None,
                    "created_at": "2026-12-01T02:00:00+00:00"}  # fmt: skip


def proposal(**changes: Any) -> dict[str, Any]:
    return {"id": PROPOSAL, "community_id": COMMUNITY, "kind": "culture", "title": "祖孙书法课", "description": "",
            "reason": "很多人想学", "preferred_starts_at": None, "place": "邻里驿站", "proposer_id": "p",
            "status": "pending", "decided_by": None, "decided_at": None, "decision_reason": None, "activity_id": None,
            "created_at": "2026-12-01T02:00:00+00:00", **changes}  # fmt: skip


class Gateway:
    """The activities API's proposals; every write kept in `sent`."""

    def __init__(self, stub, role: str = "resident") -> None:
        self.stub, self.sent, self.asked, self.fail = stub, [], [], None
        self.items = [proposal(), proposal(id="x", status="declined", decision_reason="场地不足")]
        stub.user = {**stub.user, "role": role}
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/api/v1/auth/"):
            return self.original(method, target, raw, headers)
        if method != "GET":
            self.sent.append((method, path, json.loads(raw) if raw else {}))
            if self.fail:
                return self.stub._error(*self.fail)
        else:
            self.asked.append((path, query))
        if path == "/api/v1/activities/proposals" and method == "GET":
            wanted = query.get("status")
            return 200, [p for p in self.items if not wanted or p["status"] == wanted], {}
        if path == "/api/v1/activities/proposals":
            return 201, proposal(), {}
        if path == f"/api/v1/activities/proposals/{PROPOSAL}":
            return 200, self.items[0], {}
        if path == f"/api/v1/issues/{ISSUE}":
            return 200, ISSUE_BODY, {}
        if path == "/api/v1/meetings/proposals" and method == "GET":
            return 200, [MEETING_PROPOSAL], {}
        if path == f"/api/v1/meetings/proposals/{PROPOSAL}":
            return 200, MEETING_PROPOSAL, {}
        if path == "/api/v1/meetings/proposals":
            return 201, MEETING_PROPOSAL, {}
        if path == f"/api/v1/meetings/proposals/{PROPOSAL}/accept":
            return 200, {**MEETING_PROPOSAL, "status": "accepted", "meeting_id": MEETING}, {}
        if path.endswith("/accept"):
            return (
                200,
                {"proposal": proposal(status="accepted", activity_id=ACTIVITY), "activity": {"id": ACTIVITY}},
                {},
            )
        if path.endswith("/decline"):
            return 200, proposal(status="declined"), {}
        return self.original(method, target, raw, headers)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "right-password"})
    assert answer.status_code == 303


@pytest.fixture
def resident(stub, client):
    fake = Gateway(stub)
    sign_in(client)
    return fake


@pytest.fixture
def staff(stub, client):
    fake = Gateway(stub, role="community_staff")
    sign_in(client)
    return fake


def test_a_resident_proposes_an_activity(resident, client):
    page = client.get("/activities/propose").get_data(as_text=True)
    answer = client.post(
        "/activities/propose",
        data={
            "csrf_token": csrf_of(page),
            "kind": "culture",
            "title": "祖孙书法课",
            "reason": "很多人想学",
            "place": "邻里驿站",
        },
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/activities/proposals")
    assert resident.sent == [("POST", "/api/v1/activities/proposals", {
        "community_id": COMMUNITY, "kind": "culture", "title": "祖孙书法课", "reason": "很多人想学", "description": "",
        "place": "邻里驿站"})]  # fmt: skip
    mine = client.get("/activities/proposals").get_data(as_text=True)
    assert "祖孙书法课" in mine and "场地不足" in mine


def test_a_bad_proposal_names_each_field_and_sends_nothing(resident, client):
    page = client.get("/activities/propose").get_data(as_text=True)
    answer = client.post("/activities/propose", data={"csrf_token": csrf_of(page), "kind": "party", "title": ""})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and not resident.sent
    assert 'href="#kind"' in html and 'href="#title"' in html


def test_staff_cannot_propose_and_residents_cannot_answer(resident, client):
    assert client.get("/desk/proposals").status_code == 403


def test_staff_accept_with_the_citys_offset(staff, client):
    listing = client.get("/desk/proposals").get_data(as_text=True)
    assert f"/desk/proposals/{PROPOSAL}" in listing and "场地不足" in listing
    page = client.get(f"/desk/proposals/{PROPOSAL}").get_data(as_text=True)
    assert "很多人想学" in page and 'value="邻里驿站"' in page
    answer = client.post(f"/desk/proposals/{PROPOSAL}/accept", data={
        "csrf_token": csrf_of(page), "day": "2026-12-12", "start": "09:00", "end": "11:00", "place": "邻里驿站",
        "capacity": "20", "note": ""})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/activities/{ACTIVITY}")
    assert staff.sent[-1] == (
        "POST",
        f"/api/v1/activities/proposals/{PROPOSAL}/accept",
        {
            "starts_at": "2026-12-12T09:00:00+08:00",
            "ends_at": "2026-12-12T11:00:00+08:00",
            "capacity": 20,
            "place": "邻里驿站",
        },
    )


def test_staff_decline_with_a_reason_and_bad_answers_are_named(staff, client):
    page = client.get(f"/desk/proposals/{PROPOSAL}").get_data(as_text=True)
    token = csrf_of(page)
    bad = client.post(
        f"/desk/proposals/{PROPOSAL}/accept",
        data={"csrf_token": token, "day": "12/12", "start": "11:00", "end": "25:00", "capacity": "x"},
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and not staff.sent
    for anchor in ("#day", "#end", "#capacity"):
        assert f'href="{anchor}"' in html
    assert client.post(f"/desk/proposals/{PROPOSAL}/decline", data={"csrf_token": token}).status_code == 400
    assert not staff.sent
    answer = client.post(f"/desk/proposals/{PROPOSAL}/decline", data={"csrf_token": token, "reason": "场地不足"})
    assert answer.status_code == 303
    assert staff.sent == [("POST", f"/api/v1/activities/proposals/{PROPOSAL}/decline", {"reason": "场地不足"})]
    # Answered meanwhile by someone else: said so, nothing broken.
    staff.fail = (409, "conflict")
    again = client.post(f"/desk/proposals/{PROPOSAL}/decline", data={"csrf_token": token, "reason": "场地不足"})
    assert again.status_code == 303


def test_a_resident_asks_for_a_bench_meeting_on_an_issue(resident, client):
    page = client.get(f"/issues/{ISSUE}").get_data(as_text=True)
    assert f"/issues/{ISSUE}/meeting-proposal" in page
    token = csrf_of(client.get("/activities/propose").get_data(as_text=True))
    empty = client.post(f"/issues/{ISSUE}/meeting-proposal", data={"csrf_token": token, "meeting_reason": " "})
    assert empty.status_code == 303 and not resident.sent
    answer = client.post(
        f"/issues/{ISSUE}/meeting-proposal", data={"csrf_token": token, "meeting_reason": "雨季快到了"}
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/issues/{ISSUE}")
    assert resident.sent == [
        ("POST", "/api/v1/meetings/proposals", {"community_id": COMMUNITY, "issue_id": ISSUE, "reason": "雨季快到了"})
    ]


def test_staff_schedule_a_proposed_meeting(staff, client):
    listing = client.get("/desk/proposals").get_data(as_text=True)
    assert f"/desk/meeting-proposals/{PROPOSAL}" in listing and "七号楼屋顶漏水" in listing
    page = client.get(f"/desk/meeting-proposals/{PROPOSAL}").get_data(as_text=True)
    assert "雨季快到了" in page
    answer = client.post(
        f"/desk/meeting-proposals/{PROPOSAL}/accept",
        data={"csrf_token": csrf_of(page), "day": "2026-12-10", "start": "19:00", "end": "20:00", "place": "七号楼下"},
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/desk/meetings/{MEETING}")
    assert staff.sent[-1] == (
        "POST",
        f"/api/v1/meetings/proposals/{PROPOSAL}/accept",
        {"starts_at": "2026-12-10T19:00:00+08:00", "ends_at": "2026-12-10T20:00:00+08:00", "place": "七号楼下"},
    )
    declined = client.post(f"/desk/meeting-proposals/{PROPOSAL}/decline", data={"csrf_token": csrf_of(page),
                                                                                 "reason": "已安排维修"})  # fmt: skip
    assert declined.status_code == 303
    assert staff.sent[-1] == ("POST", f"/api/v1/meetings/proposals/{PROPOSAL}/decline", {"reason": "已安排维修"})


def test_a_resident_withdraws_a_waiting_proposal_and_is_told_when_it_was_answered(resident, client):
    mine = client.get("/activities/proposals").get_data(as_text=True)
    # The waiting activity proposal and the meeting asked for can be withdrawn; the declined one not.
    assert f'action="/activities/proposals/{PROPOSAL}/withdraw"' in mine
    assert 'action="/activities/proposals/x/withdraw"' not in mine
    assert f'action="/meeting-proposals/{PROPOSAL}/withdraw"' in mine and "雨季快到了" in mine
    answer = client.post(f"/activities/proposals/{PROPOSAL}/withdraw", data={"csrf_token": csrf_of(mine)})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/activities/proposals")
    answer = client.post(f"/meeting-proposals/{PROPOSAL}/withdraw", data={"csrf_token": csrf_of(mine)})
    assert resident.sent == [("POST", f"/api/v1/activities/proposals/{PROPOSAL}/withdraw", {}),
                             ("POST", f"/api/v1/meetings/proposals/{PROPOSAL}/withdraw", {})]  # fmt: skip
    assert "您的提议已撤回。" in client.get("/activities/proposals").get_data(as_text=True)
    resident.fail = (409, "conflict", None)
    client.post(f"/activities/proposals/{PROPOSAL}/withdraw", data={"csrf_token": csrf_of(mine)})
    assert "这项提议已有答复，不能再撤回。" in client.get("/activities/proposals").get_data(as_text=True)
    assert client.post(f"/activities/proposals/{PROPOSAL}/withdraw").status_code == 400  # no CSRF token
