"""A report with nothing to read but its context (the community's street, the category's
publication, the zone of the counts) is written on PostgreSQL in one statement, from a context held
since an earlier report (service_layer/issues.py, `_report_in_one_statement`). It writes what a
report in a transaction through the ORM writes, and a context held that no longer holds is never
written from: the statement checks it and writes nothing, and the report is made again from what
is read then."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text, update

from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.tables import (
    issue_counts_state,
    issue_month_breakdowns,
    issue_month_counts,
    issue_status_counts,
    issue_updates,
    issues,
    messaging,
    replica,
)
from linli_issues.service_layer import issues as use_cases
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role

pytestmark = pytest.mark.integration

# 20:00 UTC on 31 October is 04:00 on 1 November in Shanghai (the counts' zone): a report is counted
# in another month if the zone changes to UTC.
MONTH_EDGE = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)


def _body(directory, **overrides) -> dict:
    return {
        "community_id": directory.community_a1,
        "title": "Roof of Building 7 leaks",
        "description": "Rain comes through the roof into the top-floor flats.",
        "category": "repairs_facilities",
        "urgency": "high",
        **overrides,
    }


def _counts(database) -> dict[tuple, int]:
    """Every count summed over its shards, keyed by table and key."""
    found: dict[tuple, int] = {}
    with database.session() as s:
        for table, key, figures in (
            (issue_month_counts, ("community_id", "month"), [c.name for c in issue_month_counts.c][2:-1]),
            (issue_month_breakdowns, ("community_id", "month", "kind", "key"), ["count"]),
            (issue_status_counts, ("community_id", "status"), ["count"]),
        ):
            columns = [table.c[k] for k in key]
            sums = [func.sum(table.c[f]) for f in figures]
            for row in s.execute(select(*columns, *sums).group_by(*columns)):
                for figure, value in zip(figures, row[len(key) :], strict=True):
                    if value:
                        found[(table.name, *row[: len(key)], figure)] = int(value)
    return found


def _delta(before: dict, after: dict) -> dict:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after) if after.get(k, 0) != before.get(k, 0)
    }


def _written(database, issue_id: str) -> dict:
    """The issue's row, its report entry and its event, without what is each report's own (ids,
    the instant the event was made, the request's correlation id)."""
    with database.session() as s:
        issue = dict(s.execute(select(issues).where(issues.c.id == issue_id)).one()._mapping)
        entries = [
            dict(r._mapping) for r in s.execute(select(issue_updates).where(issue_updates.c.issue_id == issue_id))
        ]
        events = [
            json.loads(payload)
            for (payload,) in s.execute(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.id))
        ]
    [event_] = [e for e in events if e["data"]["issue_id"] == issue_id]
    del issue["id"]
    for entry in entries:
        del entry["id"], entry["issue_id"]
    for name in ("id", "occurred_at", "correlation_id"):  # the request's own
        del event_[name]
    del event_["data"]["issue_id"]
    return {"issue": issue, "entries": entries, "event": event_}


def _one_statement_refused(monkeypatch) -> None:
    """Reports from here on go the way of a transaction through the ORM (as on SQLite)."""
    monkeypatch.setattr(IssueRepository, "writes_in_one_statement", lambda self: False)


@pytest.mark.parametrize(
    "who, overrides",
    [
        ("resident", {}),
        ("resident", {"anonymous": True, "urgency": "low", "building": "Building 7", "address": "No. 3 Yucai Road",
                      "latitude": 38.1001, "longitude": 106.3401, "category": "neighbour_dispute"}),
        ("staff", {"on_behalf_of": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "category": "safety_hazard",
                   "title": "7号楼楼顶漏水", "description": "雨水渗进顶楼住户家里，联系电话 13812345678"}),
        ("street_official", {"channel": "doorstep", "on_behalf_of": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}),
    ],
)  # fmt: skip
def test_a_report_in_one_statement_writes_what_a_transaction_writes(
    statements, app, client, directory, tokens, database, monkeypatch, who, overrides
):
    headers = getattr(tokens, who)()
    body = _body(directory, **overrides)
    assert client.post("/", json=body, headers=headers).status_code == 201  # the context is held from here

    before = _counts(database)
    with statements(app) as seen:
        fast = client.post("/", json=body, headers=headers)
    assert fast.status_code == 201, fast.get_json()
    assert len(seen) == 1, seen
    fast_counts = _delta(before, _counts(database))

    _one_statement_refused(monkeypatch)
    before = _counts(database)
    with statements(app) as seen:
        slow = client.post("/", json=body, headers=headers)
    assert slow.status_code == 201, slow.get_json()
    assert len(seen) > 1
    slow_counts = _delta(before, _counts(database))

    assert fast_counts == slow_counts and fast_counts
    fast_body, slow_body = fast.get_json(), slow.get_json()
    assert fast_body.pop("id") != slow_body.pop("id")
    assert fast_body == slow_body
    assert _written(database, fast.get_json()["id"]) == _written(database, slow.get_json()["id"])


def test_an_open311_report_with_its_media_url_writes_what_a_transaction_writes(
    app, directory, database, clock, monkeypatch
):
    principal = Principal(user_id="5c8e0f4a91b2", role=Role.API_CLIENT, community_ids=(directory.community_a1,))
    fields = {
        "community_id": directory.community_a1,
        "compound_id": None,
        "address": "No. 3 Yucai Road",
        "title": "Street lamp at the north gate is out",
        "description": "Street lamp at the north gate is out",
        "category": "repairs_facilities",
        "urgency": "normal",
        "channel": "open311",
        "client_name": "hotline",
        "media_url": "https://hotline.example/m/42.jpg",
    }

    def report() -> str:
        with app.test_request_context():
            return use_cases.report_issue(IssuesUnitOfWork(database), principal, clock(), **fields).id

    report()
    fast = report()
    _one_statement_refused(monkeypatch)
    slow = report()
    written = _written(database, fast)
    assert written["entries"][0]["data"]["media_url"] == "https://hotline.example/m/42.jpg"
    assert written == _written(database, slow)


def test_a_context_held_that_changed_is_read_again(statements, app, client, directory, tokens, database, clock, outbox):
    clock.now = MONTH_EDGE
    resident = tokens.resident()
    body = _body(directory)
    assert client.post("/", json=body, headers=resident).status_code == 201
    with statements(app) as seen:
        assert client.post("/", json=body, headers=resident).status_code == 201
    assert len(seen) == 1  # from the context held

    # Meanwhile, as other processes would: the community moves to street B (the directory's
    # event), the city narrows the category, the counts are rebuilt in another zone.
    with database.transaction() as s:
        s.execute(
            update(replica.communities)
            .where(replica.communities.c.community_id == directory.community_a1)
            .values(street_id=directory.street_b)
        )
        s.execute(text("UPDATE categories SET publication = 'private' WHERE key = 'repairs_facilities'"))
        s.execute(update(issue_counts_state).values(zone="UTC"))
    before = _counts(database)
    with statements(app) as seen:
        response = client.post("/", json=body, headers=resident)
    assert response.status_code == 201, response.get_json()
    # The statement from the context held wrote nothing; the report was made from what was read then.
    assert len(seen) > 1 and seen[0].startswith("WITH ok AS")
    issue = response.get_json()
    assert issue["visibility"] == "private"
    [(_, reported)] = [(t, d) for t, d in outbox("issues.issue.reported") if d["issue_id"] == issue["id"]]
    assert reported["visibility"] == "private"
    with database.session() as s:
        envelope = json.loads(
            s.scalar(select(messaging.outbox.c.payload).where(messaging.outbox.c.payload.contains(issue["id"])))
        )
        assert envelope["street_id"] == directory.street_b
        assert s.scalar(select(func.count()).select_from(issues)) == 3
        assert s.scalar(select(func.count()).select_from(issue_updates)) == 3
    # Counted once, in the month of the new zone and on the new street.
    assert _delta(before, _counts(database)) == {
        ("issue_month_counts", directory.community_a1, "2026-10", "raised"): 1,
        ("issue_month_counts", f"street:{directory.street_b}", "2026-10", "raised"): 1,
        ("issue_month_breakdowns", directory.community_a1, "2026-10", "category", "repairs_facilities", "count"): 1,
        ("issue_month_breakdowns", directory.community_a1, "2026-10", "tier", "compound", "count"): 1,
        ("issue_month_breakdowns", f"street:{directory.street_b}", "2026-10", "category", "repairs_facilities",
         "count"): 1,
        ("issue_month_breakdowns", f"street:{directory.street_b}", "2026-10", "tier", "compound", "count"): 1,
        ("issue_status_counts", directory.community_a1, "reported", "count"): 1,
    }  # fmt: skip

    # What was read is held again: the next report is one statement.
    with statements(app) as seen:
        assert client.post("/", json=body, headers=resident).status_code == 201
    assert len(seen) == 1


def test_a_refusal_from_a_street_held_is_asked_again(client, directory, tokens, database):
    body = _body(directory)
    assert client.post("/", json=body, headers=tokens.resident()).status_code == 201  # street A held
    with database.transaction() as s:
        s.execute(
            update(replica.communities)
            .where(replica.communities.c.community_id == directory.community_a1)
            .values(street_id=directory.street_b)
        )
    assert client.post("/", json=body, headers=tokens.street_official(directory.street_b)).status_code == 201
    assert client.post("/", json=body, headers=tokens.street_official(directory.street_a)).status_code == 403


def test_an_unknown_community_or_category_is_refused_as_ever(client, directory, tokens):
    resident = tokens.resident()
    assert client.post("/", json=_body(directory), headers=resident).status_code == 201
    unknown = client.post("/", json=_body(directory, category="no_such_thing"), headers=resident)
    assert unknown.status_code == 422 and "category" in unknown.get_json()["error"]["fields"]
    stranger = "0f8fad5b-d9cb-469f-a165-70867728950e"
    response = client.post("/", json=_body(directory, community_id=stranger), headers=tokens.resident(None, stranger))
    assert response.status_code == 422 and "community_id" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_a_report_without_a_compound_keeps_its_effects_on_both_databases(client, directory, tokens, database, outbox):
    resident = tokens.resident()
    created = [client.post("/", json=_body(directory), headers=resident) for _ in range(3)]
    assert all(r.status_code == 201 for r in created), [r.get_json() for r in created]
    ids = {r.get_json()["id"] for r in created}
    assert {d["issue_id"] for _, d in outbox("issues.issue.reported")} == ids
    with database.session() as s:
        assert {
            i for (i,) in s.execute(select(issue_updates.c.issue_id).where(issue_updates.c.kind == "report"))
        } == ids
    counts = _counts(database)
    assert counts[("issue_status_counts", directory.community_a1, "reported", "count")] == 3
    assert counts[("issue_month_counts", directory.community_a1, "2026-11", "raised")] == 3
    assert counts[("issue_month_counts", f"street:{directory.street_a}", "2026-11", "raised")] == 3


def test_a_report_in_one_statement_wakes_the_relay_after_it_commits(client, directory, tokens, database, monkeypatch):
    """Its statement does not notify from the outbox's trigger (a notifying commit holds PostgreSQL's
    notification lock through its WAL flush: reports would commit one at a time); the process's
    waker notifies once it is written."""
    import psycopg

    from linli_kit.events.waker import OutboxWaker

    listener = psycopg.connect(
        database.engine.url.set(drivername="postgresql").render_as_string(False), autocommit=True
    )
    try:
        listener.execute("LISTEN linli_outbox")
        headers = tokens.resident()
        assert client.post("/", json=_body(directory), headers=headers).status_code == 201
        list(listener.notifies(timeout=1.0))  # the first report's, whichever way it went

        pokes: list[OutboxWaker] = []
        with monkeypatch.context() as patched:
            patched.setattr(OutboxWaker, "poke", lambda self: pokes.append(self))
            assert client.post("/", json=_body(directory), headers=headers).status_code == 201
            assert list(listener.notifies(timeout=1.0)) == []  # nothing from the trigger
        assert len(pokes) == 1

        assert client.post("/", json=_body(directory), headers=headers).status_code == 201
        assert [(n.channel, n.payload) for n in listener.notifies(timeout=2.0)] == [("linli_outbox", "outbox")]
    finally:
        listener.close()


def test_a_report_whose_category_is_read_again_is_written_for_good(client, directory, tokens, database, monkeypatch):
    """The categories held in memory are read again every CATEGORY_CACHE_SECONDS: that read begins
    the session's transaction. A report in one statement run inside it was rolled back with it when
    the unit of work closed, after its 201 (found by the mixed load on PostgreSQL: a resident's new
    issue answered 404). It is written in autocommit, whatever the session began."""
    headers = tokens.resident()
    assert client.post("/", json=_body(directory), headers=headers).status_code == 201  # the context held
    monkeypatch.setattr(use_cases, "CATEGORY_CACHE_SECONDS", 0.0)  # every report reads its category
    answer = client.post("/", json=_body(directory), headers=headers)
    assert answer.status_code == 201
    issue_id = answer.get_json()["id"]
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(issues).where(issues.c.id == issue_id)) == 1
        events = [p for (p,) in s.execute(select(messaging.outbox.c.payload)) if issue_id in p]
    assert len(events) == 1
    assert client.get(f"/{issue_id}", headers=headers).status_code == 200


def test_the_issue_a_statement_writes_is_the_one_its_fields_make():
    """`new_written_issue` makes what `Issue(**fields)` makes (defaults, a new id, a transient
    instance), without the ORM's attribute events; and refuses what `Issue` refuses."""
    from sqlalchemy import inspect

    from linli_issues.adapters.repository import new_written_issue
    from linli_issues.domain.model import Issue

    fields = {"community_id": "c", "title": "t", "description": "d", "category": "other", "urgency": "high",
              "tier": "community", "reporter_id": "r", "created_at": MONTH_EDGE, "due_at": MONTH_EDGE}  # fmt: skip
    written, made = new_written_issue(**fields), Issue(**fields)
    assert written.id and written.id != made.id and written.status == "reported" and written.revision == 1
    made.id = written.id
    assert written == made and inspect(written).transient
    assert new_written_issue(**fields, id="x").id == "x"
    with pytest.raises(TypeError):
        new_written_issue(**fields, colour="red")
    with pytest.raises(TypeError):
        new_written_issue(**{k: v for k, v in fields.items() if k != "title"})
