"""The embedded default: the service on a SQLite file, through a meeting from schedule to stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from linli_kit import migrations
from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_meetings.definition import definition
from linli_meetings.entrypoints.web import create_app


def test_a_meeting_on_sqlite_keeps_its_times_aware(monkeypatch, tmp_path, token_keys, token_signer):
    url = f"sqlite:///{tmp_path / 'meetings.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_JSON", "false")
    migrations.upgrade(definition.migrations_dir, url)
    database = Database(url)
    client = create_app(load_settings("meetings"), database).test_client()
    community, voter_id = str(uuid.uuid4()), str(uuid.uuid4())

    def bearer(role: str, user_id: str | None = None) -> dict:
        token = token_signer.sign(user_id=user_id or str(uuid.uuid4()), role=role, community_ids=[community])
        return {"Authorization": f"Bearer {token}"}

    staff, voter = bearer("community_staff"), bearer("resident", voter_id)
    start = datetime(2026, 11, 3, 11, tzinfo=UTC)
    meeting = client.post(
        "/",
        json={
            "community_id": community,
            "meeting_type": "bench",
            "title": "Courtyard bench meeting",
            "place": "Courtyard",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "agenda": [{"title": "Parking", "issue_id": str(uuid.uuid4())}],
            "participants": [{"role": "resident", "user_id": voter_id}],
        },
        headers=staff,
    ).get_json()
    mid = meeting["id"]
    assert client.get(f"/{mid}", headers=staff).get_json()["starts_at"] == "2026-11-03T11:00:00+00:00"
    client.post(f"/{mid}/start", headers=staff)
    [person] = client.get(f"/{mid}/participants", headers=staff).get_json()
    client.post(f"/{mid}/participants/{person['id']}/check-in", headers=staff)
    motion = client.post(f"/{mid}/motions", json={"motion": "Paint parking lines"}, headers=staff).get_json()
    assert client.post(f"/{mid}/motions/{motion['id']}/votes", json={"choice": "for"}, headers=voter).status_code == 201
    assert client.post(f"/{mid}/motions/{motion['id']}/votes", json={"choice": "for"}, headers=voter).status_code == 409
    assert client.post(f"/{mid}/motions/{motion['id']}/record", headers=staff).get_json()["outcome"] == "adopted"
    concluded = client.post(f"/{mid}/conclude", json={}, headers=staff)
    assert concluded.status_code == 200 and concluded.get_json()["attendees_count"] == 1
    stats = client.get(
        "/stats", query_string={"community_id": community, "from": "2026-11-01", "to": "2026-11-30"}, headers=staff
    ).get_json()
    assert stats["totals"]["meetings_held"] == 1 and stats["totals"]["issues_deliberated"] == 1
    assert stats["monthly"][0]["month"] == "2026-11" and stats["totals"]["decisions_adopted"] == 1
    database.dispose()
