"""An owners' committee invited to a round table as a body: registered and of the meeting's
community; any of its members (residents whose token names the committee) sees the meeting and
casts the committee's one vote; nobody else does."""

from __future__ import annotations

import uuid

import pytest

from linli_kit.events import new_event
from linli_kit.replica import replica_handlers
from linli_meetings.adapters.tables import replica

pytestmark = pytest.mark.integration


def _committee(database, compound_community: str, *, kind: str = "owners_committee") -> str:
    """A compound of `compound_community` and a registered body of that compound, as the directory's
    events would put them into the replica."""
    handlers = replica_handlers(replica)
    compound, organisation = str(uuid.uuid4()), str(uuid.uuid4())
    with database.transaction() as session:
        handlers["directory.compound.upserted"](
            session,
            new_event(
                "directory.compound.upserted",
                {"compound_id": compound, "community_id": compound_community, "name": "Garden", "revision": 1},
                producer="gateway",
            ),
        )
        handlers["directory.organisation.upserted"](
            session,
            new_event(
                "directory.organisation.upserted",
                {
                    "organisation_id": organisation,
                    "kind": kind,
                    "name": "Garden Owners",
                    "compound_ids": [compound],
                    "revision": 1,
                },
                producer="gateway",
            ),
        )
    return organisation


def test_a_member_votes_for_the_committee_invited_as_a_body(client, world, staff, meeting_body, database):
    committee = _committee(database, world.community_id)
    elsewhere = _committee(database, world.other_community_id)
    company = _committee(database, world.community_id, kind="property_company")
    member_id, member = world.person(organisation_id=committee)
    colleague_id, colleague = world.person(organisation_id=committee)
    _, outsider = world.person(organisation_id=elsewhere, community_id=world.other_community_id)
    _, neighbour = world.person()

    # Only a registered committee of a compound of the meeting's community is invited as a body.
    for wrong in (elsewhere, company, str(uuid.uuid4())):
        body = meeting_body(participants=[{"role": "owners_committee", "organisation_id": wrong}])
        refused = client.post("/", json=body, headers=staff)
        assert refused.status_code == 422 and "participants.0.organisation_id" in refused.get_json()["error"]["fields"]
    representative_id, representative = world.person()
    body = meeting_body(
        meeting_type="round_table",
        public=False,
        participants=[
            {"role": "owners_committee", "organisation_id": committee},
            {"role": "resident_representative", "user_id": representative_id},
        ],
    )
    created = client.post("/", json=body, headers=staff)
    assert created.status_code == 201, created.get_json()
    meeting = created.get_json()
    again = client.post(
        f"/{meeting['id']}/participants", json={"role": "owners_committee", "organisation_id": committee}, headers=staff
    )
    assert again.status_code == 409
    # The members see the (private) meeting, in lists too; a neighbour and another committee do not.
    assert client.get(f"/{meeting['id']}", headers=member).status_code == 200
    assert meeting["id"] in {m["id"] for m in client.get("/", headers=member).get_json()}
    assert client.get(f"/{meeting['id']}", headers=neighbour).status_code == 404
    assert client.get(f"/{meeting['id']}", headers=outsider).status_code == 404

    client.post(f"/{meeting['id']}/start", headers=staff)
    people = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    [seat] = [p for p in people if p["role"] == "owners_committee"]
    assert seat["organisation_name"] == "Garden Owners" and seat["user_id"] is None
    for participant in people:
        client.post(f"/{meeting['id']}/participants/{participant['id']}/check-in", headers=staff)
    motion = client.post(f"/{meeting['id']}/motions", json={"motion": "Repaint the fence"}, headers=staff).get_json()
    url = f"/{meeting['id']}/motions/{motion['id']}/votes"

    # Scope before state: another committee's member learns nothing of the motion (404).
    assert client.post(url, json={"choice": "for"}, headers=outsider).status_code == 404
    cast = client.post(url, json={"choice": "for"}, headers=member)
    assert cast.status_code == 201, cast.get_json()
    assert cast.get_json()["voter_id"] == committee
    # One vote for the committee, whichever member casts it.
    twice = client.post(url, json={"choice": "against"}, headers=colleague)
    assert twice.status_code == 409 and "already voted" in twice.get_json()["error"]["message"]
    assert client.post(url, json={"choice": "for"}, headers=representative).status_code == 201
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff).get_json()
    assert (recorded["votes_for"], recorded["outcome"]) == (2, "adopted")
    assert {v["voter_id"] for v in recorded["votes"]} == {committee, representative_id}
    assert member_id != colleague_id
