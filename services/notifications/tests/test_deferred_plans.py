"""A batch's notices and deliveries inserted after its commit, from the plan it committed
(service_layer/deferred.py): the same rows as planning in the batch, each plan expanded once and in
order, whatever stops between the stages; reminders, and what a batch inserts itself, after every
plan before them."""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.migrations import upgrade
from linli_kit.replica import replica_handlers
from linli_kit.testing.consuming import consume
from linli_notifications.adapters.tables import deliveries, event_plans, messaging, notifications, replica
from linli_notifications.definition import event_plans as event_plans_command
from linli_notifications.definition import plan_queue, timers
from linli_notifications.domain.model import Category, Intent
from linli_notifications.service_layer import deferred
from linli_notifications.service_layer.deferred import PlanQueue
from linli_notifications.service_layer.handlers import Rules
from linli_notifications.service_layer.planning import group_values, insert_groups

from .conftest import DAYTIME, MIGRATIONS
from .test_batched_planning import city_and_burst
from .test_batched_rules import TZ, contents
from .test_grouped_plan import _intents, _people, _planned

pytestmark = pytest.mark.integration


def _count(database: Database, table) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_a_deferred_batch_leaves_what_event_by_event_leaves_once_its_plan_is_expanded(database, pg_databases, clock):
    alone_url = pg_databases.create("notif_alone")
    upgrade(MIGRATIONS, alone_url)
    alone = Database(alone_url)
    try:
        world, burst = city_and_burst(21)
        rules = Rules(clock, TZ, PlanQueue(database))
        batched = {**replica_handlers(replica), **rules.handlers()}
        single = {**replica_handlers(replica), **Rules(clock, TZ).single_handlers()}
        for db, handlers in ((database, batched), (alone, single)):
            consume(db, messaging.inbox, handlers, world, service="notifications", one_by_one=True)
        outcomes = consume(database, messaging.inbox, batched, burst, service="notifications", batch_size=60)
        reference = consume(alone, messaging.inbox, single, burst, service="notifications", one_by_one=True)
        assert set(outcomes) == set(reference) == {"ack"}
        # Committed with the inbox rows: the plans, not yet their rows.
        plans = _count(database, event_plans)
        assert plans >= 3 and _count(database, notifications) == _count(database, deliveries) == 0

        # Expanded by another queue (the worker's after a restart: nothing kept in memory).
        assert PlanQueue(database).expand_committed() == plans
        assert contents(database) == contents(alone)
        assert _count(database, event_plans) == 0 and PlanQueue(database).expand_committed() == 0

        # The burst again (redelivered): the inbox skips it, no plan is written, nothing changes.
        assert set(consume(database, messaging.inbox, batched, burst, service="notifications")) == {"ack"}
        assert _count(database, event_plans) == 0
        assert contents(database) == contents(alone)
    finally:
        alone.dispose()


@pytest.mark.parametrize("seed", range(3))
def test_a_plan_through_its_table_makes_the_rows_the_batch_would_have_made(database, seed):
    """The values written as text and read back make what the statement run at once makes: random
    batches with every kind of recipient and intent, two intents of one source, rows already there."""
    rng = random.Random(seed)
    found, prefs = _people(rng, 30)
    intents = _intents(rng, list(found))
    earlier = rng.sample(intents, len(intents) // 4)
    queue = PlanQueue(database)

    def through_the_table(session, intents, found, prefs, now):
        values = group_values(intents, found, prefs, now)
        if values is None:
            return 0
        queue.defer(session, values)
        assert queue.expand_pending(session) == 1  # its own plan, in its own transaction
        return None

    _count_now, inbox_now, planned_now = _planned(database, earlier, intents, found, prefs, insert_groups)
    _no_count, inbox, planned = _planned(database, earlier, intents, found, prefs, through_the_table)
    assert (inbox, planned) == (inbox_now, planned_now)
    assert _count(database, event_plans) == 0


def _intent(source_key: str, user_ids: list[str], title: str) -> Intent:
    return Intent(
        source_key=source_key,
        source_type="meetings.agenda_item.added",
        kind="broadcast.notice",
        category=Category.MEETING,
        user_ids=tuple(user_ids),
        params={"title": title, "body": "议程"},
    )


def _defer(database: Database, queue: PlanQueue, intents: list[Intent], found, prefs) -> None:
    with database.transaction() as session:
        queue.defer(session, group_values(intents, found, prefs, DAYTIME))


def _titles(database: Database) -> dict[str, str]:
    with database.session() as s:
        return dict(s.execute(select(notifications.c.source_key, notifications.c.title)).all())


def test_plans_are_expanded_in_their_order_and_once_even_by_two_expanders(database):
    found, prefs = _people(random.Random(5), 6)
    people = list(found)
    queue = PlanQueue(database)
    # Two sources' rows collide (one agenda item named by two events): the first plan's stay.
    _defer(database, queue, [_intent("agenda:m:i", people, "第一次")], found, prefs)
    _defer(database, queue, [_intent("agenda:m:i", people, "第二次")], found, prefs)
    for n in range(6):
        _defer(database, queue, [_intent(f"event:{n}", people[n:], f"通知{n}")], found, prefs)

    expanded: list[int] = []
    start = threading.Barrier(2)

    def expander() -> None:
        start.wait()
        expanded.append(PlanQueue(database).expand_committed())

    workers = [threading.Thread(target=expander) for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert sum(expanded) == 8 and _count(database, event_plans) == 0
    assert _titles(database) == {"agenda:m:i": "第一次", **{f"event:{n}": f"通知{n}" for n in range(6)}}
    assert _count(database, notifications) == len(people) + sum(len(people[n:]) for n in range(6))


def test_an_expansion_that_fails_leaves_its_plan_for_the_next(database, monkeypatch):
    found, prefs = _people(random.Random(6), 4)
    queue = PlanQueue(database)
    _defer(database, queue, [_intent("event:a", list(found), "通知")], found, prefs)
    real = deferred._expand

    def crash(connection, plan_id, ordered):
        real(connection, plan_id, ordered)  # the rows inserted, then the process dies before the commit
        raise RuntimeError("killed")

    monkeypatch.setattr(deferred, "_expand", crash)
    with pytest.raises(RuntimeError):
        queue.expand_committed()
    assert _count(database, event_plans) == 1 and _count(database, notifications) == 0
    monkeypatch.setattr(deferred, "_expand", real)
    assert queue.expand_committed() == 1
    assert _count(database, notifications) == len(found) and _count(database, event_plans) == 0


def test_a_batch_with_a_reminder_inserts_it_itself_after_every_plan_before_it(database, clock):
    world, burst = city_and_burst(22)
    queue = PlanQueue(database)
    rules = Rules(clock, TZ, queue)
    handlers = {**replica_handlers(replica), **rules.handlers()}
    consume(database, messaging.inbox, handlers, world, service="notifications", one_by_one=True)
    assert set(consume(database, messaging.inbox, handlers, burst, service="notifications")) == {"ack"}
    assert _count(database, event_plans) >= 1 and _count(database, notifications) == 0

    people = [e.data for e in world if e.type == "accounts.user.registered"]
    holder = people[0]
    starts = DAYTIME + timedelta(days=2)
    activity_id = str(uuid.uuid4())
    snapshot = {
        "activity_id": activity_id,
        "community_ids": holder["community_ids"],
        "kind": "culture",
        "title": "重阳节包饺子",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "place": "邻里驿站",
        "organiser_id": people[1]["user_id"],
        "registrant_ids": [holder["user_id"]],
        "revision": 1,
    }
    reminder = {**snapshot, "lead_minutes": 1440, "confirmed_ids": [holder["user_id"]]}
    events = [
        new_event("activities.activity.published", snapshot, producer="activities"),
        new_event("activities.activity.reminder", reminder, producer="activities"),
    ]
    assert set(consume(database, messaging.inbox, handlers, events, service="notifications")) == {"ack"}
    # The reminder's batch expanded the burst's plans (and its own publication's) before it: nothing
    # is left to the expander, and the reminder is there for a change of its activity to expire.
    assert _count(database, event_plans) == 0
    with database.session() as s:
        sources = set(s.scalars(select(notifications.c.source_key)))
    assert {e.id for e in burst} & sources and f"activity-reminder:{activity_id}:1440:{starts.isoformat()}" in sources


def test_the_worker_expands_plans_on_postgresql_only(database, sqlite_database, env, settings):
    assert plan_queue(database) is plan_queue(database) is not None
    assert plan_queue(sqlite_database) is None
    named = {timer.name: timer for timer in timers(settings, database)}
    assert named["plans"].run == plan_queue(database).run and named["plans"].interval == 0.0


def test_the_expander_is_woken_by_the_commit_of_a_plan_not_by_its_poll(database):
    found, prefs = _people(random.Random(7), 3)
    queue = PlanQueue(database, poll_seconds=60.0)
    turn = threading.Thread(target=queue.run)
    turn.start()
    with database.transaction() as session:
        queue.defer(session, group_values([_intent("event:w", list(found), "通知")], found, prefs, DAYTIME))
        assert turn.is_alive()  # written, not committed: nothing to expand yet
    turn.join(20)
    assert not turn.is_alive() and _count(database, notifications) == len(found)
    # A transaction that writes a plan and rolls back wakes nobody and leaves nothing.
    turn = threading.Thread(target=queue.run)
    turn.start()
    with pytest.raises(RuntimeError), database.transaction() as session:
        queue.defer(session, group_values([_intent("event:x", list(found), "通知")], found, prefs, DAYTIME))
        raise RuntimeError("the batch failed")
    turn.join(0.5)
    assert turn.is_alive() and _count(database, event_plans) == 0
    queue._wake.set()  # end the turn
    turn.join(20)


def _plans(database: Database) -> dict[int, tuple]:
    with database.session() as s:
        rows = s.execute(select(event_plans.c.id, event_plans.c.tries, event_plans.c.failed_at, event_plans.c.error))
        return {plan_id: (tries, failed_at, error) for plan_id, tries, failed_at, error in rows}


def _set_aside_count() -> float:
    return REGISTRY.get_sample_value("linli_notification_plans_set_aside_total") or 0.0


def test_a_plan_that_cannot_be_expanded_is_set_aside_after_its_tries_and_the_plans_after_it_go_on(
    database, caplog, capsys
):
    found, prefs = _people(random.Random(8), 4)
    people = list(found)
    with database.transaction() as session:  # a value the table refuses, as a real one would
        session.execute(text("ALTER TABLE notifications ADD CONSTRAINT no_bad_titles CHECK (title <> '坏')"))
    queue = PlanQueue(database, tries=2)
    _defer(database, queue, [_intent("event:a", people, "通知a")], found, prefs)
    _defer(database, queue, [_intent("agenda:m:i", people, "坏")], found, prefs)
    _defer(database, queue, [_intent("agenda:m:i", people, "好")], found, prefs)  # collides with the bad one
    _defer(database, queue, [_intent("event:c", people, "通知c")], found, prefs)
    bad = sorted(_plans(database))[1]
    before = _set_aside_count()

    # The first try: the plan before it expanded, the turn ended, nothing after it yet.
    with pytest.raises(IntegrityError):
        queue.expand_committed()
    assert _titles(database) == {"event:a": "通知a"}
    tries, failed_at, error = _plans(database)[bad]
    assert tries == 1 and failed_at is None and "no_bad_titles" in error and error.startswith("23514")

    # The last: set aside, and the plans after it expanded in their order; the later plan whose rows
    # collide with it goes first.
    with caplog.at_level(logging.ERROR, logger=deferred.__name__):
        assert queue.expand_committed() == 2
    assert _titles(database) == {"event:a": "通知a", "agenda:m:i": "好", "event:c": "通知c"}
    assert set(_plans(database)) == {bad}
    tries, failed_at, error = _plans(database)[bad]
    assert tries == 2 and failed_at is not None and "no_bad_titles" in error
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.plan_id == bad and "no_bad_titles" in record.error
    assert _set_aside_count() == before + 1

    # Skipped from now on, by the expander and by a batch that expands the plans before it.
    assert queue.expand_committed() == 0 and _plans(database)[bad][:2] == (2, failed_at)
    _defer(database, queue, [_intent("event:d", people, "通知d")], found, prefs)
    with database.transaction() as session:
        assert queue.expand_pending(session) == 1
    assert _titles(database)["event:d"] == "通知d" and set(_plans(database)) == {bad}
    assert _set_aside_count() == before + 1

    # Listed for an operator, and retried once what failed it is fixed: expanded once, its rows that
    # collide with the later plan's skipped.
    assert event_plans_command(None, database, ["list"]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["id"] == bad and listed["tries"] == 2 and "no_bad_titles" in listed["error"]
    with database.transaction() as session:
        session.execute(text("ALTER TABLE notifications DROP CONSTRAINT no_bad_titles"))
    assert event_plans_command(None, database, ["retry", "--id", str(bad + 100)]) == 1
    assert event_plans_command(None, database, ["retry"]) == 0
    assert queue.expand_committed() == 1 and _plans(database) == {}
    assert _titles(database)["agenda:m:i"] == "好"
    assert _count(database, notifications) == 4 * len(people)


def test_a_batch_leaves_a_plan_that_fails_to_the_expander_and_goes_on(database):
    found, prefs = _people(random.Random(9), 4)
    people = list(found)
    with database.transaction() as session:
        session.execute(text("ALTER TABLE notifications ADD CONSTRAINT no_bad_titles CHECK (title <> '坏')"))
    queue = PlanQueue(database)
    _defer(database, queue, [_intent("event:a", people, "通知a")], found, prefs)
    _defer(database, queue, [_intent("event:b", people, "坏")], found, prefs)
    _defer(database, queue, [_intent("event:c", people, "通知c")], found, prefs)
    bad = sorted(_plans(database))[1]
    with database.transaction() as session:
        assert queue.expand_pending(session) == 2
        # The batch's own rows after them: its transaction was not aborted by the failure.
        insert_groups(session, [_intent("event:own", people, "自己")], found, prefs, DAYTIME)
    assert _titles(database) == {"event:a": "通知a", "event:c": "通知c", "event:own": "自己"}
    # Not counted by the batch: the expander tries it (and sets it aside at its last try).
    assert _plans(database) == {bad: (0, None, None)}


# A connection lost mid-expansion (the backend terminated), or a lock not granted in time: each a
# real error of PostgreSQL's, raised by a trigger on notifications for the first 3 expansions.
_TRANSIENT = {
    "connection lost": "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5);",
    "lock timeout": "PERFORM set_config('lock_timeout', '50ms', true); PERFORM 1 FROM held FOR UPDATE;",
}


@pytest.mark.parametrize("cause", sorted(_TRANSIENT))
def test_a_transient_error_is_retried_and_never_sets_a_plan_aside(database, cause):
    found, prefs = _people(random.Random(10), 3)
    with database.transaction() as session:
        session.execute(text("CREATE SEQUENCE failures; CREATE TABLE held (id int); INSERT INTO held VALUES (1)"))
        session.execute(
            text(
                "CREATE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" IF nextval('failures') <= 3 THEN {_TRANSIENT[cause]} END IF; RETURN NULL; END $$;"
                " CREATE TRIGGER fail_first BEFORE INSERT ON notifications"
                " FOR EACH STATEMENT EXECUTE FUNCTION fail_first()"
            )
        )
    queue = PlanQueue(database, tries=2)
    _defer(database, queue, [_intent("event:t", list(found), "通知")], found, prefs)
    [plan] = _plans(database)
    holder = database.session()
    try:
        holder.execute(text("SELECT 1 FROM held FOR UPDATE"))  # what the lock timeout waits for
        for _ in range(3):  # more than its tries
            with pytest.raises(OperationalError) as failed:
                queue.expand_committed()
            assert deferred._is_retried(failed.value)
            assert _plans(database) == {plan: (0, None, None)}
    finally:
        holder.rollback()
        holder.close()
    assert queue.expand_committed() == 1
    assert _titles(database) == {"event:t": "通知"} and _plans(database) == {}
