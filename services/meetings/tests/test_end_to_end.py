"""The roof of Building 7, through the real processes: a resident reports it to the issues service,
the meetings service offers it as a candidate item, a round table takes it up (the issue enters
deliberation and counts a consultation) and decides to resolve it (the issue is resolved and drops
off the candidates). Gateway, issues and meetings each run as gunicorn plus a worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def test_issue_deliberated_and_resolved_by_a_round_table(platform, token_signer):
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    issues = platform.start_web("issues")
    platform.start_worker("issues")
    meetings = platform.start_web("meetings")
    platform.start_worker("meetings")

    admin = {"Authorization": "Bearer " + token_signer.sign(user_id=str(uuid.uuid4()), role="city_admin")}
    api = gateway.url + "/api/v1/directory"
    street_id = requests.post(f"{api}/streets", json={"name": "Yucai Street"}, headers=admin).json()["id"]
    community_id = requests.post(
        f"{api}/communities", json={"street_id": street_id, "name": "Yucai Street Community"}, headers=admin
    ).json()["id"]

    def bearer(role: str, user_id: str | None = None) -> dict:
        token = token_signer.sign(
            user_id=user_id or str(uuid.uuid4()), role=role, street_id=street_id, community_ids=[community_id]
        )
        return {"Authorization": f"Bearer {token}"}

    resident, staff = bearer("resident"), bearer("community_staff")
    report = {
        "title": "Roof of Building 7 leaks",
        "description": "Aging roof, rain comes into the top floor.",
        "category": "repairs_facilities",
        "community_id": community_id,
        "urgency": "normal",
    }
    reported = eventually(
        lambda: (r := requests.post(f"{issues.url}/", json=report, headers=resident)).status_code == 201 and r.json(),
        timeout=60,
        interval=0.2,
        what="the community reaches the issues service's replica",
    )
    issue_id = reported["id"]

    def candidates() -> list[str]:
        r = requests.get(f"{meetings.url}/candidates", params={"community_id": community_id}, headers=staff)
        return [c["issue_id"] for c in r.json()] if r.status_code == 200 else []

    eventually(lambda: issue_id in candidates(), timeout=30, what="the issue offered as a candidate item")

    member_id = str(uuid.uuid4())
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    meeting = requests.post(
        f"{meetings.url}/",
        json={
            "community_id": community_id,
            "meeting_type": "round_table",
            "title": "Neighbourhood consultation round table",
            "place": "Community hall",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "agenda": [{"title": "Roof of Building 7", "issue_id": issue_id, "duration_minutes": 40}],
            "participants": [{"role": "property_company", "user_id": member_id}],
        },
        headers=staff,
    )
    assert meeting.status_code == 201, meeting.text
    meeting = meeting.json()

    def issue() -> dict:
        return requests.get(f"{issues.url}/{issue_id}", headers=staff).json()

    eventually(lambda: issue()["status"] == "deliberating", timeout=30, what="the issue enters deliberation")
    assert issue()["consultation_count"] == 1

    mid = meeting["id"]
    assert requests.post(f"{meetings.url}/{mid}/start", headers=staff).status_code == 200
    [person] = requests.get(f"{meetings.url}/{mid}/participants", headers=staff).json()
    assert requests.post(f"{meetings.url}/{mid}/participants/{person['id']}/check-in", headers=staff).status_code == 200
    motion = requests.post(
        f"{meetings.url}/{mid}/motions",
        json={
            "motion": "The property company re-roofs Building 7",
            "agenda_item_id": meeting["agenda"][0]["id"],
            "issue_effect": "resolve",
            "resolution_plan": "Re-roofed after the sixth consultation and an on-site inspection",
        },
        headers=staff,
    ).json()
    vote = requests.post(
        f"{meetings.url}/{mid}/motions/{motion['id']}/votes",
        json={"choice": "for"},
        headers=bearer("property_manager", member_id),
    )
    assert vote.status_code == 201, vote.text
    recorded = requests.post(f"{meetings.url}/{mid}/motions/{motion['id']}/record", headers=staff).json()
    assert recorded["outcome"] == "adopted"

    eventually(lambda: issue()["status"] == "resolved", timeout=30, what="the decision resolves the issue")
    eventually(lambda: issue_id not in candidates(), timeout=30, what="the resolved issue leaves the candidates")
