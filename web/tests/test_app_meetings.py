"""The staff's meeting pages on the stand-in gateway: what each page asks the meetings API, the bodies
each form sends, the API's refusals shown on the forms, who may open them. (On the real platform, in
a browser: test_browser_story.py.)"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

STREET = "33333333-3333-4333-8333-333333333333"
SHANGPINYUAN = "22222222-2222-4222-8222-222222222222"
WALL = "55555555-5555-4555-8555-555555555555"
REPORTER = "99999999-9999-4999-8999-999999999999"

MEETING = "abababab-abab-4bab-8bab-abababababab"
ITEM = "cdcdcdcd-cdcd-4dcd-8dcd-cdcdcdcdcdcd"
MOTION = "efefefef-efef-4fef-8fef-efefefefefef"
TASK = "f0f0f0f0-f0f0-40f0-80f0-f0f0f0f0f0f0"
PARTICIPANT = "12121212-1212-4212-8212-121212121212"


def meeting(**changes: Any) -> dict[str, Any]:
    return {
        "id": MEETING,
        "community_id": SHANGPINYUAN,
        "series_id": None,
        "meeting_type": "round_table",
        "title": "文化墙圆桌会",
        "description": None,
        "place": "Community hall",
        "online_url": None,
        "starts_at": "2026-12-10T06:00:00+00:00",
        "ends_at": "2026-12-10T08:00:00+00:00",
        "local_date": "2026-12-10",
        "convener_id": "x",
        "public": True,
        "capacity": None,
        "status": "scheduled",
        "status_reason": None,
        "minutes": None,
        "attendees_count": None,
        "agenda": [
            {
                "id": ITEM,
                "position": 1,
                "title": "Cultural wall",
                "duration_minutes": None,
                "issue_id": WALL,
                "notes": None,
            }
        ],  # fmt: skip
        "counts": {"invited": 1, "confirmed": 0, "registered": 0, "waitlisted": 0, "checked_in": 0},
        **changes,
    }


def motion(**changes: Any) -> dict[str, Any]:
    return {
        "id": MOTION,
        "motion": "Repair the wall",
        "method": "show_of_hands",
        "threshold": "two_thirds",
        "status": "open",
        "outcome": None,
        "rule": None,
        "votes_for": 0,
        "votes_against": 0,
        "abstentions": 0,
        "resolution_plan": None,
        "action_items": [],
        **changes,
    }


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "phone": "13900000002", "password": "right-password"})
    assert response.status_code == 303


class MeetingsDesk:
    """The stand-in gateway's meetings API for staff; every write kept in `sent`."""

    def __init__(self, stub, role: str = "community_staff") -> None:
        self.stub = stub
        self.sent: list[tuple[str, str, dict]] = []
        self.meeting = meeting()
        self.motions: list[dict] = []
        self.participants = [{"id": PARTICIPANT, "user_id": REPORTER, "name": None, "organisation_name": None,
                              "role": "resident_representative", "enrolment": "invited", "response": "pending",
                              "checked_in_at": None, "check_in_method": None}]  # fmt: skip
        self.fail: dict[str, tuple[int, str, dict | None]] = {}
        stub.user = {**stub.user, "role": role, "display_name": "Li Hua"}
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"):
            return self.original(method, target, raw, headers)
        body = json.loads(raw) if raw else {}
        if method != "GET":
            self.sent.append((method, path, body))
            for suffix, (status, code, fields) in self.fail.items():
                if path.endswith(suffix):
                    return self.stub._error(status, code, fields)
        if path == f"/api/v1/directory/communities/{SHANGPINYUAN}":
            return 200, {"id": SHANGPINYUAN, "name": "Shangpinyuan 尚品苑社区", "street_id": STREET}, {}
        if path == "/api/v1/auth/users":
            assert query.get("community_id") == SHANGPINYUAN, query
            return 200, [{"id": REPORTER, "display_name": "Yang Jing 杨静"}], {}
        if path == "/api/v1/meetings/candidates":
            assert query["community_id"] == SHANGPINYUAN
            return 200, [{"issue_id": WALL, "community_id": SHANGPINYUAN, "title": "Cultural wall is unsafe",
                          "category": "safety_hazard", "urgency": "urgent", "status": "accepted",
                          "tier": "community", "supporter_count": 3, "consultations": 0,
                          "updated_at": "2026-12-01T00:00:00+00:00"}], {}  # fmt: skip
        if path == "/api/v1/meetings/" and method == "GET":
            return 200, [self.meeting], {}
        if path == "/api/v1/meetings/" and method == "POST":
            return 201, meeting(**{k: v for k, v in body.items() if k != "agenda"}), {}
        if path == f"/api/v1/meetings/{MEETING}":
            return 200, self.meeting, {}
        if path == f"/api/v1/meetings/{MEETING}/participants" and method == "GET":
            return 200, self.participants, {}
        if path == f"/api/v1/meetings/{MEETING}/motions" and method == "GET":
            return 200, self.motions, {}
        if path == f"/api/v1/meetings/{MEETING}/checkin-code":
            return 200, {"code": "042917"}, {}
        if method != "GET":
            return 201, {"id": MEETING}, {}
        return 404, {"error": {"status": 404, "code": "not_found", "message": "no"}}, {}


@pytest.fixture
def desk(stub, client):
    staff = MeetingsDesk(stub)
    sign_in(client)
    return staff


def post(client, path: str, data: dict[str, Any]):
    token = csrf_of(client.get(f"/desk/meetings/{MEETING}").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def test_the_list_and_a_new_meeting_offer_the_issues_waiting_for_one(desk, client):
    page = client.get("/desk/meetings").get_data(as_text=True)
    assert "文化墙圆桌会" in page and f"/desk/meetings/{MEETING}" in page
    page = client.get("/desk/meetings/new").get_data(as_text=True)
    assert "Cultural wall is unsafe" in page and 'value="round_table"' in page


def test_scheduling_sends_the_times_with_the_citys_offset_and_the_chosen_issues(desk, client):
    token = csrf_of(client.get("/desk/meetings/new").get_data(as_text=True))
    answer = client.post(
        "/desk/meetings/new",
        data={"csrf_token": token, "community_id": SHANGPINYUAN, "meeting_type": "round_table", "title": "Wall",
              "day": "2026-12-10", "start": "14:00", "end": "16:00", "place": "Hall", "issue_id": WALL},
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/desk/meetings/{MEETING}")
    method, path, body = desk.sent[-1]
    assert (method, path) == ("POST", "/api/v1/meetings/")
    assert body["starts_at"] == "2026-12-10T14:00:00+08:00" and body["ends_at"] == "2026-12-10T16:00:00+08:00"
    assert body["agenda"] == [{"title": "Cultural wall is unsafe", "issue_id": WALL}]
    assert body["public"] is True and body["meeting_type"] == "round_table"


def test_a_bad_schedule_names_each_field_and_sends_nothing(desk, client):
    token = csrf_of(client.get("/desk/meetings/new").get_data(as_text=True))
    answer = client.post(
        "/desk/meetings/new",
        data={"csrf_token": token, "community_id": SHANGPINYUAN, "meeting_type": "party", "title": "",
              "day": "10/12", "start": "16:00", "end": "25:00"},
    )  # fmt: skip
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and not desk.sent
    for anchor in ("#meeting_type", "#title", "#day", "#end"):
        assert f'href="{anchor}"' in page


def test_the_meeting_page_before_it_opens_agenda_invitations_and_start(desk, client):
    page = client.get(f"/desk/meetings/{MEETING}").get_data(as_text=True)
    assert "Yang Jing 杨静" in page and "Cultural wall" in page
    assert f"/desk/meetings/{MEETING}/start" in page and "042917" not in page
    answer = post(client, f"/desk/meetings/{MEETING}/participants", {"role": "resident_representative",
                                                                        "user_id": REPORTER})  # fmt: skip
    assert answer.status_code == 303
    invited = {"role": "resident_representative", "user_id": REPORTER, "name": "Yang Jing 杨静"}
    assert desk.sent[-1] == ("POST", f"/api/v1/meetings/{MEETING}/participants", invited)
    answer = post(client, f"/desk/meetings/{MEETING}/agenda", {"issue_id": "", "title": "Parking", "duration": "20"})
    assert answer.status_code == 303
    assert desk.sent[-1][2] == {"title": "Parking", "duration_minutes": 20}
    post(client, f"/desk/meetings/{MEETING}/start", {})
    assert desk.sent[-1][:2] == ("POST", f"/api/v1/meetings/{MEETING}/start")


def test_an_invitation_of_nobody_is_refused_on_the_form(desk, client):
    answer = post(client, f"/desk/meetings/{MEETING}/participants", {"role": "", "user_id": "", "name": ""})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and not desk.sent
    assert 'href="#role"' in page and 'href="#user_id"' in page and '<details class="action" open>' in page


def test_the_running_meeting_shows_the_code_motions_tally_and_record(desk, client):
    desk.meeting = meeting(status="in_progress")
    desk.motions = [motion()]
    page = client.get(f"/desk/meetings/{MEETING}").get_data(as_text=True)
    assert "042917" in page and f"/m/{MEETING}/checkin?code=042917" in page
    assert f"/participants/{PARTICIPANT}/check-in" in page
    assert f'name="votes_against-{MOTION}" type="text" value="0"' in page  # a count of 0 shows as 0
    assert "042917" in client.get(f"/desk/meetings/{MEETING}/code").get_data(as_text=True)
    answer = post(client, f"/desk/meetings/{MEETING}/motions", {
        "motion": "Repair the wall", "agenda_item_id": ITEM, "method": "show_of_hands", "threshold": "",
        "issue_effect": "resolution_plan", "resolution_plan": "Property company repairs it",
        "action_title": "Repair the wall", "owner_body": "property_company", "due_date": "2026-12-31"})  # fmt: skip
    assert answer.status_code == 303
    assert desk.sent[-1][2] == {
        "motion": "Repair the wall", "method": "show_of_hands", "issue_effect": "resolution_plan",
        "agenda_item_id": ITEM, "threshold": None, "resolution_plan": "Property company repairs it",
        "action_items": [{"title": "Repair the wall", "owner_body": "property_company", "due_date": "2026-12-31"}],
    }  # fmt: skip
    post(client, f"/desk/meetings/{MEETING}/motions/{MOTION}/tally",
         {f"votes_for-{MOTION}": "5", f"votes_against-{MOTION}": "0", f"abstentions-{MOTION}": "1"})  # fmt: skip
    assert desk.sent[-1] == ("PUT", f"/api/v1/meetings/{MEETING}/motions/{MOTION}/tally",
                             {"votes_for": 5, "votes_against": 0, "abstentions": 1})  # fmt: skip
    post(client, f"/desk/meetings/{MEETING}/motions/{MOTION}/record", {})
    assert desk.sent[-1][:2] == ("POST", f"/api/v1/meetings/{MEETING}/motions/{MOTION}/record")
    post(client, f"/desk/meetings/{MEETING}/conclude", {"minutes": "Agreed to repair", "attendees": "6"})
    assert desk.sent[-1] == ("POST", f"/api/v1/meetings/{MEETING}/conclude",
                             {"minutes": "Agreed to repair", "attendees_count": 6})  # fmt: skip


def counts(votes_for: str, against: str, abstaining: str) -> dict[str, str]:
    """The tally form's fields, named after their motion."""
    return {f"votes_for-{MOTION}": votes_for, f"votes_against-{MOTION}": against, f"abstentions-{MOTION}": abstaining}


def test_the_apis_refusal_is_shown_on_the_form(desk, client):
    desk.meeting = meeting(status="in_progress")
    desk.motions = [motion()]
    desk.fail["/tally"] = (409, "conflict", {"method": ["roll_call"]})
    answer = post(client, f"/desk/meetings/{MEETING}/motions/{MOTION}/tally", counts("x", "0", "0"))
    assert answer.status_code == 400 and f'href="#votes_for-{MOTION}"' in answer.get_data(as_text=True)
    assert not desk.sent  # a count that is not a number is not sent
    answer = post(client, f"/desk/meetings/{MEETING}/motions/{MOTION}/tally", counts("3", "0", "0"))
    assert answer.status_code == 400 and "roll_call" in answer.get_data(as_text=True)


def test_a_tasks_progress_is_reported_from_the_decision(desk, client):
    task = {"id": TASK, "title": "Repair the wall", "owner_body": "property_company", "owner_organisation_name": None,
            "due_date": "2026-12-31", "status": "open", "progress": 0, "note": None}  # fmt: skip
    desk.meeting = meeting(status="concluded", minutes="Agreed")
    desk.motions = [motion(status="recorded", outcome="adopted", votes_for=5, rule="two-thirds", action_items=[task])]
    page = client.get(f"/desk/meetings/{MEETING}").get_data(as_text=True)
    assert "Agreed" in page and f"/action-items/{TASK}" in page
    answer = post(
        client, f"/desk/meetings/{MEETING}/action-items/{TASK}", {f"progress-{TASK}": "100", f"note-{TASK}": "Done"}
    )
    assert answer.status_code == 303
    assert desk.sent[-1] == ("PATCH", f"/api/v1/meetings/action-items/{TASK}", {"progress": 100, "note": "Done"})
    answer = post(client, f"/desk/meetings/{MEETING}/action-items/{TASK}", {f"progress-{TASK}": "120"})
    assert answer.status_code == 400 and f'href="#progress-{TASK}"' in answer.get_data(as_text=True)


def test_a_resident_may_not_open_the_staff_meeting_pages(stub, client):
    sign_in(client)
    assert client.get("/desk/meetings").status_code == 403
    assert client.get(f"/desk/meetings/{MEETING}").status_code == 403


def test_a_participant_present_votes_on_the_meetings_page_once(stub, client):
    residents = MeetingsDesk(stub, role="resident")
    sign_in(client)
    me = stub.user["id"]
    residents.meeting = meeting(status="in_progress")
    residents.motions = [motion(method="roll_call", votes=[])]
    page = client.get(f"/meetings/{MEETING}").get_data(as_text=True)
    assert f"/motions/{MOTION}/vote" not in page  # not checked in: no ballot
    residents.participants = [{"id": PARTICIPANT, "user_id": me, "role": "resident_representative",
                               "enrolment": "invited", "response": "confirmed",
                               "checked_in_at": "2026-12-10T06:05:00+00:00"}]  # fmt: skip
    page = client.get(f"/meetings/{MEETING}").get_data(as_text=True)
    token = csrf_of(page)
    assert f"/motions/{MOTION}/vote" in page
    answer = client.post(f"/meetings/{MEETING}/motions/{MOTION}/vote", data={"csrf_token": token, "choice": "for"})
    assert answer.status_code == 303
    assert residents.sent[-1] == ("POST", f"/api/v1/meetings/{MEETING}/motions/{MOTION}/votes", {"choice": "for"})
    client.post(f"/meetings/{MEETING}/motions/{MOTION}/vote", data={"csrf_token": token, "choice": "maybe"})
    assert len(residents.sent) == 1
    residents.motions = [motion(method="roll_call", votes=[{"voter_id": me, "choice": "for"}])]
    page = client.get(f"/meetings/{MEETING}").get_data(as_text=True)
    assert f"/motions/{MOTION}/vote" not in page and "您已投票" in page
