"""Anonymity and publication through the service's HTTP app, looking in every place a reporter or a
private issue could show: the issue, lists, suggestions, the timeline, photos, the CSV export,
statistics drill-downs, the events others are told from, and Open311 (requests, one request,
tokens, updates, media, services)."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

pytestmark = pytest.mark.integration

O311 = "/open311/v2"
PHONE = "13812345678"
LANDLINE = "0951-1234567"
ID_CARD = "11010519491231002X"


def _id() -> str:
    return str(uuid.uuid4())


def _upload(client, issue_id, headers, png):
    response = client.post(
        f"/{issue_id}/photos",
        data={"photo": (io.BytesIO(png), "p.png")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _answered(*responses) -> str:
    """The bodies of the answers that were not errors (a 404 names the id asked for), as one text."""
    return "\n".join(r.get_data(as_text=True) for r in responses if r.status_code < 400)


def _everything_as_text(client, issue_id, headers) -> str:
    """Every answer of the API about an issue (and lists) to these headers, as one text."""
    return _answered(
        client.get(f"/{issue_id}", headers=headers),
        client.get(f"/{issue_id}/updates", headers=headers),
        client.get(f"/{issue_id}/photos", headers=headers),
        client.get(f"/{issue_id}/meetings", headers=headers),
        client.get("/", headers=headers),
        client.get("/?sort=-updated_at&category=repairs_facilities", headers=headers),
    )


def _open311_as_text(client, issue_id, photo_ids=()) -> str:
    return _answered(
        client.get(f"{O311}/requests.json"),
        client.get(f"{O311}/requests.xml"),
        client.get(f"{O311}/requests.json?service_request_id={issue_id}"),
        client.get(f"{O311}/requests/{issue_id}.json"),
        client.get(f"{O311}/tokens/{issue_id}.json"),
        client.get(f"{O311}/servicerequestupdates.json"),
        client.get(f"{O311}/servicerequestupdates.json?service_request_id={issue_id}"),
        *(client.get(f"{O311}/media/{photo_id}.png") for photo_id in photo_ids),
    )


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_an_anonymous_reporter_shows_nowhere_but_to_themself_and_the_staff_in_scope(
    client, tokens, report, png_bytes, outbox, publish
):
    publish("public")  # even in a category the city publishes, an anonymous report is private
    reporter_id = _id()
    issue, reporter = report(
        reporter_id, anonymous=True, title="Lift stuck again", description=f"Ring me on {PHONE}, flat 701"
    )
    iid = issue["id"]
    photo = _upload(client, iid, reporter, png_bytes)
    assert (
        client.post(f"/{iid}/updates", json={"kind": "reply", "body": "still stuck"}, headers=reporter).status_code
        == 201
    )
    staff = tokens.staff()
    assert (
        client.put(
            f"/{iid}/assignment",
            json={"assignee_type": "property_company", "assignee_id": tokens.property_company},
            headers=staff,
        ).status_code
        == 200
    )
    assert (
        client.post(f"/{iid}/updates", json={"kind": "reply", "body": "engineer booked"}, headers=staff).status_code
        == 201
    )

    # Neighbours, residents of other communities, API clients: nothing at all, not even its existence.
    neighbour = tokens.resident()
    for outsider in (neighbour, tokens.resident(community_id=tokens.d.community_b1), tokens.api_client()):
        for path in ("", "/updates", "/photos", f"/photos/{photo['id']}", "/meetings"):
            assert client.get(f"/{iid}{path}", headers=outsider).status_code == 404, path
        text = _everything_as_text(client, iid, outsider)
        assert reporter_id not in text and iid not in text and PHONE not in text
        assert client.post(f"/{iid}/supporters", headers=outsider).status_code == 404
    similar = client.get(
        f"/similar?community_id={tokens.d.community_a1}&title=Lift stuck again", headers=neighbour
    ).get_json()
    assert similar == []

    # The reporter sees themself everywhere; the staff of the scope see them (they handle it).
    official = tokens.street_official()
    for insider in (reporter, staff, official, tokens.admin()):
        detail = client.get(f"/{iid}", headers=insider).get_json()
        assert detail["reporter_id"] == reporter_id and detail["visibility"] == "private"
        assert PHONE in detail["description"]
        timeline = client.get(f"/{iid}/updates", headers=insider).get_json()
        assert [e["author_id"] for e in timeline if e["kind"] in ("report", "reply")][:2] == [reporter_id, reporter_id]
        assert client.get(f"/{iid}/photos", headers=insider).get_json()[0]["uploaded_by"] == reporter_id

    # The property company handling it reads it, but not who reported it, nor the number that would say.
    company = tokens.property_manager()
    detail = client.get(f"/{iid}", headers=company).get_json()
    assert detail["reporter_id"] is None and detail["reported_by"] is None
    assert PHONE not in detail["description"] and "***********" in detail["description"]
    timeline = client.get(f"/{iid}/updates", headers=company).get_json()
    report_entry = next(e for e in timeline if e["kind"] == "report")
    assert report_entry["author_id"] is None
    replies = [(e["body"], e["author_id"]) for e in timeline if e["kind"] == "reply"]
    assert ("still stuck", None) in replies and replies[-1][1] is not None  # staff are named
    assert client.get(f"/{iid}/photos", headers=company).get_json()[0]["uploaded_by"] is None
    assert reporter_id not in _everything_as_text(client, iid, company)
    # Drill-down from statistics (the category's issues of the period): the reporter stays hidden.
    drill = client.get(
        "/?category=repairs_facilities&created_from=2026-11-01T00:00:00%2B08:00", headers=company
    ).get_json()
    assert [(r["id"], r["reporter_id"]) for r in drill] == [(iid, None)]

    # The CSV export (staff) names no reporter and says the issue is private.
    exported = client.get("/export.csv", headers=staff)
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert reporter_id not in exported.get_data(as_text=True)
    assert [(r["id"], r["visibility"]) for r in rows] == [(iid, "private")]

    # Open311 publishes none of it, in any of its reads.
    text = _open311_as_text(client, iid, [photo["id"]])
    assert iid not in text and reporter_id not in text and PHONE not in text
    assert client.get(f"{O311}/media/{photo['id']}.png").status_code == 404

    # The events others are told from: private, the number masked; the reporter only in the field
    # the notifications service uses to tell the reporter (never shown to others).
    events = [data for _type, data in outbox() if data.get("issue_id") == iid]
    assert events and all(e["visibility"] == "private" for e in events)
    assert all(PHONE not in json.dumps(e) for e in events)


def test_a_community_issue_is_read_by_its_residents_with_numbers_masked(client, tokens, report, publish):
    reporter_id = _id()
    issue, reporter = report(
        reporter_id,
        title=f"Water off, call {PHONE}",
        description=f"Office {LANDLINE}; my ID {ID_CARD}",
    )
    iid = issue["id"]
    assert issue["visibility"] == "community"
    staff = tokens.staff()
    client.post(f"/{iid}/updates", json={"kind": "reply", "body": f"call the plumber on {PHONE}"}, headers=staff)
    # What was done is typed text too: masked in the list's summaries as in the issue's own answer.
    assert client.post(f"/{iid}/status", json={"status": "accepted"}, headers=staff).status_code == 200
    resolved = {"status": "resolved", "summary": f"fixed, call {PHONE}"}
    assert client.post(f"/{iid}/status", json=resolved, headers=staff).status_code == 200
    neighbour = tokens.resident()
    seen = client.get(f"/{iid}", headers=neighbour).get_json()
    assert seen["reporter_id"] == reporter_id  # a named report: its reporter is no secret in the community
    for secret in (PHONE, LANDLINE, ID_CARD):
        assert secret not in _everything_as_text(client, iid, neighbour)
    assert seen["title"] == "Water off, call ***********"
    assert client.get("/", headers=neighbour).get_json()[0]["title"] == "Water off, call ***********"
    # The reporter and the staff read it as typed.
    for insider in (reporter, staff):
        detail = client.get(f"/{iid}", headers=insider).get_json()
        assert PHONE in detail["title"] and ID_CARD in detail["description"]
    # Not public: Open311 lists nothing of it.
    assert iid not in _open311_as_text(client, iid)
    # Public once the city publishes the category (for issues reported from then on): masked there too.
    publish("public", ["repairs_facilities"])
    later, _ = report(description=f"Again: {PHONE} / {ID_CARD}")
    assert later["visibility"] == "public"
    assert client.get(f"/{iid}", headers=staff).get_json()["visibility"] == "community"  # never widened
    rows = {r["service_request_id"]: r for r in client.get(f"{O311}/requests.json").get_json()}
    assert set(rows) == {later["id"]}
    assert PHONE not in rows[later["id"]]["description"] and ID_CARD not in rows[later["id"]]["description"]
    assert iid not in _open311_as_text(client, iid)


def test_the_city_chooses_what_is_public_and_narrowing_applies_at_once(client, tokens, report, publish):
    admin = tokens.admin()
    categories = {c["key"]: c for c in client.get("/categories").get_json()}
    assert categories["elderly_vulnerable_support"]["publication"] == "private"
    assert categories["neighbour_dispute"]["publication"] == "private"
    assert {
        c["publication"] for k, c in categories.items() if k not in ("elderly_vulnerable_support", "neighbour_dispute")
    } == {"community"}
    # Open311 offers anonymous callers only public services; a client (its key's token) all of them.
    assert client.get(f"{O311}/services.json").get_json() == []
    assert client.get(f"{O311}/services/repairs_facilities.json").status_code == 404
    assert len(client.get(f"{O311}/services.json", headers=tokens.api_client()).get_json()) == 8

    # Only the city admin sets a publication; a bad one is a 422 naming it, nothing changed.
    body = {k: v for k, v in categories["repairs_facilities"].items() if k not in ("key", "label", "publication")}
    for someone in (tokens.staff(), tokens.street_official(), tokens.resident()):
        assert (
            client.put(
                "/categories/repairs_facilities", json={**body, "publication": "public"}, headers=someone
            ).status_code
            == 403
        )
    bad = client.put("/categories/repairs_facilities", json={**body, "publication": "everyone"}, headers=admin)
    assert bad.status_code == 422 and "publication" in bad.get_json()["error"]["fields"]
    # A change that leaves publication out keeps it.
    publish("public", ["repairs_facilities"])
    assert client.put("/categories/repairs_facilities", json={**body, "position": 9}, headers=admin).status_code == 200
    assert {c["key"]: c for c in client.get("/categories").get_json()}["repairs_facilities"]["publication"] == "public"
    assert [s["service_code"] for s in client.get(f"{O311}/services.json").get_json()] == ["repairs_facilities"]

    public, _ = report()
    elderly, _ = report(category="elderly_vulnerable_support", compound_id=None, title="Mrs Li, 88, lives alone")
    assert (public["visibility"], elderly["visibility"]) == ("public", "private")
    assert [r["service_request_id"] for r in client.get(f"{O311}/requests.json").get_json()] == [public["id"]]
    neighbour = tokens.resident()
    assert client.get(f"/{elderly['id']}", headers=neighbour).status_code == 404
    assert client.get("/?category=elderly_vulnerable_support", headers=neighbour).get_json() == []
    # A service code the city does not publish lists nothing (not an error: the spec's filter).
    assert client.get(f"{O311}/requests.json?service_code=elderly_vulnerable_support").get_json() == []

    # Narrowing the category to community: its issue leaves Open311 at once.
    publish("community", ["repairs_facilities"])
    assert client.get(f"/{public['id']}", headers=tokens.staff()).get_json()["visibility"] == "community"
    assert client.get(f"{O311}/requests.json").get_json() == []
    assert client.get(f"{O311}/requests/{public['id']}.json").status_code == 404
    # The city may open a personal category to the community: its new issues are read there.
    publish("community", ["elderly_vulnerable_support"])
    newer, _ = report(category="elderly_vulnerable_support", compound_id=None, title="Stairs too steep for us")
    assert client.get(f"/{newer['id']}", headers=neighbour).status_code == 200
    assert client.get(f"/{elderly['id']}", headers=neighbour).status_code == 404  # reported as private, stays so


def test_staff_mark_an_issue_private_supporters_keep_reading_it(client, tokens, report, publish, png_bytes):
    publish("public", ["repairs_facilities"])
    issue, reporter = report()
    iid = issue["id"]
    photo = _upload(client, iid, reporter, png_bytes)
    supporter = tokens.resident()
    assert client.post(f"/{iid}/supporters", headers=supporter).status_code == 200
    neighbour = tokens.resident()
    assert client.get(f"{O311}/requests/{iid}.json").status_code == 200
    assert client.get(f"{O311}/media/{photo['id']}.png").status_code == 200

    # Scope before state: outside the scope 404 whatever is sent; a resident who reads it, 403.
    outsider = tokens.staff(community_id=tokens.d.community_b1)
    assert client.put(f"/{iid}/privacy", json={"private": True}, headers=outsider).status_code == 404
    assert client.put(f"/{iid}/privacy", json={"private": "maybe"}, headers=outsider).status_code in (404, 422)
    assert client.put(f"/{iid}/privacy", json={"private": True}, headers=neighbour).status_code == 403
    assert client.put(f"/{iid}/privacy", json={"private": True}, headers=reporter).status_code == 403
    assert client.put(f"/{iid}/privacy", json={}, headers=tokens.staff()).status_code == 422

    staff = tokens.staff()
    marked = client.put(f"/{iid}/privacy", json={"private": True, "reason": "names a neighbour"}, headers=staff)
    assert marked.status_code == 200
    assert (marked.get_json()["visibility"], marked.get_json()["marked_private"]) == ("private", True)
    # Neighbours no longer read it; its supporter and reporter do; Open311 drops it and its photo.
    assert client.get(f"/{iid}", headers=neighbour).status_code == 404
    assert client.get("/", headers=neighbour).get_json() == []
    assert client.get(f"/{iid}", headers=supporter).status_code == 200
    assert [r["id"] for r in client.get("/", headers=supporter).get_json()] == [iid]
    assert client.get(f"/{iid}", headers=reporter).status_code == 200
    assert iid not in _open311_as_text(client, iid)
    assert client.get(f"{O311}/media/{photo['id']}.png").status_code == 404
    # The mark is on the internal timeline: the reporter does not see why.
    staff_kinds = [e["kind"] for e in client.get(f"/{iid}/updates", headers=staff).get_json()]
    assert "privacy" in staff_kinds
    assert "privacy" not in [e["kind"] for e in client.get(f"/{iid}/updates", headers=reporter).get_json()]

    lifted = client.put(f"/{iid}/privacy", json={"private": False}, headers=staff).get_json()
    assert (lifted["visibility"], lifted["marked_private"]) == ("public", False)
    assert client.get(f"/{iid}", headers=neighbour).status_code == 200


def test_events_carry_visibility_and_masked_text(client, tokens, report, outbox, publish):
    publish("public", ["parking"])
    issue, _ = report(category="parking", compound_id=None, title=f"Van parked, owner {PHONE}")
    staff = tokens.staff()
    client.post(
        f"/{issue['id']}/status", json={"status": "rejected", "reason": f"call {LANDLINE} instead"}, headers=staff
    )
    events = [data for _type, data in outbox() if data.get("issue_id") == issue["id"]]
    assert [e["visibility"] for e in events] == ["public", "public"]
    assert events[0]["title"] == "Van parked, owner ***********"
    assert LANDLINE not in events[1]["reason"]
    # The issue itself keeps what was typed, for the reporter and staff.
    assert PHONE in client.get(f"/{issue['id']}", headers=staff).get_json()["title"]


def test_a_photo_sent_by_an_outsider_is_404_before_its_content_is_looked_at(client, tokens, report):
    issue, _ = report()
    outsider = tokens.resident(community_id=tokens.d.community_b1)
    response = client.post(
        f"/{issue['id']}/photos",
        data={"photo": (io.BytesIO(b"not an image"), "x.png")},
        headers=outsider,
        content_type="multipart/form-data",
    )
    assert response.status_code == 404, response.get_json()


def test_statistics_answer_a_foreign_scope_403_whatever_the_period(client, tokens):
    staff = tokens.staff()
    # (A date outside 1970..2999 is refused by the query's schema first: bad input, not state.)
    for query in ("from=2026-11-30&to=2026-11-01", "from=2016-01-01&to=2026-12-31", "from=2026-01-01&to=2026-01-31"):
        foreign = client.get(f"/stats?community_id={tokens.d.community_b1}&{query}", headers=staff)
        assert foreign.status_code == 403, (query, foreign.get_json())
    backwards = client.get("/stats?from=2026-11-30&to=2026-11-01", headers=staff)
    assert backwards.status_code == 422 and "from" in backwards.get_json()["error"]["fields"]
