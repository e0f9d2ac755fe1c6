"""Corrections on both databases: reopening restarts the deadline; a status event only for a real
change of status, always with the previous one; extreme dates and blank or unstorable text are
4xx; every instant answered carries its offset."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from linli_issues.definition import definition, handlers, timers
from linli_kit.db import Database
from linli_kit.events import Event, new_event

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)]
STATUS_EVENTS = {
    "issues.issue.accepted",
    "issues.issue.status_changed",
    "issues.issue.resolved",
    "issues.issue.closed",
    "issues.issue.reopened",
}


@pytest.fixture
def run_timer(env, clock):
    settings = definition.settings()
    database = Database(settings.database_url)
    by_name = {t.name: t for t in timers(settings, database, clock=clock)}
    yield lambda name: by_name[name].run()
    database.dispose()


@pytest.fixture
def deliver(env, database):
    """Hand a meetings event to the issues worker's handler, in one transaction as the consumer does."""
    settings = definition.settings()
    table = handlers(settings, database)

    def send(event_type: str, data: dict) -> None:
        event = Event.from_json(new_event(event_type, data, producer="meetings").to_json())
        with database.transaction() as session:
            table[event_type](session, event)

    return send


def status_events(outbox) -> list[dict]:
    return [data | {"type": t} for t, data in outbox() if t in STATUS_EVENTS]


def test_a_reopened_issue_gets_a_fresh_deadline_and_the_next_tick_does_not_escalate_it(
    client, tokens, report, clock, run_timer, outbox
):
    issue, resident = report(urgency="high")  # repairs, high: 120 hours
    url = f"/{issue['id']}"
    staff = tokens.staff()
    client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)
    clock.advance(hours=100)
    client.post(f"{url}/status", json={"status": "resolved", "summary": "patched"}, headers=staff)
    clock.advance(hours=100)  # the first deadline passed long ago
    reopened = client.post(f"{url}/reopen", json={"reason": "it leaks again"}, headers=resident)
    assert reopened.status_code == 200, reopened.get_json()
    body = reopened.get_json()
    assert body["status"] == "accepted" and body["overdue"] is False
    assert datetime.fromisoformat(body["due_at"]) == clock.now + timedelta(hours=120)
    [(_, event)] = outbox("issues.issue.reopened")
    assert event["from_status"] == "resolved" and event["due_at"] == body["due_at"]

    run_timer("escalate-overdue")
    assert client.get(url, headers=staff).get_json()["tier"] == "compound"
    assert outbox("issues.issue.escalated") == [] and outbox("issues.issue.overdue") == []
    clock.advance(hours=121)
    run_timer("escalate-overdue")
    assert client.get(url, headers=staff).get_json()["tier"] == "community"

    # Closed by a rating, then reopened: the same fresh start.
    client.post(f"{url}/status", json={"status": "resolved", "summary": "membrane replaced"}, headers=staff)
    client.post(f"{url}/rating", json={"rating": 2}, headers=resident)
    clock.advance(hours=500)
    again = client.post(f"{url}/reopen", json={"reason": "still leaking"}, headers=resident).get_json()
    assert datetime.fromisoformat(again["due_at"]) == clock.now + timedelta(hours=120)


def test_every_status_event_is_a_real_change_and_names_the_previous_status(client, tokens, report, clock, outbox):
    issue, resident = report()
    url = f"/{issue['id']}"
    staff = tokens.staff()
    for body in (
        {"status": "accepted"},
        {"status": "deliberating", "reason": "for the round table"},
        {"status": "resolving", "plan": "x" * 4000},  # the plan is the move's reason: longer than an event's
        {"status": "resolved", "summary": "fixed"},
    ):
        clock.advance(hours=1)
        response = client.post(f"{url}/status", json=body, headers=staff)
        assert response.status_code == 200, (body, response.get_json())
    client.post(f"{url}/rating", json={"rating": 3}, headers=resident)
    client.post(f"{url}/reopen", json={"reason": "not fixed"}, headers=resident)
    events = status_events(outbox)
    assert [(e["type"], e["from_status"], e["status"]) for e in events] == [
        ("issues.issue.accepted", "reported", "accepted"),
        ("issues.issue.status_changed", "accepted", "deliberating"),
        ("issues.issue.status_changed", "deliberating", "resolving"),
        ("issues.issue.resolved", "resolving", "resolved"),
        ("issues.issue.closed", "resolved", "closed"),
        ("issues.issue.reopened", "closed", "accepted"),
    ]
    long_reason = events[2]["reason"]
    assert len(long_reason) == 2000 and long_reason.endswith("\u2026")  # the contract's limit; the timeline keeps all
    timeline = client.get(f"{url}/updates", headers=staff).get_json()
    assert any(entry["body"] == "x" * 4000 for entry in timeline)


def test_a_meeting_on_an_issue_already_in_deliberation_announces_no_status(client, tokens, report, deliver, outbox):
    issue, _ = report()
    community = tokens.d.community_a1
    starts = datetime(2026, 11, 20, 10, tzinfo=UTC)

    def meeting(number: int) -> dict:
        return {
            "meeting_id": str(uuid.UUID(int=number)),
            "community_id": community,
            "meeting_type": "round_table",
            "title": f"Round table {number}",
            "starts_at": starts + timedelta(days=number),
            "ends_at": starts + timedelta(days=number, hours=2),
            "convener_id": str(uuid.uuid4()),
            "issue_ids": [issue["id"]],
            "revision": 1,
        }

    deliver("meetings.meeting.scheduled", meeting(1))
    [moved] = status_events(outbox)
    assert (moved["type"], moved["from_status"], moved["status"]) == (
        "issues.issue.status_changed",
        "reported",
        "deliberating",
    )
    assert moved["consultation_count"] == 1
    published = len(outbox())
    # On the agenda of a second meeting, and of a third by an agenda item: it is already deliberating.
    deliver("meetings.meeting.scheduled", meeting(2))
    third = meeting(3)
    deliver(
        "meetings.agenda_item.added",
        {key: third[key] for key in ("meeting_id", "community_id", "meeting_type", "title", "starts_at")}
        | {"item_id": str(uuid.uuid4()), "issue_id": issue["id"]},
    )
    assert len(outbox()) == published, outbox()[published:]
    body = client.get(f"/{issue['id']}", headers=tokens.staff()).get_json()
    assert body["consultation_count"] == 3 and body["status"] == "deliberating"


def test_escalating_an_issue_that_is_still_reported_publishes_no_status_event(
    client, tokens, report, clock, run_timer, outbox
):
    issue, _ = report()
    escalated = client.post(f"/{issue['id']}/escalations", json={"reason": "no answer"}, headers=tokens.staff())
    assert escalated.status_code == 200 and escalated.get_json()["status"] == "reported"
    clock.advance(days=30)  # past the community tier's deadline: the timer escalates it again
    run_timer("escalate-overdue")
    types = [t for t, _ in outbox()]
    assert types == [
        "issues.issue.reported",
        "issues.issue.escalated",
        "issues.issue.overdue",
        "issues.issue.escalated",
    ]
    assert [(d["from_tier"], d["tier"], d["status"]) for _, d in outbox("issues.issue.escalated")] == [
        ("compound", "community", "reported"),
        ("community", "street", "reported"),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("created_from=0001-01-01T00:00:00%2B01:00", "created_from"),
        ("created_to=9999-12-31T23:59:59-01:00", "created_to"),
        ("created_from=1969-12-31T23:00:00Z", "created_from"),
        ("created_to=3000-01-01T00:00:00Z", "created_to"),
        ("created_from=yesterday", "created_from"),
    ],
)
def test_instants_outside_the_platforms_range_are_422_naming_the_filter(client, tokens, report, query, field):
    report()
    response = client.get(f"/?{query}", headers=tokens.staff())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert client.get(f"/export.csv?{query}", headers=tokens.staff()).status_code == 422


def test_instants_inside_the_range_filter_and_a_time_without_offset_is_utc(client, tokens, report, clock):
    first, _ = report()
    clock.advance(hours=2)
    second, _ = report()
    staff = tokens.staff()

    def ids(query: str) -> list[str]:
        response = client.get(f"/?{query}", headers=staff)
        assert response.status_code == 200, response.get_json()
        return [i["id"] for i in response.get_json()]

    assert ids("created_from=1970-01-02T00:00:00Z&created_to=2999-12-30T00:00:00Z") == [second["id"], first["id"]]
    # 02:00 UTC is 10:00 in Shanghai: between the two reports.
    assert ids("created_from=2026-11-02T10:00:00%2B08:00") == [second["id"]]
    assert ids("created_to=2026-11-02T02:00:00") == [first["id"]]


OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def test_every_instant_answered_carries_its_offset(client, tokens, report, database):
    issue, resident = report()
    staff = tokens.staff()
    client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=staff)
    client.post(f"/{issue['id']}/updates", json={"kind": "reply", "body": "on our way"}, headers=staff)
    listed = client.get("/", headers=staff).get_json()
    detail = client.get(f"/{issue['id']}", headers=staff).get_json()
    timeline = client.get(f"/{issue['id']}/updates", headers=staff).get_json()
    instants = [listed[0][k] for k in ("created_at", "updated_at", "due_at")]
    instants += [detail[k] for k in ("created_at", "updated_at", "due_at", "accepted_at")]
    instants += [entry["created_at"] for entry in timeline]
    assert all(OFFSET.match(value) for value in instants), instants
    assert detail["resolved_at"] is None and detail["closed_at"] is None  # declared nullable


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": " a "}, "title"),
        ({"description": " \n "}, "description"),
        ({"title": "Lamp\x00out"}, "title"),
        ({"description": "broken \ud800 lamp"}, "description"),
        ({"building": "B\x007"}, "building"),
    ],
)
def test_blank_or_unstorable_text_is_422_naming_the_field_and_stores_nothing(
    client, tokens, valid_report, outbox, body, field
):
    response = client.post("/", json=valid_report(**body), headers=tokens.resident())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert outbox() == []
    search = client.get("/?q=a%00b", headers=tokens.staff())
    assert search.status_code == 422 and "q" in search.get_json()["error"]["fields"]


def test_control_characters_are_kept_and_answered_as_valid_json(client, tokens, valid_report):
    text = "Noise\x19 at night \x7f\u2028 from flat 3"
    created = client.post("/", json=valid_report(description=text), headers=tokens.resident())
    assert created.status_code == 201, created.get_json()
    assert client.get(f"/{created.get_json()['id']}", headers=tokens.staff()).get_json()["description"] == text


def test_a_category_position_beyond_any_column_is_422(client, tokens):
    category = {"name": "Lamps", "default_tier": "community", "responsible_body": "community", "position": 2**40,
                "deadline_hours": {"low": 720, "normal": 336, "high": 72, "urgent": 24}}  # fmt: skip
    response = client.put("/categories/lamps", json=category, headers=tokens.admin())
    assert response.status_code == 422 and "position" in response.get_json()["error"]["fields"]
    assert client.put("/categories/lamps", json={**category, "position": 9}, headers=tokens.admin()).status_code == 200


def test_the_list_pages_up_to_the_kits_bound_and_no_further(client, tokens, report):
    issue, _ = report()
    staff = tokens.staff()
    first = client.get("/?page=1&page_size=1", headers=staff)
    assert [i["id"] for i in first.get_json()] == [issue["id"]] and '"total": 1' in first.headers["X-Pagination"]
    last = client.get("/?page=100000&page_size=100", headers=staff)
    assert last.status_code == 200 and last.get_json() == []
    beyond = client.get("/?page=100001", headers=staff)
    assert beyond.status_code == 422 and "page" in beyond.get_json()["error"]["fields"]
