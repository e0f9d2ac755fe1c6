"""Party organisations take part as the article describes: a party branch is a participant of a
meeting and the owner of an action item; party members are marked on the participants list and
counted in the figures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def branch(organisation_id: str, name: str = "Building 7 party branch") -> dict:
    return {"role": "party_organisation", "organisation_id": organisation_id, "organisation_name": name}


@on_both
def test_a_party_branch_and_party_members_on_the_participants_list(
    client, world, staff, meeting_body, outbox_events, documented, register_organisation
):
    wang = str(uuid.uuid4())
    party_branch = branch(register_organisation())
    body = meeting_body(
        participants=[
            party_branch,
            {"role": "party_member", "user_id": wang},
            {"role": "resident_representative", "name": "Li Hua", "party_member": True},
            {"role": "resident_representative", "name": "Zhao Min"},
        ]
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    response = client.get(f"/{meeting['id']}/participants", headers=staff)
    documented(response, "/{meeting_id}/participants")
    people = {p["name"] or p["organisation_name"]: p for p in response.get_json()}
    body_row = people["Building 7 party branch"]
    assert body_row["role"] == "party_organisation" and body_row["organisation_id"] == party_branch["organisation_id"]
    assert body_row["party_member"] is False and body_row["user_id"] is None
    assert [p["party_member"] for p in response.get_json() if p["user_id"] == wang] == [True]  # by role
    assert people["Li Hua"]["party_member"] is True and people["Zhao Min"]["party_member"] is False
    # Residents of the community see the marks on a public meeting's list too.
    resident = world.headers("resident")
    seen = client.get(f"/{meeting['id']}/participants", headers=resident).get_json()
    assert sorted(p["party_member"] for p in seen) == [False, False, True, True]

    # Staff mark someone afterwards (and correct it); others may not.
    zhao = people["Zhao Min"]["id"]
    marked = client.patch(f"/{meeting['id']}/participants/{zhao}", json={"party_member": True}, headers=staff)
    assert marked.status_code == 200 and marked.get_json()["party_member"] is True
    documented(marked, "/{meeting_id}/participants/{participant_id}", "PATCH")
    assert (
        client.patch(f"/{meeting['id']}/participants/{zhao}", json={"party_member": False}, headers=resident)
    ).status_code == 403
    other_staff = world.headers("community_staff", community_id=world.other_community_id)
    assert (
        client.patch(f"/{meeting['id']}/participants/{zhao}", json={"party_member": False}, headers=other_staff)
    ).status_code == 404
    # A body is not a member; the role party_member is one.
    refused = client.patch(
        f"/{meeting['id']}/participants/{body_row['id']}", json={"party_member": True}, headers=staff
    )
    assert refused.status_code == 422 and list(refused.get_json()["error"]["fields"]) == ["party_member"]
    wang_row = next(p for p in response.get_json() if p["user_id"] == wang)
    refused = client.patch(
        f"/{meeting['id']}/participants/{wang_row['id']}", json={"party_member": False}, headers=staff
    )
    assert refused.status_code == 422 and list(refused.get_json()["error"]["fields"]) == ["party_member"]
    missing = client.patch(f"/{meeting['id']}/participants/{zhao}", json={}, headers=staff)
    assert missing.status_code == 422 and list(missing.get_json()["error"]["fields"]) == ["party_member"]
    unknown = client.patch(f"/{meeting['id']}/participants/{uuid.uuid4()}", json={"party_member": True}, headers=staff)
    assert unknown.status_code == 404
    after = {p["id"]: p["party_member"] for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json()}
    assert after[zhao] is True and after[body_row["id"]] is False and after[wang_row["id"]] is True

    # The same branch twice: refused, on the list of a new meeting (422) and by invitation (409).
    twice = client.post("/", json=meeting_body(participants=[party_branch, party_branch]), headers=staff)
    assert twice.status_code == 422 and list(twice.get_json()["error"]["fields"]) == ["participants.1.organisation_id"]
    again = client.post(f"/{meeting['id']}/participants", json=party_branch, headers=staff)
    assert again.status_code == 409 and list(again.get_json()["error"]["fields"]) == ["organisation_id"]
    assert len(outbox_events("meetings.meeting.scheduled", world.community_id)) == 1


@on_both
@pytest.mark.parametrize(
    ("person", "fields"),
    [
        ({"role": "party_organisation", "organisation_name": "Branch"}, ["organisation_id"]),
        ({"role": "party_organisation", "organisation_id": "branch-7", "organisation_name": "B"}, ["organisation_id"]),
        (
            {
                "role": "party_organisation",
                "organisation_id": str(uuid.uuid4()),
                "organisation_name": "B",
                "party_member": True,
            },
            ["party_member"],
        ),
        ({"role": "party_member", "name": "Wang", "party_member": False}, ["party_member"]),
        ({"role": "party_member", "name": "Wang", "party_member": "perhaps"}, ["party_member"]),
        ({"role": "party_secretary", "name": "Wang"}, ["role"]),
    ],
)
def test_bad_party_participants_are_refused_naming_the_field(client, world, staff, meeting_body, person, fields):
    meeting = client.post("/", json=meeting_body(), headers=staff).get_json()
    response = client.post(f"/{meeting['id']}/participants", json=person, headers=staff)
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == fields
    on_creation = client.post("/", json=meeting_body(participants=[person]), headers=staff)
    assert on_creation.status_code == 422
    assert on_creation.get_json()["error"]["fields"]["participants"]["0"].keys() == set(fields)
    people = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    assert people == []


@on_both
def test_a_party_branch_owns_an_action_item_and_reports_its_progress(
    client, world, staff, meeting_body, outbox_events, documented, register_organisation
):
    party_branch = branch(register_organisation())
    body = meeting_body(meeting_type="bench", participants=[party_branch])
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    # A party organisation as owner is named by its id (its name is the register's unless given).
    unnamed = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "The branch organises the clean-up",
            "action_items": [{"title": "Clean-up", "owner_body": "party_organisation"}],
        },
        headers=staff,
    )
    assert unnamed.status_code == 422
    assert set(unnamed.get_json()["error"]["fields"]) == {"action_items.0.owner_organisation_id"}
    motion = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "The branch organises the clean-up",
            "method": "show_of_hands",
            "action_items": [
                {
                    "title": "Clean-up of the courtyard",
                    "owner_body": "party_organisation",
                    "owner_organisation_id": party_branch["organisation_id"],
                    "owner_organisation_name": party_branch["organisation_name"],
                    "due_date": "2030-06-01",
                }
            ],
        },
        headers=staff,
    ).get_json()
    assert motion["proposed_actions"][0]["owner_organisation_name"] == party_branch["organisation_name"]
    participants = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    client.post(f"/{meeting['id']}/participants/{participants[0]['id']}/check-in", headers=staff)
    client.put(
        f"/{meeting['id']}/motions/{motion['id']}/tally",
        json={"votes_for": 1, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff)
    assert recorded.status_code == 200, recorded.get_json()
    documented(recorded, "/{meeting_id}/motions/{decision_id}/record", "POST")
    [item] = recorded.get_json()["action_items"]
    assert item["owner_body"] == "party_organisation"
    assert item["owner_organisation_id"] == party_branch["organisation_id"]
    assert item["owner_organisation_name"] == party_branch["organisation_name"]
    [assigned] = outbox_events("meetings.action_item.assigned", world.community_id)
    assert assigned["data"]["owner_organisation_name"] == party_branch["organisation_name"]
    [decided] = outbox_events("meetings.decision.recorded", world.community_id)
    assert decided["data"]["action_items"][0]["owner_organisation_id"] == party_branch["organisation_id"]

    # The branch's account reports progress; a party organisation left nameless takes the register's name.
    secretary = world.headers("agency", organisation_id=party_branch["organisation_id"])
    assert client.get(f"/action-items/{item['id']}", headers=secretary).status_code == 200
    progress = client.patch(f"/action-items/{item['id']}", json={"status": "in_progress"}, headers=secretary)
    assert progress.status_code == 200
    renamed = client.patch(f"/action-items/{item['id']}", json={"owner_organisation_name": "Branch 7"}, headers=staff)
    assert renamed.status_code == 200 and renamed.get_json()["owner_organisation_name"] == "Branch 7"
    nameless = client.patch(f"/action-items/{item['id']}", json={"owner_organisation_name": None}, headers=staff)
    assert nameless.status_code == 200, nameless.get_json()
    assert nameless.get_json()["owner_organisation_name"] == "Building 7 party branch"
    listed = client.get(
        "/action-items",
        query_string={"community_id": world.community_id, "owner_body": "party_organisation"},
        headers=staff,
    ).get_json()
    assert [a["id"] for a in listed] == [item["id"]]


@on_both
def test_the_figures_count_party_members_and_party_organisations(
    client, world, staff, meeting_body, register_organisation
):
    start = datetime(2026, 10, 14, 11, tzinfo=UTC)
    party_branch = branch(register_organisation())
    body = meeting_body(
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
        participants=[
            party_branch,
            {"role": "party_member", "name": "Wang"},
            {"role": "resident_representative", "name": "Li", "party_member": True},
            {"role": "resident_representative", "name": "Zhao"},
            {"role": "party_member", "name": "Absent member"},
        ],
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json():
        if p["name"] != "Absent member":
            client.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff)
    motion = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "Clean-up",
            "method": "show_of_hands",
            "action_items": [
                {
                    "title": "Clean-up",
                    "owner_body": "party_organisation",
                    "owner_organisation_id": party_branch["organisation_id"],
                    "owner_organisation_name": party_branch["organisation_name"],
                },
                {"title": "Skip", "owner_body": "community"},
            ],
        },
        headers=staff,
    ).get_json()
    client.put(
        f"/{meeting['id']}/motions/{motion['id']}/tally",
        json={"votes_for": 3, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    # At a round table the branch attends as a body; its members vote as party members.
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff).get_json()
    assert recorded["voting_members"] == 4 and recorded["present_voting_members"] == 3
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 200
    # A meeting not held counts nothing.
    client.post(
        "/",
        json=meeting_body(participants=[branch(register_organisation("Another branch"), "Another branch")]),
        headers=staff,
    )

    stats = client.get(
        "/stats",
        query_string={"community_id": world.community_id, "from": "2026-10-01", "to": "2026-10-31"},
        headers=staff,
    ).get_json()
    totals = stats["totals"]
    assert totals["party_member_participations"] == 2  # Wang and Li, who checked in
    assert totals["party_organisation_participations"] == 1
    assert totals["party_organisation_action_items"] == 1
    [row] = stats["by_community"]
    assert row["party_member_participations"] == 2 and row["party_organisation_action_items"] == 1
    [october] = stats["monthly"]
    assert october["party_member_participations"] == 2 and october["party_organisation_participations"] == 1


@on_both
def test_a_party_organisation_is_one_of_the_register_of_the_community_or_its_street(
    client, world, staff, meeting_body, register_organisation, outbox_events
):
    meeting = client.post("/", json=meeting_body(), headers=staff).get_json()
    street_committee = register_organisation(
        "Street party working committee", "party_organisation", community_id=None, street_id=world.street_id
    )
    # Not given a name, the body takes the register's.
    response = client.post(
        f"/{meeting['id']}/participants",
        json={"role": "party_organisation", "organisation_id": street_committee},
        headers=staff,
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["organisation_name"] == "Street party working committee"
    on_creation = client.post(
        "/",
        json=meeting_body(participants=[{"role": "party_organisation", "organisation_id": register_organisation()}]),
        headers=staff,
    )
    assert on_creation.status_code == 201, on_creation.get_json()
    [body] = client.get(f"/{on_creation.get_json()['id']}/participants", headers=staff).get_json()
    assert body["organisation_name"] == "Building 7 party branch"

    refused = {
        "unregistered": str(uuid.uuid4()),
        "inactive": register_organisation("Dissolved branch", active=False),
        "not a party body": register_organisation("Property company", "property_company"),
        "another community's": register_organisation("Their branch", community_id=world.other_community_id),
        "another street's": register_organisation(
            "Their committee", "party_organisation", community_id=None, street_id=world.other_street_id
        ),
        "the city's": register_organisation("City committee", "party_organisation", community_id=None),
    }
    for case, organisation_id in refused.items():
        person = {"role": "party_organisation", "organisation_id": organisation_id, "organisation_name": "B"}
        invited = client.post(f"/{meeting['id']}/participants", json=person, headers=staff)
        assert invited.status_code == 422, case
        assert list(invited.get_json()["error"]["fields"]) == ["organisation_id"], case
        scheduled = client.post(
            "/", json=meeting_body(participants=[{"role": "resident", "name": "Li"}, person]), headers=staff
        )
        assert scheduled.status_code == 422, case
        assert list(scheduled.get_json()["error"]["fields"]) == ["participants.1.organisation_id"], case
    people = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    assert [p["organisation_id"] for p in people] == [street_committee]  # nothing else was added
    assert len(outbox_events("meetings.meeting.scheduled", world.community_id)) == 2

    # Scope before state: the staff of another community are refused before the register is read.
    other = world.headers("community_staff", community_id=world.other_community_id)
    outsider = client.post(
        f"/{meeting['id']}/participants",
        json={"role": "party_organisation", "organisation_id": refused["unregistered"]},
        headers=other,
    )
    assert outsider.status_code == 404
    foreign = client.post(
        "/",
        json=meeting_body(participants=[{"role": "party_organisation", "organisation_id": refused["unregistered"]}]),
        headers=other,
    )
    assert foreign.status_code == 403


@on_both
def test_an_action_item_owned_by_a_party_organisation_names_one_of_the_register(
    client, world, staff, meeting_body, register_organisation
):
    body = meeting_body(meeting_type="bench", participants=[{"role": "resident", "name": "Li"}])
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json():
        client.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff)
    unknown = str(uuid.uuid4())
    bad = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "The branch organises the clean-up",
            "action_items": [
                {"title": "Clean-up", "owner_body": "community"},
                {"title": "Posters", "owner_body": "party_organisation", "owner_organisation_id": unknown},
            ],
        },
        headers=staff,
    )
    assert bad.status_code == 422
    assert list(bad.get_json()["error"]["fields"]) == ["action_items.1.owner_organisation_id"]
    assert client.get(f"/{meeting['id']}/motions", headers=staff).get_json() == []

    branch_id = register_organisation()
    motion = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "The branch organises the clean-up",
            "method": "show_of_hands",
            "action_items": [
                {"title": "Clean-up", "owner_body": "party_organisation", "owner_organisation_id": branch_id}
            ],
        },
        headers=staff,
    ).get_json()
    client.put(
        f"/{meeting['id']}/motions/{motion['id']}/tally",
        json={"votes_for": 1, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff)
    assert recorded.status_code == 200, recorded.get_json()
    [item] = recorded.get_json()["action_items"]
    assert item["owner_organisation_name"] == "Building 7 party branch"  # the register's

    # Reassigned: to an unregistered body refused, nothing changed; to a registered one, named.
    moved = client.patch(f"/action-items/{item['id']}", json={"owner_organisation_id": unknown}, headers=staff)
    assert moved.status_code == 422 and list(moved.get_json()["error"]["fields"]) == ["owner_organisation_id"]
    assert client.get(f"/action-items/{item['id']}", headers=staff).get_json()["owner_organisation_id"] == branch_id
    to_community = client.patch(f"/action-items/{item['id']}", json={"owner_body": "community"}, headers=staff)
    assert to_community.status_code == 200
    other_branch = register_organisation("Building 9 party branch")
    back = client.patch(
        f"/action-items/{item['id']}",
        json={"owner_body": "party_organisation", "owner_organisation_id": other_branch},
        headers=staff,
    )
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["owner_organisation_name"] == "Building 9 party branch"
