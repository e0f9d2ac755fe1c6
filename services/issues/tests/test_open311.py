"""Open311 GeoReport v2, checked field by field against the spec, in JSON and in XML."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from xml.etree import ElementTree

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("published")]

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


# --- the public address ---------------------------------------------------------------------------------
def test_discovery_advertises_the_public_address_never_the_services_own(client, monkeypatch, env, clock):
    plain = client.get(f"{BASE}/discovery.json").get_json()["endpoints"][0]["url"]
    assert plain == BASE  # no public address known: relative to the host the client used
    forwarded = {"X-Forwarded-Host": "linli.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/"}
    url = client.get(f"{BASE}/discovery.json", headers=forwarded).get_json()["endpoints"][0]["url"]
    assert url == "https://linli.example.org/open311/v2"
    behind = {"X-Forwarded-Host": "city.example, 10.0.0.5", "X-Forwarded-Proto": "gopher", "X-Forwarded-Prefix": "/p"}
    url = client.get(f"{BASE}/discovery.json", headers=behind).get_json()["endpoints"][0]["url"]
    assert url == "http://city.example/p/open311/v2"  # the client-most host; an unknown scheme is not echoed
    forged = {"X-Forwarded-Host": "evil.example/x?y=<z>"}
    assert client.get(f"{BASE}/discovery.json", headers=forged).get_json()["endpoints"][0]["url"] == BASE
    root = xml(client.get(f"{BASE}/discovery.xml", headers=forwarded))
    assert root.findtext("endpoints/endpoint/url") == "https://linli.example.org/open311/v2"

    from linli_issues.entrypoints.web import create_app
    from linli_kit.config import ConfigError

    monkeypatch.setenv("OPEN311_PUBLIC_URL", "https://open311.lingwu.gov.cn/open311/v2/")
    configured = create_app(clock=clock)
    url = configured.test_client().get(f"{BASE}/discovery.json", headers=forwarded).get_json()["endpoints"][0]["url"]
    assert url == "https://open311.lingwu.gov.cn/open311/v2"  # the setting wins over any header
    configured.extensions["linli.database"].dispose()
    monkeypatch.setenv("OPEN311_PUBLIC_URL", "open311.lingwu.gov.cn")
    with pytest.raises(ConfigError, match="OPEN311_PUBLIC_URL"):
        create_app(clock=clock)


# --- well-formed whatever was typed ----------------------------------------------------------------------
CONTROL = "Lamp\x19 out \x00\x08\x0b\x7f\ufffe\uffff end"


def test_xml_stays_well_formed_and_json_valid_with_control_characters_anywhere(client, tokens, report):
    admin = tokens.admin()
    category = {"name": "Lamps\x19 and \x1blights", "default_tier": "community", "responsible_body": "community",
                "deadline_hours": {"low": 720, "normal": 336, "high": 72, "urgent": 24},
                "publication": "public"}  # fmt: skip
    assert client.put("/categories/lamps", json=category, headers=admin).status_code == 200
    issue, _ = report(category="lamps", compound_id=None, description=CONTROL.replace("\x00", ""))
    for path in ("services.xml", "services/lamps.xml", "requests.xml", f"requests/{issue['id']}.xml",
                 "servicerequestupdates.xml", "services/lamp\x19.xml", "requests.xml?status=\x1b"):  # fmt: skip
        response = client.get(f"{BASE}/{path}")
        root = ElementTree.fromstring(response.data)  # raises on ill-formed XML
        assert root.tag in {"services", "service_definition", "service_requests", "service_request_updates", "errors"}
    row = xml(client.get(f"{BASE}/requests/{issue['id']}.xml")).find("request")
    assert row.findtext("description") == "Lamp\ufffd out \ufffd\ufffd\x7f\ufffd\ufffd end"
    assert row.findtext("service_name") == "Lamps\ufffd and \ufffdlights"
    # JSON keeps the text as typed (JSON escapes what it must).
    [json_row] = client.get(f"{BASE}/requests/{issue['id']}.json").get_json()
    assert json_row["description"] == CONTROL.replace("\x00", "")
    names = {s["service_code"]: s["service_name"] for s in client.get(f"{BASE}/services.json").get_json()}
    assert names["lamps"] == "Lamps\x19 and \x1blights"


def test_a_parameter_with_nul_is_a_400_in_the_spec_format(client, tokens):
    for fmt in ("json", "xml"):
        response = client.get(f"{BASE}/requests.{fmt}?service_code=a%00b")
        assert response.status_code == 400
        text = response.get_data(as_text=True)
        assert "service_code" in text and "NUL" in text
    posted = post_request(client, tokens.api_client(), description="a\x00b")
    assert posted.status_code == 400 and "description" in posted.get_json()[0]["description"]


def test_unknown_formats_and_methods_answer_in_the_spec_format(client):
    csv = client.get(f"{BASE}/requests.csv")
    assert csv.status_code == 404 and csv.get_json()[0]["code"] == 404
    deleted = client.delete(f"{BASE}/requests.xml")
    assert deleted.status_code == 405 and xml(deleted).findtext("error/code") == "405"
    assert "GET" in deleted.headers["Allow"]
    # Outside /open311/ the platform's own error body is unchanged.
    assert client.get("/nowhere/at/all").get_json()["error"]["code"] == "not_found"


# --- media ------------------------------------------------------------------------------------------------
def _upload(client, issue_id: str, headers, content: bytes) -> dict:
    response = client.post(
        f"/{issue_id}/photos",
        data={"photo": (io.BytesIO(content), "lamp.png")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_media_url_is_the_first_photo_at_the_public_address_for_public_requests(client, tokens, report, png_bytes):
    public, reporter = report()
    hidden, hidden_reporter = report(anonymous=True, title="Neighbour's dog barks all night")
    first = _upload(client, public["id"], reporter, png_bytes)
    _upload(client, public["id"], reporter, png_bytes)
    _upload(client, hidden["id"], hidden_reporter, png_bytes)
    forwarded = {"X-Forwarded-Host": "linli.example.org", "X-Forwarded-Proto": "https"}
    rows = {r["service_request_id"]: r for r in client.get(f"{BASE}/requests.json", headers=forwarded).get_json()}
    media_url = rows[public["id"]]["media_url"]
    assert media_url == f"https://linli.example.org/open311/v2/media/{first['id']}.png"
    assert hidden["id"] not in rows  # reported anonymously: neither it nor its photos are published
    root = xml(client.get(f"{BASE}/requests/{public['id']}.xml", headers=forwarded))
    assert root.findtext("request/media_url") == media_url

    fetched = client.get(media_url.removeprefix("https://linli.example.org"))  # anyone, no token
    assert fetched.status_code == 200 and fetched.mimetype == "image/png" and fetched.data.startswith(b"\x89PNG")
    assert "public" in fetched.headers["Cache-Control"]
    [hidden_photo] = client.get(f"/{hidden['id']}/photos", headers=hidden_reporter).get_json()
    assert client.get(f"{BASE}/media/{hidden_photo['id']}.png").status_code == 404
    assert client.get(f"{BASE}/media/{first['id']}.jpg").status_code == 404
    assert client.get(f"{BASE}/media/{uuid.uuid4()}.png").status_code == 404
    # Rejected: no longer published.
    staff = tokens.staff()
    client.post(f"/{public['id']}/status", json={"status": "rejected", "reason": "abusive"}, headers=staff)
    assert client.get(media_url.removeprefix("https://linli.example.org")).status_code == 404
    assert client.get(f"{BASE}/requests/{public['id']}.json").get_json()[0]["media_url"] is None


def test_a_clients_own_media_url_is_kept_when_no_photo_was_attached(client, tokens):
    created = post_request(client, tokens.api_client(), media_url="https://hotline.example/m/42.jpg")
    assert created.status_code == 201, created.get_json()
    [row] = client.get(f"{BASE}/requests/{created.get_json()[0]['service_request_id']}.json").get_json()
    assert row["media_url"] == "https://hotline.example/m/42.jpg"


# --- API clients: who reports, and where ------------------------------------------------------------------
both_databases = pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)


@both_databases
def test_each_kind_of_key_reports_with_a_stable_uuid_identity_in_the_right_community(client, tokens, outbox):
    d = tokens.d
    community_key = tokens.api_client([d.community_a1], key_id="a1b2c3d4e5f6")
    street_key = tokens.api_client([], street_id=d.street_a, key_id="0f0f0f0f0f0f")
    city_key = tokens.api_client([], key_id="c17yc17yc17y")
    staff = tokens.admin()

    def created(response) -> dict:
        assert response.status_code == 201, response.get_json()
        return client.get(f"/{response.get_json()[0]['service_request_id']}", headers=staff).get_json()

    # The community's key: nearest compound of its community.
    first = created(post_request(client, community_key))
    assert (first["community_id"], first["compound_id"]) == (d.community_a1, d.compound_a1)
    again = created(post_request(client, community_key, lat="38.1001", long="106.3514"))
    assert again["compound_id"] == d.compound_a1_east
    reporter = first["reporter_id"]
    assert uuid.UUID(reporter) and again["reporter_id"] == reporter  # one key, one reporter
    # The street's key: the nearest compound of any community of its street, or the named community.
    by_street = created(post_request(client, street_key, lat="38.1000", long="106.3516"))
    assert by_street["compound_id"] == d.compound_a1_east and by_street["reporter_id"] != reporter
    named = created(post_request(client, street_key, lat="", long="", address_string="3 Lane, Shangpinyuan, Lingwu"))
    assert (named["community_id"], named["compound_id"]) == (d.community_a2, None)
    compound = created(post_request(client, street_key, lat="", long="", address_string="East gate of East, Yucai"))
    assert (compound["community_id"], compound["compound_id"]) == (d.community_a1, d.compound_a1_east)
    lost = post_request(client, street_key, lat="", long="", address_string="somewhere by the river")
    assert lost.status_code == 400 and "community" in lost.get_json()[0]["description"]
    foreign = post_request(client, street_key, lat="38.2000", long="106.4000")  # street B's compound: not its scope
    assert foreign.status_code == 400
    outside = post_request(client, street_key, **{"attribute[community_id]": d.community_b1})
    assert outside.status_code == 403 and outside.get_json()[0]["code"] == 403
    # The city's key (no scope): anywhere in the city, located the same ways.
    lake = created(post_request(client, city_key, lat="38.2001", long="106.4001"))
    assert (lake["community_id"], lake["compound_id"]) == (d.community_b1, d.compound_b1)
    attribute = created(post_request(client, city_key, lat="", long="", address_string="x",
                                     **{"attribute[community_id]": d.community_a2}))  # fmt: skip
    assert attribute["community_id"] == d.community_a2
    far = post_request(client, city_key, lat="39.5", long="110.0")  # 400 km from any compound
    assert far.status_code == 400
    both = post_request(client, city_key, lat="", long="", address_string="Between Yucai and Xihu")
    assert both.status_code == 400 and "several communities" in both.get_json()[0]["description"]

    events = [data for _, data in outbox("issues.issue.reported")]
    assert {e["reporter_id"] for e in events} == {reporter, by_street["reporter_id"], lake["reporter_id"]}
    assert all(e["channel"] == "open311" and e["actor_id"] == e["reporter_id"] for e in events)
    # A person's token is not an API key.
    resident = post_request(client, tokens.resident())
    assert resident.status_code == 403 and "api_key" in resident.get_json()[0]["description"]


@both_databases
def test_attributes_contact_fields_and_a_missing_description_follow_the_spec(client, tokens):
    key = tokens.api_client()
    response = client.post(
        f"{BASE}/requests.xml",
        data={
            "jurisdiction_id": "lingwu.gov.cn",
            "service_code": "safety_hazard",
            "address_id": tokens.d.compound_a1,
            "attribute[urgency][]": ["urgent", "high"],
            "attribute[building]": "7",
            "attribute[unknown]": "ignored",
            "email": "caller@example.org",
            "first_name": "Li",
            "last_name": "Wei",
            "phone": "13800000000",
            "device_id": "d-1",
            "account_id": "77",
        },
        headers=key,
    )
    assert response.status_code == 201, response.data
    request_id = xml(response).findtext("request/service_request_id")
    assert xml(response).find("request/account_id").text is None
    issue = client.get(f"/{request_id}", headers=tokens.admin()).get_json()
    assert (issue["urgency"], issue["building"], issue["title"]) == (
        "urgent",
        "7",
        "Safety hazard: reported through Open311",
    )
    assert "13800000000" not in str(issue) and "caller@example.org" not in str(issue)  # contact details are not kept


@both_databases
def test_get_requests_windows_are_bounded_and_at_most_90_days(client, tokens, report, clock):
    old, _ = report()
    clock.advance(days=100)
    new, _ = report()

    def ids(query: str) -> list[str]:
        response = client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 200, (query, response.get_json())
        return [r["service_request_id"] for r in response.get_json()]

    assert ids("") == [new["id"]]  # the last 90 days
    assert ids("start_date=2026-11-01T00:00:00Z") == [old["id"]]  # 90 days from the start
    assert ids(f"end_date={(clock.now - timedelta(days=50)).isoformat().replace('+00:00', 'Z')}") == [old["id"]]
    assert ids("start_date=2026-11-01T00:00:00Z&end_date=2027-01-29T00:00:00Z") == [old["id"]]
    assert ids(f"service_request_id={old['id']},{new['id']}&start_date=2000-01-01T00:00:00Z") == [old["id"], new["id"]]
    assert ids("jurisdiction_id=&service_code=&status=") == [new["id"]]  # empty is the same as absent
    for query, word in [
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", "90 days"),
        ("start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z", "before"),
        ("start_date=0001-01-01T00:00:00Z", "start_date"),
        ("end_date=9999-12-31T23:59:59-01:00", "end_date"),
        ("start_date=0001-01-01T00:00:00%2B01:00&end_date=0001-01-02T00:00:00Z", "start_date"),
        ("end_date=2026-13-01T00:00:00Z", "end_date"),
    ]:
        for fmt in ("json", "xml"):
            response = client.get(f"{BASE}/requests.{fmt}?{query}")
            assert response.status_code == 400, (query, response.data)
            assert word in response.get_data(as_text=True), (query, response.data)
    updates = client.get(f"{BASE}/servicerequestupdates.json?start_date=9999-12-31T00:00:00Z")
    assert updates.status_code == 400
