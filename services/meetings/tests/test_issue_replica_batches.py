"""The issue replica kept by batches (`keep_issues`, one call per run of issue events in a consumer
batch) ends exactly as when each snapshot is kept alone (`keep_issue`): out-of-order and equal
revisions, duplicates in one batch, redelivery, and the event types mixed."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import event, select

from linli_kit.events import Event, new_event
from linli_kit.testing.consuming import consume
from linli_meetings.adapters.tables import issue_replica, issue_supporters, messaging
from linli_meetings.service_layer.candidates import (
    ISSUE_EVENTS,
    VISIBILITY_CHANGED,
    issue_handlers,
    keep_issue,
    keep_issues,
)

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
COMMUNITY = str(uuid.uuid4())
TYPES = [*ISSUE_EVENTS, VISIBILITY_CHANGED]


def snapshot(issue_id: str, revision: int, rng: random.Random, people: list[str], event_type: str) -> Event:
    supporters = rng.sample(people, rng.randint(0, 3))
    data = {
        "issue_id": issue_id,
        "community_id": COMMUNITY,
        "title": f"title {rng.randint(0, 999)}",  # equal revisions may differ: the first one is kept
        "category": "safety_hazard",
        "urgency": rng.choice(["normal", "urgent"]),
        "status": rng.choice(["reported", "accepted", "deliberating"]),
        "tier": "community",
        "reporter_id": people[0],
        "supporter_count": len(supporters),
        "supporter_ids": supporters,
        "visibility": rng.choice(["community", "private"]),
        "revision": revision,
    }
    if event_type == "issues.issue.supported":
        data["supporter_id"] = people[1]
    if event_type in ("issues.issue.accepted", "issues.issue.status_changed"):
        data["from_status"] = "reported"
    if event_type == "issues.issue.escalated":
        data["from_tier"] = "community"
    if event_type == VISIBILITY_CHANGED:
        data.update(from_visibility="community", cause="marked_private")
    return new_event(event_type, data, producer="issues")


def burst(seed: int, issue_ids: list[str], count: int = 80) -> list[Event]:
    rng = random.Random(seed)
    people = [str(uuid.uuid4()) for _ in range(6)]
    events: list[Event] = []
    for _ in range(count):
        if events and rng.random() < 0.1:
            events.append(rng.choice(events))  # the same event again: a producer's retry
        else:
            event_type = rng.choice(TYPES)
            events.append(snapshot(rng.choice(issue_ids), rng.randint(1, 8), rng, people, event_type))
    return events


def replica_of(database, issue_ids: list[str]) -> tuple[list, list]:
    with database.session() as s:
        rows = s.execute(
            select(issue_replica).where(issue_replica.c.issue_id.in_(issue_ids)).order_by(issue_replica.c.issue_id)
        ).all()
        supporters = s.execute(
            select(issue_supporters)
            .where(issue_supporters.c.issue_id.in_(issue_ids))
            .order_by(issue_supporters.c.issue_id, issue_supporters.c.user_id)
        ).all()
    return [tuple(r) for r in rows], [tuple(r) for r in supporters]


def inbox_of(database, events: list[Event]) -> set[str]:
    with database.session() as s:
        return set(
            s.scalars(select(messaging.inbox.c.event_id).where(messaging.inbox.c.event_id.in_({e.id for e in events})))
        )


@on_both
@pytest.mark.parametrize("seed", [1, 2])
def test_a_batch_keeps_what_one_by_one_keeps(database, seed):
    # The same burst on two copies of the issues (fresh ids), one of them already known at revision 3.
    single_ids, batch_ids = [str(uuid.uuid4()) for _ in range(5)], [str(uuid.uuid4()) for _ in range(5)]
    rename = dict(zip(single_ids, batch_ids, strict=True))
    rng = random.Random(seed)
    known = snapshot(single_ids[0], 3, rng, [str(uuid.uuid4()) for _ in range(4)], "issues.issue.reported")
    events = burst(seed, single_ids)
    with database.transaction() as session:
        for event in [known, *events]:
            keep_issue(session, event)

    def renamed(event: Event) -> Event:
        data = {**event.data, "issue_id": rename[event.data["issue_id"]]}
        return replace(event, data=data)

    handlers = issue_handlers()
    consume(database, messaging.inbox, handlers, [renamed(known)], service="meetings")
    outcomes = consume(database, messaging.inbox, handlers, [renamed(e) for e in events], service="meetings")

    assert set(outcomes) == {"ack"}
    single, single_supporters = replica_of(database, single_ids)
    batched, batched_supporters = replica_of(database, batch_ids)
    back = {v: k for k, v in rename.items()}
    assert sorted((back[r[0]], *r[1:]) for r in batched) == single
    assert sorted((back[r[0]], r[1]) for r in batched_supporters) == single_supporters


@on_both
def test_through_the_consumer_duplicates_redelivery_and_mixed_types(database):
    issue_ids = [str(uuid.uuid4()) for _ in range(4)]
    events = burst(7, issue_ids, count=60)
    assert len({e.type for e in events}) > 3 and len({e.id for e in events}) < len(events)
    reference_ids = [str(uuid.uuid4()) for _ in range(4)]
    rename = dict(zip(issue_ids, reference_ids, strict=True))

    def renamed(event: Event) -> Event:
        data = {**event.data, "issue_id": rename[event.data["issue_id"]]}
        return replace(event, id=str(uuid.uuid5(uuid.NAMESPACE_URL, event.id)), data=data)

    # The reference: each event alone, with the handler of one event.
    single_handlers = dict.fromkeys(TYPES, keep_issue)
    consume(
        database, messaging.inbox, single_handlers, [renamed(e) for e in events], service="meetings", one_by_one=True
    )
    # The batch path, then the whole burst redelivered.
    first = consume(database, messaging.inbox, issue_handlers(), events, service="meetings")
    before = replica_of(database, issue_ids)
    again = consume(database, messaging.inbox, issue_handlers(), events, service="meetings")

    assert set(first) == set(again) == {"ack"}
    assert replica_of(database, issue_ids) == before  # redelivered: nothing changed
    assert inbox_of(database, events) == {e.id for e in events}
    reference, reference_supporters = replica_of(database, reference_ids)
    back = {v: k for k, v in rename.items()}
    rows, supporters = before
    assert sorted((back[r[0]], *r[1:]) for r in reference) == rows
    assert sorted((back[r[0]], r[1]) for r in reference_supporters) == supporters


def edge_snapshots(issue_ids: list[str]) -> list[Event]:
    """Snapshots whose optional parts are missing, null or empty, supporters that partly stay when
    a newer snapshot replaces them, a title with quotes and Chinese, and a revision that goes back."""
    people = [str(uuid.uuid4()) for _ in range(5)]
    rng = random.Random(3)

    def one(issue_id: str, revision: int, **changes) -> Event:
        event = snapshot(issue_id, revision, rng, people, "issues.issue.reported")
        data = {**event.data, **changes}
        for key, value in changes.items():
            if value is ...:
                del data[key]
        return replace(event, data=data)

    a, b, c = issue_ids
    return [
        one(a, 1, supporter_ids=[people[1], people[2], people[2]], supporter_count=2),
        one(b, 1, supporter_ids=..., supporter_count=..., visibility=..., reporter_id=...),
        one(c, 2, supporter_ids=None, supporter_count=None, visibility=None, title="\"引号\" 'and' 路灯"),
        one(a, 3, supporter_ids=[people[2], people[3]], supporter_count=0, visibility=""),
        one(c, 1, supporter_ids=[people[4]]),  # older than the stored one: nothing changes
        one(b, 2, supporter_ids=[]),
        one(a, 3, title="equal revision, later: not kept"),
    ]


@on_both
def test_optional_parts_and_supporters_replaced_in_part(database):
    single_ids, batch_ids = [str(uuid.uuid4()) for _ in range(3)], [str(uuid.uuid4()) for _ in range(3)]
    rename = dict(zip(single_ids, batch_ids, strict=True))
    events = edge_snapshots(single_ids)
    with database.transaction() as session:
        for event in events:
            keep_issue(session, event)
    # In two runs, so that the second replaces what the first stored.
    batched = [replace(e, data={**e.data, "issue_id": rename[e.data["issue_id"]]}) for e in events]
    with database.transaction() as session:
        keep_issues(session, batched[:3])
    with database.transaction() as session:
        keep_issues(session, batched[3:])

    back = {v: k for k, v in rename.items()}
    single, single_supporters = replica_of(database, single_ids)
    rows, supporters = replica_of(database, batch_ids)
    assert sorted((back[r[0]], *r[1:]) for r in rows) == single
    assert sorted((back[r[0]], r[1]) for r in supporters) == single_supporters
    by_id = {r[0]: r for r in rows}
    a = by_id[batch_ids[0]]
    assert (a[10], a[7], a[8]) == (3, 0, "community")  # revision, supporter_count, visibility
    assert by_id[batch_ids[2]][2] == "\"引号\" 'and' 路灯"
    assert len(supporters) == 2


def test_a_run_is_one_statement_on_postgresql(database):
    issue_ids = [str(uuid.uuid4()) for _ in range(5)]
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with database.transaction() as session:
        event.listen(database.engine, "before_cursor_execute", seen)
        try:
            keep_issues(session, burst(11, issue_ids, count=120))
        finally:
            event.remove(database.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    rows, _ = replica_of(database, issue_ids)
    assert len(rows) == 5
