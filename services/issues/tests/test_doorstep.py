"""An issue raised on a welfare visit: the activities service's `activities.visit.concern_raised`,
handled as the worker's consumer does (in one transaction), reported here as a door-step report for
the resident, under the id the visit keeps, once."""

from __future__ import annotations

import uuid

import pytest

from linli_issues.definition import definition
from linli_kit.events import new_event

pytestmark = pytest.mark.integration


@pytest.fixture
def deliver(database):
    handlers = definition.handlers(definition.settings(), database)

    def send(data: dict) -> None:
        event = new_event("activities.visit.concern_raised", data, producer="activities",
                          community_id=data["community_id"])  # fmt: skip
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
