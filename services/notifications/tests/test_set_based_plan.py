"""A broadcast chunk planned set-based on PostgreSQL (`prepare_fresh_plan`: two INSERT ... SELECT
over arrays per group of recipients told alike) leaves the rows that planning row by row
(`build_rows`, as SQLite writes them) leaves: every column, JSON nulls and empty lists included,
for recipients that differ in every way a decision or a rendering looks at. Only a delivery's own
random id differs."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli_notifications.adapters.tables import deliveries, notifications
from linli_notifications.domain.model import Category, Channel, Intent, Recipient
from linli_notifications.service_layer.planning import (
    _NAMESPACE,
    build_rows,
    group_alike,
    prepare_fresh_plan,
    random_id,
    stable_id,
)

from .conftest import DAYTIME

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"


def test_stable_id_is_the_uuid5_of_its_parts():
    rng = random.Random(7)
    for n in range(2000):
        parts = [f"broadcast:{uuid.UUID(int=rng.getrandbits(128))}", str(uuid.UUID(int=rng.getrandbits(128)))]
        if n % 3 == 0:
            parts.append("活动提醒")  # not ASCII: encoded as uuid5 encodes it (UTF-8)
        assert stable_id(*parts) == str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _people(rng: random.Random, n: int) -> tuple[dict[str, Recipient], dict[str, dict]]:
    found: dict[str, Recipient] = {}
    prefs: dict[str, dict] = {}
    for i in range(n):
        user_id = str(uuid.UUID(int=rng.getrandbits(128)))
        found[user_id] = Recipient(
            user_id=user_id,
            role="resident",
            locale="en" if i % 5 == 0 else "zh-CN",
            phone=None if i % 7 == 0 else f"+86139{i:08d}",
            timezone="Europe/London" if i % 11 == 0 else TZ,  # night in London at 02:00 UTC: deferred
            quiet_start="09:00" if i % 13 == 0 else "22:00",  # 10:00 in Shanghai is quiet for these
            quiet_end="11:00" if i % 13 == 0 else "08:00",
            active=i % 17 != 0,
            sms_opted_out=i % 6 == 0,
            has_devices=i % 4 == 0,
        )
        if i % 9 == 0:
            prefs[user_id] = {(Category.BROADCAST.value, Channel.SMS.value): False}
    return found, prefs


def _intent(users: list[str], *, urgent: bool, params: dict) -> Intent:
    broadcast_id = str(uuid.uuid4())
    return Intent(
        source_key=f"broadcast:{broadcast_id}",
        source_type="broadcast",
        kind="broadcast.notice",
        category=Category.SAFETY if urgent else Category.BROADCAST,
        user_ids=tuple(users),
        params=params,
        urgent=urgent,
        community_id=str(uuid.uuid4()),
        subject_type="broadcast",
        subject_id=broadcast_id,
        channels=frozenset({Channel.SMS, Channel.PUSH}),
        expires_at=DAYTIME + timedelta(hours=6) if urgent else None,
    )


def _read(database, source_keys: list[str]) -> tuple[list[dict], list[dict]]:
    with database.session() as s:
        inbox = s.execute(select(notifications).where(notifications.c.source_key.in_(source_keys))).mappings().all()
        planned = s.execute(select(deliveries).where(deliveries.c.batch_key.in_(source_keys))).mappings().all()
    return [dict(r) for r in inbox], [dict(r) for r in planned]


@pytest.mark.parametrize("urgent", [False, True])
def test_set_based_rows_are_the_rows_planned_one_by_one(database, urgent):
    rng = random.Random(42)
    found, prefs = _people(rng, 400)
    users = sorted(found)
    good = _intent(users, urgent=urgent, params={"title": "停水通知", "body": "明日9:00-17:00停水，请提前储水。"})
    # A template's parameter missing: every delivery that would go fails, naming it.
    bad = _intent(users[:50], urgent=urgent, params={"title": "停水通知"})
    intents = [good, bad]
    assert len(group_alike(intents, found, prefs, DAYTIME)) > 10  # recipients differ in many ways

    count, write = prepare_fresh_plan(database.engine.dialect, intents, found, prefs, DAYTIME)
    with database.transaction() as session:
        write(session)
    inbox, planned = _read(database, [good.source_key, bad.source_key])

    expected = build_rows(intents, found, prefs, DAYTIME)
    assert count == len(planned) == len(expected.deliveries)
    key = lambda row: (row["source_key"], row["user_id"])  # noqa: E731
    assert sorted(inbox, key=key) == sorted(expected.inbox, key=key)
    by_key = {row["key"]: row for row in planned}
    assert set(by_key) == {row["key"] for row in expected.deliveries}
    for row in expected.deliveries:
        stored = by_key[row["key"]]
        assert uuid.UUID(stored.pop("id")).version == 4  # its own random id, as before
        assert stored == {**{k: v for k, v in row.items() if k != "id"}, "address_hint": None}
    states = {row["state"] for row in planned}
    assert {"pending", "suppressed", "failed"} <= states
    # Deferred past quiet hours, but for an urgent notice, which goes at once.
    assert any(row["next_attempt_at"] > DAYTIME for row in planned) is not urgent


def test_a_set_based_chunk_written_twice_fails_on_the_unique_keys(database):
    found, prefs = _people(random.Random(3), 20)
    intent = _intent(sorted(found), urgent=False, params={"title": "t", "body": "b"})
    _count, write = prepare_fresh_plan(database.engine.dialect, [intent], found, prefs, DAYTIME)
    with database.transaction() as session:
        write(session)
    with pytest.raises(Exception, match="unique|duplicate"):
        with database.transaction() as session:
            write(session)


def test_random_id_is_a_version_4_uuid_and_differs_each_time():
    made = {random_id() for _ in range(5000)}
    assert len(made) == 5000
    for text in list(made)[:500]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
