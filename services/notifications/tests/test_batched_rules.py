"""The rules as the consumer runs them, one batch handler for a run of events of any types
(`Rules.handlers`), leave exactly what each event's rule leaves when handled alone, event by event
(`Rules.single_handlers`, one transaction each): the notices and deliveries planned, the subjects,
follows, knowledge and reminders kept. With duplicates in one batch, a redelivered burst, and the
event types mixed as they come from three producers."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli_kit.db import Database
from linli_kit.events import Event, new_event
from linli_kit.migrations import upgrade
from linli_kit.replica import replica_handlers
from linli_kit.testing.consuming import consume
from linli_notifications.adapters.tables import (
    deliveries,
    follows,
    issue_knowledge,
    messaging,
    notifications,
    reminders,
    replica,
    subjects,
)
from linli_notifications.service_layer.handlers import Rules

from .conftest import DAYTIME, MIGRATIONS

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
TABLES = (notifications, deliveries, subjects, follows, issue_knowledge, reminders)


def world_and_burst(seed: int) -> tuple[list[Event], list[Event]]:
    """A community with staff and residents (handled first, apart), then a mixed burst."""
    rng = random.Random(seed)
    street, community = str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128)))
    staff = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2)]
    people = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(8)]
    world = [
        new_event(
            "directory.community.upserted",
            {"community_id": community, "street_id": street, "name": "育才街社区", "revision": 1},
            producer="gateway",
        )
    ]
    for i, person in enumerate(staff + people):
        world.append(
            new_event(
                "accounts.user.registered",
                {
                    "user_id": person,
                    "role": "community_staff" if person in staff else "resident",
                    "display_name": "张三",
                    "phone": f"+861380013{i:04d}",
                    "locale": "zh-CN",
                    "street_id": street,
                    "community_ids": [community],
                    "revision": 1,
                },
                producer="gateway",
            )
        )
    issues = [{"id": str(uuid.uuid4()), "revision": 0, "status": "reported", "supporters": []} for _ in range(3)]
    meetings = [{"id": str(uuid.uuid4()), "revision": 0} for _ in range(2)]
    activity = {"id": str(uuid.uuid4()), "revision": 0}
    starts = DAYTIME + timedelta(days=3)
    events: list[Event] = []

    def issue_event(issue: dict, event_type: str, **extra) -> Event:
        issue["revision"] += rng.choice([1, 1, 1, -1]) if issue["revision"] > 1 else 1  # some arrive late
        data = {
            "issue_id": issue["id"],
            "community_id": community,
            "title": "楼道灯坏了",
            "category": "safety_hazard",
            "urgency": rng.choice(["normal", "urgent"]),
            "status": issue["status"],
            "tier": "community",
            "reporter_id": people[0],
            "supporter_ids": list(issue["supporters"]),
            "visibility": rng.choice(["community", "community", "private"]),
            "revision": max(issue["revision"], 1),
            **extra,
        }
        return new_event(event_type, data, producer="issues")

    for _ in range(120):
        if events and rng.random() < 0.08:
            events.append(rng.choice(events))  # the same event again, in the same burst
            continue
        kind = rng.choice(["reported", "supported", "progress", "meeting", "agenda", "registration", "activity"])
        issue = rng.choice(issues)
        if kind == "reported":
            events.append(issue_event(issue, "issues.issue.reported"))
        elif kind == "supported":
            supporter = rng.choice(people)
            issue["supporters"] = sorted({*issue["supporters"], supporter})
            events.append(issue_event(issue, "issues.issue.supported", supporter_id=supporter))
        elif kind == "progress":
            before, issue["status"] = issue["status"], rng.choice(["accepted", "deliberating", "resolved"])
            events.append(issue_event(issue, "issues.issue.status_changed", from_status=before, actor_id=staff[0]))
        elif kind in ("meeting", "agenda"):
            meeting = rng.choice(meetings)
            meeting["revision"] += 1
            data = {
                "meeting_id": meeting["id"],
                "community_id": community,
                "meeting_type": "round_table",
                "title": "议事会",
                "starts_at": starts + timedelta(hours=meeting["revision"]),
                "ends_at": starts + timedelta(hours=meeting["revision"] + 2),
                "place": "活动室",
                "convener_id": staff[0],
                "public": rng.random() < 0.5,
                "participant_ids": rng.sample(people, 3),
                "revision": meeting["revision"],
            }
            if kind == "agenda":
                agenda = {k: data[k] for k in ("meeting_id", "community_id", "meeting_type", "title", "starts_at")}
                agenda.update(item_id=str(uuid.uuid4()), issue_id=issue["id"])
                events.append(new_event("meetings.agenda_item.added", agenda, producer="meetings"))
            elif meeting["revision"] == 1:
                events.append(new_event("meetings.meeting.scheduled", data, producer="meetings"))
            else:
                data["previous_starts_at"] = starts
                events.append(new_event("meetings.meeting.rescheduled", data, producer="meetings"))
        elif kind == "registration":
            # Some give their place up: the places kept in memory lose as well as gain.
            verb = "cancelled" if rng.random() < 0.3 else "confirmed"
            data = {
                "registration_id": str(uuid.uuid4()),
                "activity_id": activity["id"],
                "community_id": community,
                "user_id": rng.choice(people),
                "title": "书法班",
                "starts_at": starts,
                "party_size": 1,
                "status": verb,
            }
            events.append(new_event(f"activities.registration.{verb}", data, producer="activities"))
        else:
            activity["revision"] += 1
            data = {
                "activity_id": activity["id"],
                "community_ids": [community],
                "kind": "culture",
                "title": "书法班",
                "starts_at": starts + timedelta(minutes=activity["revision"]),
                "ends_at": starts + timedelta(hours=2),
                "organiser_id": staff[1],
                "registrant_ids": people[:4],
                "revision": activity["revision"],
            }
            if rng.random() < 0.5:
                data.update(lead_minutes=60, confirmed_ids=people[:4])
                events.append(new_event("activities.activity.reminder", data, producer="activities"))
            else:
                data["previous_starts_at"] = starts
                events.append(new_event("activities.activity.rescheduled", data, producer="activities"))
    return world, events


def contents(database) -> dict[str, list]:
    """Every row of the tables the rules write, but a delivery's own id (random; its key is what
    makes it unique)."""
    with database.session() as s:
        return {
            t.name: sorted(
                repr(tuple(v for k, v in row._mapping.items() if (t.name, k) != ("deliveries", "id")))
                for row in s.execute(select(t))
            )
            for t in TABLES
        }


@pytest.mark.parametrize("seed", [11])
def test_a_batch_of_mixed_rules_leaves_what_event_by_event_leaves(database, pg_databases, clock, seed):
    alone_url = pg_databases.create("notif_alone")
    upgrade(MIGRATIONS, alone_url)
    alone = Database(alone_url)
    try:
        world, burst = world_and_burst(seed)
        assert len({e.type for e in burst}) >= 6 and len({e.id for e in burst}) < len(burst)
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
        assert len(after_batch["notifications"]) > 20 and after_batch["reminders"]

        # The whole burst redelivered: every event acked, nothing planned or changed twice.
        again = consume(database, messaging.inbox, batched, burst, service="notifications")
        assert set(again) == {"ack"} and contents(database) == after_batch
    finally:
        alone.dispose()
