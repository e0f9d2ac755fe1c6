"""A member of an owners' committee (a resident whose token names the committee) acts for it: reads
and accepts what is assigned to it, records an inspection, moves it on; nobody else does, and
scope is checked before state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from linli_issues.domain.model import Issue
from linli_issues.service_layer import access
from linli_kit.auth import Principal, Role

from .test_routing_and_visibility import register

pytestmark = pytest.mark.integration


def _issue(**fields) -> Issue:
    values = {"community_id": "c1", "title": "t", "description": "d", "category": "property_management"}
    values |= {
        "urgency": "normal",
        "reporter_id": str(uuid.uuid4()),
        "tier": "compound",
        "created_at": datetime.now(UTC),
    }
    return Issue(**(values | fields))


def test_a_resident_acts_for_the_owners_committee_they_sit_on_and_for_no_other_body():
    committee, company = str(uuid.uuid4()), str(uuid.uuid4())
    member = Principal(user_id="m", role=Role.RESIDENT, community_ids=("c1",), organisation_id=committee)
    neighbour = Principal(user_id="n", role=Role.RESIDENT, community_ids=("c1",))
    to_committee = _issue(assignee_type="owners_committee", assignee_id=committee)
    assert access.is_assignee(member, to_committee)
    assert not access.is_assignee(neighbour, to_committee)
    # A resident's organisation is an owners' committee: the same id as another kind of body
    # (which the register never hands out twice) opens nothing.
    assert not access.is_assignee(member, _issue(assignee_type="property_company", assignee_id=committee))
    assert not access.is_assignee(member, _issue(assignee_type="owners_committee", assignee_id=company))
    # Their lists hold the committee's private issues besides their own community's readable ones.
    assert access.scope_of(member).private_assignee == committee
    assert access.scope_of(neighbour).private_assignee is None


def test_a_committee_member_accepts_inspects_and_resolves_what_is_assigned_to_the_committee(
    client, report, tokens, directory, database, outbox
):
    committee = register(database, "owners_committee", [directory.compound_a1])
    other_committee = register(database, "owners_committee", [directory.compound_a1_east])
    issue, reporter = report(category="property_management")  # routed to the committee
    assert (issue["assignee_type"], issue["assignee_id"]) == ("owners_committee", committee)
    # A private one (anonymous) is read by the committee too, in its lists as well.
    hidden, _ = report(category="property_management", anonymous=True)
    member = tokens.header(
        str(uuid.uuid4()), "resident", community_ids=[directory.community_a1], organisation_id=committee
    )
    outsider = tokens.header(
        str(uuid.uuid4()), "resident", community_ids=[directory.community_a1], organisation_id=other_committee
    )
    assert client.get(f"/{hidden['id']}", headers=member).status_code == 200
    assert client.get(f"/{hidden['id']}", headers=outsider).status_code == 404
    assert hidden["id"] in {i["id"] for i in client.get("/", headers=member).get_json()}
    assert hidden["id"] not in {i["id"] for i in client.get("/", headers=outsider).get_json()}
    assert client.get(f"/{hidden['id']}", headers=member).get_json()["reporter_id"] is None  # anonymity holds

    url = f"/{issue['id']}/assignment/acceptance"
    # Scope before state: a neighbour of another committee reads the issue but does not act for it
    # (403); another community's resident does not even learn it exists (404).
    assert client.post(url, json={}, headers=outsider).status_code == 403
    stranger = tokens.resident(community_id=directory.community_b1)
    assert client.post(url, json={}, headers=stranger).status_code == 404
    assert client.post(url, json={}, headers=reporter).status_code == 403
    accepted = client.post(url, json={"note": "We take it on"}, headers=member)
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["kind"] == "assignment_accepted"
    again = client.post(url, json={}, headers=member)
    assert again.status_code == 409 and "already accepted" in again.get_json()["error"]["message"]
    # The acceptance is told on the bus once, with the issue as it stands (the refused one is not).
    accepted_events = [p for t, p in outbox() if t == "issues.issue.assignment_accepted"]
    assert len(accepted_events) == 1
    assert accepted_events[0]["issue_id"] == issue["id"]
    assert accepted_events[0]["assignee_id"] == committee
    # The reporter sees that the committee has it in hand.
    kinds = [e["kind"] for e in client.get(f"/{issue['id']}/updates", headers=reporter).get_json()]
    assert "assignment_accepted" in kinds

    # An on-site inspection, and an internal note, as the assignee; not as a neighbour.
    inspection = {"kind": "inspection", "body": "Walked the roof", "attendees": ["owners' committee", "property"]}
    assert client.post(f"/{issue['id']}/updates", json=inspection, headers=outsider).status_code == 403
    recorded = client.post(f"/{issue['id']}/updates", json=inspection, headers=member)
    assert recorded.status_code == 201, recorded.get_json()
    note = client.post(f"/{issue['id']}/updates", json={"kind": "note", "body": "Quote asked"}, headers=member)
    assert note.status_code == 201
    seen = client.get(f"/{issue['id']}/updates", headers=member).get_json()
    assert {"inspection", "note"} <= {e["kind"] for e in seen}

    # Staff move it on and assign it elsewhere: the new assignment needs its own acceptance, and
    # the committee no longer acts on it.
    staff = tokens.staff()
    assert client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=staff).status_code == 200
    moving = client.post(
        f"/{issue['id']}/status", json={"status": "resolving", "plan": "Fix the gutter"}, headers=member
    )
    assert moving.status_code == 200, moving.get_json()
    reassigned = client.put(
        f"/{issue['id']}/assignment",
        json={"assignee_type": "property_company", "assignee_id": tokens.property_company},
        headers=staff,
    )
    assert reassigned.status_code == 200, reassigned.get_json()
    assert client.post(url, json={}, headers=member).status_code == 403
    assert client.post(url, json={}, headers=tokens.property_manager()).status_code == 201
