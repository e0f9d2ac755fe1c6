"""Planning a batch's notices together leaves what event by event leaves, in a city of several
communities: the communities' names, streets and staff read once per batch (one of them missing
from the directory: its notices say "社区" and no street), templates rendered once per template,
language, zone and values across intents, and intents large enough for the inbox and delivery rows
to go through COPY (the single events' rows go through INSERT): the same rows, JSON nulls and
empty lists included."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from linli_kit.db import Database
from linli_kit.events import Event, new_event
from linli_kit.migrations import upgrade
from linli_kit.replica import replica_handlers
from linli_kit.testing.consuming import consume
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import deliveries, follows, issue_knowledge, messaging, replica, subjects
from linli_notifications.service_layer.handlers import Rules
from linli_notifications.service_layer.planning import _render

from .conftest import DAYTIME, MIGRATIONS
from .test_batched_rules import TZ, contents

pytestmark = pytest.mark.integration


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def city_and_burst(seed: int) -> tuple[list[Event], list[Event]]:
    rng = random.Random(seed)
    street = _uuid(rng)
    communities = [_uuid(rng) for _ in range(4)]  # the last one is not in the directory
    staff = {c: [_uuid(rng) for _ in range(25)] for c in communities}
    residents = {c: [_uuid(rng) for _ in range(10)] for c in communities}
    world = [
        new_event(
            "directory.community.upserted",
            {"community_id": c, "street_id": street, "name": f"第{i + 1}社区", "revision": 1},
            producer="gateway",
        )
        for i, c in enumerate(communities[:-1])
    ]
    n = 0
    for c in communities:
        for role, people in (("community_staff", staff[c]), ("resident", residents[c])):
            for person in people:
                n += 1
                world.append(
                    new_event(
                        "accounts.user.registered",
                        {
                            "user_id": person,
                            "role": role,
                            "display_name": "张三",
                            # Some without a phone, some in English: other decisions and renders.
                            "phone": f"+86138{n:08d}" if n % 7 else None,
                            "locale": "en" if n % 5 == 0 else "zh-CN",
                            "street_id": street,
                            "community_ids": [c],
                            "revision": 1,
                        },
                        producer="gateway",
                    )
                )
    starts = DAYTIME + timedelta(days=3)
    activities = [{"id": _uuid(rng), "community": rng.choice(communities)} for _ in range(2)]
    issues: list[dict] = []
    events: list[Event] = []
    for _ in range(160):
        kind = rng.choice(["reported", "reported", "supported", "progress", "overdue", "registration"])
        if kind == "reported" or not issues:
            c = rng.choice(communities)
            issues.append(
                {
                    "id": _uuid(rng),
                    "community": c,
                    "revision": 1,
                    "status": "reported",
                    "supporters": [],
                    "reporter": rng.choice(residents[c]),
                    "urgency": rng.choice(["normal", "urgent"]),
                }  # fmt: skip
            )
            kind = "reported"
        issue = issues[-1] if kind == "reported" else rng.choice(issues)
        if kind == "registration":
            activity = rng.choice(activities)
            data = {
                "registration_id": _uuid(rng),
                "activity_id": activity["id"],
                "community_id": activity["community"],
                "user_id": rng.choice(residents[activity["community"]]),
                "title": "书法班",  # the same values for every registration of one activity
                "starts_at": starts,
                "party_size": 1,
                "status": "confirmed",
            }
            events.append(new_event("activities.registration.confirmed", data, producer="activities"))
            continue
        extra: dict = {}
        event_type = {"reported": "issues.issue.reported", "overdue": "issues.issue.overdue"}.get(kind)
        if kind != "reported":
            issue["revision"] += 1
        if kind == "supported":
            supporter = rng.choice(residents[issue["community"]])
            issue["supporters"] = sorted({*issue["supporters"], supporter})
            extra = {"supporter_id": supporter}
            event_type = "issues.issue.supported"
        elif kind == "progress":
            before, issue["status"] = issue["status"], rng.choice(["accepted", "deliberating", "resolved"])
            extra = {"from_status": before, "actor_id": staff[issue["community"]][0]}
            event_type = "issues.issue.status_changed"
        data = {
            "issue_id": issue["id"],
            "community_id": issue["community"],
            "title": "楼道灯坏了",
            "category": "safety_hazard",
            "urgency": issue["urgency"],
            "status": issue["status"],
            "tier": "community",
            "reporter_id": issue["reporter"],
            "supporter_ids": list(issue["supporters"]),
            "visibility": rng.choice(["community", "community", "private"]),
            "revision": issue["revision"],
            **extra,
        }
        events.append(new_event(event_type, data, producer="issues"))
    events += rng.sample(events, 8)  # some again, in the same burst
    return world, events


def test_planning_a_city_in_batches_leaves_what_event_by_event_leaves(database, pg_databases, clock):
    alone_url = pg_databases.create("notif_alone")
    upgrade(MIGRATIONS, alone_url)
    alone = Database(alone_url)
    try:
        world, burst = city_and_burst(21)
        rules = Rules(clock, TZ)
        batched = {**replica_handlers(replica), **rules.handlers()}
        single = {**replica_handlers(replica), **rules.single_handlers()}
        for db, handlers in ((database, batched), (alone, single)):
            consume(db, messaging.inbox, handlers, world, service="notifications", one_by_one=True)

        outcomes = consume(database, messaging.inbox, batched, burst, service="notifications")
        reference = consume(alone, messaging.inbox, single, burst, service="notifications", one_by_one=True)
        assert set(outcomes) == set(reference) == {"ack"}
        after_batch = contents(database)
        assert after_batch == contents(alone)
        # Enough rows in one batch for COPY, and the community missing from the directory told.
        assert len(after_batch["deliveries"]) >= repository.COPY_THRESHOLD
        assert any("社区" in row and "issue.reported" in row for row in after_batch["notifications"])

        again = consume(database, messaging.inbox, batched, burst, service="notifications")
        assert set(again) == {"ack"} and contents(database) == after_batch
    finally:
        alone.dispose()


def test_a_render_is_shared_only_by_the_same_template_language_zone_and_values():
    memo: dict = {}
    params = {"title": "书法班", "when_at": "2026-11-27T02:00:00+00:00", "position": 1}
    first = _render("registration.waitlisted", "zh-CN", params, TZ, memo)
    assert _render("registration.waitlisted", "zh-CN", dict(params), TZ, memo) is first
    # 1 and True are equal keys of a dict, but render as "1" and "True".
    as_true = _render("registration.waitlisted", "zh-CN", {**params, "position": True}, TZ, memo)
    assert as_true != first
    assert _render("registration.waitlisted", "en", params, TZ, memo) != first
    # The zone changes what `when` says.
    promoted = _render("registration.promoted", "zh-CN", params, TZ, memo)
    assert _render("registration.promoted", "zh-CN", params, "Europe/London", memo) != promoted
    # A list among the values is rendered every time rather than failing.
    assert _render("registration.waitlisted", "zh-CN", {**params, "extra": [1]}, TZ, memo) == first
    assert len(memo) == 5


@pytest.mark.parametrize("count", [3, repository.COPY_THRESHOLD])  # one statement per row | COPY
def test_rows_inserted_past_the_orm_are_counted_once_and_keep_its_checks(database, count):
    now = DAYTIME
    rows = [
        {
            "user_id": str(uuid.UUID(int=i)),
            "target_type": "issue",
            "target_id": "i-1",
            "reason": "supporter",
            "created_at": now,
        }  # fmt: skip
        for i in range(count)
    ]
    keys = ["target_type", "target_id", "user_id"]
    with database.transaction() as session:
        assert repository.insert_ignore(session, follows, rows, keys) == count
        assert repository.insert_ignore(session, follows, rows + rows[:1], keys) == 0  # all there already
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(follows)) == count
    # A naive time is refused as the ORM's UtcDateTime refuses it, whichever way the rows go.
    naive = [{**row, "target_id": "i-2", "created_at": now.replace(tzinfo=None)} for row in rows]
    with pytest.raises(ValueError, match="naive datetime"), database.transaction() as session:
        repository.insert_ignore(session, follows, naive, keys)
    # JSON values as the ORM writes them: a list, an object, a JSON null (not SQL NULL) for None.
    code = {
        "id": str(uuid.uuid4()), "key": "k|+8613800000000|sms", "notification_id": None, "user_id": None,
        "channel": "sms", "address": "+8613800000000", "locale": "zh-CN", "kind": "account.code",
        "batch_key": "k", "params": {"code": "123456"}, "urgent": True, "state": "pending", "reason": None,
        "community_id": None, "source_type": "accounts.code.requested", "provider": None, "providers_tried": [],
        "provider_message_id": None, "attempts": 0, "segments": None, "next_attempt_at": now, "lease_until": None,
        "outcome_unknown": False, "expires_at": now, "created_at": now, "sent_at": None, "finished_at": None,
    }  # fmt: skip
    with database.transaction() as session:
        assert repository.insert_ignore(session, deliveries, [code], ["key"]) == 1
    with database.session() as session:
        row = session.execute(select(deliveries).where(deliveries.c.key == code["key"])).mappings().one()
        assert row["params"] == {"code": "123456"} and row["providers_tried"] == []
        assert row["next_attempt_at"] == now


def test_knowledge_is_replaced_only_by_a_later_revision(database):
    keys = ["issue_id", "user_id"]

    def learn(revision: int, status: str, users: range) -> None:
        rows = [
            {"issue_id": "i-1", "user_id": f"u-{u}", "status": status, "assignee": None, "revision": revision}
            for u in users
        ]
        with database.transaction() as session:
            repository.upsert_newer(session, issue_knowledge, rows, keys=keys)

    learn(2, "accepted", range(0, 4))
    learn(1, "reported", range(0, 6))  # older for u-0..3: kept as they were; new for u-4, u-5
    learn(3, "resolved", range(3, 5))
    with database.session() as session:
        known = {r.user_id: (r.status, r.revision) for r in session.execute(select(issue_knowledge))}
    assert known == {
        "u-0": ("accepted", 2), "u-1": ("accepted", 2), "u-2": ("accepted", 2), "u-3": ("resolved", 3),
        "u-4": ("resolved", 3), "u-5": ("reported", 1),
    }  # fmt: skip


def test_new_snapshots_inserted_past_the_orm_fail_on_a_collision(database):
    rows = [
        {
            "subject_type": "issue",
            "subject_id": f"i-{i}",
            "community_id": "c-1",
            "title": "楼道灯坏了",
            "status": "reported",
            "revision": 1,
            "member_ids": [f"u-{i}"],
            "visibility": "community",
        }  # fmt: skip
        for i in range(3)
    ]
    with database.transaction() as session:
        repository.insert_rows(session, subjects, rows)
    with database.session() as session:
        kept = {r.subject_id: r.member_ids for r in session.execute(select(subjects))}
    assert kept == {"i-0": ["u-0"], "i-1": ["u-1"], "i-2": ["u-2"]}
    # A snapshot another copy of the worker inserted meanwhile: the batch fails (and is retried
    # event by event), it does not silently keep the other one; the error as the ORM's (the
    # consumer reads it to tell an outage from a failed batch).
    with pytest.raises(IntegrityError), database.transaction() as session:
        repository.insert_rows(session, subjects, rows[:1])
