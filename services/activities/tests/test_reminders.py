"""Registrants are reminded before an activity starts: a day and an hour before by default, only
those holding a place, once per lead time; a moved activity is reminded of its new start only, a
cancelled one not at all. On SQLite and PostgreSQL, and through the worker's timer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import activity_reminders, messaging
from linli_activities.config import load_activities_config
from linli_activities.definition import definition
from linli_activities.service_layer import activities
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.config import ConfigError, load_settings
from linli_kit.events.catalogue import CATALOGUE

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai


def reminders_sent(database, activity_id):
    """The reminder events in the outbox for this activity, oldest first (checked against the catalogue)."""
    with database.session() as s:
        rows = s.execute(
            select(messaging.outbox.c.payload)
            .where(messaging.outbox.c.event_type == "activities.activity.reminder")
            .order_by(messaging.outbox.c.id)
        ).all()
    events = [json.loads(r.payload) for r in rows]
    mine = [e for e in events if e["data"]["activity_id"] == activity_id]
    for e in mine:
        CATALOGUE.validate(e["type"], e["version"], e["data"])
    return mine


def states(database, activity_id):
    with database.session() as s:
        rows = s.execute(
            select(activity_reminders.c.lead_minutes, activity_reminders.c.starts_at, activity_reminders.c.state)
            .where(activity_reminders.c.activity_id == activity_id)
            .order_by(activity_reminders.c.starts_at, activity_reminders.c.lead_minutes.desc())
        ).all()
    return [(lead, starts.astimezone(UTC), state) for lead, starts, state in rows]


def test_registrants_holding_a_place_are_reminded_a_day_and_an_hour_before(any_database, any_world, clock):
    database, world = any_database, any_world

    def uow():
        return ActivitiesUnitOfWork(database, clock)

    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))
    activity = activities.create_activity(
        uow(),
        staff,
        publish=True,
        community_ids=[world.community_a],
        kind="culture",
        title="Opera evening",
        starts_at=START,
        ends_at=START + timedelta(hours=2),
        capacity=1,
        max_party_size=1,
    )
    holder, waiting = (
        Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(world.community_a,)) for _ in range(2)
    )
    activities.register(uow(), holder, activity.id, party_size=1)
    activities.register(uow(), waiting, activity.id, party_size=1)
    activities.send_due_reminders(uow())
    assert reminders_sent(database, activity.id) == []  # nothing due yet
    assert states(database, activity.id) == [(1440, START, "scheduled"), (60, START, "scheduled")]

    clock.now = START - timedelta(hours=23)
    # (The database is shared with other tests: what they left due may go too; this one is counted.)
    assert activities.send_due_reminders(uow()) >= 1
    activities.send_due_reminders(uow())
    [day_before] = reminders_sent(database, activity.id)  # once only
    assert day_before["data"]["lead_minutes"] == 1440
    # The waiting resident holds no place: not reminded (but still in registrant_ids for changes).
    assert day_before["data"]["confirmed_ids"] == [holder.user_id]
    assert sorted(day_before["data"]["registrant_ids"]) == sorted([holder.user_id, waiting.user_id])

    # Moved by a day: the hour-before reminder of the old start is cancelled, the new start gets both.
    moved = START + timedelta(days=1)
    activities.update_activity(uow(), staff, activity.id, starts_at=moved, ends_at=moved + timedelta(hours=2))
    assert states(database, activity.id) == [
        (1440, START, "sent"),
        (60, START, "cancelled"),
        (1440, moved, "scheduled"),
        (60, moved, "scheduled"),
    ]
    # The worker was away until ten minutes before the new start: one reminder goes, the nearest.
    clock.now = moved - timedelta(minutes=10)
    activities.send_due_reminders(uow())
    assert [e["data"]["lead_minutes"] for e in reminders_sent(database, activity.id)] == [1440, 60]
    assert reminders_sent(database, activity.id)[-1]["data"]["starts_at"].startswith("2026-12-06T11:00:00")
    assert [s for *_k, s in states(database, activity.id)][2:] == ["expired", "sent"]


def test_a_cancelled_activity_sends_no_reminder_and_a_late_one_plans_only_what_is_ahead(any_database, any_world, clock):
    database, world = any_database, any_world

    def uow():
        return ActivitiesUnitOfWork(database, clock)

    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))
    values = {
        "community_ids": [world.community_a],
        "kind": "sports",
        "title": "Morning run",
        "starts_at": START,
        "ends_at": START + timedelta(hours=1),
    }
    draft = activities.create_activity(uow(), staff, **values)
    assert states(database, draft.id) == []  # a draft reminds nobody
    clock.now = START - timedelta(hours=3)  # published three hours before: only the hour-before is ahead
    activities.publish_activity(uow(), staff, draft.id)
    assert states(database, draft.id) == [(60, START, "scheduled")]
    activities.cancel_activity(uow(), staff, draft.id, "rain")
    assert states(database, draft.id) == [(60, START, "cancelled")]
    clock.now = START - timedelta(minutes=30)
    activities.send_due_reminders(uow())
    assert reminders_sent(database, draft.id) == []


def test_the_worker_timer_sends_due_reminders(any_database, any_world, monkeypatch):
    database, world = any_database, any_world
    monkeypatch.setenv("ACTIVITIES_REMINDER_MINUTES", "90")
    now = datetime.now(UTC)
    config = load_activities_config()
    # Published two hours ago for a start half an hour from now: the 90-minute reminder is due.
    earlier = ActivitiesUnitOfWork(database, lambda: now - timedelta(hours=2), reminder_minutes=config.reminder_minutes)
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))
    activity = activities.create_activity(
        earlier,
        staff,
        publish=True,
        community_ids=[world.community_a],
        kind="education",
        title="Calligraphy class",
        starts_at=now + timedelta(minutes=30),
        ends_at=now + timedelta(hours=2),
    )
    [timer] = definition.timers(load_settings("activities"), database)
    timer.run()
    [sent] = reminders_sent(database, activity.id)
    assert sent["data"]["lead_minutes"] == 90 and sent["community_id"] == world.community_a


@pytest.mark.parametrize("value", ["abc", "0", "20000", "1,2,3,4,5,6"])
def test_bad_reminder_settings_are_refused(monkeypatch, value):
    monkeypatch.setenv("ACTIVITIES_REMINDER_MINUTES", value)
    with pytest.raises(ConfigError, match="ACTIVITIES_REMINDER_MINUTES"):
        load_activities_config()


def test_reminder_settings(monkeypatch):
    monkeypatch.setenv("ACTIVITIES_REMINDER_MINUTES", "60, 1440")
    assert load_activities_config().reminder_minutes == (1440, 60)
    monkeypatch.setenv("ACTIVITIES_REMINDER_MINUTES", "none")
    assert load_activities_config().reminder_minutes == ()
