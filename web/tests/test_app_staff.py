"""The staff desk and the overview on the stand-in gateway: what each page asks the API, what it sends
for each action, how it shows the API's objections, who may open it. (On the real platform, in a
browser: test_browser_staff.py.)"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

STREET = "33333333-3333-4333-8333-333333333333"
SHANGPINYUAN = "22222222-2222-4222-8222-222222222222"
YUCAI = "44444444-4444-4444-8444-444444444444"
WALL = "55555555-5555-4555-8555-555555555555"
OTHER = "66666666-6666-4666-8666-666666666666"
PROPERTY = "77777777-7777-4777-8777-777777777777"
PENDING = "88888888-8888-4888-8888-888888888888"
REPORTER = "99999999-9999-4999-8999-999999999999"
BROADCAST = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def issue(issue_id: str = WALL, **changes: Any) -> dict[str, Any]:
    return {
        "id": issue_id,
        "community_id": SHANGPINYUAN,
        "title": "Cultural wall is unsafe",
        "category": "safety_hazard",
        "urgency": "urgent",
        "status": "reported",
        "tier": "community",
        "reporter_id": REPORTER,
        "reported_by": None,
        "channel": "app",
        "anonymous": False,
        "assignee_type": None,
        "assignee_id": None,
        "supporter_count": 2,
        "consultation_count": 0,
        "description": "Tiles fall off the wall",
        "created_at": "2026-03-02T01:00:00+00:00",
        "due_at": "2026-03-03T01:00:00+00:00",
        "overdue": True,
        "compound_id": None,
        "building": None,
        "address": "East gate",
        "duplicate_of": None,
        "reason": None,
        "resolution_plan": None,
        "resolution_summary": None,
        "rating": None,
        "rating_comment": None,
        **changes,
    }


OVERVIEW = {
    "scope": {"level": "street", "community_id": None, "street_id": STREET},
    "period": {"from": "2025-04-01", "to": "2026-03-31"},
    "totals": {
        "issues": {
            "raised": 12,
            "accepted": 10,
            "resolved": 9,
            "resolution_rate": 0.75,
            "overdue": 2,
            "average_satisfaction": 4.5,
            "ratings": 4,
            "consultations_held": 7,
            "median_hours_to_resolve": 30.25,
            "by_category": {"safety_hazard": 5, "parking": 7},
            "by_tier": {"community": 10, "street": 2},
        },
        "meetings": {
            "meetings_held": 8,
            "attendance_sum": 64,
            "issues_deliberated": 5,
            "decisions_adopted": 4,
            "meetings_by_type": {"round_table": 6, "bench": 2},
            "action_items_done": 3,
            "action_items_open": 1,
            "action_items_overdue": 0,
        },
    },
    "by_community": [
        {
            "community_id": SHANGPINYUAN,
            "community_name": "Shangpinyuan Community 尚品苑社区",
            "issues": {"raised": 7, "resolved": 6, "resolution_rate": 0.857, "overdue": 1, "average_satisfaction": 5.0},
            "meetings": {"meetings_held": 5},
        },
        {
            "community_id": YUCAI,
            "community_name": "Yucai Street Community 育才街社区",
            "issues": {"raised": 5, "resolved": 3, "resolution_rate": 0.6, "overdue": 1, "average_satisfaction": None},
            "meetings": {"meetings_held": 3},
        },
    ],
    "monthly": [
        {"month": "2026-02", "issues": {"raised": 4, "resolved": 3}, "meetings": {"meetings_held": 3}},
        {"month": "2026-03", "issues": {"raised": 8, "resolved": 6}, "meetings": {"meetings_held": 5}},
    ],
    "missing": [{"service": "activities", "reason": "answered 503"}],
    "complete": False,
}


class Desk:
    """The stand-in gateway's answers for staff pages; every write is kept in `sent`."""

    def __init__(self, stub, role: str = "community_staff") -> None:
        self.stub = stub
        self.sent: list[tuple[str, str, dict]] = []
        self.queries: list[tuple[str, dict]] = []
        self.issue = issue()
        self.fail: dict[str, tuple[int, str, dict | None]] = {}
        stub.user = {**stub.user, "role": role, "display_name": "Li Hua (Shangpinyuan staff)"}
        if role == "street_official":
            stub.user.update(community_ids=[], street_id=STREET)
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/api/v1/auth/") and path in (
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
        ):
            return self.original(method, target, raw, headers)
        if not headers.get("Authorization", "").startswith("Bearer "):
            return self.stub._error(401, "unauthorized")
        body = json.loads(raw) if raw else {}
        self.queries.append((path, query))
        if method != "GET":
            self.sent.append((method, path, body))
            for prefix, (status, code, fields) in self.fail.items():
                if path.endswith(prefix):
                    return self.stub._error(status, code, fields)
        ok = (200, None, {})
        if path == f"/api/v1/directory/communities/{SHANGPINYUAN}":
            return 200, {"id": SHANGPINYUAN, "name": "Shangpinyuan Community 尚品苑社区", "street_id": STREET}, {}
        if path == "/api/v1/directory/communities":
            return (
                200,
                [
                    {"id": YUCAI, "name": "Yucai Street Community 育才街社区", "street_id": STREET},
                    {"id": SHANGPINYUAN, "name": "Shangpinyuan Community 尚品苑社区", "street_id": STREET},
                ],
                {},
            )
        if path == f"/api/v1/directory/streets/{STREET}":
            return 200, {"id": STREET, "name": "Chengqu Street 城区街道"}, {}
        if path == "/api/v1/directory/organisations":
            # The directory's register: a company and an owners' committee; a party branch is no body
            # an issue is given to.
            return (
                200,
                [
                    {"id": PROPERTY, "kind": "property_company", "name": "Shangpin Property Services", "active": True},
                    {"id": "c-1", "kind": "party_branch", "name": "Party branch", "active": True},
                ],
                {},
            )
        if path == "/api/v1/auth/users":
            if query.get("status") == "pending":
                return (
                    200,
                    [
                        {
                            "id": PENDING,
                            "display_name": "Lao Zhou 老周",
                            "phone": "139****4321",
                            "community_ids": [SHANGPINYUAN],
                            "status": "pending",
                        }
                    ],
                    {},
                )
        if path == f"/api/v1/auth/users/{REPORTER}":
            return 200, {"id": REPORTER, "display_name": "Yang Jing 杨静"}, {}
        if path == f"/api/v1/auth/users/{PENDING}/approve":
            return 200, {"id": PENDING, "display_name": "Lao Zhou 老周", "status": "active"}, {}
        if path == "/api/v1/issues/categories":
            return 200, [{"key": "safety_hazard", "name": "Safety hazard"}, {"key": "parking", "name": "Parking"}], {}
        if path == "/api/v1/issues/":
            items = [self.issue, issue(OTHER, title="Cultural wall tiles", status="accepted", overdue=False)]
            return 200, items, {"X-Pagination": json.dumps({"total": 2 if query.get("page_size") != "1" else 1})}
        if path == "/api/v1/issues/similar":
            return 200, [{"score": 0.9, "issue": issue(OTHER, title="Cultural wall tiles", status="accepted")}], {}
        if path == f"/api/v1/issues/{WALL}":
            return 200, self.issue, {}
        if path == f"/api/v1/issues/{WALL}/updates" and method == "GET":
            return (
                200,
                [
                    {
                        "id": "t1",
                        "kind": "report",
                        "body": None,
                        "internal": False,
                        "author_id": REPORTER,
                        "data": {},
                        "created_at": "2026-03-02T01:00:00+00:00",
                    },
                    {
                        "id": "t2",
                        "kind": "note",
                        "body": "Called the property company",
                        "internal": True,
                        "author_id": self.stub.user["id"],
                        "data": {},
                        "created_at": "2026-03-02T02:00:00+00:00",
                    },
                ],
                {},
            )
        if path.startswith(f"/api/v1/issues/{WALL}/"):
            return 200 if method == "GET" else 201, ([] if method == "GET" else self.issue), {}
        if path == "/api/v1/notifications/broadcasts":
            return (
                202,
                {
                    "id": BROADCAST,
                    **body,
                    "state": "planning",
                    "planned_count": 0,
                    "deliveries": {},
                    "created_at": "2026-03-02T01:00:00+00:00",
                },
                {},
            )
        if path == f"/api/v1/notifications/broadcasts/{BROADCAST}":
            return (
                200,
                {
                    "id": BROADCAST,
                    "community_id": SHANGPINYUAN,
                    "title": "Water off",
                    "body": "Tomorrow 9-12",
                    "urgent": False,
                    "channels": ["push"],
                    "state": "planned",
                    "planned_count": 41,
                    "deliveries": {"pending": 1, "delivered": 40},
                    "created_at": "2026-03-02T01:00:00+00:00",
                },
                {},
            )
        if path == "/api/v1/stats/overview":
            return 200, OVERVIEW, {}
        if path == "/api/v1/stats/rankings":
            return (
                200,
                {
                    "metric": query["metric"],
                    "scope": OVERVIEW["scope"],
                    "period": OVERVIEW["period"],
                    "ranking": [
                        {"community_id": SHANGPINYUAN, "community_name": "Shangpinyuan", "value": 0.857, "rank": 1},
                        {"community_id": YUCAI, "community_name": "Yucai", "value": 0.6, "rank": 2},
                    ],
                    "missing": [],
                },
                {},
            )
        if path == "/api/v1/stats/export":
            if query.get("format") == "csv":
                data = "\ufeffcommunity_id,community_name,issues.raised\r\nx,尚品苑,7\r\n".encode()
                return (
                    200,
                    data,
                    {
                        "Content-Type": "text/csv; charset=utf-8",
                        "Content-Disposition": 'attachment; filename="linli-street-2025-04-01-2026-03-31.csv"',
                    },
                )
            return (
                200,
                b"PK\x03\x04xlsx",
                {
                    "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "Content-Disposition": 'attachment; filename="linli-street.xlsx"',
                },
            )
        return self.original(method, target, raw, headers) if path.startswith("/api/v1/notifications") else ok


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "phone": "13900000002", "password": "right-password"})
    assert response.status_code == 303


@pytest.fixture
def staff(stub, client):
    desk = Desk(stub)
    sign_in(client)
    return desk


@pytest.fixture
def official(stub, client):
    desk = Desk(stub, "street_official")
    sign_in(client)
    return desk


def post(client, path: str, data: dict[str, Any]):
    token = csrf_of(client.get(f"/desk/issues/{WALL}").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def test_a_resident_is_kept_out_of_the_desk_and_the_overview_and_sees_no_link_to_them(client, stub):
    sign_in(client)  # the stub's person is a resident
    assert client.get("/desk").status_code == 403
    assert client.get("/overview").status_code == 403
    assert client.get(f"/desk/issues/{WALL}").status_code == 403
    html = client.get("/me").get_data(as_text=True)
    assert "/desk" not in html and "/overview" not in html


def test_staff_see_the_desk_and_overview_in_their_tabs(staff, client):
    html = client.get("/me").get_data(as_text=True)
    assert 'href="/desk"' in html and 'href="/overview"' in html
    assert 'href="/report"' not in html  # a resident's report flow is not a staff tab


def test_the_queue_asks_the_api_for_each_view_and_counts_them(staff, client):
    response = client.get("/desk")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Cultural wall is unsafe" in html and f'href="/desk/issues/{WALL}"' in html
    lists = [q for p, q in staff.queries if p == "/api/v1/issues/"]
    main = next(q for q in lists if q.get("page_size") == "25")
    assert main["status"] == "reported" and main["sort"] == "-created_at"
    counted = [q for q in lists if q.get("page_size") == "1"]
    assert {q.get("overdue") for q in counted} == {None, "true"} and any(
        q.get("tier") == "street,city" for q in counted
    )

    staff.queries.clear()
    client.get(f"/desk?view=overdue&assignee=org:{PROPERTY}&category=parking&q=wall&sort=due_at&page=2")
    main = next(q for p, q in staff.queries if p == "/api/v1/issues/" and q.get("page_size") == "25")
    assert main["overdue"] == "true" and main["assignee_id"] == PROPERTY and main["category"] == "parking"
    assert main["q"] == "wall" and main["sort"] == "due_at" and main["page"] == "2"
    assert "reported,accepted,deliberating,resolving" == main["status"]


def test_a_bad_filter_is_named_and_the_queue_still_shows(staff, client):
    response = client.get("/desk?view=whatever&category=nonsense&sort=sideways")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'href="#view"' in html and 'href="#category"' in html and 'href="#sort"' in html
    main = next(q for p, q in staff.queries if p == "/api/v1/issues/" and q.get("page_size") == "25")
    assert main["status"] == "reported" and "category" not in main


def test_the_issue_shows_the_reporter_the_internal_note_and_the_triage_actions(staff, client):
    html = client.get(f"/desk/issues/{WALL}").get_data(as_text=True)
    assert "Yang Jing 杨静" in html and "Called the property company" in html
    assert 'class="internal"' in html
    for action in (
        "accept",
        "reject",
        "duplicate",
        "assign",
        "updates/reply",
        "updates/note",
        "updates/inspection",
        "escalate",
    ):
        assert f'action="/desk/issues/{WALL}/{action}"' in html, action
    assert "Shangpin Property Services" in html  # an organisation to pick by name
    assert f'value="{OTHER}"' in html  # a candidate original for "same as"


def test_community_staff_see_no_triage_on_an_issue_passed_up_to_the_street(staff, client):
    staff.issue = issue(tier="street")
    html = client.get(f"/desk/issues/{WALL}").get_data(as_text=True)
    assert f"/desk/issues/{WALL}/accept" not in html and f"/desk/issues/{WALL}/escalate" not in html
    assert f"/desk/issues/{WALL}/updates/note" in html


def test_each_action_sends_what_the_api_takes(staff, client):
    assert post(client, f"/desk/issues/{WALL}/accept", {}).status_code == 303
    post(client, f"/desk/issues/{WALL}/reject", {"reject_reason": "Private property, not ours"})
    post(client, f"/desk/issues/{WALL}/duplicate", {"duplicate_of": OTHER})
    post(
        client,
        f"/desk/issues/{WALL}/assign",
        {"assignee_type": "property_company", "organisation_id": PROPERTY, "assign_note": "Within a week"},
    )
    post(client, f"/desk/issues/{WALL}/updates/reply", {"reply_body": "We are on it"})
    post(client, f"/desk/issues/{WALL}/updates/note", {"note_body": "Owner called"})
    post(
        client,
        f"/desk/issues/{WALL}/updates/inspection",
        {
            "inspection_body": "Wall inspected",
            "attendees": "Community\nProperty company，Owners' committee",
            "findings": "Loose tiles",
        },
    )
    post(client, f"/desk/issues/{WALL}/escalate", {"escalate_reason": "Needs the street's budget"})
    post(client, f"/desk/issues/{WALL}/progress", {"progress_status": "resolved", "summary": "Wall taken down"})
    writes = [(m, p.rsplit("/", 1)[-1], b) for m, p, b in staff.sent if p.startswith("/api/v1/issues/")]
    assert writes == [
        ("POST", "status", {"status": "accepted"}),
        ("POST", "status", {"status": "rejected", "reason": "Private property, not ours"}),
        ("POST", "status", {"status": "duplicate", "duplicate_of": OTHER}),
        ("PUT", "assignment", {"assignee_type": "property_company", "assignee_id": PROPERTY, "note": "Within a week"}),
        ("POST", "updates", {"kind": "reply", "body": "We are on it"}),
        ("POST", "updates", {"kind": "note", "body": "Owner called"}),
        (
            "POST",
            "updates",
            {
                "kind": "inspection",
                "body": "Wall inspected",
                "findings": "Loose tiles",
                "attendees": ["Community", "Property company", "Owners' committee"],
            },
        ),
        ("POST", "escalations", {"reason": "Needs the street's budget"}),
        ("POST", "status", {"status": "resolved", "summary": "Wall taken down"}),
    ]


def test_an_incomplete_action_is_named_on_its_field_and_nothing_is_sent(staff, client):
    response = post(client, f"/desk/issues/{WALL}/reject", {"reject_reason": " "})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#reject_reason"' in html
    assert re.search(r'<details class="action" open>\s*<summary>[^<]*</summary>\s*<form[^>]*/reject"', html)
    response = post(client, f"/desk/issues/{WALL}/updates/inspection", {"inspection_body": "Looked", "attendees": ""})
    assert response.status_code == 400 and 'href="#attendees"' in response.get_data(as_text=True)
    response = post(client, f"/desk/issues/{WALL}/assign", {"assignee_type": "bureau", "organisation_id": PROPERTY})
    assert response.status_code == 400 and 'href="#organisation_id"' in response.get_data(as_text=True)
    assert not [s for s in staff.sent if s[1].startswith("/api/v1/issues/")]


def test_the_apis_refusal_is_shown_on_the_form(staff, client):
    staff.fail["/status"] = (409, "conflict", None)
    response = post(client, f"/desk/issues/{WALL}/accept", {})
    assert response.status_code == 400 and "error-summary" in response.get_data(as_text=True)
    staff.fail["/status"] = (422, "validation_error", {"duplicate_of": ["name an issue of the same community"]})
    response = post(client, f"/desk/issues/{WALL}/duplicate", {"duplicate_of": OTHER})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "name an issue of the same community" in html


def test_sign_ups_are_listed_and_approved(staff, client):
    html = client.get("/desk/signups").get_data(as_text=True)
    assert "Lao Zhou 老周" in html and "139****4321" in html
    response = client.post(f"/desk/signups/{PENDING}/approve", data={"csrf_token": csrf_of(html)})
    assert response.status_code == 303
    assert ("POST", f"/api/v1/auth/users/{PENDING}/approve", {}) in staff.sent
    assert "Lao Zhou" in client.get("/desk/signups").get_data(as_text=True)  # the flash


def test_a_broadcast_is_checked_sent_and_its_progress_shown(staff, client):
    html = client.get("/desk/broadcast").get_data(as_text=True)
    token = csrf_of(html)
    bad = client.post("/desk/broadcast", data={"csrf_token": token, "community_id": SHANGPINYUAN, "title": "x" * 31})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'href="#title"' in text and 'href="#body"' in text and 'href="#channels"' in text
    assert not staff.sent
    response = client.post(
        "/desk/broadcast",
        data={
            "csrf_token": token,
            "community_id": SHANGPINYUAN,
            "title": "Water off",
            "body": "Tomorrow 9-12",
            "channels": ["push", "sms"],
            "urgent": "yes",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/desk/broadcast/{BROADCAST}"
    assert staff.sent[-1] == (
        "POST",
        "/api/v1/notifications/broadcasts",
        {
            "community_id": SHANGPINYUAN,
            "title": "Water off",
            "body": "Tomorrow 9-12",
            "urgent": True,
            "channels": ["push", "sms"],
        },
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "41" in page and "40" in page
    # The notifications service refuses an SMS too long for its template: named on the notice.
    staff.fail["/broadcasts"] = (422, "validation_error", {"body": ["too long for an SMS (35 characters)"]})
    refused = client.post(
        "/desk/broadcast",
        data={
            "csrf_token": token,
            "community_id": SHANGPINYUAN,
            "title": "Water off",
            "body": "A long text " * 5,
            "channels": "sms",
        },
    )
    assert refused.status_code == 400 and "too long for an SMS" in refused.get_data(as_text=True)


def test_a_broadcast_to_a_community_outside_the_scope_is_refused_here(staff, client):
    token = csrf_of(client.get("/desk/broadcast").get_data(as_text=True))
    response = client.post(
        "/desk/broadcast",
        data={"csrf_token": token, "community_id": YUCAI, "title": "Hello", "body": "Hello", "channels": "push"},
    )
    assert response.status_code == 400 and 'href="#community_id"' in response.get_data(as_text=True)
    assert not staff.sent


def test_the_overview_shows_every_figure_as_a_table_and_names_the_missing_service(official, client):
    response = client.get("/overview")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Chengqu Street 城区街道" in html
    assert re.search(r'data-figure="issues.raised"><th scope="row">[^<]+</th><td>12</td>', html)
    assert re.search(r'data-figure="issues.resolution_rate"><th scope="row">[^<]+</th><td>75%</td>', html)
    assert re.search(r'data-figure="issues.escalated"><th scope="row">[^<]+</th><td>2</td>', html)
    assert re.search(r'data-figure="activities.help_hours"><th scope="row">[^<]+</th><td>—</td>', html)
    missing = re.search(r'<div class="banner error" role="alert">(.*?)</div>', html, re.S).group(1)
    assert "活动与服务" in missing and "会议" not in missing  # only the one that did not answer
    assert f'href="/overview?community_id={SHANGPINYUAN}"' in html  # drill down
    assert 'data-chart="trend"' in html and "echarts.min.js" in html
    assert 'href="/overview/export.csv"' in html and 'href="/overview/export.xlsx"' in html
    ranking = next(q for p, q in official.queries if p == "/api/v1/stats/rankings")
    assert ranking["metric"] == "resolution_rate"


def test_the_overview_passes_the_period_and_scope_and_checks_them(official, client):
    client.get(f"/overview?community_id={YUCAI}&from=2026-01-01&to=2026-03-31")
    query = next(q for p, q in official.queries if p == "/api/v1/stats/overview")
    assert query == {"community_id": YUCAI, "from": "2026-01-01", "to": "2026-03-31"}
    assert not [p for p, _q in official.queries if p == "/api/v1/stats/rankings"]  # one community: no ranking
    official.queries.clear()
    response = client.get("/overview?from=2026-04-01&to=2026-01-01")
    assert response.status_code == 400 and 'href="#from"' in response.get_data(as_text=True)
    query = next(q for p, q in official.queries if p == "/api/v1/stats/overview")
    assert "from" not in query  # the default period, while the error is shown
    assert client.get("/overview?community_id=not-an-id").status_code == 404


def test_the_exports_download_as_the_gateway_makes_them(official, client):
    response = client.get("/overview/export.csv?from=2026-01-01")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[1][1] == "尚品苑"
    query = next(q for p, q in official.queries if p == "/api/v1/stats/export")
    assert query == {"format": "csv", "from": "2026-01-01"}
    xlsx = client.get("/overview/export.xlsx")
    assert xlsx.data.startswith(b"PK") and "spreadsheetml" in xlsx.headers["Content-Type"]


GARDEN, BUILDING7 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "cccccccc-cccc-4ccc-8ccc-cccccccccccc"


def coverage(community: str, compounds: list[tuple[str, str, bool]]) -> dict[str, Any]:
    detail = [
        {
            "compound_id": cid,
            "name": name,
            "latitude": 38.1,
            "longitude": 106.34,
            "covered": covered,
            "nearest_post_id": "p-1" if covered else None,
            "nearest_post_name": "Yucai post" if covered else None,
            "walking_minutes": 6.4 if covered else None,
        }
        for cid, name, covered in compounds
    ]
    return {
        "community_id": community,
        "minutes": 15.0,
        "compounds": len(detail),
        "detail": detail,
        "gaps": [d for d in detail if not d["covered"]],
        "without_coordinates": [],
    }


@pytest.fixture
def area(official, stub):
    """The street official's map: Shangpinyuan's garden has no post within the walk and an overdue
    issue; Yucai's Building 7 has the Yucai post six minutes away."""
    inner = stub.route

    def route(method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path = parts.path
        if path == "/api/v1/activities/posts":
            official.queries.append((path, {k: v[0] for k, v in parse_qs(parts.query).items()}))
            post = {
                "id": "p-1",
                "community_id": YUCAI,
                "name": "Yucai post",
                "latitude": 38.097,
                "longitude": 106.341,
                "address": "Yucai Street 3",
                "opening_hours": "8-20",
                "active": True,
            }
            return 200, [post], {}
        if path == f"/api/v1/activities/coverage/{SHANGPINYUAN}":
            return 200, coverage(SHANGPINYUAN, [(GARDEN, "Shangpinyuan Garden", False)]), {}
        if path == f"/api/v1/activities/coverage/{YUCAI}":
            if official.fail.get("coverage"):
                return stub._error(503, "unavailable")
            return 200, coverage(YUCAI, [(BUILDING7, "Yucai Garden (Building 7)", True)]), {}
        return inner(method, target, raw, headers)

    official.issue = issue(compound_id=GARDEN)
    stub.route = route
    return official


def markers_of(html: str) -> list[dict[str, Any]]:
    import html as entities

    return json.loads(entities.unescape(re.search(r"data-markers='([^']*)'", html).group(1)))


def test_the_map_places_overdue_issues_gaps_and_posts_and_says_the_same_in_tables(area, client):
    response = client.get("/overview/map")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Chengqu Street 城区街道" in html
    overdue = next(q for p, q in area.queries if p == "/api/v1/issues/")
    assert overdue["overdue"] == "true" and overdue["street_id"] == STREET
    assert overdue["status"] == "reported,accepted,deliberating,resolving"
    posts = next(q for p, q in area.queries if p == "/api/v1/activities/posts")
    assert posts["street_id"] == STREET
    kinds = {m["kind"]: m for m in markers_of(html)}
    # The stand-in lists the wall (overdue, at the garden) and one issue not overdue: the garden has
    # an overdue issue (outweighing its gap), Building 7 is covered, the post is a post.
    assert set(kinds) == {"overdue", "covered", "post"}
    assert "Shangpinyuan Garden" in kinds["overdue"]["name"] and "Yucai post" in kinds["post"]["name"]
    assert re.search(rf'data-compound="{GARDEN}" data-state="overdue">', html)
    # Without JavaScript: the tables say it all, the gap named, the overdue count linked to the desk.
    row = re.search(rf'<tr data-community="{SHANGPINYUAN}">(.*?)</tr>', html, re.S).group(1)
    assert f'href="/desk?community_id={SHANGPINYUAN}&amp;view=overdue"' in row
    assert "Shangpinyuan Garden" in row
    assert "Shangpinyuan Community 尚品苑社区" in re.search(
        r'<section aria-labelledby="gaps">(.*?)</section>', html, re.S
    ).group(1)
    assert 'data-post="p-1"' in html and "leaflet.js" in html


def test_the_map_names_a_service_that_did_not_answer_and_refuses_a_community_outside_the_area(area, client):
    area.fail["coverage"] = (503, "unavailable", None)
    html = client.get("/overview/map").get_data(as_text=True)
    assert 'class="banner error" role="alert"' in html
    row = re.search(rf'<tr data-community="{YUCAI}">(.*?)</tr>', html, re.S).group(1)
    assert row.count("—") == 2  # its compounds and gaps not known, never "none"
    assert client.get(f"/overview/map?community_id={YUCAI}").status_code == 200
    assert client.get("/overview/map?community_id=12345678-1234-4234-8234-123456789012").status_code == 404
    assert client.get("/overview/map?community_id=nonsense").status_code == 404


def test_a_resident_cannot_open_the_map(client, stub):
    sign_in(client)
    assert client.get("/overview/map").status_code == 403
