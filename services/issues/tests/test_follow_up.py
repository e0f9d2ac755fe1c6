"""Action items move the issue: the meetings service's `meetings.action_item.*` events, handled as
the worker's consumer does (in one transaction each), on PostgreSQL and on SQLite."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from linli_issues.definition import definition
from linli_kit.events import new_event

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def deliver(database, env):
    handlers = definition.handlers(definition.settings(), database)

    def send(event_type: str, data: dict, *, minutes: int) -> None:
        event = new_event(event_type, data, producer="meetings", community_id=data["community_id"])
        event = dataclasses.replace(event, occurred_at=T0 + timedelta(minutes=minutes))
        with database.transaction() as session:
            handlers[event_type](session, event)

    return send


def decision_event(community_id: str, issue_id: str, decision_id: str, effect: str, items: int) -> dict:
    return {
        "decision_id": decision_id,
        "meeting_id": str(uuid.uuid4()),
        "community_id": community_id,
        "motion": "Repair the roof of Building 7 before the rains",
        "outcome": "adopted",
        "rule": "a majority of those present",
        "votes_for": 9,
        "votes_against": 1,
        "abstentions": 0,
        "issue_ids": [issue_id],
        "issue_effect": effect,
        "action_items": [
            {"action_item_id": str(uuid.uuid4()), "title": f"Step {n}", "owner_body": "property_company"}
            for n in range(items)
        ],
    }


def item_event(community_id: str, issue_id: str, decision_id: str, effect: str, *, done: int, of: int, **extra) -> dict:
    return {
        "action_item_id": str(uuid.uuid4()),
        "decision_id": decision_id,
        "meeting_id": str(uuid.uuid4()),
        "community_id": community_id,
        "title": "Replace the roof membrane",
        "owner_body": "property_company",
        "status": extra.pop("status", "done"),
        "issue_ids": [issue_id],
        "decision_issue_effect": effect,
        "decision_action_items": of,
        "decision_action_items_done": done,
        "decision_complete": done == of,
        **extra,
    }


def test_the_issue_is_resolved_when_the_decisions_items_are_done(client, report, tokens, deliver, outbox):
    issue, reporter = report()
    supporter = tokens.resident()
    assert client.post(f"/{issue['id']}/supporters", headers=supporter).status_code == 200
    community, decision = issue["community_id"], str(uuid.uuid4())
    # A decision to resolve that leaves two action items: the issue is being resolved until they are done.
    deliver("meetings.decision.recorded", decision_event(community, issue["id"], decision, "resolve", 2), minutes=0)
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert shown["status"] == "resolving"
    assert shown["follow_up"] == {"action_items": 2, "done": 0}

    deliver(
        "meetings.action_item.completed",
        item_event(community, issue["id"], decision, "resolve", done=1, of=2),
        minutes=5,
    )
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolving", {"action_items": 2, "done": 1})
    [listed] = [i for i in client.get("/", headers=reporter).get_json() if i["id"] == issue["id"]]
    assert listed["follow_up"] == {"action_items": 2, "done": 1}

    resolved_before = len(outbox("issues.issue.resolved"))
    last = item_event(community, issue["id"], decision, "resolve", done=2, of=2)
    deliver("meetings.action_item.completed", last, minutes=10)
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolved", {"action_items": 2, "done": 2})
    resolved = outbox("issues.issue.resolved")
    assert len(resolved) == resolved_before + 1
    assert resolved[-1][1]["supporter_ids"] and resolved[-1][1]["reporter_id"] == issue["reporter_id"]
    assert resolved[-1][1]["summary"] == "Repair the roof of Building 7 before the rains"  # the decision's motion

    # The same news again, or an older count arriving late, changes nothing.
    deliver("meetings.action_item.completed", last, minutes=10)
    deliver(
        "meetings.action_item.updated", item_event(community, issue["id"], decision, "resolve", done=1, of=2), minutes=7
    )
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolved", {"action_items": 2, "done": 2})
    assert len(outbox("issues.issue.resolved")) == resolved_before + 1

    # An item reopened: the issue stays resolved, and its timeline says so.
    reopened = item_event(community, issue["id"], decision, "resolve", done=1, of=2, status="in_progress")
    deliver("meetings.action_item.updated", reopened, minutes=20)
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolved", {"action_items": 2, "done": 1})
    follow_ups = [
        e for e in client.get(f"/{issue['id']}/updates", headers=reporter).get_json() if e["kind"] == "follow_up"
    ]
    assert [e["data"]["complete"] for e in follow_ups] == [True, False]
    assert follow_ups[0]["data"]["moved"] is True


def test_a_plan_carried_out_moves_the_issue_to_resolving(client, report, deliver, outbox, tokens):
    issue, reporter = report()
    community, decision = issue["community_id"], str(uuid.uuid4())
    # Counts arrive before the decision itself: the late decision does not reset them.
    deliver(
        "meetings.action_item.completed",
        item_event(community, issue["id"], decision, "resolution_plan", done=1, of=1),
        minutes=5,
    )
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolving", {"action_items": 1, "done": 1})
    assert outbox("issues.issue.status_changed")[-1][1]["status"] == "resolving"
    deliver("meetings.decision.recorded", decision_event(community, issue["id"], decision, "none", 1), minutes=0)
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("resolving", {"action_items": 1, "done": 1})


def test_older_events_without_counts_only_reach_the_timeline(client, report, deliver):
    issue, reporter = report()
    data = item_event(issue["community_id"], issue["id"], str(uuid.uuid4()), "resolve", done=1, of=1)
    for name in (
        "issue_ids",
        "decision_issue_effect",
        "decision_action_items",
        "decision_action_items_done",
        "decision_complete",
    ):
        data.pop(name)
    data["issue_id"] = issue["id"]
    deliver("meetings.action_item.completed", data, minutes=0)
    shown = client.get(f"/{issue['id']}", headers=reporter).get_json()
    assert (shown["status"], shown["follow_up"]) == ("reported", {"action_items": 0, "done": 0})
    kinds = [e["kind"] for e in client.get(f"/{issue['id']}/updates", headers=reporter).get_json()]
    assert kinds.count("action_item") == 1
