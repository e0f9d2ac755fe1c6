"""Issues raised on the spot by the activities service, handled as the worker's consumer does (in one
transaction), reported here as door-step reports under the id the activities service keeps, once:
on a welfare visit (`activities.visit.concern_raised`, for the resident) and on a mutual-aid
group's patrol (`activities.patrol.finding_raised`, credited to the group)."""

from __future__ import annotations

import uuid

import pytest

from linli_issues.definition import definition
from linli_kit.events import new_event

pytestmark = pytest.mark.integration


@pytest.fixture
def deliver(database):
    handlers = definition.handlers(definition.settings(), database)

    def send(data: dict, event_type: str = "activities.visit.concern_raised") -> None:
        event = new_event(event_type, data, producer="activities", community_id=data["community_id"])
        with database.transaction() as session:
            handlers[event.type](session, event)

    return send


def concern(directory, **changes) -> dict:
    return {
        "visit_id": str(uuid.uuid4()),
        "issue_id": str(uuid.uuid4()),
        "flag_id": str(uuid.uuid4()),
        "community_id": directory.community_a1,
        "resident_id": str(uuid.uuid4()),
        "raised_by": str(uuid.uuid4()),
        "title": "Broken stair rail",
        "description": "The rail on the first floor is loose",
        "category": "elderly_vulnerable_support",
        "urgency": "high",
        "address": "Building 3, room 101",
        **changes,
    }


def test_a_concern_raised_on_a_visit_is_reported_once_for_the_resident(client, directory, tokens, deliver, outbox):
    raised = concern(directory)
    deliver(raised)
    deliver(raised)  # a replay (another copy of the event, another id): nothing twice
    reported = [d for _, d in outbox("issues.issue.reported") if d["issue_id"] == raised["issue_id"]]
    assert len(reported) == 1
    assert (reported[0]["channel"], reported[0]["actor_id"]) == ("doorstep", raised["raised_by"])
    # The resident reads it as their own report; private, being about a person: not their neighbours.
    mine = client.get(f"/{raised['issue_id']}", headers=tokens.resident(raised["resident_id"])).get_json()
    assert (mine["title"], mine["channel"], mine["visibility"], mine["urgency"]) == (
        "Broken stair rail",
        "doorstep",
        "private",
        "high",
    )
    assert (mine["reporter_id"], mine["address"]) == (raised["resident_id"], "Building 3, room 101")
    staff = client.get(f"/{raised['issue_id']}", headers=tokens.staff()).get_json()
    assert staff["reported_by"] == raised["raised_by"]  # who took it, for the staff
    assert client.get(f"/{raised['issue_id']}", headers=tokens.resident()).status_code == 404


def test_an_unknown_category_a_resident_without_account_and_a_community_matter(client, directory, tokens, deliver):
    raised = concern(directory, category="no_such_category", resident_id=None, urgency="normal")
    deliver(raised)
    shown = client.get(f"/{raised['issue_id']}", headers=tokens.staff()).get_json()
    assert (shown["category"], shown["reporter_id"]) == ("elderly_vulnerable_support", raised["raised_by"])
    # A community matter (a broken lamp on the stairs) is the neighbours' to read: not the address.
    lamp = concern(directory, category="repairs_facilities", title="Stair lamp out")
    deliver(lamp)
    shown = client.get(f"/{lamp['issue_id']}", headers=tokens.resident()).get_json()
    assert (shown["visibility"], shown["address"]) == ("community", None)


def finding(directory, **changes) -> dict:
    return {
        "finding_id": str(uuid.uuid4()),
        "round_id": str(uuid.uuid4()),
        "issue_id": str(uuid.uuid4()),
        "community_id": directory.community_a1,
        "group_id": str(uuid.uuid4()),
        "group_name": "Woodpecker patrol 啄木鸟巡逻队",
        "raised_by": str(uuid.uuid4()),
        "title": "Manhole cover loose",
        "description": "The cover by Building 2 rocks underfoot",
        "category": "safety_hazard",
        "urgency": "high",
        "address": "Lane between Buildings 2 and 3",
        **changes,
    }


def test_a_patrol_finding_becomes_one_issue_credited_to_the_group(client, directory, tokens, deliver, outbox):
    found = finding(directory)
    deliver(found, "activities.patrol.finding_raised")
    deliver(found, "activities.patrol.finding_raised")  # delivered twice: one issue
    reported = [d for _, d in outbox("issues.issue.reported") if d["issue_id"] == found["issue_id"]]
    assert len(reported) == 1 and reported[0]["actor_id"] == found["raised_by"]
    # A public place: the neighbours read it, where it is, and whose patrol found it.
    shown = client.get(f"/{found['issue_id']}", headers=tokens.resident()).get_json()
    assert (shown["title"], shown["channel"], shown["visibility"], shown["urgency"]) == (
        "Manhole cover loose",
        "doorstep",
        "community",
        "high",
    )
    assert (shown["address"], shown["credited_group_id"], shown["credited_group_name"]) == (
        "Lane between Buildings 2 and 3",
        found["group_id"],
        "Woodpecker patrol 啄木鸟巡逻队",
    )
    staff = tokens.staff()
    assert client.get(f"/{found['issue_id']}", headers=staff).get_json()["reporter_id"] == found["raised_by"]
    [entry] = [
        e for e in client.get(f"/{found['issue_id']}/updates", headers=staff).get_json() if e["kind"] == "report"
    ]
    assert entry["data"]["mutual_aid_group_id"] == found["group_id"]
    assert entry["data"]["patrol_finding_id"] == found["finding_id"]
    # A category retired meanwhile (or unknown): "other", the place still kept.
    odd = finding(directory, category="no_such_category")
    deliver(odd, "activities.patrol.finding_raised")
    shown = client.get(f"/{odd['issue_id']}", headers=staff).get_json()
    assert (shown["category"], shown["address"]) == ("other", "Lane between Buildings 2 and 3")
