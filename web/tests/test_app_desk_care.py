"""Community staff's activities, bookings and support pages, and acting for a resident without a
phone, on a stand-in gateway: what each form sends, mistakes named on their fields with nothing sent,
the API's refusals shown on the form."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SHANGPINYUAN = "22222222-2222-4222-8222-222222222222"
ACTIVITY = "a1111111-1111-4111-8111-111111111111"
REGISTRATION = "a2222222-2222-4222-8222-222222222222"
GRANDMA = "a3333333-3333-4333-8333-333333333333"
STRANGER = "a4444444-4444-4444-8444-444444444444"
BOOKING = "a5555555-5555-4555-8555-555555555555"
OFFERING = "a6666666-6666-4666-8666-666666666666"
FLAG = "a7777777-7777-4777-8777-777777777777"
ISSUE = "a8888888-8888-4888-8888-888888888888"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def activity(**changes: Any) -> dict[str, Any]:
    return {
        "id": ACTIVITY,
        "community_ids": [SHANGPINYUAN],
        "kind": "sports",
        "title": "Parent-child sports day",
        "description": "",
        "place": "School field",
        "starts_at": "2099-05-01T01:00:00+00:00",
        "ends_at": "2099-05-01T04:00:00+00:00",
        "capacity": 40,
        "free_places": 2,
        "waiting_parties": 1,
        "status": "published",
        "checkin_code": "4821",
        **changes,
    }


class Care:
    """The stand-in gateway for community staff's activities and care pages; writes kept in `sent`."""

    def __init__(self, stub) -> None:
        self.stub = stub
        self.sent: list[tuple[str, str, dict]] = []
        self.queries: list[tuple[str, dict]] = []
        self.fail: dict[str, tuple[int, str, dict | None]] = {}
        self.activity = activity()
        stub.user = {**stub.user, "role": "community_staff", "display_name": "Li Hua"}
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"):
            return self.original(method, target, raw, headers)
        body = json.loads(raw) if raw else {}
        self.queries.append((path, query))
        if method != "GET":
            self.sent.append((method, path, body))
            for suffix, (status, code, fields) in self.fail.items():
                if path.endswith(suffix):
                    return self.stub._error(status, code, fields)
        if path == f"/api/v1/directory/communities/{SHANGPINYUAN}":
            return 200, {"id": SHANGPINYUAN, "name": "Shangpinyuan 尚品苑社区"}, {}
        if path == "/api/v1/auth/users":
            return 200, [{"id": GRANDMA, "display_name": "Grandma Wang 王奶奶", "role": "resident"}], {}
        if path == f"/api/v1/auth/users/{STRANGER}":
            return 200, {"id": STRANGER, "display_name": "Xiao Li 小李"}, {}
        if path == "/api/v1/activities/":
            if method == "POST":
                return 201, activity(status="published" if body.get("publish") else "draft"), {}
            if query.get("status") == "draft":
                return 200, [activity(id="d-1", title="Draft festival", status="draft")], {}
            return 200, [self.activity], {}
        if path == f"/api/v1/activities/{ACTIVITY}":
            return 200, self.activity, {}
        if path == f"/api/v1/activities/{ACTIVITY}/registrations" and method == "GET":
            return (
                200,
                [
                    {"id": REGISTRATION, "user_id": GRANDMA, "party_size": 2, "status": "confirmed"},
                    {"id": "r-2", "user_id": STRANGER, "party_size": 1, "status": "waitlisted", "waitlist_position": 1},
                ],
                {},
            )
        if path == f"/api/v1/activities/{ACTIVITY}/checkins" and method == "GET":
            return 200, [{"id": "c-1", "user_id": None, "participants": 3, "method": "walk_in",
                          "checked_in_at": "2099-05-01T01:10:00+00:00"}], {}  # fmt: skip
        if path.startswith(f"/api/v1/activities/{ACTIVITY}/"):
            return 201, {"id": "x"}, {}
        if path == "/api/v1/activities/bookings":
            return 200, [{"id": BOOKING, "offering_id": OFFERING, "resident_id": GRANDMA, "status": query.get("status"),
                          "slot_start": "2099-05-02T01:00:00+00:00", "slot_end": "2099-05-02T02:00:00+00:00",
                          "door_to_door": True, "address": "Building 7", "note": ""}], {}  # fmt: skip
        if path == "/api/v1/activities/offerings":
            return (
                200,
                [
                    {
                        "id": OFFERING,
                        "name": "Haircut at home",
                        "kind": "haircut",
                        "provider_name": "Master Zhang",
                        "door_to_door": True,
                        "active": True,
                    }
                ],
                {},
            )
        if path == "/api/v1/activities/bookings" and method == "POST":
            return 201, {"id": BOOKING, **body}, {}
        if path.startswith("/api/v1/activities/bookings/"):
            return 200, {"id": BOOKING}, {}
        if path == "/api/v1/activities/support":
            if method == "POST":
                return 201, {"id": FLAG, **body}, {}
            return 200, [{"id": FLAG, "community_id": SHANGPINYUAN, "resident_id": GRANDMA,
                          "display_name": "Grandma Wang 王奶奶", "needs": ["elderly_alone"], "address": "Building 7",
                          "note": "", "active": True}], {}  # fmt: skip
        if path == "/api/v1/activities/visits/queue":
            return 200, [{"flag_id": FLAG, "display_name": "Grandma Wang 王奶奶", "address": "Building 7",
                          "plan": {"next_due_on": "2099-05-03"}}], {}  # fmt: skip
        if path == f"/api/v1/activities/support/{FLAG}/visit-plan" and method == "GET":
            return 200, {"every_days": 7, "visitor_id": self.stub.user["id"], "visitor_name": "Li Hua",
                         "next_due_on": "2099-05-03"}, {}  # fmt: skip
        if path.startswith("/api/v1/activities/support/"):
            return 201, {"id": "v-1"}, {}
        if path == "/api/v1/issues/categories":
            return 200, [{"key": "safety_hazard", "name": "Safety hazard"}], {}
        if path == "/api/v1/issues/" and method == "POST":
            return 201, {"id": ISSUE, **body}, {}
        return self.original(method, target, raw, headers)


@pytest.fixture
def care(stub, client) -> Care:
    fake = Care(stub)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "phone": "13900000002", "password": "right-password"})
    assert response.status_code == 303
    return fake


def post(client, path: str, data: dict[str, Any]):
    token = getattr(client, "csrf_token", None) or csrf_of(client.get("/desk/support").get_data(as_text=True))
    client.csrf_token = token
    return client.post(path, data={"csrf_token": token, **data})


def writes(care: Care) -> list[tuple[str, str, dict]]:
    return [w for w in care.sent if not w[1].startswith("/api/v1/auth/log")]


def test_a_resident_is_kept_out_of_the_staff_activity_and_care_pages(client, stub):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": token, "phone": "13900000002", "password": "right-password"})
    for page in ("/desk/activities", "/desk/bookings", "/desk/support", "/desk/report", f"/desk/activities/{ACTIVITY}"):
        assert client.get(page).status_code == 403, page


def test_staff_create_an_activity_in_the_citys_time_and_find_it_listed(care, client):
    html = client.get("/desk/activities").get_data(as_text=True)
    assert "Draft festival" in html and "Parent-child sports day" in html
    form = {"community_id": SHANGPINYUAN, "kind": "sports", "title": "Sports day", "day": "2099-05-01",
            "start": "09:00", "end": "12:00", "capacity": "40", "audience": ["families", "children"]}  # fmt: skip
    response = post(client, "/desk/activities/new", {**form, "end": "08:00", "capacity": "lots", "kind": "war"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'href="#end"' in html and 'href="#capacity"' in html and 'href="#kind"' in html
    assert writes(care) == []
    response = post(client, "/desk/activities/new", form)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/desk/activities/{ACTIVITY}")
    assert writes(care) == [
        ("POST", "/api/v1/activities/", {
            "starts_at": "2099-05-01T09:00:00+08:00", "ends_at": "2099-05-01T12:00:00+08:00",
            "community_ids": [SHANGPINYUAN], "kind": "sports", "title": "Sports day", "description": "",
            "place": None, "capacity": 40, "audience": ["families", "children"], "publish": False,
        })
    ]  # fmt: skip


def test_the_activity_shows_sign_ups_by_name_and_checks_them_in(care, client):
    html = client.get(f"/desk/activities/{ACTIVITY}").get_data(as_text=True)
    assert "Grandma Wang 王奶奶" in html and "Xiao Li 小李" in html  # the second by their own account
    assert "4821" in html and "3" in html  # the code; the walk-ins counted
    assert f"/desk/activities/{ACTIVITY}/registrations/{REGISTRATION}/check-in" in html
    assert post(client, f"/desk/activities/{ACTIVITY}/registrations/{REGISTRATION}/check-in", {}).status_code == 303
    post(client, f"/desk/activities/{ACTIVITY}/walk-ins", {"walkin_community_id": SHANGPINYUAN, "participants": "3"})
    post(client, f"/desk/activities/{ACTIVITY}/registrations", {"resident_id": GRANDMA, "party_size": "2"})
    post(client, f"/desk/activities/{ACTIVITY}/cancel", {"cancel_reason": "Rain"})
    assert writes(care) == [
        ("POST", f"/api/v1/activities/{ACTIVITY}/checkins", {"registration_id": REGISTRATION}),
        ("POST", f"/api/v1/activities/{ACTIVITY}/walk-ins", {"community_id": SHANGPINYUAN, "participants": 3}),
        (
            "POST",
            f"/api/v1/activities/{ACTIVITY}/registrations",
            {"user_id": GRANDMA, "party_size": 2, "community_id": SHANGPINYUAN},
        ),
        ("POST", f"/api/v1/activities/{ACTIVITY}/cancel", {"reason": "Rain"}),
    ]


def test_a_refused_sign_up_is_shown_on_its_form_and_a_stranger_cannot_be_signed_up(care, client):
    response = post(client, f"/desk/activities/{ACTIVITY}/registrations", {"resident_id": STRANGER})
    assert response.status_code == 400 and 'href="#resident_id"' in response.get_data(as_text=True)
    assert writes(care) == []
    care.fail["/registrations"] = (409, "conflict", None)
    response = post(client, f"/desk/activities/{ACTIVITY}/registrations", {"resident_id": GRANDMA})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'class="error-summary"' in html and '<details class="action" open' in html


def test_a_draft_is_published(care, client):
    care.activity = activity(status="draft", checkin_code=None)
    html = client.get(f"/desk/activities/{ACTIVITY}").get_data(as_text=True)
    assert f"/desk/activities/{ACTIVITY}/publish" in html and "/walk-ins" not in html
    assert post(client, f"/desk/activities/{ACTIVITY}/publish", {}).status_code == 303
    assert writes(care) == [("POST", f"/api/v1/activities/{ACTIVITY}/publish", {})]


def test_bookings_are_confirmed_and_completed_with_the_people_served(care, client):
    html = client.get("/desk/bookings").get_data(as_text=True)
    assert "Haircut at home" in html and "Grandma Wang 王奶奶" in html and "Building 7" in html
    assert next(q for p, q in care.queries if p == "/api/v1/activities/bookings")["status"] == "requested"
    post(client, f"/desk/bookings/{BOOKING}/confirm", {"back": "/desk/bookings?status=requested"})
    post(client, f"/desk/bookings/{BOOKING}/complete", {f"person_times-{BOOKING}": "2"})
    response = post(client, f"/desk/bookings/{BOOKING}/complete", {f"person_times-{BOOKING}": "many"})
    assert response.status_code == 303  # named in a banner, nothing sent
    assert writes(care) == [
        ("POST", f"/api/v1/activities/bookings/{BOOKING}/confirm", {}),
        ("POST", f"/api/v1/activities/bookings/{BOOKING}/complete", {"person_times": 2}),
    ]


def test_staff_book_a_service_at_home_for_a_resident_in_the_citys_time(care, client):
    html = client.get("/desk/bookings").get_data(as_text=True)
    assert 'action="/desk/bookings"' in html and 'name="book_resident_id"' in html
    form = {"community_id": SHANGPINYUAN, "book_resident_id": GRANDMA, "offering_id": OFFERING,
            "book_day": "2099-05-02", "book_start": "09:00", "book_end": "10:00", "door_to_door": "yes"}  # fmt: skip
    response = post(client, "/desk/bookings", {**form, "book_resident_id": STRANGER, "book_end": "25:00"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'href="#book_resident_id"' in html and 'href="#book_end"' in html and 'href="#address"' in html
    assert writes(care) == []
    response = post(client, "/desk/bookings", {**form, "address": "Building 7, room 301"})
    assert response.status_code == 303
    assert writes(care) == [
        ("POST", "/api/v1/activities/bookings", {
            "slot_start": "2099-05-02T09:00:00+08:00", "slot_end": "2099-05-02T10:00:00+08:00",
            "offering_id": OFFERING, "resident_id": GRANDMA, "door_to_door": True, "note": "",
            "address": "Building 7, room 301",
        })
    ]  # fmt: skip


def test_residents_who_need_support_are_listed_added_and_visited(care, client):
    html = client.get("/desk/support").get_data(as_text=True)
    assert "Grandma Wang 王奶奶" in html and "2099" in html  # on the list, a visit due
    assert f"/desk/support/{FLAG}/plan" in html and 'value="7"' in html  # the plan, to change
    response = post(client, "/desk/support", {"community_id": SHANGPINYUAN, "display_name": "Old Zhou"})
    assert response.status_code == 400 and 'href="#needs"' in response.get_data(as_text=True)
    post(client, "/desk/support", {"community_id": SHANGPINYUAN, "display_name": "Old Zhou",
                                   "needs": ["living_alone", "mobility"], "address": "Building 3"})  # fmt: skip
    response = post(client, f"/desk/support/{FLAG}/visits", {f"visited_on-{FLAG}": "2999-01-01"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and f'href="#visited_on-{FLAG}"' in html and f'href="#condition-{FLAG}"' in html
    post(client, f"/desk/support/{FLAG}/visits", {f"visited_on-{FLAG}": "2026-03-01", f"condition-{FLAG}": "well"})
    response = post(client, f"/desk/support/{FLAG}/plan", {f"every_days-{FLAG}": "0", f"visitor_id-{FLAG}": STRANGER})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and f'href="#every_days-{FLAG}"' in html and f'href="#visitor_id-{FLAG}"' in html
    post(client, f"/desk/support/{FLAG}/plan", {f"every_days-{FLAG}": "14", f"visitor_id-{FLAG}": GRANDMA})
    assert writes(care) == [
        ("POST", "/api/v1/activities/support", {"community_id": SHANGPINYUAN, "needs": ["living_alone", "mobility"],
                                                "display_name": "Old Zhou", "address": "Building 3", "note": ""}),
        ("POST", f"/api/v1/activities/support/{FLAG}/visits", {"visited_on": "2026-03-01", "condition": "well",
                                                               "note": ""}),
        ("PUT", f"/api/v1/activities/support/{FLAG}/visit-plan", {"every_days": 14, "visitor_id": GRANDMA,
                                                                   "visitor_name": "Grandma Wang 王奶奶"}),
    ]  # fmt: skip


def test_staff_report_a_problem_in_a_residents_name(care, client):
    html = client.get("/desk/report").get_data(as_text=True)
    assert "Grandma Wang 王奶奶" in html and 'value="safety_hazard"' in html
    form = {"community_id": SHANGPINYUAN, "resident_id": GRANDMA, "channel": "doorstep", "category": "safety_hazard",
            "title": "Stair light out", "description": "Dark at night", "urgency": "high"}  # fmt: skip
    response = post(client, "/desk/report", {**form, "resident_id": STRANGER, "title": "x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#resident_id"' in html and 'href="#title"' in html
    assert writes(care) == []
    response = post(client, "/desk/report", form)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/desk/issues/{ISSUE}")
    assert writes(care) == [
        ("POST", "/api/v1/issues/", {"community_id": SHANGPINYUAN, "on_behalf_of": GRANDMA, "channel": "doorstep",
                                     "category": "safety_hazard", "title": "Stair light out",
                                     "description": "Dark at night", "urgency": "high"}),
    ]  # fmt: skip


def test_staff_change_an_activitys_time_and_place_and_only_the_changes_are_sent(care, client):
    html = client.get(f"/desk/activities/{ACTIVITY}").get_data(as_text=True)
    assert f'href="/desk/activities/{ACTIVITY}/edit"' in html
    form = client.get(f"/desk/activities/{ACTIVITY}/edit").get_data(as_text=True)
    # The activity's own values, its times on the city's wall clock (01:00 UTC is 09:00 in Shanghai).
    assert 'value="2099-05-01"' in form and 'value="09:00"' in form and 'value="12:00"' in form
    assert 'value="School field"' in form and 'name="publish"' not in form
    fields = {"community_id": SHANGPINYUAN, "kind": "sports", "title": "Parent-child sports day", "day": "2099-05-01",
              "start": "09:00", "end": "12:00", "capacity": "40", "place": "School field"}  # fmt: skip
    response = post(client, f"/desk/activities/{ACTIVITY}/edit", {**fields, "start": "13:00"})
    assert response.status_code == 400 and 'href="#end"' in response.get_data(as_text=True)
    assert writes(care) == []
    response = post(client, f"/desk/activities/{ACTIVITY}/edit", fields)  # nothing changed: nothing sent
    assert response.status_code == 303 and writes(care) == []
    response = post(client, f"/desk/activities/{ACTIVITY}/edit", {**fields, "start": "10:00", "place": "Gym"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/desk/activities/{ACTIVITY}")
    assert writes(care) == [
        ("PATCH", f"/api/v1/activities/{ACTIVITY}", {"place": "Gym", "starts_at": "2099-05-01T10:00:00+08:00"})
    ]
    care.fail["/" + ACTIVITY] = (422, "validation_error", {"capacity": ["fewer places than people signed up"]})
    response = post(client, f"/desk/activities/{ACTIVITY}/edit", {**fields, "capacity": "1"})
    assert response.status_code == 400 and 'href="#capacity"' in response.get_data(as_text=True)
    care.activity = activity(status="cancelled")
    assert client.get(f"/desk/activities/{ACTIVITY}/edit").status_code == 409


POST = "a9999999-9999-4999-8999-999999999999"
GARDEN = "abbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"


@pytest.fixture
def places(care, stub):
    """The community's posts and coverage: the garden has no post within the walk."""
    inner = stub.route

    def route(method: str, target: str, raw: bytes, headers: dict[str, str]):
        path = urlsplit(target).path
        if path == "/api/v1/activities/posts" and method == "GET":
            return (
                200,
                [
                    {
                        "id": POST,
                        "community_id": SHANGPINYUAN,
                        "name": "Old post",
                        "latitude": 38.1,
                        "longitude": 106.3,
                        "address": "East gate",
                        "active": True,
                        "services": ["tea"],
                    }
                ],
                {},
            )
        if path == f"/api/v1/activities/coverage/{SHANGPINYUAN}":
            gap = {"compound_id": GARDEN, "name": "Shangpinyuan Garden", "covered": False}
            return 200, {"gaps": [gap], "detail": [gap], "without_coordinates": []}, {}
        if path == "/api/v1/directory/compounds":
            return 200, [{"id": GARDEN, "name": "Shangpinyuan Garden", "community_id": SHANGPINYUAN}], {}
        if path.startswith("/api/v1/activities/posts"):
            care.sent.append((method, path, json.loads(raw) if raw else {}))
            return (201 if method == "POST" else 200), {"id": POST, "community_id": SHANGPINYUAN}, {}
        return inner(method, target, raw, headers)

    stub.route = route
    return care


def test_staff_see_the_gaps_add_a_service_post_and_close_one(places, client):
    html = client.get("/desk/posts").get_data(as_text=True)
    assert f'data-gap="{GARDEN}"' in html and "Old post" in html and f'value="{GARDEN}"' in html
    fields = {
        "community_id": SHANGPINYUAN,
        "name": "Neighbourhood post 邻里驿站",
        "latitude": "38.1040",
        "longitude": "106.3370",
        "address": "North gate",
        "opening_hours": "8-20",
        "services": "Tea\nHaircuts\n",
        "compound_ids": [GARDEN],
    }
    response = post(client, "/desk/posts", {**fields, "latitude": "north", "longitude": "200", "name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and not places.sent
    assert 'href="#latitude"' in html and 'href="#longitude"' in html and 'href="#name"' in html
    response = post(client, "/desk/posts", {**fields, "compound_ids": [STRANGER]})
    assert response.status_code == 400 and 'href="#compound_ids"' in response.get_data(as_text=True)
    response = post(client, "/desk/posts", fields)
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/desk/posts?community_id={SHANGPINYUAN}"
    )
    assert places.sent == [
        (
            "POST",
            "/api/v1/activities/posts",
            {
                "community_id": SHANGPINYUAN,
                "name": "Neighbourhood post 邻里驿站",
                "latitude": 38.104,
                "longitude": 106.337,
                "address": "North gate",
                "opening_hours": "8-20",
                "services": ["Tea", "Haircuts"],
                "compound_ids": [GARDEN],
            },
        )
    ]
    post(client, f"/desk/posts/{POST}/active", {"active": "no"})
    assert places.sent[-1] == ("PATCH", f"/api/v1/activities/posts/{POST}", {"active": False})


def test_staff_offer_a_service_at_home_and_start_a_group_with_a_coordinator(care, client):
    html = client.get("/desk/services").get_data(as_text=True)
    assert 'action="/desk/services/offerings"' in html and 'action="/desk/services/groups"' in html
    assert "Grandma Wang 王奶奶" in html  # the coordinator is chosen among the residents
    response = post(client, "/desk/services/offerings", {"community_id": SHANGPINYUAN, "offering_kind": "war"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and writes(care) == []
    for name in ("offering_name", "offering_kind", "provider_name", "where"):
        assert f'href="#{name}"' in html, name
    fields = {
        "community_id": SHANGPINYUAN,
        "offering_name": "Haircut at home",
        "offering_kind": "haircut",
        "provider_name": "Xihu barber",
        "where": "home",
    }
    response = post(client, "/desk/services/offerings", fields)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"?community_id={SHANGPINYUAN}")
    assert writes(care) == [
        (
            "POST",
            "/api/v1/activities/offerings",
            {
                "community_id": SHANGPINYUAN,
                "name": "Haircut at home",
                "kind": "haircut",
                "description": "",
                "provider_type": "business",
                "provider_name": "Xihu barber",
                "at_post": False,
                "door_to_door": True,
            },
        )
    ]
    care.sent.clear()
    response = post(
        client,
        "/desk/services/groups",
        {"community_id": SHANGPINYUAN, "group_name": "Grandmas", "coordinator_id": STRANGER},
    )
    assert response.status_code == 400 and 'href="#coordinator_id"' in response.get_data(as_text=True)
    assert writes(care) == []
    response = post(
        client,
        "/desk/services/groups",
        {
            "community_id": SHANGPINYUAN,
            "group_name": "Caring grandmas",
            "purpose": "Visit neighbours",
            "coordinator_id": GRANDMA,
        },
    )
    assert response.status_code == 303
    assert writes(care) == [
        (
            "POST",
            "/api/v1/activities/groups",
            {
                "community_id": SHANGPINYUAN,
                "name": "Caring grandmas",
                "purpose": "Visit neighbours",
                "coordinator_id": GRANDMA,
            },
        )
    ]
