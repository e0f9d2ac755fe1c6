"""The administration pages on a stand-in gateway: who may open which section, what each form sends,
how a form's mistakes and the API's refusals are shown (nothing sent, or nothing half-done)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

STREET = "33333333-3333-4333-8333-333333333333"
OTHER_STREET = "34333333-3333-4333-8333-333333333333"
SHANGPINYUAN = "22222222-2222-4222-8222-222222222222"
YUCAI = "44444444-4444-4444-8444-444444444444"
EAST_GATE = "55555555-5555-4555-8555-555555555555"
WEST_GATE = "56555555-5555-4555-8555-555555555555"
PROPERTY = "77777777-7777-4777-8777-777777777777"
BUREAU = "78777777-7777-4777-8777-777777777777"
PARTY = "79777777-7777-4777-8777-777777777777"
PERSON = "88888888-8888-4888-8888-888888888888"
KEY = "k-1"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


CATEGORY = {
    "key": "safety_hazard",
    "name": "Safety hazard",
    "default_tier": "community",
    "responsible_body": "community",
    "deadline_hours": {"low": 168, "normal": 72, "high": 24, "urgent": 4},
    "active": True,
    "position": 1,
    "publication": "public",
}


class Admin:
    """The stand-in gateway's answers for the administration; every write is kept in `sent`."""

    def __init__(self, stub, role: str) -> None:
        self.stub = stub
        self.sent: list[tuple[str, str, dict]] = []
        self.queries: list[tuple[str, dict]] = []
        self.fail: dict[str, tuple[int, str, dict | None]] = {}
        stub.user = {**stub.user, "role": role, "display_name": "Admin"}
        if role == "street_official":
            stub.user.update(community_ids=[], street_id=STREET)
        elif role == "city_admin":
            stub.user.update(community_ids=[], street_id=None)
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]):
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"):
            return self.original(method, target, raw, headers)
        if not headers.get("Authorization", "").startswith("Bearer "):
            return self.stub._error(401, "unauthorized")
        body = json.loads(raw) if raw else {}
        self.queries.append((path, query))
        if method != "GET":
            self.sent.append((method, path, body))
            for suffix, (status, code, fields) in self.fail.items():
                if path.endswith(suffix):
                    return self.stub._error(status, code, fields)
        communities = [
            {"id": SHANGPINYUAN, "name": "Shangpinyuan 尚品苑社区", "street_id": STREET},
            {"id": YUCAI, "name": "Yucai 育才街社区", "street_id": STREET},
        ]
        if path == "/api/v1/directory/streets":
            if method == "POST":
                return 201, {"id": OTHER_STREET, **body}, {}
            return 200, [{"id": STREET, "name": "Chengqu 城区街道", "city": "Lingwu"}], {}
        if path.startswith("/api/v1/directory/streets/"):
            return 200, {"id": path.rsplit("/", 1)[-1], "name": "Chengqu 城区街道", "city": "Lingwu", **body}, {}
        if path == "/api/v1/directory/communities":
            if method == "POST":
                return 201, {"id": YUCAI, **body}, {}
            return 200, communities, {}
        if path.startswith("/api/v1/directory/communities/"):
            found = next(c for c in communities if c["id"] == path.rsplit("/", 1)[-1])
            return 200, {**found, **body}, {}
        if path == "/api/v1/directory/compounds":
            if method == "POST":
                return 201, {"id": WEST_GATE, **body}, {}
            return (
                200,
                [
                    {"id": EAST_GATE, "name": "East gate 东门小区", "community_id": SHANGPINYUAN, "latitude": 38.1,
                     "longitude": 106.3},
                    {"id": WEST_GATE, "name": "West gate 西门小区", "community_id": SHANGPINYUAN, "latitude": None,
                     "longitude": None},
                ],
                {},
            )  # fmt: skip
        if path.startswith("/api/v1/directory/compounds/"):
            return 200, {"id": EAST_GATE, "name": "East gate 东门小区", "community_id": SHANGPINYUAN, "latitude": 38.1,
                         "longitude": 106.3, **body}, {}  # fmt: skip
        if path == "/api/v1/directory/organisations":
            if method == "POST":
                return 201, {"id": PROPERTY, "active": True, **body}, {}
            return (
                200,
                [
                    {"id": PROPERTY, "kind": "property_company", "name": "Shangpin Property", "active": True,
                     "compound_ids": [EAST_GATE], "street_id": None, "community_id": None},
                    {"id": BUREAU, "kind": "bureau", "name": "Housing Bureau", "active": False,
                     "compound_ids": [], "street_id": None, "community_id": None},
                    {"id": PARTY, "kind": "party_organisation", "name": "Chengqu Party Committee", "active": True,
                     "compound_ids": [], "street_id": STREET, "community_id": None},
                ],
                {},
            )  # fmt: skip
        if path.startswith("/api/v1/directory/organisations/"):
            return 200, {"id": path.rsplit("/", 1)[-1], "name": "Housing Bureau", **body}, {}
        if path == "/api/v1/issues/categories":
            return 200, [CATEGORY, {**CATEGORY, "key": "parking", "name": "Parking", "active": False}], {}
        if path.startswith("/api/v1/issues/categories/"):
            return 200, {"key": path.rsplit("/", 1)[-1], **body}, {}
        if path == "/api/v1/auth/users":
            if method == "POST":
                return 201, {"id": PERSON, "status": "active", **body}, {}
            people = [
                {"id": PERSON, "display_name": "Lao Zhou 老周", "role": "resident", "phone": None,
                 "community_ids": [SHANGPINYUAN], "status": "active"},
                {"id": self.stub.user["id"], "display_name": "Admin", "role": self.stub.user["role"],
                 "phone": "139****0001", "community_ids": [], "status": "active"},
            ]  # fmt: skip
            return 200, people, {"X-Pagination": json.dumps({"total": 60})}
        if path.startswith("/api/v1/auth/users/"):
            if method == "DELETE":
                return 204, None, {}
            return 200, {"id": PERSON, "display_name": "Lao Zhou 老周", **body}, {}
        if path == "/api/v1/auth/api-keys":
            if method == "POST":
                return 201, {"id": KEY, "revoked_at": None, "created_at": None, "key": "lk_secret_once", **body}, {}
            return 200, [{"id": KEY, "name": "City hotline", "street_id": STREET, "community_ids": [],
                          "created_at": "2026-03-01T01:00:00+00:00", "revoked_at": None}], {}  # fmt: skip
        if path.startswith("/api/v1/auth/api-keys/"):
            return 200, {"id": KEY, "name": "City hotline", "revoked_at": "2026-03-02T00:00:00+00:00"}, {}
        return self.original(method, target, raw, headers)


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "phone": "13900000002", "password": "right-password"})
    assert response.status_code == 303


def as_role(role: str):
    @pytest.fixture
    def fixture(stub, client):
        admin = Admin(stub, role)
        sign_in(client)
        return admin

    return fixture


city_admin = as_role("city_admin")
official = as_role("street_official")
staff = as_role("community_staff")


def post(client, path: str, data: dict[str, Any]):
    # One session's CSRF token serves all its forms: read it once, from the smallest page.
    token = getattr(client, "csrf_token", None) or csrf_of(client.get("/admin/users/new").get_data(as_text=True))
    client.csrf_token = token
    return client.post(path, data={"csrf_token": token, **data})


def writes(admin: Admin) -> list[tuple[str, str, dict]]:
    return [w for w in admin.sent if not w[1].startswith("/api/v1/auth/log")]


# --- who may open what --------------------------------------------------------------------------------------


def test_a_resident_is_kept_out_of_the_administration(client, stub):
    sign_in(client)  # the stub's person is a resident
    for page in ("/admin", "/admin/directory", "/admin/organisations", "/admin/users", "/admin/api-keys"):
        assert client.get(page).status_code == 403, page


def test_each_role_is_offered_the_sections_the_api_lets_it_act_in(client, stub):
    admin = Admin(stub, "community_staff")
    sign_in(client)
    html = client.get("/admin").get_data(as_text=True)
    assert 'href="/admin/organisations"' in html and 'href="/admin/users"' in html
    assert 'href="/admin/categories"' not in html and 'href="/admin/api-keys"' not in html
    assert client.get("/admin/categories").status_code == 403
    assert client.get("/admin/directory").status_code == 403
    assert client.get("/admin/api-keys").status_code == 403
    assert 'href="/admin"' in client.get("/desk/signups").get_data(as_text=True)  # the desk links to it
    assert writes(admin) == []


def test_a_street_official_sees_their_street_but_not_the_categories_or_another_street(official, client):
    response = client.get("/admin/directory")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/admin/directory/streets/{STREET}")
    assert client.get("/admin/categories").status_code == 403
    assert client.get(f"/admin/directory/streets/{OTHER_STREET}").status_code == 404
    html = client.get(f"/admin/directory/streets/{STREET}").get_data(as_text=True)
    assert "Yucai 育才街社区" in html and "Rename the street" not in html  # streets are renamed by the city


# --- the directory ------------------------------------------------------------------------------------------


def test_the_city_admin_adds_a_street_a_community_and_a_compound(city_admin, client):
    response = post(client, "/admin/directory", {"name": "Dongta 东塔街道", "city": "Lingwu"})
    assert response.status_code == 303 and response.headers["Location"].endswith(OTHER_STREET)
    post(client, f"/admin/directory/streets/{STREET}", {"name": "Yucai 育才街社区"})
    post(client, f"/admin/directory/communities/{SHANGPINYUAN}", {"name": "North gate", "latitude": "38.12",
                                                                   "longitude": "106.33"})  # fmt: skip
    post(client, f"/admin/directory/compounds/{EAST_GATE}", {"name": "East gate 东门", "latitude": "38.2",
                                                             "longitude": "106.4"})  # fmt: skip
    post(client, f"/admin/directory/streets/{STREET}/rename", {"street-name": "Chengqu", "street-city": "Lingwu"})
    assert writes(city_admin) == [
        ("POST", "/api/v1/directory/streets", {"name": "Dongta 东塔街道", "city": "Lingwu"}),
        ("POST", "/api/v1/directory/communities", {"name": "Yucai 育才街社区", "street_id": STREET}),
        ("POST", "/api/v1/directory/compounds",
         {"name": "North gate", "community_id": SHANGPINYUAN, "latitude": 38.12, "longitude": 106.33}),
        ("PATCH", f"/api/v1/directory/compounds/{EAST_GATE}", {"name": "East gate 东门", "latitude": 38.2,
                                                               "longitude": 106.4}),
        ("PATCH", f"/api/v1/directory/streets/{STREET}", {"name": "Chengqu", "city": "Lingwu"}),
    ]  # fmt: skip


def test_a_mistake_is_named_on_its_field_and_nothing_is_sent(city_admin, client):
    response = post(client, f"/admin/directory/communities/{SHANGPINYUAN}", {"name": "", "latitude": "north"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'href="#name"' in html and 'href="#latitude"' in html and 'aria-invalid="true"' in html
    response = post(client, f"/admin/directory/communities/{SHANGPINYUAN}", {"name": "X", "latitude": "38.1"})
    assert response.status_code == 400 and 'href="#longitude"' in response.get_data(as_text=True)
    assert writes(city_admin) == []


def test_the_apis_refusal_is_shown_on_the_field_it_names(city_admin, client):
    city_admin.fail["/api/v1/directory/communities"] = (409, "conflict", {"name": ["already exists"]})
    response = post(client, f"/admin/directory/streets/{STREET}", {"name": "Yucai 育才街社区"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#name"' in html and "already exists" in html


# --- organisations ------------------------------------------------------------------------------------------


def test_organisations_are_listed_in_the_persons_scope_and_made_inactive(official, client):
    html = client.get("/admin/organisations?kind=bureau&name=Housing").get_data(as_text=True)
    query = next(q for p, q in official.queries if p == "/api/v1/directory/organisations")
    assert query["street_id"] == STREET and query["kind"] == "bureau" and query["name"] == "Housing"
    assert "Housing Bureau" in html and 'name="active" value="yes"' in html  # the inactive one offered back
    response = post(client, f"/admin/organisations/{BUREAU}/active", {"active": "yes"})
    assert response.status_code == 303
    assert writes(official) == [("PATCH", f"/api/v1/directory/organisations/{BUREAU}", {"active": True})]


def test_an_organisation_is_registered_kind_first_then_its_place(staff, client):
    html = client.get("/admin/organisations/new").get_data(as_text=True)
    assert 'name="kind"' in html and "property_company" in html and 'value="bureau"' not in html
    html = client.get("/admin/organisations/new?kind=property_company").get_data(as_text=True)
    assert "East gate 东门小区" in html and 'name="compound_ids"' in html  # their one community's compounds
    response = post(
        client,
        "/admin/organisations/new",
        {"kind": "owners_committee", "name": "East gate committee", "compound_ids": [EAST_GATE, WEST_GATE]},
    )
    assert response.status_code == 400 and 'href="#compound_ids"' in response.get_data(as_text=True)
    assert writes(staff) == []
    response = post(
        client,
        "/admin/organisations/new",
        {"kind": "property_company", "name": "Shangpin Property", "compound_ids": [EAST_GATE, WEST_GATE]},
    )
    assert response.status_code == 303
    assert writes(staff) == [
        (
            "POST",
            "/api/v1/directory/organisations",
            {"kind": "property_company", "name": "Shangpin Property", "compound_ids": [EAST_GATE, WEST_GATE]},
        )
    ]


def test_a_party_organisation_belongs_to_a_street_or_a_community_not_both(city_admin, client):
    response = post(
        client,
        "/admin/organisations/new",
        {"kind": "party_organisation", "name": "Party committee", "street_id": STREET, "community_id": YUCAI},
    )
    assert response.status_code == 400 and 'href="#street_id"' in response.get_data(as_text=True)
    post(client, "/admin/organisations/new", {"kind": "bureau", "name": "Housing Bureau", "street_id": ""})
    assert writes(city_admin) == [
        ("POST", "/api/v1/directory/organisations", {"kind": "bureau", "name": "Housing Bureau"})
    ]


# --- categories ---------------------------------------------------------------------------------------------


def test_the_city_admin_changes_a_categorys_deadlines(city_admin, client):
    html = client.get("/admin/categories").get_data(as_text=True)
    assert "/admin/categories/safety_hazard" in html and "tag-rejected" in html  # parking is not offered
    html = client.get("/admin/categories/safety_hazard").get_data(as_text=True)
    assert 'value="72"' in html and 'id="hours_urgent"' in html
    form = {
        "name": "Safety hazard",
        "default_tier": "community",
        "responsible_body": "community",
        "hours_low": "120",
        "hours_normal": "48",
        "hours_high": "12",
        "hours_urgent": "2",
        "publication": "public",
        "position": "1",
        "active": "yes",
    }
    response = post(client, "/admin/categories/safety_hazard", {**form, "hours_urgent": "0", "default_tier": "moon"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#hours_urgent"' in html and 'href="#default_tier"' in html
    assert writes(city_admin) == []
    assert post(client, "/admin/categories/safety_hazard", form).status_code == 303
    assert writes(city_admin) == [
        (
            "PUT",
            "/api/v1/issues/categories/safety_hazard",
            {
                "name": "Safety hazard",
                "default_tier": "community",
                "responsible_body": "community",
                "deadline_hours": {"low": 120, "normal": 48, "high": 12, "urgent": 2},
                "active": True,
                "position": 1,
                "publication": "public",
            },
        )
    ]
    assert post(client, "/admin/categories/no_such_one", form).status_code == 404  # editing never creates
    response = post(client, "/admin/categories/new", {**form, "key": "parking"})
    assert response.status_code == 400 and 'href="#key"' in response.get_data(as_text=True)  # already there
    assert post(client, "/admin/categories/new", {**form, "key": "Noise", "active": ""}).status_code == 303
    assert writes(city_admin)[-1][1:] == ("/api/v1/issues/categories/noise", {**writes(city_admin)[0][2],
                                                                               "active": False})  # fmt: skip


# --- people -------------------------------------------------------------------------------------------------


def test_people_are_listed_with_filters_and_pages(official, client):
    html = client.get(f"/admin/users?role=resident&status=active&community_id={YUCAI}&page=2").get_data(as_text=True)
    query = next(q for p, q in official.queries if p == "/api/v1/auth/users")
    assert query == {"role": "resident", "status": "active", "community_id": YUCAI, "page": "2", "page_size": "25"}
    assert "Lao Zhou 老周" in html and 'rel="next"' in html and 'rel="prev"' in html
    assert f"/admin/users/{PERSON}/lockouts" in html
    assert f"/admin/users/{official.stub.user['id']}/status" not in html  # not oneself


def test_staff_disable_someone_and_lift_a_lockout(official, client):
    back = "/admin/users?status=active"
    response = post(client, f"/admin/users/{PERSON}/status", {"status": "disabled", "back": back})
    assert response.status_code == 303 and response.headers["Location"].endswith(back)
    response = post(client, f"/admin/users/{PERSON}/lockouts", {"back": "https://elsewhere.example/"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/users")
    assert writes(official) == [
        ("PATCH", f"/api/v1/auth/users/{PERSON}", {"status": "disabled"}),
        ("DELETE", f"/api/v1/auth/users/{PERSON}/lockouts", {}),
    ]
    official.fail["/lockouts"] = (404, "not_found", None)
    response = post(client, f"/admin/users/{PERSON}/lockouts", {})
    assert response.status_code == 303
    assert 'class="banner error"' in client.get("/admin/users").get_data(as_text=True)


def test_community_staff_register_a_resident_without_a_phone_or_password(staff, client):
    html = client.get("/admin/users/new").get_data(as_text=True)
    assert 'value="resident"' in html and 'value="street_official"' not in html
    person = {"display_name": "Grandma Wang 王奶奶", "role": "resident", "community_id": SHANGPINYUAN}
    response = post(client, "/admin/users/new", {**person, "phone": "", "password": ""})
    assert response.status_code == 303
    assert writes(staff) == [
        ("POST", "/api/v1/auth/users", {"display_name": "Grandma Wang 王奶奶", "role": "resident",
                                        "community_ids": [SHANGPINYUAN], "locale": "zh-CN"}),
    ]  # fmt: skip


def test_a_street_official_may_not_create_an_official_and_a_bureau_account_names_its_bureau(official, client):
    response = post(client, "/admin/users/new", {"display_name": "Ma", "role": "street_official", "street_id": STREET})
    assert response.status_code == 400 and 'href="#role"' in response.get_data(as_text=True)
    response = post(client, "/admin/users/new", {"display_name": "Wu", "role": "agency", "organisation_id": PARTY})
    assert response.status_code == 400 and 'href="#organisation_id"' in response.get_data(as_text=True)
    assert writes(official) == []
    official.fail["/api/v1/auth/users"] = (409, "conflict", {"phone": ["an account with this phone number exists"]})
    response = post(client, "/admin/users/new", {"display_name": "Wu", "role": "agency", "organisation_id": BUREAU,
                                                 "phone": "13912345678", "password": "long-enough-1"})  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#phone"' in html and "phone number exists" in html
    assert writes(official)[-1][2] == {
        "display_name": "Wu",
        "role": "agency",
        "phone": "13912345678",
        "organisation_id": BUREAU,
        "password": "long-enough-1",
        "locale": "zh-CN",
    }


# --- API keys -----------------------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_revoked(official, client):
    html = client.get("/admin/api-keys").get_data(as_text=True)
    assert "City hotline" in html and f"/admin/api-keys/{KEY}/revoke" in html and 'name="street_id"' not in html
    response = post(client, "/admin/api-keys", {"name": "Hotline 12345", "community_ids": [YUCAI]})
    assert response.status_code == 200 and "lk_secret_once" in response.get_data(as_text=True)
    assert "lk_secret_once" not in client.get("/admin/api-keys").get_data(as_text=True)
    response = post(client, "/admin/api-keys", {"name": "X", "community_ids": ["not-one-of-ours"]})
    assert response.status_code == 400 and 'href="#community_ids"' in response.get_data(as_text=True)
    assert post(client, f"/admin/api-keys/{KEY}/revoke", {}).status_code == 303
    assert writes(official) == [
        ("POST", "/api/v1/auth/api-keys", {"name": "Hotline 12345", "street_id": STREET, "community_ids": [YUCAI]}),
        ("DELETE", f"/api/v1/auth/api-keys/{KEY}", {}),
    ]
