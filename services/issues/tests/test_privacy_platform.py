"""Anonymity and publication end to end: the gateway and the issues processes on SQLite (as `make
run` starts them), a resident reporting anonymously and by name, a neighbour, staff and an Open311
reader, all through the gateway."""

from __future__ import annotations

import uuid

import pytest
import requests

from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
PHONE = "13912345678"


def test_anonymity_and_publication_through_the_gateway(sqlite_platform, token_signer):
    platform = sqlite_platform
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    platform.start_worker("issues")
    platform.start_web("issues")
    api = gateway.url + "/api/v1"

    def bearer(role: str, user_id: str | None = None, **claims) -> dict[str, str]:
        token = token_signer.sign(user_id=user_id or str(uuid.uuid4()), role=role, **claims)
        return {"Authorization": f"Bearer {token}"}

    admin = bearer("city_admin")

    def made(path: str, body: dict) -> str:
        response = requests.post(f"{api}/directory/{path}", json=body, headers=admin, timeout=60)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    street = made("streets", {"name": "Yucai Street", "city": "Lingwu"})
    community = made("communities", {"street_id": street, "name": "Yucai"})

    # The city publishes repairs; everything else keeps its default (community; private about a person).
    [repairs] = [
        c for c in requests.get(f"{api}/issues/categories", timeout=60).json() if c["key"] == "repairs_facilities"
    ]
    body = {k: v for k, v in repairs.items() if k not in ("key", "label")} | {"publication": "public"}
    assert requests.put(f"{api}/issues/categories/repairs_facilities", json=body, headers=admin, timeout=60).ok

    reporter_id = str(uuid.uuid4())
    reporter = bearer("resident", reporter_id, community_ids=[community])

    def report(**fields) -> dict | None:
        body = {"community_id": community, "title": "Lift broken", "category": "repairs_facilities", **fields}
        response = requests.post(f"{api}/issues", json=body, headers=reporter, timeout=60)
        return response.json() if response.status_code == 201 else None  # 422 until the replica has it

    named = eventually(lambda: report(description=f"Lift in block 3 stuck, call {PHONE}"), what="the replica")
    hidden = report(description=f"The manager shouts at us, I am on {PHONE}", anonymous=True)
    assert hidden is not None
    assert (named["visibility"], hidden["visibility"]) == ("public", "private")

    neighbour = bearer("resident", community_ids=[community])
    for path in ("", "/updates", "/photos"):
        response = requests.get(f"{api}/issues/{hidden['id']}{path}", headers=neighbour, timeout=60)
        assert response.status_code == 404, (path, response.text)
    listed = requests.get(f"{api}/issues", headers=neighbour, timeout=60).json()
    assert [i["id"] for i in listed] == [named["id"]]
    assert PHONE not in requests.get(f"{api}/issues/{named['id']}", headers=neighbour, timeout=60).text
    timeline = requests.get(f"{api}/issues/{named['id']}/updates", headers=neighbour, timeout=60).json()
    assert timeline[0]["author_id"] == reporter_id  # reported by name: no secret

    staff = bearer("community_staff", community_ids=[community])
    seen = requests.get(f"{api}/issues/{hidden['id']}", headers=staff, timeout=60).json()
    assert seen["reporter_id"] == reporter_id and PHONE in seen["description"]
    entries = requests.get(f"{api}/issues/{hidden['id']}/updates", headers=staff, timeout=60).json()
    assert entries[0]["author_id"] == reporter_id

    # Open311, without a key: the public issue only, its number masked; only public services.
    requests_json = requests.get(f"{gateway.url}/open311/v2/requests.json", timeout=60)
    assert requests_json.status_code == 200, requests_json.text
    assert [r["service_request_id"] for r in requests_json.json()] == [named["id"]]
    assert PHONE not in requests_json.text and reporter_id not in requests_json.text
    assert requests.get(f"{gateway.url}/open311/v2/requests/{hidden['id']}.json", timeout=60).status_code == 404
    services = requests.get(f"{gateway.url}/open311/v2/services.json", timeout=60).json()
    assert [s["service_code"] for s in services] == ["repairs_facilities"]

    # Search through the gateway: a neighbour finds the named report only, the staff both, nobody's
    # name in either; meetings and activities are not running here, and the answer says so.
    def search(headers: dict[str, str], q: str) -> dict:
        response = requests.get(f"{api}/search", params={"q": q}, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    found = search(neighbour, "Lift")
    assert [h["id"] for h in found["hits"]] == [named["id"]] and PHONE not in str(found)
    assert found["hits"][0]["community_name"] == "Yucai"
    assert found["complete"] is False
    assert sorted(m["service"] for m in found["missing"]) == ["activities", "meetings"]
    assert {h["id"] for h in search(staff, "lift")["hits"]} == {named["id"], hidden["id"]}
    assert reporter_id not in str(search(staff, "lift"))
    assert (
        search(bearer("resident", community_ids=[made("communities", {"street_id": street, "name": "B"})]), "Lift")[
            "hits"
        ]
        == []
    )
