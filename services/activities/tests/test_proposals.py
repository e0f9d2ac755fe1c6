"""Residents start things: a resident proposes an activity; the community's staff accept it (the
activity is made from it) or decline it with a reason; the proposer may withdraw it; the events
that tell the staff and the proposer. Over HTTP on PostgreSQL (the session's database), and the
domain rules alone."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import messaging
from linli_activities.domain.proposals import ActivityProposal
from linli_kit.errors import Conflict, Invalid
from linli_kit.events.catalogue import CATALOGUE

pytestmark = pytest.mark.integration

PROPOSAL = {"kind": "culture", "title": "Calligraphy for grandparents and children", "reason": "Many want to learn",
            "description": "Saturday mornings at the inn", "place": "Neighbourhood inn",
            "preferred_starts_at": "2026-12-12T09:00:00+08:00"}  # fmt: skip
TIMES = {"starts_at": "2026-12-12T09:00:00+08:00", "ends_at": "2026-12-12T11:00:00+08:00"}


def events(database, event_type, **match):
    with database.session() as s:
        rows = s.scalars(select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == event_type))
        found = [json.loads(p) for p in rows]
    mine = [e for e in found if all(e["data"].get(k) == v for k, v in match.items())]
    for e in mine:
        CATALOGUE.validate(e["type"], e["version"], e["data"])
    return [e["data"] for e in mine]


def answer(response, status):
    body = response.get_json()
    assert response.status_code == status, body
    return body


def test_a_resident_proposes_and_the_staff_make_the_activity(client, world, database):
    proposer, resident = world.person()
    staff_user, staff = world.person("community_staff")
    proposal = answer(client.post("/proposals", json={**PROPOSAL, "community_id": world.community_a},
                                  headers=resident), 201)  # fmt: skip
    pid = proposal["id"]
    assert (proposal["status"], proposal["proposer_id"]) == ("pending", proposer)
    [told] = events(database, "activities.proposal.submitted", proposal_id=pid)
    assert (told["community_id"], told["title"]) == (world.community_a, PROPOSAL["title"])

    # Seen by the proposer and the community's staff only; a neighbour's wish is not a notice.
    assert [p["id"] for p in answer(client.get("/proposals", headers=resident), 200)] == [pid]
    listed = answer(client.get("/proposals", query_string={"status": "pending"}, headers=staff), 200)
    assert pid in [p["id"] for p in listed]
    for outsider in (world.headers(), world.headers("community_staff", community=world.community_b)):
        assert client.get(f"/proposals/{pid}", headers=outsider).status_code == 404
        assert client.post(f"/proposals/{pid}/accept", json=TIMES, headers=outsider).status_code == 404
    assert client.get("/proposals", headers=world.headers()).get_json() == []
    # The proposer cannot accept their own proposal.
    assert client.post(f"/proposals/{pid}/accept", json=TIMES, headers=resident).status_code == 403

    # Bad times are named and change nothing.
    bad = answer(client.post(f"/proposals/{pid}/accept", json={**TIMES, "ends_at": TIMES["starts_at"]},
                             headers=staff), 422)  # fmt: skip
    assert "ends_at" in bad["error"]["fields"]
    assert answer(client.get(f"/proposals/{pid}", headers=staff), 200)["status"] == "pending"

    done = answer(client.post(f"/proposals/{pid}/accept", json={**TIMES, "capacity": 20, "note": "Room booked"},
                              headers=staff), 200)  # fmt: skip
    activity = done["activity"]
    assert (activity["title"], activity["place"]) == (PROPOSAL["title"], "Neighbourhood inn")
    assert (activity["status"], activity["capacity"]) == ("published", 20)
    assert (done["proposal"]["status"], done["proposal"]["activity_id"]) == ("accepted", activity["id"])
    [accepted] = events(database, "activities.proposal.accepted", proposal_id=pid)
    assert (accepted["proposer_id"], accepted["activity_id"], accepted["decided_by"]) == (
        proposer,
        activity["id"],
        staff_user,
    )
    assert accepted["starts_at"].startswith("2026-12-12T01:00:00")
    # Residents see the activity like any other; the proposal cannot be answered twice.
    assert client.get(f"/{activity['id']}", headers=world.headers()).status_code == 200
    assert client.post(f"/proposals/{pid}/decline", json={"reason": "no"}, headers=staff).status_code == 409


def test_staff_decline_with_a_reason_and_a_proposer_may_withdraw(client, world, database):
    proposer, resident = world.person()
    staff = world.headers("community_staff")
    body = {**PROPOSAL, "community_id": world.community_a}
    first = answer(client.post("/proposals", json=body, headers=resident), 201)["id"]
    refused = answer(client.post(f"/proposals/{first}/decline", json={}, headers=staff), 422)
    assert "reason" in refused["error"]["fields"]
    reason = {"reason": "The inn is closed"}
    declined = answer(client.post(f"/proposals/{first}/decline", json=reason, headers=staff), 200)
    assert (declined["status"], declined["decision_reason"]) == ("declined", "The inn is closed")
    [told] = events(database, "activities.proposal.declined", proposal_id=first)
    assert (told["proposer_id"], told["decision_reason"]) == (proposer, "The inn is closed")

    second = answer(client.post("/proposals", json=body, headers=resident), 201)["id"]
    assert client.post(f"/proposals/{second}/withdraw", headers=staff).status_code == 403
    assert answer(client.post(f"/proposals/{second}/withdraw", headers=resident), 200)["status"] == "withdrawn"
    assert client.post(f"/proposals/{second}/accept", json=TIMES, headers=staff).status_code == 409


def test_only_residents_propose_in_their_own_community(client, world):
    body = {**PROPOSAL, "community_id": world.community_b}
    assert client.post("/proposals", json=body, headers=world.headers()).status_code == 403
    assert client.post("/proposals", json={**body, "community_id": world.community_a},
                       headers=world.headers("community_staff")).status_code == 403  # fmt: skip
    bad = answer(client.post("/proposals", json={**body, "kind": "party", "title": ""}, headers=world.headers()), 422)
    assert {"kind", "title"} <= set(bad["error"]["fields"])


def test_a_proposal_is_answered_once():
    now = datetime(2026, 12, 3, tzinfo=UTC)
    proposal = ActivityProposal(str(uuid.uuid4()), str(uuid.uuid4()), "sports", "Tug of war", now)
    with pytest.raises(Invalid):
        proposal.decline("staff", "  ", now)
    proposal.accept("activity", "staff", None, now)
    for again in (lambda: proposal.decline("staff", "no", now), lambda: proposal.withdraw("me", now)):
        with pytest.raises(Conflict):
            again()
    with pytest.raises(Invalid):
        ActivityProposal("c", "p", "party", "Disco", now)
