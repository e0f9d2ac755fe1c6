"""The first flow through everything: the gateway's directory reaches every service's replica.

Real processes: the gateway under gunicorn and its worker (outbox relay), and each service's
worker (consumer), on PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import create_engine, text

from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
CONSUMERS = ("issues", "meetings", "activities", "notifications")


def replica(platform, service: str, table: str) -> dict[str, dict]:
    engine = create_engine(platform.database_url(service))
    key = {"directory_streets": "street_id", "directory_communities": "community_id"}.get(table, "compound_id")
    try:
        with engine.connect() as conn:
            return {row[key]: dict(row) for row in conn.execute(text(f"SELECT * FROM {table}")).mappings()}
    finally:
        engine.dispose()


def test_directory_reaches_every_service_and_republish_builds_a_new_replica(platform, token_signer):
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    for service in ("issues", "meetings", "notifications"):  # activities joins later
        platform.start_worker(service)
    api = gateway.url + "/api/v1/directory"
    admin = {"Authorization": "Bearer " + token_signer.sign(user_id="admin-1", role="city_admin")}

    street = requests.post(f"{api}/streets", json={"name": "Chengqu Street", "city": "Lingwu"}, headers=admin)
    assert street.status_code == 201, street.text
    street_id = street.json()["id"]
    community = requests.post(
        f"{api}/communities", json={"street_id": street_id, "name": "Xihu Community"}, headers=admin
    )
    assert community.status_code == 201, community.text
    community_id = community.json()["id"]
    compound = requests.post(
        f"{api}/compounds",
        json={"community_id": community_id, "name": "Shangpinyuan", "latitude": 38.09, "longitude": 106.33},
        headers=admin,
    )
    assert compound.status_code == 201, compound.text
    assert compound.headers["X-Request-ID"]

    for service in ("issues", "meetings", "notifications"):
        communities = eventually(lambda s=service: replica(platform, s, "directory_communities"), what=service)
        assert communities[community_id]["street_id"] == street_id
        assert communities[community_id]["revision"] == 1
        eventually(lambda s=service: compound.json()["id"] in replica(platform, s, "directory_compounds"))

    renamed = requests.patch(f"{api}/communities/{community_id}", json={"name": "Xihu"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["revision"] == 2
    for service in ("issues", "meetings", "notifications"):
        eventually(
            lambda s=service: replica(platform, s, "directory_communities")[community_id]["name"] == "Xihu",
            what=f"rename reaches {service}",
        )

    # A service that was not there when the directory was built: its replica starts empty...
    platform.start_worker("activities")
    assert replica(platform, "activities", "directory_communities") == {}
    # ...and the republish command fills it, without disturbing the others' newer revisions.
    out = platform.command("gateway", "republish-directory")
    assert "3 directory events" in out.stdout
    communities = eventually(lambda: replica(platform, "activities", "directory_communities"), what="republish")
    assert communities[community_id] == {
        "community_id": community_id,
        "street_id": street_id,
        "name": "Xihu",
        "revision": 2,
    }
    eventually(lambda: street_id in replica(platform, "activities", "directory_streets"))
    eventually(lambda: compound.json()["id"] in replica(platform, "activities", "directory_compounds"))
    assert replica(platform, "issues", "directory_communities")[community_id]["revision"] == 2


def test_directory_refuses_bad_input_and_wrong_roles_and_changes_nothing(platform, token_signer):
    gateway = platform.start_web("gateway")
    api = gateway.url + "/api/v1/directory"
    admin = {"Authorization": "Bearer " + token_signer.sign(user_id="admin-1", role="city_admin")}
    street_id = requests.post(f"{api}/streets", json={"name": "Chengqu"}, headers=admin).json()["id"]

    bad = requests.post(f"{api}/communities", json={"street_id": "not-a-uuid", "name": ""}, headers=admin)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"street_id", "name"}

    unknown = requests.post(
        f"{api}/communities", json={"street_id": "7a0c4f7e-0000-4000-8000-000000000000", "name": "X"}, headers=admin
    )
    assert unknown.status_code == 422 and "street_id" in unknown.json()["error"]["fields"]

    anonymous = requests.post(f"{api}/streets", json={"name": "Another"})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    resident = {"Authorization": "Bearer " + token_signer.sign(user_id="r1", role="resident", community_ids=["c"])}
    forbidden = requests.post(f"{api}/streets", json={"name": "Another"}, headers=resident)
    assert forbidden.status_code == 403
    official = {
        "Authorization": "Bearer " + token_signer.sign(user_id="o1", role="street_official", street_id="other-street")
    }
    foreign = requests.post(f"{api}/communities", json={"street_id": street_id, "name": "Y"}, headers=official)
    assert foreign.status_code == 403
    tampered = admin["Authorization"][:-4] + "AAAA"
    assert requests.post(f"{api}/streets", json={"name": "Z"}, headers={"Authorization": tampered}).status_code == 401

    duplicate = requests.post(f"{api}/streets", json={"name": "Chengqu"}, headers=admin)
    assert duplicate.status_code == 409

    listing = requests.get(f"{api}/communities", params={"street_id": street_id})
    assert listing.status_code == 200 and listing.json() == []
    streets = requests.get(f"{api}/streets").json()
    assert [s["name"] for s in streets] == ["Chengqu"]
    engine = create_engine(platform.database_url("gateway"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 1  # the one street
    engine.dispose()

    assert requests.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = requests.get(gateway.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = requests.get(gateway.url + "/metrics").text
    assert "linli_http_requests_total" in metrics
    spec = requests.get(gateway.url + "/openapi.json").json()
    assert "/api/v1/directory/communities" in spec["paths"]
