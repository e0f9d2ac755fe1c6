"""A batch of events planned set-based on PostgreSQL (`insert_groups`: one statement, the recipients
told alike in groups) leaves the rows that planning row by row (`insert_rows`, SQLite's way) leaves,
on random batches: recipients that differ in every way a decision or a rendering looks at, intents
of every category, urgent or not, expired, with parameters a template refuses, people unknown or
named twice, two intents of one source, and rows already there. Every column of every notice and
delivery is compared, but for a delivery's own random id."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from linli_notifications.adapters.tables import deliveries, notifications
from linli_notifications.domain.model import Category, Channel, Intent, Recipient
from linli_notifications.service_layer.planning import build_rows, insert_groups, insert_rows

from .conftest import DAYTIME

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
ZONES = [TZ, "Europe/London", "America/New_York"]
KINDS = {
    "broadcast.notice": {"title": "停水通知", "body": '明日9:00-17:00停水，请"提前"储水\\。'},
    "registration.promoted": {"title": "书法班", "position": 1, "when_at": "2026-11-27T02:00:00+00:00"},
}


def _people(rng: random.Random, n: int) -> tuple[dict[str, Recipient], dict[str, dict]]:
    found: dict[str, Recipient] = {}
    prefs: dict[str, dict] = {}
    for _ in range(n):
        user_id = str(uuid.UUID(int=rng.getrandbits(128)))
        quiet = rng.choice([("22:00", "08:00"), ("09:00", "11:00"), ("00:00", "00:00"), ("10:00", "10:30")])
        found[user_id] = Recipient(
            user_id=user_id,
            role=rng.choice(["resident", "community_staff"]),
            locale=rng.choice(["zh-CN", "zh-CN", "en"]),
            phone=rng.choice([None, f"+86139{rng.randrange(10**8):08d}"]),
            timezone=rng.choice(ZONES),
            quiet_start=quiet[0],
            quiet_end=quiet[1],
            active=rng.random() < 0.9,
            sms_opted_out=rng.random() < 0.2,
            has_devices=rng.random() < 0.6,
        )
        if rng.random() < 0.3:
            prefs[user_id] = {
                (rng.choice(list(Category)).value, rng.choice(list(Channel)).value): rng.random() < 0.5
                for _ in range(rng.randint(1, 3))
            }
    return found, prefs


def _intents(rng: random.Random, people: list[str]) -> list[Intent]:
    intents: list[Intent] = []
    for _ in range(rng.randint(1, 40)):
        kind = rng.choice(list(KINDS))
        params = dict(KINDS[kind])
        if rng.random() < 0.15:
            params.pop(rng.choice(list(params)))  # a template refuses it: its deliveries fail
        if rng.random() < 0.15 and "body" in params:
            params["title"] = "长" * 250  # a title cut to the column's 200 characters
        if rng.random() < 0.1:
            params["extra"] = [1, {"a": "b"}]  # not hashable: rendered without the memo
        users = rng.sample(people, rng.randint(0, 8)) + [str(uuid.uuid4())] * rng.randint(0, 1)
        users += users[:1] if rng.random() < 0.2 else []  # someone named twice
        subject = str(uuid.uuid4())
        source_key = f"event:{uuid.uuid4()}"
        if intents and rng.random() < 0.1:
            source_key = rng.choice(intents).source_key  # a second intent of one source: the first row stays
        intents.append(
            Intent(
                source_key=source_key,
                source_type=rng.choice(["issues.issue.reported", "reminder.day_before", "meetings.meeting.scheduled"]),
                kind=kind,
                category=rng.choice(list(Category)),
                user_ids=tuple(users),
                params=params,
                urgent=rng.random() < 0.2,
                community_id=rng.choice([None, str(uuid.uuid4())]),
                subject_type=rng.choice([None, "issue", "meeting"]),
                subject_id=rng.choice([None, subject]),
                expires_at=rng.choice([None, DAYTIME - timedelta(minutes=5), DAYTIME + timedelta(hours=3)]),
                channels=rng.choice([None, frozenset({Channel.SMS}), frozenset(Channel)]),
                about=rng.choice([(), (("issue", subject),), (("issue", subject), ("meeting", "m"))]),
            )
        )
    # Intents alike but for one thing a decision looks at, told to the same people: decisions
    # shared between groups must tell them apart.
    for intent in rng.sample(intents, len(intents) // 2):
        change = rng.choice(
            [
                {"urgent": not intent.urgent},
                {"params": {"title": "缺正文"}, "kind": "broadcast.notice"},  # the template refuses it
                {"channels": rng.choice([None, frozenset({Channel.PUSH}), frozenset(Channel)])},
                {"expires_at": rng.choice([None, DAYTIME, DAYTIME + timedelta(minutes=1)])},
                {"category": rng.choice(list(Category))},
            ]
        )
        intents.append(replace(intent, source_key=f"event:{uuid.uuid4()}", **change))
    return intents


def _planned(database, earlier: list[Intent], intents: list[Intent], found, prefs, write) -> tuple:
    """The count `write` returns and every notice and delivery it leaves beside `earlier`'s (planned
    an hour before, row by row); the tables are emptied after."""
    with database.transaction() as session:
        insert_rows(session, earlier, found, prefs, DAYTIME - timedelta(hours=1))
    with database.transaction() as session:
        count = write(session, intents, found, prefs, DAYTIME)
    with database.transaction() as session:
        inbox = [dict(r) for r in session.execute(select(notifications)).mappings()]
        planned = [dict(r) for r in session.execute(select(deliveries)).mappings()]
        session.execute(delete(notifications))
        session.execute(delete(deliveries))
    inbox.sort(key=lambda row: (row["source_key"], row["user_id"]))
    for row in planned:
        assert uuid.UUID(row.pop("id")).version == 4
    planned.sort(key=lambda row: row["key"])
    return count, inbox, planned


@pytest.mark.parametrize("seed", range(6))
def test_grouped_rows_are_the_rows_planned_one_by_one(database, seed):
    rng = random.Random(seed)
    found, prefs = _people(rng, 60)
    people = sorted(found)
    intents = _intents(rng, people)
    earlier = rng.sample(intents, len(intents) // 4)

    by_rows = _planned(database, earlier, intents, found, prefs, insert_rows)
    by_groups = _planned(database, earlier, intents, found, prefs, insert_groups)

    assert by_groups[0] == by_rows[0]
    assert by_groups[1] == by_rows[1]
    assert by_groups[2] == by_rows[2]
    # The count is of the deliveries new to the batch: those already there are kept as they were.
    keys = {row["key"] for row in build_rows(intents, found, prefs, DAYTIME).deliveries}
    already = {row["key"] for row in build_rows(earlier, found, prefs, DAYTIME).deliveries}
    assert len(by_rows[2]) == len(keys) and by_rows[0] == len(keys - already)
    kept = [row for row in by_rows[2] if row["key"] in already]
    assert all(row["created_at"] == DAYTIME - timedelta(hours=1) for row in kept)


def test_grouped_rows_cover_every_state(database):
    rng = random.Random(99)
    found, prefs = _people(rng, 80)
    intents = [i for _ in range(4) for i in _intents(rng, sorted(found))]
    count, _inbox, planned = _planned(database, [], intents, found, prefs, insert_groups)
    assert count == len(planned) > 0
    assert {row["state"] for row in planned} == {"pending", "suppressed", "failed", "expired"}
    assert any(row["next_attempt_at"] > DAYTIME for row in planned)  # deferred past quiet hours
    assert any(row["address"] for row in planned) and any(row["channel"] == "push" for row in planned)


def test_a_naive_instant_is_refused_as_row_by_row(database):
    found, prefs = _people(random.Random(1), 5)
    intent = Intent(
        source_key="event:naive",
        source_type="issues.issue.reported",
        kind="broadcast.notice",
        category=Category.BROADCAST,
        user_ids=tuple(found),
        params=dict(KINDS["broadcast.notice"]),
    )
    for write in (insert_rows, insert_groups):
        with pytest.raises(ValueError, match="naive"), database.transaction() as session:
            write(session, [intent], found, prefs, DAYTIME.replace(tzinfo=None))
