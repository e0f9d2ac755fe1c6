"""Residents start things: a resident proposes a bench meeting on an issue; the staff accept it
(scheduling the meeting) or decline it with a reason; the proposer is told through the events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from linli_kit.events import new_event
from linli_meetings.service_layer.candidates import keep_issue

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def issues(database, world):
    """Issues in the replica, as the issues service described them: {name: issue_id}."""

    def add(name: str, status: str = "reported", community_id: str | None = None) -> str:
        issue_id = str(uuid.uuid4())
        with database.transaction() as session:
            keep_issue(
                session,
                new_event(
                    "issues.issue.reported",
                    {
                        "issue_id": issue_id,
                        "community_id": community_id or world.community_id,
                        "title": name,
                        "category": "environment",
                        "urgency": "normal",
                        "status": status,
                        "tier": "compound",
                        "reporter_id": str(uuid.uuid4()),
                        "revision": 1,
                    },
                    producer="issues",
                ),
            )
        return issue_id

    return add


def times(days: int = 5) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}


@on_both
def test_a_resident_proposes_a_bench_meeting_and_the_staff_schedule_it(
    client, world, staff, issues, outbox_events, documented
):
    wall = issues("Cracked cultural wall")
    proposer_id, proposer = world.person()
    response = client.post(
        "/proposals",
        json={"community_id": world.community_id, "issue_id": wall, "reason": "It nearly hit a child"},
        headers=proposer,
    )
    assert response.status_code == 201, response.get_json()
    documented(response, "/proposals", "POST")
    proposal = response.get_json()
    assert proposal["status"] == "pending" and proposal["meeting_type"] == "bench"
    assert proposal["proposer_id"] == proposer_id and proposal["meeting_id"] is None
    [submitted] = outbox_events("meetings.proposal.submitted", world.community_id)
    assert submitted["data"]["issue_title"] == "Cracked cultural wall"
    assert submitted["data"]["reason"] == "It nearly hit a child" and submitted["street_id"] == world.street_id

    # Once pending per resident and issue; another resident may propose too.
    again = client.post(
        "/proposals", json={"community_id": world.community_id, "issue_id": wall, "reason": "again"}, headers=proposer
    )
    assert again.status_code == 409 and list(again.get_json()["error"]["fields"]) == ["issue_id"]
    neighbour_id, neighbour = world.person()
    assert (
        client.post(
            "/proposals",
            json={"community_id": world.community_id, "issue_id": wall, "reason": "Me too"},
            headers=neighbour,
        ).status_code
        == 201
    )

    # Who sees what: the proposer their own, the staff all of the community's, others nothing.
    mine = client.get("/proposals", headers=proposer)
    documented(mine, "/proposals")
    assert [p["id"] for p in mine.get_json()] == [proposal["id"]]
    assert len(client.get("/proposals", query_string={"issue_id": wall}, headers=staff).get_json()) == 2
    other_staff = world.headers("community_staff", community_id=world.other_community_id)
    assert client.get("/proposals", headers=other_staff).get_json() == []
    assert client.get(f"/proposals/{proposal['id']}", headers=other_staff).status_code == 404
    assert client.get(f"/proposals/{proposal['id']}", headers=neighbour).status_code == 404
    assert client.get(f"/proposals/{proposal['id']}", headers=proposer).status_code == 200
    official = world.headers("street_official")
    assert len(client.get("/proposals", query_string={"status": "pending"}, headers=official).get_json()) == 2

    # Only the community's staff answer; bad times change nothing.
    assert client.post(f"/proposals/{proposal['id']}/accept", json=times(), headers=proposer).status_code == 403
    assert client.post(f"/proposals/{proposal['id']}/accept", json=times(), headers=other_staff).status_code == 404
    backwards = times() | {"ends_at": times(days=4)["starts_at"], "place": "Courtyard"}
    bad = client.post(f"/proposals/{proposal['id']}/accept", json=backwards, headers=staff)
    assert bad.status_code == 422 and list(bad.get_json()["error"]["fields"]) == ["ends_at"]
    nowhere = client.post(f"/proposals/{proposal['id']}/accept", json=times(), headers=staff)
    assert nowhere.status_code == 422 and list(nowhere.get_json()["error"]["fields"]) == ["place"]
    assert client.get(f"/proposals/{proposal['id']}", headers=staff).get_json()["status"] == "pending"
    assert outbox_events("meetings.meeting.scheduled", world.community_id) == []

    accepted = client.post(
        f"/proposals/{proposal['id']}/accept",
        json=times() | {"place": "Courtyard of Building 3", "note": "Bring the photos"},
        headers=staff,
    )
    assert accepted.status_code == 200, accepted.get_json()
    documented(accepted, "/proposals/{proposal_id}/accept", "POST")
    answer = accepted.get_json()
    assert answer["status"] == "accepted" and answer["decided_at"] and answer["decision_reason"] == "Bring the photos"
    meeting = client.get(f"/{answer['meeting_id']}", headers=proposer).get_json()
    assert meeting["meeting_type"] == "bench" and meeting["place"] == "Courtyard of Building 3"
    assert meeting["title"] == "Bench meeting (板凳会): Cracked cultural wall"
    assert [(i["issue_id"], i["notes"]) for i in meeting["agenda"]] == [(wall, "It nearly hit a child")]
    people = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    assert [(p["user_id"], p["role"]) for p in people] == [(proposer_id, "resident")]
    [scheduled] = outbox_events("meetings.meeting.scheduled", world.community_id)
    assert scheduled["data"]["issue_ids"] == [wall] and scheduled["data"]["participant_ids"] == [proposer_id]
    [told] = outbox_events("meetings.proposal.accepted", world.community_id)
    assert told["data"]["proposer_id"] == proposer_id and told["data"]["meeting_id"] == meeting["id"]
    assert told["data"]["starts_at"].startswith(meeting["starts_at"][:16]) and told["data"]["place"] == meeting["place"]
    again = client.post(f"/proposals/{proposal['id']}/accept", json=times() | {"place": "x"}, headers=staff)
    assert again.status_code == 409
    # Answered: the resident may propose again on the same issue.
    assert (
        client.post(
            "/proposals",
            json={
                "community_id": world.community_id,
                "issue_id": wall,
                "reason": "A second look",
                "meeting_type": "pavilion",
            },
            headers=proposer,
        ).status_code
        == 201
    )


@on_both
def test_the_staff_decline_with_a_reason_the_proposer_is_told(client, world, staff, issues, outbox_events):
    lamp = issues("Broken lamp")
    proposer_id, proposer = world.person()
    proposal = client.post(
        "/proposals",
        json={"community_id": world.community_id, "issue_id": lamp, "reason": "Dark at night"},
        headers=proposer,
    ).get_json()
    no_reason = client.post(f"/proposals/{proposal['id']}/decline", json={}, headers=staff)
    assert no_reason.status_code == 422 and list(no_reason.get_json()["error"]["fields"]) == ["reason"]
    empty = client.post(f"/proposals/{proposal['id']}/decline", json={"reason": ""}, headers=staff)
    assert empty.status_code == 422 and list(empty.get_json()["error"]["fields"]) == ["reason"]
    assert (
        client.post(f"/proposals/{proposal['id']}/decline", json={"reason": "no"}, headers=proposer).status_code == 403
    )
    declined = client.post(
        f"/proposals/{proposal['id']}/decline",
        json={"reason": "The property company repairs it on Monday"},
        headers=staff,
    )
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    [told] = outbox_events("meetings.proposal.declined", world.community_id)
    assert told["data"]["proposer_id"] == proposer_id
    assert told["data"]["decision_reason"] == "The property company repairs it on Monday"
    assert client.post(f"/proposals/{proposal['id']}/decline", json={"reason": "x"}, headers=staff).status_code == 409
    assert client.post(f"/proposals/{proposal['id']}/withdraw", headers=proposer).status_code == 409
    assert client.get(f"/proposals/{proposal['id']}", headers=proposer).get_json()["status"] == "declined"

    # A pending proposal is the proposer's to withdraw; the staff decline instead.
    second = client.post(
        "/proposals",
        json={"community_id": world.community_id, "issue_id": lamp, "reason": "Still dark"},
        headers=proposer,
    ).get_json()
    assert client.post(f"/proposals/{second['id']}/withdraw", headers=staff).status_code == 403
    withdrawn = client.post(f"/proposals/{second['id']}/withdraw", headers=proposer)
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    assert len(outbox_events("meetings.proposal.declined", world.community_id)) == 1


@on_both
def test_proposals_outside_ones_community_or_on_no_pending_issue_are_refused(
    client, world, staff, issues, outbox_events
):
    pending = issues("Pending")
    resolved = issues("Resolved", status="resolved")
    elsewhere = issues("Elsewhere", community_id=world.other_community_id)
    _, resident = world.person()

    def propose(headers, **overrides):
        body = {"community_id": world.community_id, "issue_id": pending, "reason": "Please"} | overrides
        return client.post("/proposals", json=body, headers=headers)

    # Scope before state: another community's resident, staff and officials do not propose.
    outsider = world.headers("resident", community_id=world.other_community_id)
    assert propose(outsider).status_code == 403
    assert propose(outsider, issue_id=str(uuid.uuid4())).status_code == 403
    assert propose(staff).status_code == 403
    assert propose(world.headers("street_official")).status_code == 403
    for overrides, field in (
        ({"issue_id": str(uuid.uuid4())}, "issue_id"),
        ({"issue_id": resolved}, "issue_id"),
        ({"issue_id": elsewhere}, "issue_id"),
        ({"issue_id": "wall"}, "issue_id"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"meeting_type": "picnic"}, "meeting_type"),
        ({"meeting_type": "Bench!"}, "meeting_type"),
        ({"community_id": None}, "community_id"),
    ):
        response = propose(resident, **overrides)
        assert response.status_code == 422, (overrides, response.get_json())
        assert list(response.get_json()["error"]["fields"]) == [field], overrides
    assert client.get("/proposals", headers=staff).get_json() == []
    assert outbox_events("meetings.proposal.submitted", world.community_id) == []
    assert client.get(f"/proposals/{uuid.uuid4()}", headers=staff).status_code == 404
