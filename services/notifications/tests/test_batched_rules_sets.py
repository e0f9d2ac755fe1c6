"""The rules of a batch with their issue book (snapshots, follows and knowledge of the run's
issues read at once and written once per table), the places of the activities kept in memory and
the followers of meetings and communities read once: what they leave equals event by event, on
PostgreSQL and on SQLite, for bursts mixing issue, meeting, agenda, registration and activity events
with duplicates in one batch, and again after the whole burst is redelivered."""

from __future__ import annotations

import pytest

from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.migrations import upgrade
from linli_kit.replica import replica_handlers
from linli_kit.testing.consuming import consume
from linli_notifications.adapters.tables import messaging, replica
from linli_notifications.service_layer.handlers import Rules

from .conftest import MIGRATIONS
from .test_batched_rules import TZ, contents, world_and_burst

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("engine", "seed"), [("sqlite", 12), ("postgresql", 13)])
def test_sets_per_batch_leave_what_event_by_event_leaves(request, tmp_path, clock, engine, seed):
    if engine == "sqlite":
        batched_db = request.getfixturevalue("sqlite_database")
        alone_url = f"sqlite:///{tmp_path / 'alone.db'}"
    else:
        batched_db = request.getfixturevalue("database")
        alone_url = request.getfixturevalue("pg_databases").create("notif_alone")
    upgrade(MIGRATIONS, alone_url)
    alone = Database(alone_url)
    try:
        world, burst = world_and_burst(seed)
        # The activity known before the burst, and no activity event in it (the first test has
        # them): every registration goes through the places kept in memory.
        snapshot = next(e.data for e in burst if e.type.startswith("activities.activity."))
        dropped = ("previous_starts_at", "lead_minutes", "confirmed_ids")
        published = {k: v for k, v in snapshot.items() if k not in dropped} | {"revision": 1}
        world.append(new_event("activities.activity.published", published, producer="activities"))
        burst = [e for e in burst if not e.type.startswith("activities.activity.")]
        assert len({e.id for e in burst}) < len(burst)  # duplicates in the burst
        kinds = {e.type for e in burst}
        assert {"issues.issue.supported", "activities.registration.confirmed"} <= kinds
        assert any(k.startswith("meetings.meeting.") for k in kinds)
        rules = Rules(clock, TZ)
        batched = {**replica_handlers(replica), **rules.handlers()}
        single = {**replica_handlers(replica), **rules.single_handlers()}
        for db, handlers in ((batched_db, batched), (alone, single)):
            consume(db, messaging.inbox, handlers, world, service="notifications", one_by_one=True)

        outcomes = consume(batched_db, messaging.inbox, batched, burst, service="notifications")
        reference = consume(alone, messaging.inbox, single, burst, service="notifications", one_by_one=True)
        assert set(outcomes) == set(reference) == {"ack"}
        after_batch = contents(batched_db)
        assert after_batch == contents(alone)
        assert len(after_batch["notifications"]) > 20 and after_batch["issue_knowledge"] and after_batch["follows"]

        again = consume(batched_db, messaging.inbox, batched, burst, service="notifications")
        assert set(again) == {"ack"} and contents(batched_db) == after_batch
    finally:
        alone.dispose()
