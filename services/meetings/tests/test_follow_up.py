"""Action items move the issue on: each has an owner (a person or an organisation), a due date and
a progress; their events carry the decision, its issues and whether all its action items are done."""

from __future__ import annotations

import threading
import uuid

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def decided(client, world, staff, meeting_body):
    """A bench meeting adopts a resolution plan for an issue with these action items; returns
    (issue_id, decision, [action items])."""

    def decide(actions):
        issue_id = str(uuid.uuid4())
        body = meeting_body(
            meeting_type="bench",
            agenda=[{"title": "Cracked wall", "issue_id": issue_id}],
            participants=[{"role": "resident", "name": "Neighbour"}],
        )
        meeting = client.post("/", json=body, headers=staff).get_json()
        client.post(f"/{meeting['id']}/start", headers=staff)
        [person] = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
        client.post(f"/{meeting['id']}/participants/{person['id']}/check-in", headers=staff)
        motion = client.post(
            f"/{meeting['id']}/motions",
            json={
                "motion": "Take the wall down",
                "method": "show_of_hands",
                "agenda_item_id": meeting["agenda"][0]["id"],
                "issue_effect": "resolution_plan",
                "resolution_plan": "Dismantle and rebuild",
                "action_items": actions,
            },
            headers=staff,
        ).get_json()
        client.put(
            f"/{meeting['id']}/motions/{motion['id']}/tally",
            json={"votes_for": 1, "votes_against": 0, "abstentions": 0},
            headers=staff,
        )
        recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff).get_json()
        assert recorded["outcome"] == "adopted", recorded
        return issue_id, recorded, recorded["action_items"]

    return decide


@on_both
def test_completing_the_action_items_of_a_decision_tells_the_issue(
    client, world, staff, decided, outbox_events, documented
):
    owner_id, owner = world.person()
    company = str(uuid.uuid4())
    issue_id, decision, items = decided(
        [
            {"title": "Take it down", "owner_body": "residents", "owner_user_id": owner_id, "due_date": "2030-01-10"},
            {
                "title": "Rebuild",
                "owner_body": "property_company",
                "owner_organisation_id": company,
                "owner_organisation_name": "Lianhe Property",
                "due_date": "2030-02-01",
            },
            {"title": "Paint", "owner_body": "community", "due_date": "2030-03-01"},
        ]
    )
    down, rebuild, paint = (i["id"] for i in items)
    assigned = outbox_events("meetings.action_item.assigned", world.community_id)
    assert len(assigned) == 3
    first = assigned[0]["data"]
    assert first["decision_id"] == decision["id"] and first["issue_ids"] == [issue_id]
    assert (first["decision_action_items"], first["decision_action_items_done"], first["decision_complete"]) == (
        3,
        0,
        False,
    )
    assert first["decision_issue_effect"] == "resolution_plan" and first["progress"] == 0

    # The owner reports progress: the item is in progress, and the issue hears of it.
    report = client.patch(f"/action-items/{down}", json={"progress": 40, "note": "scaffolding up"}, headers=owner)
    assert report.status_code == 200, report.get_json()
    documented(report, "/action-items/{item_id}", "PATCH")
    assert (report.get_json()["status"], report.get_json()["progress"]) == ("in_progress", 40)
    [updated] = outbox_events("meetings.action_item.updated", world.community_id)
    assert updated["data"]["progress"] == 40 and updated["data"]["note"] == "scaffolding up"

    # Bad reports change nothing.
    for body, status, field in (
        ({"progress": 101}, 422, "progress"),
        ({"progress": -1}, 422, "progress"),
        ({"progress": "half"}, 422, "progress"),
        ({"status": "done", "progress": 50}, 422, "progress"),
        ({"status": "in_progress", "progress": 100}, 422, "progress"),
    ):
        refused = client.patch(f"/action-items/{down}", json=body, headers=owner)
        assert refused.status_code == status and list(refused.get_json()["error"]["fields"]) == [field], body
    assert client.get(f"/action-items/{down}", headers=staff).get_json()["progress"] == 40
    assert len(outbox_events("meetings.action_item.updated", world.community_id)) == 1

    # 100 % is done: the first of three.
    done = client.patch(f"/action-items/{down}", json={"progress": 100}, headers=owner).get_json()
    assert done["status"] == "done" and done["completed_at"]
    [completed] = outbox_events("meetings.action_item.completed", world.community_id)
    data = completed["data"]
    assert data["decision_id"] == decision["id"] and data["issue_ids"] == [issue_id]
    assert (data["decision_action_items"], data["decision_action_items_done"], data["decision_complete"]) == (
        3,
        1,
        False,
    )
    # A done item is at 100 %; reopen it first.
    below = client.patch(f"/action-items/{down}", json={"progress": 90}, headers=owner)
    assert below.status_code == 422 and list(below.get_json()["error"]["fields"]) == ["progress"]

    # The painting is dropped: two to do, one done.
    client.patch(f"/action-items/{paint}", json={"status": "cancelled", "note": "not needed"}, headers=staff)
    cancelled = outbox_events("meetings.action_item.updated", world.community_id)[-1]["data"]
    assert cancelled["status"] == "cancelled" and cancelled["decision_action_items"] == 2
    assert client.patch(f"/action-items/{paint}", json={"progress": 10}, headers=staff).status_code == 409

    # The company finishes: every action item of the decision is done.
    manager = world.headers("property_manager", organisation_id=company)
    assert client.patch(f"/action-items/{rebuild}", json={"status": "done"}, headers=manager).status_code == 200
    last = outbox_events("meetings.action_item.completed", world.community_id)[-1]["data"]
    assert last["action_item_id"] == rebuild and last["owner_organisation_name"] == "Lianhe Property"
    assert (last["decision_action_items"], last["decision_action_items_done"], last["decision_complete"]) == (
        2,
        2,
        True,
    )

    # Reopened (the work was not finished): progress starts again, the decision is open again.
    reopened = client.patch(f"/action-items/{rebuild}", json={"status": "in_progress"}, headers=staff).get_json()
    assert (reopened["status"], reopened["progress"], reopened["completed_at"]) == ("in_progress", 0, None)
    again = outbox_events("meetings.action_item.updated", world.community_id)[-1]["data"]
    assert again["action_item_id"] == rebuild and again["decision_complete"] is False

    # Rescheduling is the staff's; the owner may not.
    assert client.patch(f"/action-items/{down}", json={"due_date": "2031-01-01"}, headers=owner).status_code == 403
    moved = client.patch(f"/action-items/{paint}", json={"due_date": "2031-01-01"}, headers=staff)
    assert moved.status_code == 200 and moved.get_json()["due_date"] == "2031-01-01"


def test_the_last_two_action_items_done_at_once_complete_the_decision_once(app, world, decided, outbox_events):
    """On PostgreSQL: two owners finishing the last two items at the same moment; exactly one of the
    completion events says the decision is complete."""
    owners = [world.person() for _ in range(2)]
    _, _, items = decided(
        [{"title": f"Part {n}", "owner_body": "residents", "owner_user_id": owners[n][0]} for n in range(2)]
    )
    barrier = threading.Barrier(2)
    statuses = [0, 0]

    def finish(n: int) -> None:
        c = app.test_client()
        barrier.wait()
        statuses[n] = c.patch(
            f"/action-items/{items[n]['id']}", json={"status": "done"}, headers=owners[n][1]
        ).status_code

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200, 200]
    completed = [e["data"] for e in outbox_events("meetings.action_item.completed", world.community_id)]
    assert sorted(d["decision_complete"] for d in completed) == [False, True]
    assert sorted(d["decision_action_items_done"] for d in completed) == [1, 2]
