"""The meetings' events handled in consumer batches (`handle_batch`: the issues and meetings a run of
events names read and locked at once, links and decisions written at the end) leave what handling
each event alone (`handle_one`) leaves: the issues, their links to meetings, decisions' follow-up,
timelines and the events published, with duplicates in one batch, redelivery, and every kind of
meetings event mixed; on PostgreSQL and on SQLite. The batch writes the issues without the ORM (one
statement): the statistics' counts it keeps for them must be those built again from the history."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from linli_issues.adapters import counters, preloaded, tables
from linli_issues.adapters.tables import (
    issue_consultation_counts,
    issue_decisions,
    issue_meeting_consultations,
    issue_meetings,
    issue_month_breakdowns,
    issue_month_counts,
    issue_status_counts,
    messaging,
)
from linli_issues.domain.model import Issue, TimelineEntry
from linli_issues.service_layer.consultations import handle_one, meeting_handlers
from linli_kit.events import Event, new_event
from linli_kit.testing.consuming import consume

pytestmark = pytest.mark.integration
START = datetime(2026, 12, 14, 19, 0, tzinfo=UTC)
EFFECTS = ["reconsult", "resolution_plan", "resolve", "escalate", "none"]


def burst(seed: int, tag: str, issue_ids: list[str], community_id: str, count: int = 70) -> list[Event]:
    """Meetings taking up the issues, agenda items, decisions of every effect and their action items
    reported done one by one; every id but the issues' made from `tag`, so that two bursts of one
    seed differ only by their ids. About one event in eight is sent twice."""
    rng = random.Random(seed)
    made = 0

    def new_id(kind: str) -> str:
        nonlocal made
        made += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}:{kind}:{made}"))

    meetings: list[dict] = []
    decisions: list[dict] = []
    events: list[Event] = []
    while len(events) < count:
        if events and rng.random() < 0.12:
            events.append(rng.choice(events))  # the same event again: a producer's retry
            continue
        kind = rng.choice(["scheduled", "scheduled", "rescheduled", "cancelled", "concluded", "agenda", "decision",
                           "action", "action"])  # fmt: skip
        if kind != "scheduled" and not meetings:
            kind = "scheduled"
        if kind == "action" and not decisions:
            kind = "decision"
        if kind == "scheduled":
            named = rng.sample(issue_ids, rng.randint(1, 2))
            meeting = {
                "meeting_id": new_id("meeting"),
                "community_id": community_id,
                "meeting_type": rng.choice(["round_table", "hearing"]),
                "title": f"Round table {len(meetings) + 1}",
                "starts_at": START + timedelta(days=len(meetings)),
                "ends_at": START + timedelta(days=len(meetings), hours=2),
                "convener_id": new_id("person"),
                "agenda": [{"item_id": new_id("item"), "title": "Roof", "issue_id": named[0]}],
                "issue_ids": named,
                "revision": 1,
            }
            meetings.append(meeting)
            event_type, data = "meetings.meeting.scheduled", dict(meeting)
        elif kind in ("rescheduled", "cancelled", "concluded"):
            meeting = rng.choice(meetings)
            meeting["revision"] += rng.choice([1, 1, 2])
            previous = meeting["starts_at"]
            meeting["starts_at"] = meeting["starts_at"] + timedelta(minutes=30)
            meeting["ends_at"] = meeting["ends_at"] + timedelta(minutes=30)
            if rng.random() < 0.3:  # the meeting no longer lists an issue: linked ones follow it still
                meeting["issue_ids"] = meeting["issue_ids"][:1]
            event_type = f"meetings.meeting.{kind}"
            data = dict(meeting)
            if kind == "rescheduled":
                data["previous_starts_at"] = previous
            if kind == "cancelled":
                data["reason"] = "the hall is flooded"
            if kind == "concluded":
                data.update(concluded_at=meeting["ends_at"], attendees_count=12)
        elif kind == "agenda":
            meeting = rng.choice(meetings)
            event_type = "meetings.agenda_item.added"
            data = {
                "meeting_id": meeting["meeting_id"],
                "community_id": community_id,
                "meeting_type": meeting["meeting_type"],
                "title": meeting["title"],
                "starts_at": meeting["starts_at"],
                "item_id": new_id("item"),
                "issue_id": rng.choice(issue_ids),
                "item_title": "Stairwell light",
            }
        elif kind == "decision":
            meeting = rng.choice(meetings)
            effect = rng.choice(EFFECTS)
            items = rng.randint(0, 2) if effect != "none" else 0
            decision = {"decision_id": new_id("decision"), "issue_ids": meeting["issue_ids"], "effect": effect,
                        "items": items, "done": 0}  # fmt: skip
            decisions.append(decision)
            event_type = "meetings.decision.recorded"
            data = {
                "decision_id": decision["decision_id"],
                "meeting_id": meeting["meeting_id"],
                "community_id": community_id,
                "motion": f"motion {len(decisions)}",
                "outcome": "rejected" if effect == "none" else "adopted",
                "rule": "a majority of those present",
                "votes_for": 9,
                "votes_against": 3,
                "abstentions": 1,
                "issue_ids": decision["issue_ids"],
                "issue_effect": effect,
                "action_items": [
                    {"action_item_id": new_id("action"), "title": f"step {n}", "owner_body": "property_company"}
                    for n in range(items)
                ],
            }
            if effect == "resolution_plan":
                data["resolution_plan"] = "mend it"
        else:
            decision = rng.choice(decisions)
            of = max(decision["items"], 1)
            decision["done"] = min(of, decision["done"] + rng.choice([1, 1, -1]))
            decision["done"] = max(decision["done"], 0)
            event_type = rng.choice(["meetings.action_item.assigned", "meetings.action_item.completed",
                                     "meetings.action_item.updated"])  # fmt: skip
            data = {
                "action_item_id": new_id("action"),
                "decision_id": decision["decision_id"],
                "meeting_id": new_id("meeting-of-item"),
                "community_id": community_id,
                "issue_id": decision["issue_ids"][0],
                "issue_ids": decision["issue_ids"],
                "title": "Replace the membrane",
                "owner_body": "property_company",
                "status": "done",
                "progress": 100,
                "decision_issue_effect": decision["effect"],
                "decision_action_items": of,
                "decision_action_items_done": decision["done"],
                "decision_complete": decision["done"] == of,
            }
        event = new_event(event_type, data, producer="meetings", community_id=community_id)
        # A minute apart, whatever the clock: action items count in the order they happened.
        events.append(dataclasses.replace(event, occurred_at=START - timedelta(days=1, minutes=-len(events))))
    return events


def state(database, issue_ids: list[str], rename: dict[str, str]) -> str:
    """What the handlers left for these issues, as text with the other burst's ids renamed."""
    with database.session() as s:
        issues = [s.get(Issue, i) for i in issue_ids]
        picture = {
            "issues": [
                [
                    i.status,
                    i.tier,
                    i.consultation_count,
                    i.action_items,
                    i.action_items_done,
                    i.resolution_plan,
                    i.resolution_summary,
                    i.assignee_type,
                    i.assignee_id,
                    i.revision,
                    i.reason,
                    i.due_at is None,
                    i.accepted_at is None,
                    i.resolved_at is None,
                    i.closed_at is None,
                ]  # fmt: skip
                for i in issues
            ],
            "links": [
                [
                    r.issue_id,
                    r.meeting_id,
                    r.meeting_type,
                    r.title,
                    r.starts_at,
                    r.status,
                    r.concluded_at,
                    r.meeting_revision,
                ]  # fmt: skip
                for r in s.execute(
                    select(issue_meetings)
                    .where(issue_meetings.c.issue_id.in_(issue_ids))
                    .order_by(issue_meetings.c.issue_id, issue_meetings.c.meeting_id)
                )
            ],
            "decisions": [
                [r.issue_id, r.decision_id, r.issue_effect, r.action_items, r.done, r.complete, r.applied, r.event_at]
                for r in s.execute(
                    select(issue_decisions)
                    .where(issue_decisions.c.issue_id.in_(issue_ids))
                    .order_by(issue_decisions.c.issue_id, issue_decisions.c.decision_id)
                )
            ],
            "timelines": {
                i: [
                    [e.kind, e.body, e.data]
                    for e in s.scalars(
                        select(TimelineEntry).where(TimelineEntry.issue_id == i).order_by(TimelineEntry.id)
                    )
                ]
                for i in issue_ids
            },
        }
        published = {i: [] for i in issue_ids}
        for payload in s.scalars(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.id)):
            envelope = json.loads(payload)
            data = envelope["data"]
            if envelope["producer"] == "issues" and data.get("issue_id") in published:
                published[data["issue_id"]].append(
                    [
                        envelope["type"],
                        data["status"],
                        data.get("from_status"),
                        data["tier"],
                        data.get("consultation_count"),
                        data.get("action_items"),
                        data.get("action_items_done"),
                    ]  # fmt: skip
                )
        picture["published"] = published
    text = json.dumps(picture, default=str, ensure_ascii=False)
    for theirs, ours in rename.items():
        text = text.replace(theirs, ours)
    renamed = json.loads(text)
    # Rows in the order of the renamed ids, as the other burst's are.
    renamed["links"].sort()
    renamed["decisions"].sort()
    return json.dumps(renamed, ensure_ascii=False, indent=1)


def counts(database) -> list:
    """The statistics' and the consultations' counts and the issues per status as kept, the rows
    gone back to nought left out."""
    tables = [
        issue_month_counts,
        issue_month_breakdowns,
        issue_consultation_counts,
        issue_meeting_consultations,
        issue_status_counts,
    ]
    with database.session() as s:
        return [
            sorted(tuple(r) for r in s.execute(select(t)) if any(isinstance(v, int) and v for v in r)) for t in tables
        ]


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize(("seed", "issues", "count"), [(3, 4, 70), (4, 4, 70), (5, 7, 160)])
def test_batches_leave_what_one_by_one_leaves(database, directory, report, seed, issues, count, monkeypatch):
    # Which columns the batches' UPDATEs of the issues wrote: both ways (counts alone, every column
    # a meetings' event changes) must have been taken for the comparison below to cover them.
    written: set[tuple[str, ...]] = set()
    update = preloaded._Writes.update

    def recorded(writes, table, keys, columns, rows):
        if table is tables.issues:
            written.add(columns)
        update(writes, table, keys, columns, rows)

    monkeypatch.setattr(preloaded._Writes, "update", recorded)
    one_ids = [report(title=f"Issue {n}")[0]["id"] for n in range(issues)]
    batch_ids = [report(title=f"Issue {n}")[0]["id"] for n in range(issues)]
    community = directory.community_a1
    singles = burst(seed, "one", one_ids, community, count)
    batched = burst(seed, "batch", batch_ids, community, count)
    assert len({e.type for e in batched}) >= 7 and len({e.id for e in batched}) < len(batched)
    # Every id of one burst for the other's, so that the two states compare as text.
    rename = dict(zip(batch_ids, one_ids, strict=True))
    for theirs, ours in zip(batched, singles, strict=True):
        rename.update(_ids_in(theirs, ours))

    one_by_one = dict.fromkeys(meeting_handlers(), handle_one)
    single_outcomes = consume(database, messaging.inbox, one_by_one, singles, service="issues", one_by_one=True)
    # Batches of 16: links and decisions made by one batch are changed by a later one.
    first = consume(database, messaging.inbox, meeting_handlers(), batched, service="issues", batch_size=16)
    after_first = state(database, batch_ids, rename)
    again = consume(database, messaging.inbox, meeting_handlers(), batched, service="issues")

    assert set(single_outcomes) == set(first) == set(again) == {"ack"}
    assert written == {preloaded._COUNTS, preloaded._WRITTEN}
    assert state(database, batch_ids, rename) == after_first  # redelivered: nothing changed
    assert after_first == state(database, one_ids, {})
    with database.session() as s:
        handled = set(s.scalars(select(messaging.inbox.c.event_id).where(messaging.inbox.c.consumer == "issues")))
    assert {e.id for e in batched} <= handled
    # The counts kept along the way by both paths are those built again from the history.
    with database.session() as s:
        zone = counters.zone_of_counts(s.connection())
    assert zone is not None
    kept = counts(database)
    with database.transaction() as session:
        counters.rebuild(session, ZoneInfo(zone.key))
    assert counts(database) == kept


def _ids_in(theirs: Event, ours: Event) -> dict[str, str]:
    """The ids in one event's data paired with those at the same place in the other's."""
    pairs: dict[str, str] = {}

    def walk(a: object, b: object) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a:
                walk(a[key], b.get(key))
        elif isinstance(a, list) and isinstance(b, list):
            for x, y in zip(a, b, strict=False):
                walk(x, y)
        elif isinstance(a, str) and isinstance(b, str) and a != b and _is_uuid(a):
            pairs[a] = b

    walk(theirs.data, ours.data)
    return pairs


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def test_a_batch_locks_its_issues_by_key(database, directory, report):
    """The batch's locking read looks its issues up by key: `id = ANY(…) OR id IN (subquery)`
    scanned every issue of the city for each batch. With sequential scans priced out, the plan of
    the statement as sent must reach the issues through their key (an index condition on the id),
    not walk the whole key with a filter. (PostgreSQL's: SQLite reads a batch's issues otherwise.)"""
    from sqlalchemy import event as sa_event

    ids = [report(title=f"Issue {n}")[0]["id"] for n in range(3)]
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:  # noqa: ANN001
        if "FOR UPDATE OF issues" in statement:
            sent.append((statement, parameters))

    sa_event.listen(database.engine, "before_cursor_execute", record)
    try:
        events = burst(7, "lock", ids, directory.community_a1, 30)
        assert set(consume(database, messaging.inbox, meeting_handlers(), events, service="issues")) == {"ack"}
    finally:
        sa_event.remove(database.engine, "before_cursor_execute", record)
    assert sent, "no batch read its issues"
    statement, parameters = sent[-1]
    with database.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
    assert "Seq Scan on issues" not in plan, plan
    assert re.search(r"Index Cond: \(\(id\)::text = ", plan), plan


def test_a_batch_reads_its_details_planned_for_its_arrays_and_asks_nothing_of_meetings_that_count_nothing(
    database, directory, report
):
    """PostgreSQL's: the details a batch reads against arrays of ids are never a prepared statement
    (psycopg prepares a statement run five times; the generic plan PostgreSQL then keeps tested each
    row against a batch's 200 ids one by one, three times slower than a plan for the arrays given).
    And the commit of a batch whose meetings count no consultations, before or after (scheduled
    ones), asks nothing more of them; one that concludes a meeting works its counts out (that they
    are right, test_batches_leave_what_one_by_one_leaves holds)."""
    from sqlalchemy import event as sa_event

    issue_ids = [report(title=f"Issue {n}")[0]["id"] for n in range(2)]
    sent: list[str] = []
    drivers: dict[int, object] = {}

    def record(_conn, cursor, statement, _parameters, _context, _executemany) -> None:  # noqa: ANN001
        sent.append(statement)
        drivers[id(cursor.connection)] = cursor.connection

    def scheduled(n: int, status: str = "scheduled", **extra: object) -> Event:
        return new_event(
            f"meetings.meeting.{status}",
            {
                "meeting_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"unprepared:{n}")),
                "community_id": directory.community_a1,
                "meeting_type": "round_table",
                "title": f"Round table {n}",
                "starts_at": START + timedelta(days=n),
                "ends_at": START + timedelta(days=n, hours=2),
                "convener_id": str(uuid.uuid4()),
                "agenda": [],
                "issue_ids": issue_ids,
                "revision": 2 if extra else 1,
                **extra,
            },
            producer="meetings",
            community_id=directory.community_a1,
        )

    recount = "SELECT issue_meeting_consultations.meeting_id"
    sa_event.listen(database.engine, "before_cursor_execute", record)
    try:
        # Each event a batch of its own: the details read eight times, on the pool's connections.
        events = [scheduled(n) for n in range(8)]
        outcomes = consume(database, messaging.inbox, meeting_handlers(), events, service="issues", batch_size=1)
        assert set(outcomes) == {"ack"}
        details = [s for s in sent if "json_build_object" in s]
        assert len(details) == 8
        assert not [s for s in sent if s.lstrip().startswith(recount)]
        sent.clear()
        concluded = scheduled(0, "concluded", concluded_at=START + timedelta(hours=2), attendees_count=9)
        assert consume(database, messaging.inbox, meeting_handlers(), [concluded], service="issues") == ["ack"]
        assert [s for s in sent if s.lstrip().startswith(recount)]
    finally:
        sa_event.remove(database.engine, "before_cursor_execute", record)
    for driver in drivers.values():
        try:
            prepared = driver.execute(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%json_build_object%"]
            ).fetchall()
        finally:
            driver.rollback()
        assert prepared == []


def test_the_rows_document_keeps_instants_and_text_and_refuses_a_naive_instant():
    names = ("id", "issue_id", "kind", "body", "internal", "author_id", "data", "created_at")
    instants = preloaded._instants_of(tables.issue_updates, names)
    assert instants == ("created_at",)
    at = datetime(2026, 12, 4, 19, 30, 15, 123456, tzinfo=UTC)
    row = {"id": "u1", "issue_id": "i1", "kind": "meeting", "body": "第1次议事会", "internal": False,
           "author_id": None, "data": {"title": "楼道照明", "n": 2}, "created_at": at}  # fmt: skip
    other = {**row, "id": "u2", "created_at": at.astimezone(ZoneInfo("Asia/Shanghai"))}
    [first, second] = json.loads(preloaded._json_rows([row, other], names, instants))
    assert first == {**row, "created_at": first["created_at"]}
    # Rows of other columns too: only these are written.
    [third] = json.loads(preloaded._json_rows([{**row, "ignored": 1}], names, instants))
    assert third == first
    assert datetime.fromisoformat(first["created_at"]) == at == datetime.fromisoformat(second["created_at"])
    with pytest.raises(ValueError, match="naive datetime"):
        preloaded._json_rows([row, {**row, "created_at": at.replace(tzinfo=None)}], names, instants)
