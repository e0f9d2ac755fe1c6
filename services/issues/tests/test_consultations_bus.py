"""The consultation flow driven by real meetings events through RabbitMQ into the issues worker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from linli_issues.adapters.tables import messaging
from linli_issues.definition import definition
from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 10, 11, 0, tzinfo=UTC)


@pytest.fixture
def worker(env, amqp_url, bus_names):
    settings = definition.settings()
    database = Database(settings.database_url)
    running = definition.build_worker(settings, database)
    running.start()
    eventually(running.is_ready, what="issues worker connected")
    yield running
    running.shutdown(10)
    database.dispose()


@pytest.fixture
def send(amqp_url, bus_names):
    def publish(event_type: str, data: dict, community_id: str) -> str:
        event = new_event(event_type, data, producer="meetings", community_id=community_id)
        probe.publish_raw(amqp_url, bus_names, event.to_json().encode(), routing_key=event_type)
        return event.to_json()

    return publish


def meeting(community_id: str, issue_ids: list[str], *, number: int, revision: int = 1, **extra) -> dict:
    return {
        "meeting_id": str(uuid.UUID(int=number)),
        "community_id": community_id,
        "meeting_type": "round_table",
        "title": f"Neighbourhood round table no. {number}",
        "starts_at": START + timedelta(days=7 * number),
        "ends_at": START + timedelta(days=7 * number, hours=2),
        "convener_id": str(uuid.uuid4()),
        "agenda": [{"item_id": str(uuid.uuid4()), "title": "Roof of Building 7", "issue_id": issue_ids[0]}]
        if issue_ids
        else [],
        "issue_ids": issue_ids,
        "revision": revision,
        **extra,
    }


def decision(community_id: str, issue_ids: list[str], effect: str, *, number: int, **extra) -> dict:
    return {
        "decision_id": str(uuid.uuid4()),
        "meeting_id": str(uuid.UUID(int=number)),
        "community_id": community_id,
        "motion": extra.pop("motion", f"motion with effect {effect}"),
        "outcome": extra.pop("outcome", "adopted"),
        "rule": "two-thirds of those present",
        "votes_for": 14,
        "votes_against": 2,
        "abstentions": 1,
        "issue_ids": issue_ids,
        "issue_effect": effect,
        **extra,
    }


def test_six_consultations_then_a_plan_then_resolution(client, tokens, report, worker, send, database):
    roof, _ = report()
    community = tokens.d.community_a1
    staff = tokens.staff()
    url = f"/{roof['id']}"

    def issue() -> dict:
        return client.get(url, headers=staff).get_json()

    first = meeting(community, [roof["id"]], number=1)
    send("meetings.meeting.scheduled", first, community)
    body = eventually(lambda: (i := issue())["consultation_count"] == 1 and i, what="first consultation")
    assert body["status"] == "deliberating"
    # The same meeting again (a redelivery, or a duplicate publish) changes nothing.
    send("meetings.meeting.scheduled", first, community)
    for number in range(2, 6):
        send("meetings.meeting.scheduled", meeting(community, [roof["id"]], number=number), community)
    sixth = meeting(community, [], number=6)
    send("meetings.meeting.scheduled", sixth, community)
    send(
        "meetings.agenda_item.added",
        {
            "meeting_id": sixth["meeting_id"],
            "community_id": community,
            "meeting_type": "round_table",
            "title": sixth["title"],
            "starts_at": sixth["starts_at"],
            "item_id": str(uuid.uuid4()),
            "issue_id": roof["id"],
        },
        community,
    )
    eventually(lambda: issue()["consultation_count"] == 6, what="six consultations")

    # Meeting 3 is cancelled; an older snapshot of it arriving late does not bring it back.
    third = meeting(community, [roof["id"]], number=3, revision=3, reason="no quorum expected")
    send("meetings.meeting.cancelled", third, community)
    eventually(lambda: issue()["consultation_count"] == 5, what="cancelled meeting no longer counts")
    late = meeting(community, [roof["id"]], number=3, revision=2, previous_starts_at=START)
    send("meetings.meeting.rescheduled", late, community)
    concluded = meeting(
        community,
        [roof["id"]],
        number=1,
        revision=2,
        attendees_count=23,
        concluded_at=START + timedelta(days=7, hours=2),
    )
    send("meetings.meeting.concluded", concluded, community)

    def meetings() -> list[dict]:
        return client.get(f"{url}/meetings", headers=staff).get_json()

    history = eventually(lambda: (m := meetings())[0]["status"] == "concluded" and m, what="concluded meeting")
    assert [m["status"] for m in history] == [
        "concluded",
        "scheduled",
        "cancelled",
        "scheduled",
        "scheduled",
        "scheduled",
    ]
    assert issue()["consultation_count"] == 5

    send("meetings.decision.recorded", decision(community, [roof["id"]], "reconsult", number=1), community)
    send(
        "meetings.decision.recorded",
        decision(
            community, [roof["id"]], "resolution_plan", number=5, resolution_plan="Housing bureau funds a new roof"
        ),
        community,
    )
    body = eventually(lambda: (i := issue())["status"] == "resolving" and i, what="resolution plan adopted")
    assert body["resolution_plan"] == "Housing bureau funds a new roof"
    action = {
        "action_item_id": str(uuid.uuid4()),
        "decision_id": str(uuid.uuid4()),
        "meeting_id": str(uuid.UUID(int=5)),
        "community_id": community,
        "issue_id": roof["id"],
        "title": "Property company replaces the membrane",
        "owner_body": "property_company",
        "status": "open",
    }
    send("meetings.action_item.assigned", action, community)
    send("meetings.action_item.completed", {**action, "status": "done", "note": "done on 20 Dec"}, community)
    send(
        "meetings.decision.recorded",
        decision(community, [roof["id"]], "resolve", number=6, motion="The roof is repaired and dry"),
        community,
    )
    body = eventually(lambda: (i := issue())["status"] == "resolved" and i, what="resolved by decision")
    assert body["resolution_summary"] == "The roof is repaired and dry"

    timeline = client.get(f"{url}/updates", headers=staff).get_json()
    kinds = [e["kind"] for e in timeline]
    assert kinds.count("meeting") == 6 and kinds.count("decision") == 3 and kinds.count("action_item") == 2
    decisions = [e for e in timeline if e["kind"] == "decision"]
    assert decisions[0]["data"]["issue_effect"] == "reconsult" and decisions[0]["data"]["votes_for"] == 14

    # What the issue did went out as events, through the outbox and the relay.
    with database.session() as s:
        types = list(s.scalars(select(messaging.outbox.c.event_type).order_by(messaging.outbox.c.id)))
    assert types[0] == "issues.issue.reported" and types[-1] == "issues.issue.resolved"
    assert "issues.issue.status_changed" in types

    def unpublished() -> int:
        with database.session() as s:
            outbox = messaging.outbox
            return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))

    eventually(lambda: unpublished() == 0, what="issues events published by the relay")


def test_decisions_escalate_and_rejected_motions_only_leave_a_note(client, tokens, report, worker, send):
    wall, _ = report(title="Cultural wall is unsafe", category="safety_hazard", compound_id=None)
    lift, _ = report(title="Lift broken for a month")
    community = tokens.d.community_a1
    staff = tokens.staff()
    send("meetings.meeting.scheduled", meeting(community, [wall["id"], lift["id"]], number=1), community)
    send("meetings.decision.recorded", decision(community, [wall["id"]], "escalate", number=1), community)
    send(
        "meetings.decision.recorded",
        decision(community, [lift["id"]], "resolve", number=1, outcome="rejected"),
        community,
    )
    send(
        "meetings.decision.recorded",
        decision(community, [str(uuid.uuid4())], "resolve", number=1),  # an issue this service never had
        community,
    )
    body = eventually(
        lambda: (i := client.get(f"/{wall['id']}", headers=staff).get_json())["tier"] == "street" and i,
        what="escalated by decision",
    )
    assert body["status"] == "deliberating"

    def lift_decisions() -> list[dict]:
        return [e for e in client.get(f"/{lift['id']}/updates", headers=staff).get_json() if e["kind"] == "decision"]

    [note] = eventually(lift_decisions, what="rejected motion noted")
    assert note["data"]["outcome"] == "rejected" and note["data"]["issue_effect"] == "none"
    assert client.get(f"/{lift['id']}", headers=staff).get_json()["status"] == "deliberating"


def test_an_action_item_update_through_the_bus_moves_the_issue_once_all_are_done(client, tokens, report, worker, send):
    leak, _ = report(title="Basement floods after rain")
    community = tokens.d.community_a1
    staff = tokens.staff()
    ruling = decision(
        community,
        [leak["id"]],
        "resolve",
        number=1,
        resolution_plan="Pump installed and drain cleared",
        action_items=[
            {"action_item_id": str(uuid.uuid4()), "title": "Install a pump", "owner_body": "property_company"},
            {"action_item_id": str(uuid.uuid4()), "title": "Clear the drain", "owner_body": "community"},
        ],
    )
    send("meetings.decision.recorded", ruling, community)
    eventually(
        lambda: client.get(f"/{leak['id']}", headers=staff).get_json()["follow_up"] == {"action_items": 2, "done": 0},
        what="the decision's two action items counted",
    )
    item = {
        "action_item_id": ruling["action_items"][0]["action_item_id"],
        "decision_id": ruling["decision_id"],
        "meeting_id": ruling["meeting_id"],
        "community_id": community,
        "title": "Install a pump",
        "owner_body": "property_company",
        "issue_ids": [leak["id"]],
        "decision_issue_effect": "resolve",
        "decision_action_items": 2,
    }
    send(
        "meetings.action_item.updated",
        {**item, "status": "in_progress", "progress": 50, "decision_action_items_done": 0, "decision_complete": False},
        community,
    )
    send(
        "meetings.action_item.completed",
        {**item, "status": "done", "decision_action_items_done": 1, "decision_complete": False},
        community,
    )
    eventually(
        lambda: client.get(f"/{leak['id']}", headers=staff).get_json()["follow_up"]["done"] == 1,
        what="one of two done",
    )
    assert client.get(f"/{leak['id']}", headers=staff).get_json()["status"] == "resolving"
    drain = {**item, "action_item_id": ruling["action_items"][1]["action_item_id"], "title": "Clear the drain"}
    send(
        "meetings.action_item.completed",
        {
            **drain,
            "owner_body": "community",
            "status": "done",
            "decision_action_items_done": 2,
            "decision_complete": True,
        },
        community,
    )
    body = eventually(
        lambda: (i := client.get(f"/{leak['id']}", headers=staff).get_json())["status"] == "resolved" and i,
        what="resolved once both are done",
    )
    assert body["follow_up"] == {"action_items": 2, "done": 2}
    assert body["resolution_summary"] == "Pump installed and drain cleared"


def test_what_a_meeting_does_to_an_issue_reads_in_the_language_of_the_answer(
    client, tokens, report, worker, send, database
):
    """The reason the service writes when a meeting takes the issue up (and when a decision moves
    it) is worded for the reader: Chinese by default, English on request; the event carries the
    English, as it always has."""
    wall, _ = report()
    community = tokens.d.community_a1
    staff = tokens.staff()
    url = f"/{wall['id']}"
    title = "北门文化墙议事会"
    send(
        "meetings.agenda_item.added",
        {
            "meeting_id": str(uuid.UUID(int=41)),
            "community_id": community,
            "meeting_type": "round_table",
            "title": title,
            "starts_at": START,
            "item_id": str(uuid.uuid4()),
            "issue_id": wall["id"],
        },
        community,
    )
    eventually(lambda: client.get(url, headers=staff).get_json()["status"] == "deliberating", what="on the agenda")

    def moves(language: str) -> list[dict]:
        timeline = client.get(f"{url}/updates", headers=staff | {"Accept-Language": language}).get_json()
        return [e for e in timeline if e["kind"] == "status"]

    [in_chinese] = moves("zh-CN")
    assert in_chinese["body"] == f"已列入会议议程：{title}"
    assert in_chinese["data"]["message"] == {"id": "on the agenda of {title}", "params": {"title": title}}
    [in_english] = moves("en")
    assert in_english["body"] == f"on the agenda of {title}"
    with database.session() as s:
        outbox = messaging.outbox
        payloads = s.scalars(select(outbox.c.payload).where(outbox.c.event_type == "issues.issue.status_changed"))
        [moved] = [d for d in (json.loads(p)["data"] for p in payloads) if d["issue_id"] == wall["id"]]
    assert moved["reason"] == f"on the agenda of {title}"

    # A decision to resolve a reported issue takes it through `accepted`, decided at a meeting.
    lamp, _ = report(title="North gate street lamp is out", description="Dark at night.", urgency="normal")
    send(
        "meetings.decision.recorded",
        decision(community, [lamp["id"]], "resolve", number=41, motion="路灯已修好"),
        community,
    )
    eventually(lambda: client.get(f"/{lamp['id']}", headers=staff).get_json()["status"] == "resolved", what="resolved")
    timeline = client.get(f"/{lamp['id']}/updates", headers=staff | {"Accept-Language": "zh"}).get_json()
    assert [e["body"] for e in timeline if e["kind"] == "status"] == ["会议已作出决定", "路灯已修好"]
    timeline = client.get(f"/{lamp['id']}/updates", headers=staff | {"Accept-Language": "en"}).get_json()
    assert [e["body"] for e in timeline if e["kind"] == "status"] == ["decided at a meeting", "路灯已修好"]
