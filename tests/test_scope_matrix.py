"""Every role, through the gateway, with accounts made and logged in the way people really get them:
an own-scope request succeeds, a foreign-scope one is refused (403, or 404 that does not confirm
the thing exists). Real processes on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import uuid

import pytest
import requests

from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class City:
    """Two streets with one community each, and a person of every role, logged in."""

    def __init__(self, api: str, admin_token: str) -> None:
        self.api = api
        self.admin = bearer(admin_token)
        self.tokens: dict[str, dict] = {"city_admin": self.admin}
        self.phone = 13800000000

    def post(self, path: str, body: dict, headers: dict) -> dict:
        response = requests.post(f"{self.api}{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
        return response.json()

    def person(self, name: str, role: str, creator: dict, **scope) -> dict:
        self.phone += 1
        password = "linli-pass-1"
        user = self.post(
            "/auth/users",
            {"display_name": name, "role": role, "phone": str(self.phone), "password": password, **scope},
            creator,
        )
        login = self.post("/auth/login", {"phone": str(self.phone), "password": password}, {})
        self.tokens[name] = bearer(login["access_token"])
        return user

    def build(self) -> None:
        self.street_a = self.post("/directory/streets", {"name": "Chengqu"}, self.admin)["id"]
        self.street_b = self.post("/directory/streets", {"name": "Yucai"}, self.admin)["id"]
        self.community_a = self.post(
            "/directory/communities", {"street_id": self.street_a, "name": "Xihu"}, self.admin
        )["id"]
        self.community_b = self.post(
            "/directory/communities", {"street_id": self.street_b, "name": "Yucai Street"}, self.admin
        )["id"]
        self.person("official_a", "street_official", self.admin, street_id=self.street_a)
        self.person("official_b", "street_official", self.admin, street_id=self.street_b)
        self.person("staff_a", "community_staff", self.tokens["official_a"], community_ids=[self.community_a])
        self.person("staff_b", "community_staff", self.tokens["official_b"], community_ids=[self.community_b])
        self.person("resident_a", "resident", self.tokens["staff_a"], community_ids=[self.community_a])
        self.person("resident_b", "resident", self.tokens["staff_b"], community_ids=[self.community_b])
        # Organisations are registered by those who own them, and accounts act for registered ones.
        compound_a = self.post("/directory/compounds", {"community_id": self.community_a, "name": "Garden"}, self.admin)
        compound_b = self.post("/directory/compounds", {"community_id": self.community_b, "name": "Lake"}, self.admin)
        self.company_a = self.organisation("property_company", "Shangpin Property", "staff_a", [compound_a["id"]])
        self.company_b = self.organisation("property_company", "Yucai Property", "staff_b", [compound_b["id"]])
        self.bureau = self.organisation("bureau", "Housing and Construction Bureau", "city_admin")
        environment = self.organisation("bureau", "Environment Bureau", "city_admin")
        self.person(
            "manager_a",
            "property_manager",
            self.tokens["official_a"],
            community_ids=[self.community_a],
            organisation_id=self.company_a,
        )
        self.person(
            "manager_b",
            "property_manager",
            self.tokens["official_b"],
            community_ids=[self.community_b],
            organisation_id=self.company_b,
        )
        self.person("housing_bureau", "agency", self.admin, organisation_id=self.bureau)
        self.person("other_bureau", "agency", self.admin, organisation_id=environment)

    def organisation(self, kind: str, name: str, creator: str, compound_ids: list[str] = ()) -> str:
        body = {"kind": kind, "name": name, "compound_ids": list(compound_ids)}
        return self.post("/directory/organisations", body, self.tokens[creator])["id"]


def test_every_role_reaches_its_own_scope_and_not_another(platform, token_signer):
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    platform.start_web("issues")
    platform.start_worker("issues")
    api = gateway.url + "/api/v1"
    city = City(api, token_signer.sign(user_id=str(uuid.uuid4()), role="city_admin"))
    city.build()
    t = city.tokens

    def report(who: str, community: str) -> requests.Response:
        return requests.post(
            f"{api}/issues/",
            headers=t[who],
            json={
                "community_id": community,
                "title": "Cultural wall is unsafe",
                "category": "safety_hazard",
                "description": "Tiles fell off the cultural wall; a child was nearly hit.",
                "urgency": "urgent",
            },
        )

    # The issues service learns the communities from the directory events.
    wall = eventually(
        lambda: (r := report("resident_a", city.community_a)).status_code == 201 and r.json(),
        timeout=30,
        interval=0.2,
        what="community A in the issues replica",
    )
    roof = eventually(
        lambda: (r := report("resident_b", city.community_b)).status_code == 201 and r.json(),
        timeout=30,
        interval=0.2,
        what="community B in the issues replica",
    )

    # Residents: their own community, not another (writes 403, reads 404).
    assert report("resident_a", city.community_b).status_code == 403
    assert requests.get(f"{api}/issues/{wall['id']}", headers=t["resident_a"]).status_code == 200
    assert requests.get(f"{api}/issues/{wall['id']}", headers=t["resident_b"]).status_code == 404

    # Community staff: their community's list; another community refused.
    own = requests.get(f"{api}/issues/", params={"community_id": city.community_a}, headers=t["staff_a"])
    assert own.status_code == 200 and [i["id"] for i in own.json()] == [wall["id"]]
    foreign = requests.get(f"{api}/issues/", params={"community_id": city.community_b}, headers=t["staff_a"])
    assert foreign.status_code in (403, 404) or foreign.json() == []
    assert requests.get(f"{api}/issues/{roof['id']}", headers=t["staff_a"]).status_code == 404

    # Street officials: every community of their street, nothing of another street.
    street = requests.get(f"{api}/issues/", params={"street_id": city.street_a}, headers=t["official_a"])
    assert street.status_code == 200 and [i["id"] for i in street.json()] == [wall["id"]]
    other = requests.get(f"{api}/issues/", params={"street_id": city.street_b}, headers=t["official_a"])
    assert other.status_code in (403, 404) or other.json() == []
    assert requests.get(f"{api}/issues/{roof['id']}", headers=t["official_a"]).status_code == 404

    # Property companies and bureaus: what is assigned to them, not what is assigned to others.
    # Only a registered company serving the community is assigned (the issues service learns the
    # register from the directory events).
    to_other_company = requests.put(
        f"{api}/issues/{wall['id']}/assignment",
        headers=t["staff_a"],
        json={"assignee_type": "property_company", "assignee_id": city.company_b},
    )
    assert to_other_company.status_code == 422 and "assignee_id" in to_other_company.json()["error"]["fields"]
    eventually(
        lambda: (
            requests.put(
                f"{api}/issues/{wall['id']}/assignment",
                headers=t["staff_a"],
                json={"assignee_type": "property_company", "assignee_id": city.company_a},
            ).status_code
            == 200
        ),
        timeout=30,
        interval=0.2,
        what="company A in the issues replica",
    )
    assert requests.get(f"{api}/issues/{wall['id']}", headers=t["manager_a"]).status_code == 200
    assert requests.get(f"{api}/issues/{wall['id']}", headers=t["manager_b"]).status_code == 404
    to_bureau = requests.put(
        f"{api}/issues/{roof['id']}/assignment",
        headers=t["official_b"],
        json={"assignee_type": "bureau", "assignee_id": city.bureau},
    )
    assert to_bureau.status_code == 200, to_bureau.text
    assert requests.get(f"{api}/issues/{roof['id']}", headers=t["housing_bureau"]).status_code == 200
    assert requests.get(f"{api}/issues/{roof['id']}", headers=t["other_bureau"]).status_code == 404

    # The city admin sees the whole city.
    everything = requests.get(f"{api}/issues/", headers=t["city_admin"])
    assert {i["id"] for i in everything.json()} == {wall["id"], roof["id"]}

    # Accounts follow the same lines at the gateway itself.
    resident_b = requests.get(f"{api}/auth/users", params={"community_id": city.community_b}, headers=t["staff_a"])
    assert resident_b.status_code == 403
    assert requests.get(f"{api}/auth/users", headers=t["resident_a"]).status_code == 403
    official_view = requests.get(f"{api}/auth/users", headers=t["official_a"]).json()
    assert {u["display_name"] for u in official_view} >= {"staff_a", "resident_a", "manager_a"}
    assert not {u["display_name"] for u in official_view} & {"staff_b", "resident_b", "manager_b"}
    # Directory changes: a street official manages their street only.
    assert (
        requests.post(
            f"{api}/directory/communities", json={"street_id": city.street_a, "name": "New"}, headers=t["official_a"]
        ).status_code
        == 201
    )
    assert (
        requests.post(
            f"{api}/directory/communities", json={"street_id": city.street_b, "name": "New"}, headers=t["official_a"]
        ).status_code
        == 403
    )
    # Statistics: staff their community, officials their street.
    assert requests.get(f"{api}/stats/overview", headers=t["official_a"]).status_code == 200
    assert (
        requests.get(f"{api}/stats/overview", params={"street_id": city.street_b}, headers=t["official_a"]).status_code
        == 403
    )
    assert (
        requests.get(
            f"{api}/stats/overview", params={"community_id": city.community_b}, headers=t["staff_a"]
        ).status_code
        == 403
    )
    assert requests.get(f"{api}/stats/overview", headers=t["resident_a"]).status_code == 403
    # Organisations: an official cannot make accounts for another street's company or a city-wide
    # bureau; staff register their compounds' bodies, not bureaus.
    for body in (
        {"role": "property_manager", "community_ids": [city.community_a], "organisation_id": city.company_b},
        {"role": "agency", "organisation_id": city.bureau},
    ):
        made = requests.post(f"{api}/auth/users", json={"display_name": "Intruder", **body}, headers=t["official_a"])
        assert made.status_code in (403, 422) and "organisation_id" in str(made.json()["error"]), made.text
    bureau = requests.post(
        f"{api}/directory/organisations", json={"kind": "bureau", "name": "Own Bureau"}, headers=t["staff_a"]
    )
    assert bureau.status_code == 403
