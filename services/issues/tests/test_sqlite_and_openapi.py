"""The embedded default (SQLite) runs the same migrations and use cases; the OpenAPI document renders."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert

from linli_issues.adapters.tables import replica
from linli_issues.definition import definition
from linli_issues.entrypoints.web import create_app
from linli_kit.db import Database
from linli_kit.migrations import upgrade


def test_migrations_and_a_report_to_stats_round_trip_on_sqlite(monkeypatch, tmp_path, token_signer, token_keys, clock):
    url = f"sqlite:///{tmp_path / 'issues.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_JSON", "false")
    upgrade(definition.migrations_dir, url)
    street, community = str(uuid.uuid4()), str(uuid.uuid4())
    database = Database(url)
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=street, name="S", city="C", revision=1))
        s.execute(insert(replica.communities).values(community_id=community, street_id=street, name="N", revision=1))
    database.dispose()
    app = create_app(clock=clock)
    client = app.test_client()
    staff = {"Authorization": "Bearer " + token_signer.sign(user_id=str(uuid.uuid4()), role="community_staff",
                                                             community_ids=[community])}  # fmt: skip
    resident = {"Authorization": "Bearer " + token_signer.sign(user_id=str(uuid.uuid4()), role="resident",
                                                                community_ids=[community])}  # fmt: skip
    durations = [10, 20, 40]
    for hours in durations:
        created = client.post(
            "/",
            json={"community_id": community, "title": "Broken bench", "description": "A slat is missing",
                  "category": "other"},
            headers=resident,
        )  # fmt: skip
        assert created.status_code == 201, created.get_json()
        issue_id = created.get_json()["id"]
        assert client.post(f"/{issue_id}/status", json={"status": "accepted"}, headers=staff).status_code == 200
        clock.advance(hours=hours)
        resolved = client.post(f"/{issue_id}/status", json={"status": "resolved", "summary": "fixed"}, headers=staff)
        assert resolved.status_code == 200
        clock.advance(hours=-hours)
    listed = client.get("/?status=resolved&sort=-created_at", headers=staff)
    assert len(listed.get_json()) == 3
    # A board of resolved issues needs no call per issue: the summary carries what it shows.
    row = next(r for r in listed.get_json() if r["id"] == issue_id)
    detail = client.get(f"/{issue_id}", headers=staff).get_json()
    for name in ("visibility", "resolution_summary", "rating", "resolved_at"):
        assert row[name] == detail[name], name
    assert row["resolved_at"] and row["resolution_summary"] == "fixed" and row["rating"] is None
    assert "rating_comment" not in row
    stats = client.get("/stats?from=2026-11-01&to=2026-11-30", headers=staff).get_json()
    assert stats["totals"]["resolved"] == 3 and stats["totals"]["median_hours_to_resolve"] == 20.0
    assert stats["totals"]["p90_hours_to_resolve"] == 36.0
    assert [m["month"] for m in stats["monthly"]] == ["2026-11"] and stats["monthly"][0]["raised"] == 3
    app.extensions["linli.database"].dispose()


@pytest.mark.integration
def test_the_openapi_document_describes_the_api(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.get_json()["paths"]
    for path in ("/", "/{issue_id}", "/{issue_id}/status", "/{issue_id}/updates", "/stats", "/categories", "/similar"):
        assert path in paths, path
    assert "requestBody" in paths["/"]["post"]
    summary = response.get_json()["components"]["schemas"]["IssueSummary"]["properties"]
    for name in ("visibility", "resolution_summary", "rating", "resolved_at"):
        assert name in summary, name
