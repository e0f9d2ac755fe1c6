"""Flows through the real RabbitMQ: issues.* events become candidate items; agenda and decisions
reach the issues side as meetings.* events."""

from __future__ import annotations

import uuid

import pytest

from linli_kit.events import new_event
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def issue_event(event_type, issue_id, community_id, status, revision, **extra):
    data = {
        "issue_id": issue_id,
        "community_id": community_id,
        "title": f"Issue {issue_id[:6]}",
        "category": "building",
        "urgency": "normal",
        "status": status,
        "tier": "community",
        "reporter_id": str(uuid.uuid4()),
        "supporter_count": extra.pop("supporter_count", 0),
        "revision": revision,
    } | extra
    return new_event(event_type, data, producer="issues", community_id=community_id)


def test_pending_issues_become_candidates_in_order_and_tolerate_duplicates_and_late_events(
    client, world, staff, worker, publish
):
    roof, wall, spam = (str(uuid.uuid4()) for _ in range(3))
    c = world.community_id
    reported_roof = issue_event("issues.issue.reported", roof, c, "reported", 1)
    publish(reported_roof)
    publish(reported_roof)  # a duplicate delivery
    publish(issue_event("issues.issue.reported", wall, c, "reported", 1))
    publish(
        issue_event(
            "issues.issue.supported", wall, c, "reported", 2, supporter_count=12, supporter_id=str(uuid.uuid4())
        )
    )
    publish(issue_event("issues.issue.reported", spam, c, "reported", 1))
    publish(issue_event("issues.issue.status_changed", spam, c, "rejected", 2, from_status="reported"))
    # The roof is resolved; then a late, older event arrives and must not bring it back.
    publish(issue_event("issues.issue.resolved", roof, c, "resolved", 5))
    publish(issue_event("issues.issue.accepted", roof, c, "accepted", 3, from_status="reported"))
    sentinel = str(uuid.uuid4())
    publish(issue_event("issues.issue.reported", sentinel, world.other_community_id, "reported", 1))

    other_staff = world.headers("community_staff", community_id=world.other_community_id)

    def candidates(headers, community):
        return client.get("/candidates", query_string={"community_id": community}, headers=headers).get_json()

    eventually(lambda: candidates(other_staff, world.other_community_id), what="the sentinel issue handled")
    listed = candidates(staff, c)
    assert [i["issue_id"] for i in listed] == [wall]  # roof resolved, spam rejected
    assert listed[0]["supporter_count"] == 12 and listed[0]["consultations"] == 0
    assert client.get("/candidates", query_string={"community_id": c}, headers=other_staff).status_code == 403


def test_agenda_and_decision_reach_the_issue_side_through_the_bus(client, world, staff, worker, bus_tap, meeting_body):
    tap = bus_tap("meetings.#")
    issue_id = str(uuid.uuid4())
    rep_id, rep = world.person()
    meeting = client.post(
        "/",
        json=meeting_body(meeting_type="bench", participants=[{"role": "resident", "user_id": rep_id}]),
        headers=staff,
    ).get_json()
    item = client.post(
        f"/{meeting['id']}/agenda", json={"title": "Cultural wall", "issue_id": issue_id}, headers=staff
    ).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    participant = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()[0]
    client.post(f"/{meeting['id']}/participants/{participant['id']}/check-in", headers=staff)
    motion = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "Dismantle the two cultural walls",
            "agenda_item_id": item["id"],
            "issue_effect": "resolve",
            "threshold": "unanimous",
        },
        headers=staff,
    ).get_json()
    assert (
        client.post(f"/{meeting['id']}/motions/{motion['id']}/votes", json={"choice": "for"}, headers=rep).status_code
        == 201
    )
    assert (
        client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff).get_json()["outcome"] == "adopted"
    )
    client.post(f"/{meeting['id']}/conclude", json={"minutes": "unanimous"}, headers=staff)

    def types():
        return [e["type"] for e in tap.events()]

    eventually(lambda: "meetings.meeting.concluded" in types(), what="the meeting's events on the broker")
    by_type = {e["type"]: e for e in tap.events()}
    assert types()[:2] == ["meetings.meeting.scheduled", "meetings.agenda_item.added"]
    assert by_type["meetings.agenda_item.added"]["data"]["issue_id"] == issue_id
    decision = by_type["meetings.decision.recorded"]["data"]
    assert (
        decision["issue_ids"] == [issue_id]
        and decision["issue_effect"] == "resolve"
        and decision["outcome"] == "adopted"
    )
    assert "unanimity" in decision["rule"] and decision["votes_for"] == 1
    concluded = by_type["meetings.meeting.concluded"]["data"]
    assert (
        concluded["issue_ids"] == [issue_id]
        and concluded["attendees_count"] == 1
        and concluded["participant_ids"] == [rep_id]
    )


def test_visibility_and_the_register_of_organisations_arrive_through_the_bus(
    client, world, staff, worker, publish, meeting_body
):
    """The worker keeps an issue's visibility (private: its title for the reporter, supporters and
    staff only) and the register's party bodies from directory.organisation.upserted."""
    secret, branch_id = str(uuid.uuid4()), str(uuid.uuid4())
    reporter_id, reporter = world.person()
    _, neighbour = world.person()
    c = world.community_id
    publish(
        issue_event("issues.issue.reported", secret, c, "reported", 1, visibility="private", reporter_id=reporter_id)
    )
    organisation = {
        "organisation_id": branch_id,
        "kind": "party_branch",
        "name": "Building 3 party branch",
        "street_id": world.street_id,
        "community_id": c,
        "compound_ids": [],
        "parent_id": None,
        "active": True,
        "revision": 1,
    }
    publish(new_event("directory.organisation.upserted", organisation, producer="gateway"))

    def reporter_candidates():
        return client.get("/candidates", query_string={"community_id": c}, headers=reporter).get_json()

    eventually(reporter_candidates, what="the private issue kept")
    assert client.get("/candidates", query_string={"community_id": c}, headers=neighbour).get_json() == []

    party = {"role": "party_organisation", "organisation_id": branch_id}
    meeting = client.post("/", json=meeting_body(), headers=staff).get_json()

    def invited():
        response = client.post(f"/{meeting['id']}/participants", json=party, headers=staff)
        return response.get_json() if response.status_code == 201 else None

    body = eventually(invited, what="the party branch registered")
    assert body["organisation_name"] == "Building 3 party branch"
