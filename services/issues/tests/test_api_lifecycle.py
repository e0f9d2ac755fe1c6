"""The issue lifecycle through HTTP on the real PostgreSQL: transitions, events, support, rating."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from linli_issues.adapters.tables import issues, messaging

pytestmark = pytest.mark.integration


def _count(database, table) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_report_accept_assign_resolve_rate_close_publishes_each_step(client, tokens, report, outbox, clock):
    resident_id = str(uuid.uuid4())
    issue, resident = report(resident_id)
    assert issue["status"] == "reported" and issue["tier"] == "compound"  # repairs start in the compound
    assert issue["assignee_type"] == "property_company"  # the category's default responsible body
    assert issue["assignee_id"] == tokens.property_company  # the compound's one registered company
    assert issue["reporter_id"] == resident_id and issue["revision"] == 1
    assert issue["due_at"].startswith("2026-11-07T01:00:00")  # high urgency: 120 hours
    staff = tokens.staff()
    url = f"/{issue['id']}"

    clock.advance(hours=1)
    accepted = client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)
    assert accepted.status_code == 200, accepted.get_json()
    assigned = client.put(
        f"{url}/assignment",
        json={"assignee_type": "property_company", "assignee_id": tokens.property_company, "note": "roof team"},
        headers=staff,
    )
    assert assigned.get_json()["assignee_id"] == tokens.property_company
    # The property company sees its issue and moves it on.
    manager = tokens.property_manager()
    assert client.get(url, headers=manager).status_code == 200
    started = client.post(
        f"{url}/status", json={"status": "resolving", "plan": "replace the membrane"}, headers=manager
    )
    assert started.status_code == 200 and started.get_json()["resolution_plan"] == "replace the membrane"
    clock.advance(hours=30)
    resolved = client.post(
        f"{url}/status", json={"status": "resolved", "summary": "membrane replaced"}, headers=manager
    )
    assert resolved.get_json()["status"] == "resolved"
    assert resolved.get_json()["resolution_summary"] == "membrane replaced"

    # Only the reporter rates; that closes the issue.
    assert client.post(f"{url}/rating", json={"rating": 5}, headers=tokens.resident()).status_code in (403, 404)
    rated = client.post(f"{url}/rating", json={"rating": 4, "comment": "dry at last"}, headers=resident)
    assert rated.status_code == 200
    final = rated.get_json()
    assert final["status"] == "closed" and final["rating"] == 4 and final["rating_comment"] == "dry at last"

    types = [t for t, _ in outbox()]
    assert types == [
        "issues.issue.reported",
        "issues.issue.accepted",
        "issues.issue.assigned",
        "issues.issue.status_changed",
        "issues.issue.resolved",
        "issues.issue.closed",
    ]
    revisions = [d["revision"] for _, d in outbox()]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    closed = outbox("issues.issue.closed")[0][1]
    assert closed["rating"] == 4 and closed["status"] == "closed" and closed["issue_id"] == issue["id"]
    assert outbox("issues.issue.reported")[0][1]["channel"] == "app"

    timeline = client.get(f"{url}/updates", headers=resident).get_json()
    kinds = [e["kind"] for e in timeline]
    assert kinds == ["report", "assignment", "status", "assignment", "status", "status", "rating"]


def test_illegal_transitions_answer_409_with_the_reason_and_change_nothing(client, tokens, report, outbox):
    issue, _ = report()
    staff = tokens.staff()
    url = f"/{issue['id']}"
    for status in ("resolving", "resolved"):
        response = client.post(f"{url}/status", json={"status": status, "summary": "x", "plan": "y"}, headers=staff)
        assert response.status_code == 409, status
        assert "reported cannot become" in response.get_json()["error"]["message"]
    reopen = client.post(f"{url}/reopen", json={"reason": "not fixed"}, headers=staff)
    assert reopen.status_code == 409
    assert (
        client.post(f"{url}/status", json={"status": "rejected", "reason": "not ours"}, headers=staff).status_code
        == 200
    )
    again = client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)
    assert again.status_code == 409
    assert client.get(url, headers=staff).get_json()["status"] == "rejected"
    assert [t for t, _ in outbox()] == ["issues.issue.reported", "issues.issue.status_changed"]


def test_rejection_needs_a_reason_and_a_duplicate_names_its_original(client, tokens, report):
    first, _ = report()
    second, _ = report(title="Leaking roof, building 7")
    staff = tokens.staff()
    no_reason = client.post(f"/{second['id']}/status", json={"status": "rejected"}, headers=staff)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]["fields"]
    unknown = client.post(
        f"/{second['id']}/status", json={"status": "duplicate", "duplicate_of": str(uuid.uuid4())}, headers=staff
    )
    assert unknown.status_code == 422 and "duplicate_of" in unknown.get_json()["error"]["fields"]
    marked = client.post(
        f"/{second['id']}/status", json={"status": "duplicate", "duplicate_of": first["id"]}, headers=staff
    )
    assert marked.status_code == 200
    assert marked.get_json()["status"] == "duplicate" and marked.get_json()["duplicate_of"] == first["id"]


def test_reporter_reopens_an_unsatisfying_resolution(client, tokens, report, outbox):
    issue, resident = report()
    staff = tokens.staff()
    url = f"/{issue['id']}"
    client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)
    client.post(f"{url}/status", json={"status": "resolved", "summary": "patched"}, headers=staff)
    assert client.post(f"{url}/reopen", json={"reason": "x"}, headers=tokens.resident()).status_code in (403, 404)
    reopened = client.post(f"{url}/reopen", json={"reason": "it still leaks"}, headers=resident)
    assert reopened.status_code == 200
    body = reopened.get_json()
    assert body["status"] == "accepted" and body["resolved_at"] is None and body["reason"] == "it still leaks"
    assert outbox("issues.issue.reopened")[0][1]["reason"] == "it still leaks"


def test_escalation_by_staff_climbs_tiers_and_hands_over_to_the_street(client, tokens, report, outbox):
    issue, _ = report()
    staff = tokens.staff()
    url = f"/{issue['id']}"
    missing = client.post(f"{url}/escalations", json={}, headers=staff)
    assert missing.status_code == 422 and "reason" in missing.get_json()["error"]["fields"]
    up = client.post(f"{url}/escalations", json={"reason": "the property company does not answer"}, headers=staff)
    assert up.get_json()["tier"] == "community"
    up = client.post(f"{url}/escalations", json={"reason": "needs the housing bureau"}, headers=staff)
    assert up.get_json()["tier"] == "street"
    # At the street tier the community no longer decides; the street official does.
    assert client.post(f"{url}/status", json={"status": "accepted"}, headers=staff).status_code == 403
    official = tokens.street_official()
    assert client.post(f"{url}/status", json={"status": "accepted"}, headers=official).status_code == 200
    assert (
        client.post(f"{url}/escalations", json={"reason": "city budget"}, headers=official).get_json()["tier"] == "city"
    )
    top = client.post(f"{url}/escalations", json={"reason": "higher?"}, headers=tokens.admin())
    assert top.status_code == 409 and "highest tier" in top.get_json()["error"]["message"]
    escalated = outbox("issues.issue.escalated")
    assert [(d["from_tier"], d["tier"], d["automatic"]) for _, d in escalated] == [
        ("compound", "community", False),
        ("community", "street", False),
        ("street", "city", False),
    ]


def test_me_too_once_each_and_supporters_travel_with_the_events(client, tokens, report, outbox):
    issue, reporter = report()
    url = f"/{issue['id']}/supporters"
    neighbour_id = str(uuid.uuid4())
    neighbour = tokens.resident(neighbour_id)
    supported = client.post(url, headers=neighbour)
    assert supported.status_code == 200
    assert supported.get_json()["supporter_count"] == 1 and supported.get_json()["supported_by_me"] is True
    twice = client.post(url, headers=neighbour)
    assert twice.status_code == 409 and "already" in twice.get_json()["error"]["message"]
    assert client.post(url, headers=reporter).status_code == 409
    stranger = tokens.resident(community_id=tokens.d.community_b1)
    assert client.post(url, headers=stranger).status_code == 404
    client.post(url, headers=tokens.resident())
    assert client.get(f"/{issue['id']}", headers=neighbour).get_json()["supporter_count"] == 2
    [(_, event)] = outbox("issues.issue.supported")[:1]
    assert event["supporter_id"] == neighbour_id and event["supporter_ids"] == [neighbour_id]
    # Later events name all supporters, so they can be told of progress.
    client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=tokens.staff())
    accepted = outbox("issues.issue.accepted")[0][1]
    assert len(accepted["supporter_ids"]) == 2 and neighbour_id in accepted["supporter_ids"]


def test_staff_report_on_a_residents_behalf(client, tokens, directory, outbox):
    resident_id = str(uuid.uuid4())
    staff_id = str(uuid.uuid4())
    body = {
        "community_id": directory.community_a1,
        "title": "Cultural wall is cracking",
        "description": "A child almost got hit by a falling piece.",
        "category": "safety_hazard",
        "urgency": "urgent",
        "on_behalf_of": resident_id,
        "channel": "doorstep",
    }
    response = client.post("/", json=body, headers=tokens.staff(user_id=staff_id))
    assert response.status_code == 201, response.get_json()
    issue = response.get_json()
    assert issue["reporter_id"] == resident_id and issue["reported_by"] == staff_id and issue["channel"] == "doorstep"
    assert issue["tier"] == "community" and issue["assignee_type"] == "community"
    # The resident sees their issue as their own.
    assert client.get(f"/{issue['id']}", headers=tokens.resident(resident_id)).get_json()["reporter_id"] == resident_id
    # Residents cannot report for someone else.
    body["channel"] = "app"
    denied = client.post("/", json=body, headers=tokens.resident())
    assert denied.status_code == 422 and "on_behalf_of" in denied.get_json()["error"]["fields"]


BAD_FIELDS = [
    ("community_id", "not-a-uuid"),
    ("community_id", None),
    ("compound_id", "x"),
    ("building", "b" * 101),
    ("address", "a" * 301),
    ("latitude", 91),
    ("longitude", -181),
    ("latitude", "north"),
    ("title", "ab"),
    ("title", "t" * 201),
    ("description", ""),
    ("description", "d" * 4001),
    ("category", ""),
    ("urgency", "yesterday"),
    ("anonymous", "perhaps"),
    ("on_behalf_of", "someone"),
    ("channel", "pigeon"),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_bad_input_of_every_field_is_422_naming_it_and_stores_nothing(
    client, tokens, valid_report, database, field, value
):
    body = valid_report(**{field: value})
    response = client.post("/", json=body, headers=tokens.resident())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert _count(database, issues) == 0 and _count(database, messaging.outbox) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("community_id", str(uuid.uuid4())), ("compound_id", str(uuid.uuid4())), ("category", "unicorns")],
    ids=["community_id", "compound_id", "category"],  # the same names in every pytest-xdist worker
)
def test_unknown_references_are_422_naming_the_field(client, tokens, valid_report, database, field, value):
    response = client.post("/", json=valid_report(**{field: value}), headers=tokens.resident())
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert _count(database, issues) == 0


def test_missing_fields_and_missing_token(client, tokens, database):
    response = client.post("/", json={}, headers=tokens.resident())
    assert response.status_code == 422
    assert {"community_id", "title", "description", "category"} <= set(response.get_json()["error"]["fields"])
    assert client.post("/", json={}).status_code == 401
    assert client.get("/").status_code == 401
    assert client.get(f"/{uuid.uuid4()}", headers=tokens.admin()).status_code == 404
    assert _count(database, issues) == 0


BAD_ACTIONS = [
    ("post", "status", {"status": "teleported"}, "status"),
    ("post", "status", {}, "status"),
    ("post", "status", {"status": "duplicate", "duplicate_of": "nope"}, "duplicate_of"),
    ("post", "status", {"status": "rejected", "reason": "r" * 2001}, "reason"),
    ("post", "status", {"status": "resolved", "summary": "s" * 4001}, "summary"),
    ("post", "escalations", {"reason": "r" * 2001}, "reason"),
    ("post", "reopen", {}, "reason"),
    ("put", "assignment", {"assignee_type": "mayor"}, "assignee_type"),
    ("put", "assignment", {"assignee_type": "bureau", "assignee_id": "b-1"}, "assignee_id"),
    ("post", "rating", {"rating": 0}, "rating"),
    ("post", "rating", {"rating": 6}, "rating"),
    ("post", "rating", {"rating": "five"}, "rating"),
    ("post", "rating", {"rating": 4, "comment": "c" * 2001}, "comment"),
    ("post", "updates", {"kind": "gossip", "body": "x"}, "kind"),
    ("post", "updates", {"kind": "reply", "body": ""}, "body"),
    ("post", "updates", {"kind": "inspection", "body": "x", "attendees": [""]}, "attendees"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_ACTIONS)
def test_bad_input_to_every_action_is_422_naming_the_field_and_changes_nothing(
    client, tokens, report, outbox, method, path, body, field
):
    issue, _ = report()
    staff = tokens.staff()
    response = getattr(client, method)(f"/{issue['id']}/{path}", json=body, headers=staff)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    after = client.get(f"/{issue['id']}", headers=staff).get_json()
    assert after["revision"] == issue["revision"] and after["status"] == "reported"
    assert [t for t, _ in outbox()] == ["issues.issue.reported"]
