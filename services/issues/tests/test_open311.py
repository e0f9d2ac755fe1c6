"""Open311 GeoReport v2, checked field by field against the spec, in JSON and in XML."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import pytest

pytestmark = pytest.mark.integration

BASE = "/open311/v2"
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]


def xml(response) -> ElementTree.Element:
    assert response.mimetype == "text/xml", response.get_data(as_text=True)
    return ElementTree.fromstring(response.data)


def post_request(client, headers, fmt="json", **form):
    values = {"service_code": "repairs_facilities", "lat": "38.1001", "long": "106.3401",
              "description": "Street lamp at the north gate is out", **form}  # fmt: skip
    return client.post(f"{BASE}/requests.{fmt}", data=values, headers=headers)


def test_discovery_and_services_are_public_in_json_and_xml(client):
    discovery = client.get(f"{BASE}/discovery.json")
    assert discovery.status_code == 200
    body = discovery.get_json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    [endpoint] = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert endpoint["formats"] == ["application/json", "text/xml"]
    root = xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == ["application/json", "text/xml"]

    services = client.get(f"{BASE}/services.json").get_json()
    assert len(services) == 8
    first = services[0]
    assert set(first) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert (first["service_code"], first["service_name"], first["metadata"], first["type"]) == (
        "safety_hazard",
        "Safety hazard",
        True,
        "realtime",
    )
    root = xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services" and len(root.findall("service")) == 8
    service = root.find("service")
    assert service.findtext("service_code") == "safety_hazard"
    assert service.findtext("metadata") == "true" and service.findtext("type") == "realtime"


def test_service_definition_lists_attributes(client):
    definition = client.get(f"{BASE}/services/repairs_facilities.json").get_json()
    assert definition["service_code"] == "repairs_facilities"
    urgency = definition["attributes"][0]
    assert set(urgency) == {
        "variable", "code", "datatype", "required", "datatype_description", "order", "description", "values",
    }  # fmt: skip
    assert (urgency["code"], urgency["datatype"], urgency["required"]) == ("urgency", "singlevaluelist", False)
    assert [v["key"] for v in urgency["values"]] == ["low", "normal", "high", "urgent"]
    root = xml(client.get(f"{BASE}/services/repairs_facilities.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "repairs_facilities"
    attribute = root.find("attributes/attribute")
    assert attribute.findtext("code") == "urgency" and attribute.findtext("variable") == "true"
    assert [v.findtext("key") for v in attribute.find("values")] == ["low", "normal", "high", "urgent"]
    missing = client.get(f"{BASE}/services/unicorns.json")
    assert missing.status_code == 404 and missing.get_json() == [
        {"code": 404, "description": "service_code unicorns not found"}
    ]
    root = xml(client.get(f"{BASE}/services/unicorns.xml"))
    assert root.tag == "errors" and root.find("error").findtext("code") == "404"


def test_post_request_needs_a_key_and_answers_the_spec_error_format(client, tokens, database):
    missing = post_request(client, {})
    assert missing.status_code == 403
    [error] = missing.get_json()
    assert error["code"] == 403 and "api_key" in error["description"]
    root = xml(post_request(client, {}, fmt="xml"))
    assert root.tag == "errors" and root.find("error/code").text == "403"
    forged = post_request(client, {"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 403

    key = tokens.api_client()
    for form, field in [
        ({"service_code": ""}, "service_code"),
        ({"lat": "", "long": ""}, "location"),
        ({"lat": "north"}, "lat"),
        ({"lat": "91"}, "lat"),
        ({"description": "x" * 4001}, "description"),
        ({"lat": "nan", "long": "inf"}, "lat"),
        ({"lat": "", "long": "106.3"}, "lat and long"),
        ({"lat": "38.1", "long": ""}, "lat and long"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"attribute[urgency]": "whenever"}, "urgency"),
    ]:
        response = post_request(client, key, **form)
        assert response.status_code == 400, (form, response.get_json())
        [error] = response.get_json()
        assert error["code"] == 400 and field in error["description"], (form, error)
    # An unknown service is 404 (the spec's "service_code ... not found").
    unknown = post_request(client, key, service_code="unicorns")
    assert unknown.status_code == 404 and "unicorns" in unknown.get_json()[0]["description"]
    assert client.get(f"{BASE}/requests.json").get_json() == []


def test_post_request_creates_an_issue_in_the_nearest_compound_of_the_clients_scope(client, tokens, outbox):
    created = post_request(client, tokens.api_client(), **{"attribute[urgency]": "urgent"})
    assert created.status_code == 201, created.get_json()
    [body] = created.get_json()
    assert set(body) == {"service_request_id", "service_notice", "account_id"}
    request_id = body["service_request_id"]
    issue = client.get(f"/{request_id}", headers=tokens.staff()).get_json()
    assert issue["community_id"] == tokens.d.community_a1 and issue["compound_id"] == tokens.d.compound_a1
    assert issue["channel"] == "open311" and issue["urgency"] == "urgent"
    assert outbox("issues.issue.reported")[0][1]["channel"] == "open311"

    # XML answers the same way; a client outside the location's scope cannot post there.
    root = xml(post_request(client, tokens.api_client(), fmt="xml", address_id=tokens.d.compound_a1_east))
    assert root.tag == "service_requests" and root.find("request/service_request_id").text
    foreign = post_request(client, tokens.api_client([tokens.d.community_b1]), address_id=tokens.d.compound_a1)
    assert foreign.status_code == 403 and foreign.get_json()[0]["code"] == 403

    token = client.get(f"{BASE}/tokens/{request_id}.json").get_json()
    assert token == [{"service_request_id": request_id, "token": request_id}]


def test_get_requests_fields_filters_and_formats(client, tokens, report, clock):
    repairs, _ = report()
    clock.advance(hours=1)
    parking, _ = report(title="Van blocks the gate", category="parking", compound_id=None)
    staff = tokens.staff()
    client.post(f"/{parking['id']}/status", json={"status": "rejected", "reason": "not a public space"}, headers=staff)

    listed = client.get(f"{BASE}/requests.json").get_json()
    assert [r["service_request_id"] for r in listed] == [parking["id"], repairs["id"]]
    row = listed[1]
    assert list(row) == REQUEST_FIELDS
    assert row["status"] == "open" and row["service_code"] == "repairs_facilities"
    assert row["service_name"] == "Repairs and facilities"
    assert row["requested_datetime"] == "2026-11-02T01:00:00Z"
    assert row["expected_datetime"] == "2026-11-07T01:00:00Z"
    assert row["agency_responsible"] == "property_company" and row["address_id"] == tokens.d.compound_a1
    assert listed[0]["status"] == "closed" and listed[0]["status_notes"] == "not a public space"

    def ids(query: str) -> list[str]:
        return [r["service_request_id"] for r in client.get(f"{BASE}/requests.json?{query}").get_json()]

    assert ids("status=open") == [repairs["id"]]
    assert ids("status=closed") == [parking["id"]]
    assert ids("status=open,closed&service_code=parking") == [parking["id"]]
    assert ids("start_date=2026-11-02T01:30:00Z") == [parking["id"]]
    assert ids("end_date=2026-11-02T01:30:00Z") == [repairs["id"]]
    assert ids(f"service_request_id={repairs['id']},{uuid.uuid4()}&status=closed") == [repairs["id"]]
    bad = client.get(f"{BASE}/requests.json?start_date=yesterday")
    assert bad.status_code == 400 and "start_date" in bad.get_json()[0]["description"]
    assert client.get(f"{BASE}/requests.json?status=lost").status_code == 400

    root = xml(client.get(f"{BASE}/requests.xml"))
    assert root.tag == "service_requests"
    requests = root.findall("request")
    assert [r.findtext("service_request_id") for r in requests] == [parking["id"], repairs["id"]]
    assert [child.tag for child in requests[1]] == REQUEST_FIELDS
    assert requests[1].findtext("status") == "open" and requests[1].findtext("lat") == ""  # null is an empty element

    one = client.get(f"{BASE}/requests/{repairs['id']}.json").get_json()
    assert len(one) == 1 and one[0]["service_request_id"] == repairs["id"]
    assert xml(client.get(f"{BASE}/requests/{repairs['id']}.xml")).find("request/status").text == "open"
    gone = client.get(f"{BASE}/requests/{uuid.uuid4()}.json")
    assert gone.status_code == 404 and gone.get_json()[0]["code"] == 404
    assert client.get(f"{BASE}/requests/nonsense.xml").status_code == 404


def test_service_request_updates_show_the_detailed_lifecycle(client, tokens, report, clock):
    issue, _ = report()
    staff = tokens.staff()
    clock.advance(hours=1)
    client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=staff)
    client.post(f"/{issue['id']}/updates", json={"kind": "note", "body": "internal only"}, headers=staff)
    clock.advance(hours=1)
    client.post(f"/{issue['id']}/status", json={"status": "resolved", "summary": "roof sealed"}, headers=staff)

    clock.advance(minutes=5)
    client.post(f"/{issue['id']}/updates", json={"kind": "reply", "body": "thank you all"}, headers=staff)

    updates = client.get(f"{BASE}/servicerequestupdates.json?service_request_id={issue['id']}").get_json()
    assert [u["detailed_status"] for u in updates] == ["reply", "resolved", "accepted", "report"]
    assert updates[0]["status"] == "closed"  # a reply after the resolution: the request was closed then
    updates = updates[1:]
    newest = updates[0]
    assert set(newest) == {
        "update_id", "service_request_id", "status", "updated_datetime", "description", "media_url", "detailed_status",
    }  # fmt: skip
    assert newest["status"] == "closed" and newest["description"] == "roof sealed"
    assert newest["updated_datetime"] == "2026-11-02T03:00:00Z"
    assert updates[1]["status"] == "open"
    assert all("internal" not in (u["description"] or "") for u in updates)
    root = xml(client.get(f"{BASE}/servicerequestupdates.xml?service_request_id={issue['id']}"))
    assert root.tag == "service_request_updates"
    statuses = [u.findtext("detailed_status") for u in root.findall("request_update")]
    assert statuses == ["reply", "resolved", "accepted", "report"]
