"""Scope and role rules, lists and exports, timeline visibility, photos, suggestions and categories."""

from __future__ import annotations

import csv
import io
import struct
import uuid
import zlib

import pytest
from sqlalchemy import func, select

from linli_issues.adapters.tables import photos

pytestmark = pytest.mark.integration


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_internal_notes_are_for_staff_and_the_assignee_only(client, tokens, report):
    issue, reporter = report()
    url = f"/{issue['id']}/updates"
    staff = tokens.staff()
    assert client.post(url, json={"kind": "note", "body": "owner is difficult"}, headers=staff).status_code == 201
    assert client.post(url, json={"kind": "reply", "body": "we will visit on Monday"}, headers=staff).status_code == 201
    inspection = client.post(
        url,
        json={
            "kind": "inspection",
            "body": "on-site inspection",
            "attendees": ["street property office", "housing bureau", "owners' committee", "property company"],
            "findings": "membrane torn over flats 701-704",
        },
        headers=staff,
    )
    assert inspection.status_code == 201
    assert inspection.get_json()["data"]["attendees"][1] == "housing bureau"
    no_attendees = client.post(url, json={"kind": "inspection", "body": "x"}, headers=staff)
    assert no_attendees.status_code == 422 and "attendees" in no_attendees.get_json()["error"]["fields"]

    staff_view = [e["kind"] for e in client.get(url, headers=staff).get_json()]
    # The report is routed at once to the compound's one registered property company.
    assert staff_view == ["report", "assignment", "note", "reply", "inspection"]
    reporter_view = [e["kind"] for e in client.get(url, headers=reporter).get_json()]
    assert reporter_view == ["report", "assignment", "reply", "inspection"]
    neighbour_view = [e["kind"] for e in client.get(url, headers=tokens.resident()).get_json()]
    assert "note" not in neighbour_view
    # Residents may not write notes, nor reply on someone else's issue.
    assert client.post(url, json={"kind": "note", "body": "x"}, headers=reporter).status_code == 403
    assert client.post(url, json={"kind": "reply", "body": "x"}, headers=tokens.resident()).status_code == 403
    assert client.post(url, json={"kind": "reply", "body": "thank you"}, headers=reporter).status_code == 201
    # The assignee sees internal notes once the issue is theirs.
    client.put(
        f"/{issue['id']}/assignment",
        json={"assignee_type": "property_company", "assignee_id": tokens.property_company},
        headers=staff,
    )
    manager_view = [e["kind"] for e in client.get(url, headers=tokens.property_manager()).get_json()]
    assert "note" in manager_view


def test_another_community_cannot_read_or_act(client, tokens, report):
    issue, _ = report()
    url = f"/{issue['id']}"
    outsider = tokens.resident(community_id=tokens.d.community_b1)
    other_staff = tokens.staff(community_id=tokens.d.community_b1)
    other_street = tokens.street_official(street_id=tokens.d.street_b)
    for headers in (outsider, other_staff, other_street):
        assert client.get(url, headers=headers).status_code == 404
        assert client.get(f"{url}/updates", headers=headers).status_code == 404
        assert client.post(f"{url}/status", json={"status": "accepted"}, headers=headers).status_code == 404
        assert client.post(f"{url}/supporters", headers=headers).status_code == 404
        assert client.get("/", headers=headers).get_json() == []
    # A resident of the same community sees it, but cannot handle it.
    neighbour = tokens.resident()
    assert client.get(url, headers=neighbour).status_code == 200
    assert client.post(f"{url}/status", json={"status": "accepted"}, headers=neighbour).status_code == 403
    assert client.post(f"{url}/escalations", json={"reason": "x"}, headers=neighbour).status_code == 403
    # The street official of the issue's street sees and handles it; the city admin too.
    assert client.get(url, headers=tokens.street_official()).status_code == 200
    assert client.post(f"{url}/status", json={"status": "accepted"}, headers=tokens.admin()).status_code == 200


def test_an_assignee_sees_only_its_own_issues(client, tokens, report):
    mine, _ = report()
    theirs, _ = report(title="Broken lift in building 3")
    unassigned, _ = report(title="Graffiti on the wall", category="other")  # the community's own
    staff = tokens.staff()
    other_company = tokens.d.other_company
    client.put(
        f"/{mine['id']}/assignment",
        json={"assignee_type": "property_company", "assignee_id": tokens.property_company},
        headers=staff,
    )
    client.put(
        f"/{theirs['id']}/assignment",
        json={"assignee_type": "property_company", "assignee_id": other_company},
        headers=staff,
    )
    manager = tokens.property_manager()
    listed = client.get("/", headers=manager).get_json()
    assert [i["id"] for i in listed] == [mine["id"]]
    assert client.get(f"/{theirs['id']}", headers=manager).status_code == 404
    assert client.get(f"/{unassigned['id']}", headers=manager).status_code == 404
    # It may not hand the issue on or reject it: that is the community's decision.
    assert (
        client.post(f"/{mine['id']}/status", json={"status": "rejected", "reason": "x"}, headers=manager).status_code
        == 403
    )
    # A bureau sees nothing until something is assigned to it.
    assert client.get("/", headers=tokens.agency()).get_json() == []
    client.put(
        f"/{theirs['id']}/assignment", json={"assignee_type": "bureau", "assignee_id": tokens.bureau}, headers=staff
    )
    assert [i["id"] for i in client.get("/", headers=tokens.agency()).get_json()] == [theirs["id"]]
    assert client.get(f"/{theirs['id']}", headers=manager).status_code == 404  # no longer the company's


def test_anonymous_reports_hide_the_reporter_from_other_residents(client, tokens, report):
    reporter_id = str(uuid.uuid4())
    issue, reporter = report(reporter_id, anonymous=True)
    url = f"/{issue['id']}"
    # An anonymous issue is private: a neighbour does not even see it (test_privacy.py looks further).
    assert client.get(url, headers=tokens.resident()).status_code == 404
    assert client.get("/", headers=tokens.resident()).get_json() == []
    assert client.get(url, headers=reporter).get_json()["reporter_id"] == reporter_id
    assert client.get(url, headers=tokens.staff()).get_json()["reporter_id"] == reporter_id
    assert client.get("/", headers=tokens.staff()).get_json()[0]["reporter_id"] == reporter_id


def test_lists_filter_sort_and_paginate(client, tokens, report, clock):
    a, _ = report(title="Roof leaks again", urgency="low")
    clock.advance(hours=1)
    b, _ = report(title="Parking blocked by a van", category="parking", urgency="urgent", compound_id=None)
    clock.advance(hours=1)
    c, _ = report(title="Dog waste in the garden", category="environment_sanitation", urgency="normal")
    clock.advance(hours=1)
    d, _ = report(
        title="Noise at night",
        category="neighbour_dispute",
        community_id=tokens.d.community_a2,
        compound_id=None,
    )
    staff = tokens.staff()
    client.post(f"/{a['id']}/status", json={"status": "accepted"}, headers=staff)
    client.post(f"/{c['id']}/escalations", json={"reason": "no answer"}, headers=staff)
    official = tokens.street_official()

    def ids(query: str, headers=official) -> list[str]:
        response = client.get(f"/?{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [i["id"] for i in response.get_json()]

    assert ids("") == [d["id"], c["id"], b["id"], a["id"]]  # newest first
    assert ids("sort=created_at") == [a["id"], b["id"], c["id"], d["id"]]
    assert ids(f"community_id={tokens.d.community_a2}") == [d["id"]]
    assert ids(f"street_id={tokens.d.street_a}&sort=created_at")[:1] == [a["id"]]
    assert ids(f"street_id={tokens.d.street_b}") == []
    assert ids("status=accepted") == [a["id"]]
    assert ids("status=reported,accepted&category=parking") == [b["id"]]
    assert ids("tier=community") == [d["id"], c["id"]]  # disputes start there; the waste was escalated
    assert ids("urgency=urgent") == [b["id"]]
    assert ids("assignee_type=owners_committee") == []
    assert ids("assignee_type=property_company&sort=created_at") == [a["id"], b["id"], c["id"]]
    assert ids("q=AGAIN") == [a["id"]]  # case-insensitive, title or description
    assert ids("sort=-due_at")[0] == a["id"]  # low urgency: the latest deadline
    assert ids("sort=-urgency")[:1] == [b["id"]] and ids("sort=urgency")[:1] == [a["id"]]  # by rank, not name
    for _ in range(2):
        assert client.post(f"/{c['id']}/supporters", headers=tokens.resident()).status_code == 200
    # Priority: urgency first (urgent, high, normal, low), then support.
    assert ids("sort=-priority") == [b["id"], d["id"], c["id"], a["id"]]
    assert ids("sort=-supporter_count")[0] == c["id"]
    client.post(f"/{a['id']}/supporters", headers=tokens.resident())
    assert ids("sort=-priority")[-1] == a["id"]  # one supporter does not lift a low-urgency issue
    assert ids("overdue=true") == []
    clock.advance(days=3)  # urgent parking: 48 h
    assert ids("overdue=true") == [b["id"]]
    assert ids("mine=true", headers=tokens.resident()) == []

    page = client.get("/?page=2&page_size=3&sort=created_at", headers=official)
    assert [i["id"] for i in page.get_json()] == [d["id"]]
    assert '"total": 4' in page.headers["X-Pagination"]

    bad = client.get("/?status=lost&sort=colour&overdue=maybe&community_id=x", headers=official)
    assert bad.status_code == 422
    assert {"status", "sort", "overdue", "community_id"} <= set(bad.get_json()["error"]["fields"])


def test_csv_export_is_for_staff(client, tokens, report):
    issue, _ = report()
    assert client.get("/export.csv", headers=tokens.resident()).status_code == 403
    response = client.get("/export.csv?status=reported", headers=tokens.staff())
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1 and rows[0]["id"] == issue["id"] and rows[0]["title"] == issue["title"]
    assert rows[0]["created_at"].endswith("+08:00")  # the city's time zone


def test_photos_are_checked_stored_on_disk_and_served_to_those_who_see_the_issue(client, tokens, report, database, app):
    """(Metadata, thumbnails, HEIC and the S3 store: test_photos.py.)"""
    issue, reporter = report()
    url = f"/{issue['id']}/photos"
    content = _png()
    uploaded = client.post(
        url, data={"photo": (io.BytesIO(content), "roof.png")}, headers=reporter, content_type="multipart/form-data"
    )
    assert uploaded.status_code == 201, uploaded.get_json()
    photo = uploaded.get_json()
    assert photo["content_type"] == "image/png" and (photo["width"], photo["height"]) == (2, 2)
    folder = app.extensions["linli.settings"].data_dir / "photos"
    stored = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(stored) == [f"{photo['id']}.png", f"{photo['id']}.thumb.jpg"]  # re-encoded, and its thumbnail

    served = client.get(f"{url}/{photo['id']}", headers=tokens.resident())
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == stored[f"{photo['id']}.png"] and len(served.data) == photo["size"]
    outsider = tokens.resident(community_id=tokens.d.community_b1)
    assert client.get(f"{url}/{photo['id']}", headers=outsider).status_code == 404
    assert client.get(f"{url}/{uuid.uuid4()}", headers=reporter).status_code == 404

    for data, why in [
        (b"GIF89a" + b"\x00" * 40, "only JPEG, PNG and HEIC/HEIF"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage", "not a readable PNG image"),
        (b"\xff\xd8\xff" + b"\x00" * (6 * 1024 * 1024), "larger"),
    ]:
        refused = client.post(
            url, data={"photo": (io.BytesIO(data), "a.png")}, headers=reporter, content_type="multipart/form-data"
        )
        assert refused.status_code == 422 and "photo" in refused.get_json()["error"]["fields"]
        assert why in str(refused.get_json()["error"]["fields"]["photo"])
    missing = client.post(url, data={}, headers=reporter, content_type="multipart/form-data")
    assert missing.status_code == 422 and "photo" in missing.get_json()["error"]["fields"]
    assert client.post(url, data={"photo": (io.BytesIO(content), "a.png")}, headers=tokens.resident(),
                       content_type="multipart/form-data").status_code == 403  # fmt: skip
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(photos)) == 1
    assert len(list(folder.iterdir())) == 2
    assert [p["id"] for p in client.get(url, headers=reporter).get_json()] == [photo["id"]]


def test_similar_issues_are_suggested_by_text_or_same_category_nearby(client, tokens, report):
    roof, _ = report()
    wall, _ = report(
        title="Cultural wall is cracking",
        description="Pieces fall off the wall near the playground",
        category="safety_hazard",
        compound_id=tokens.d.compound_a1_east,
    )
    report(title="Roof leaks in building 2", community_id=tokens.d.community_b1, compound_id=None)
    resident = tokens.resident()

    def similar(**query) -> list[str]:
        response = client.get(
            "/similar", query_string={"community_id": tokens.d.community_a1, **query}, headers=resident
        )
        assert response.status_code == 200, response.get_json()
        return [s["issue"]["id"] for s in response.get_json()]

    assert similar(title="Leaking roof", description="the roof of building 7 leaks when it rains") == [roof["id"]]
    # Same category a few metres from the wall, with different words.
    assert similar(title="Dangerous bricks", category="safety_hazard", latitude=38.1, longitude=106.3516) == [
        wall["id"]
    ]
    # Same category but a kilometre away, different words: nothing.
    assert similar(title="Dangerous bricks", category="safety_hazard", latitude=38.1, longitude=106.34) == []
    other = client.get(
        "/similar", query_string={"community_id": tokens.d.community_b1, "title": "roof"}, headers=resident
    )
    assert other.status_code == 403
    assert client.get("/similar", headers=resident).status_code == 422


def test_categories_are_public_and_configured_by_the_city(client, tokens, report, valid_report):
    listed = client.get("/categories").get_json()
    assert len(listed) == 8 and listed[0]["key"] == "safety_hazard"
    assert listed[1]["deadline_hours"] == {"low": 720, "normal": 336, "high": 120, "urgent": 24}
    body = {
        "name": "Stray animals",
        "default_tier": "community",
        "responsible_body": "bureau",
        "deadline_hours": {"low": 240, "normal": 120, "high": 48, "urgent": 12},
    }
    assert client.put("/categories/stray_animals", json=body, headers=tokens.staff()).status_code == 403
    created = client.put("/categories/stray_animals", json=body, headers=tokens.admin())
    assert created.status_code == 200 and created.get_json()["key"] == "stray_animals"
    bad = client.put(
        "/categories/stray_animals",
        json={**body, "default_tier": "moon", "deadline_hours": {"low": 0}},
        headers=tokens.admin(),
    )
    assert bad.status_code == 422 and {"default_tier", "deadline_hours"} <= set(bad.get_json()["error"]["fields"])
    issue = client.post("/", json=valid_report(category="stray_animals", urgency="urgent"), headers=tokens.resident())
    assert issue.get_json()["assignee_type"] == "bureau" and issue.get_json()["tier"] == "community"
    # Retiring a category stops new reports but keeps it listed for admins.
    client.put("/categories/stray_animals", json={**body, "active": False}, headers=tokens.admin())
    refused = client.post("/", json=valid_report(category="stray_animals"), headers=tokens.resident())
    assert refused.status_code == 422 and "category" in refused.get_json()["error"]["fields"]
    assert len(client.get("/categories").get_json()) == 8
    assert len(client.get("/categories?include_inactive=true").get_json()) == 9
