"""First sign-ups gathered by a process and written together (service_layer/combiner.py, and on
PostgreSQL Repository.sign_up_together): a group decides what one-by-one sign-ups in its order
decide; an error or a refusal of one of a group is its own (the others are taken, nobody twice, no
place lost or counted twice); groups of several processes racing for the last places never
over-book and keep one line without gaps."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from linli_activities.adapters import counts
from linli_activities.adapters.repository import FirstSignUp
from linli_activities.adapters.tables import messaging
from linli_activities.domain.activities import Activity, Registration
from linli_activities.service_layer import activities
from linli_activities.service_layer.combiner import Combiner
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Invalid
from linli_kit.testing.waiting import eventually

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


# --- the combiner alone -----------------------------------------------------------------------------
def _held(combiner: Combiner, key: str) -> tuple[threading.Thread, threading.Event, list]:
    """A call of `key` whose group runs until the returned event is set: the calls made meanwhile
    wait for it, and form the next group."""
    release, seen = threading.Event(), []

    def blocked(items: list) -> list:
        seen.append(list(items))
        release.wait()
        return ["first"]

    thread = threading.Thread(target=combiner.run, args=(key, "first", blocked))
    thread.start()
    eventually(lambda: seen, what="the first group running")
    return thread, release, seen


def test_the_calls_made_while_a_group_runs_form_the_next_one_in_their_order_each_with_its_own_outcome():
    combiner: Combiner[str, str] = Combiner()
    first, release, groups = _held(combiner, "k")
    results: dict[str, object] = {}

    def together(items: list[str]) -> list[object]:
        groups.append(list(items))
        return [ValueError(item) if item == "bad" else item.upper() for item in items]

    def call(item: str) -> None:
        try:
            results[item] = combiner.run("k", item, together)
        except ValueError as error:
            results[item] = error

    names = ["a", "bad", "c"]
    threads = []
    for name in names:  # one after the other, so their order in the group is known
        threads.append(threading.Thread(target=call, args=(name,)))
        threads[-1].start()
        eventually(lambda n=len(threads): len(combiner._waiting.get("k", [])) == n, what="queued")
    other = combiner.run("other key", "x", lambda items: [i * 2 for i in items])  # another key never waits
    release.set()
    for t in (first, *threads):
        t.join(10)
    assert other == "xx"
    assert groups == [["first"], names]
    assert results["a"] == "A" and results["c"] == "C"
    assert isinstance(results["bad"], ValueError)  # raised in its own caller's thread only
    assert not combiner._running and not combiner._waiting  # nothing left behind


def test_a_group_whose_run_fails_fails_each_of_its_callers_and_the_next_group_still_runs():
    combiner: Combiner[str, str] = Combiner()
    first, release, _ = _held(combiner, "k")
    outcomes: list[object] = []

    def broken(_items: list[str]) -> list[str]:
        raise RuntimeError("the database went away")

    def call() -> None:
        try:
            outcomes.append(combiner.run("k", "b", broken))
        except RuntimeError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    eventually(lambda: len(combiner._waiting.get("k", [])) == 3, what="queued")
    release.set()
    for t in (first, *threads):
        t.join(10)
    assert len(outcomes) == 3 and all(isinstance(o, RuntimeError) for o in outcomes)
    assert combiner.run("k", "again", lambda items: items) == "again"


# --- through the service, on PostgreSQL -------------------------------------------------------------------
def _activity(database, community: str, capacity: int | None) -> Activity:
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(community,))
    return activities.create_activity(
        ActivitiesUnitOfWork(database, lambda: NOW),
        staff,
        publish=True,
        community_ids=[community],
        kind="festival",
        title="Neighbourhood festival",
        starts_at=NOW + timedelta(days=3),
        ends_at=NOW + timedelta(days=3, hours=3),
        capacity=capacity,
        max_party_size=3,
    )


def _registrations(database, activity_id: str) -> list[Registration]:
    with database.session() as s:
        return list(
            s.scalars(
                select(Registration).where(Registration.activity_id == activity_id).order_by(Registration.created_at)
            )
        )


def _events(database, activity_id: str) -> dict[str, tuple[str, dict]]:
    with database.session() as s:
        rows = s.execute(select(messaging.outbox.c.event_type, messaging.outbox.c.payload)).all()
    found = {}
    for event_type, payload in rows:
        data = json.loads(payload)["data"]
        if event_type.startswith("activities.registration.") and data["activity_id"] == activity_id:
            assert data["registration_id"] not in found  # one event per registration
            found[data["registration_id"]] = (event_type, data)
    return found


def _counted(database, community: str, street_id: str, activity: Activity) -> dict[str, tuple]:
    month = counts.month_of(activity.starts_at, ZoneInfo("Asia/Shanghai"))
    c = counts.activity_counts.c
    with database.session() as s:
        rows = s.execute(
            select(c.scope, c.registrations, c.registered_places, c.still_waitlisted).where(
                c.scope.in_([community, counts.street_key(street_id)]), c.month == month
            )
        )
        return {scope: tuple(figures) for scope, *figures in rows}


@pytest.mark.integration
@pytest.mark.parametrize("middle", ["someone twice", "a party too large"])
def test_an_error_in_the_middle_of_a_group_loses_and_doubles_nobody(database, world, middle):
    """A group whose statement fails (someone twice in it) or does not take them all (a party
    larger than a household may be): every other sign-up of the group is taken, in its order,
    once; the double one once and refused once; the large party refused by the general path;
    the places, the line, the counts and the events exact, and what each was told is what was
    written."""
    community = world.community_a
    activity = _activity(database, community, capacity=5)
    with database.session() as s:
        key = (activity.id, s.get(Activity, activity.id).revision)
    combiner: Combiner = Combiner()
    first, release, _ = _held(combiner, key)
    r = [Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,)) for _ in range(5)]
    inside = [(r[2], 2), (r[2], 2)] if middle == "someone twice" else [(r[2], 4)]
    arrivals = [(r[0], 2), (r[1], 2), *inside, (r[3], 1), (r[4], 2)]
    results: list[object] = [None] * len(arrivals)
    groups: list[int] = []
    run_together = activities._sign_up_together

    def counted_together(uow, read, group):
        groups.append(len(group))
        return run_together(uow, read, group)

    def sign_up(i: int, resident: Principal, party: int) -> None:
        uow = ActivitiesUnitOfWork(database, lambda: NOW, sign_ups=combiner)
        try:
            results[i] = activities.register(uow, resident, activity.id, party_size=party)
        except (Conflict, Invalid) as error:
            results[i] = error

    threads = []
    with mock.patch.object(activities, "_sign_up_together", counted_together):
        for i, (resident, party) in enumerate(arrivals):  # one after the other: their order is known
            threads.append(threading.Thread(target=sign_up, args=(i, resident, party)))
            threads[-1].start()
            eventually(lambda n=i + 1: len(combiner._waiting.get(key, [])) == n, what="queued")
        release.set()
        for t in (first, *threads):
            t.join(30)
    assert groups == [len(arrivals)]  # they were one group

    regs = _registrations(database, activity.id)
    confirmed = [x for x in regs if x.status == "confirmed"]
    waiting = sorted((x for x in regs if x.status == "waitlisted"), key=lambda x: x.waitlist_seq)
    if middle == "someone twice":
        assert sum(isinstance(x, Conflict) for x in results) == 1 and not any(isinstance(x, Invalid) for x in results)
        # 2 + 2 fit; the double's 2 does not (the line forms), and everyone after waits behind it.
        lists = ([r[0], r[1]], [r[2], r[3], r[4]])
    else:
        assert isinstance(results[2], Invalid) and not any(isinstance(x, Conflict) for x in results)
        lists = ([r[0], r[1], r[3]], [r[4]])
    assert [x.user_id for x in confirmed] == [p.user_id for p in lists[0]]
    assert [x.user_id for x in waiting] == [p.user_id for p in lists[1]]
    assert [x.waitlist_seq for x in waiting] == list(range(1, len(waiting) + 1))
    taken = sum(x.party_size for x in confirmed)
    with database.session() as s:
        row = s.get(Activity, activity.id)
        assert (row.confirmed_places, row.waiting_parties, row.waitlist_counter) == (taken, len(waiting), len(waiting))
    events = _events(database, activity.id)
    assert set(events) == {x.id for x in regs}
    told = {
        x.registration.id: (x.registration.status, x.waitlist_position) for x in results if hasattr(x, "registration")
    }
    assert told == {i: (e[1]["status"], e[1]["waitlist_position"]) for i, e in events.items()}
    assert all(e[0] == f"activities.registration.{e[1]['status']}" for e in events.values())
    expected = (len(confirmed), taken, len(waiting))
    assert _counted(database, community, world.street_id, activity) == {
        community: expected,
        counts.street_key(world.street_id): expected,
    }


@pytest.mark.integration
def test_a_group_decides_as_one_by_one_sign_ups_in_its_order_would(database, world):
    """The group statement's decisions against the one-statement path's, one by one, on the same
    parties (a line forming when a party no longer fits, a smaller one after it still waiting),
    with and without a capacity; and a group the activity does not take (a party larger than a
    household may be, let past the checks made before) taken one by one instead."""
    community = world.community_a
    parties = [2, 3, 3, 1, 2, 1, 3]
    for capacity in (6, None):
        decided = []
        for together in (True, False):
            activity = _activity(database, community, capacity)
            sign_ups = []
            for party in parties:
                resident = str(uuid.uuid4())
                sign_ups.append((resident, party))
            uow = ActivitiesUnitOfWork(database, lambda: NOW)
            with uow:
                uow.repo.one_statement_follows_reads()
                read = uow.session.get(Activity, activity.id)
                group = [_first_sign_up(read, user, community, party) for user, party in sign_ups]
                if together:
                    outcomes = uow.repo.sign_up_together(read, group)
                else:
                    outcomes = [uow.repo.sign_up_in_one_statement(read, one) for one in group]
            assert outcomes is not None and None not in outcomes
            regs = {r.user_id: r for r in _registrations(database, activity.id)}
            decided.append(
                [
                    (o.waits, o.waitlist_seq, o.waitlist_position, regs[u].status, regs[u].waitlist_seq)
                    for o, (u, _p) in zip(outcomes, sign_ups, strict=True)
                ]
            )
            with database.session() as s:
                row = s.get(Activity, activity.id)
                decided[-1].append((row.confirmed_places, row.waiting_parties, row.waitlist_counter))
                decided[-1].append(outcomes[-1].places[:3])
        assert decided[0] == decided[1]
    # Not taken together: nothing written.
    activity = _activity(database, community, 6)
    uow = ActivitiesUnitOfWork(database, lambda: NOW)
    with uow:
        uow.repo.one_statement_follows_reads()
        read = uow.session.get(Activity, activity.id)
        group = [_first_sign_up(read, str(uuid.uuid4()), community, p) for p in (1, 4)]
        assert uow.repo.sign_up_together(read, group) is None
    assert _registrations(database, activity.id) == [] and _events(database, activity.id) == {}


def _first_sign_up(activity: Activity, user: str, community: str, party: int) -> FirstSignUp:
    def registration(status: str, seq: int | None) -> Registration:
        return Registration(
            id=registration_id,
            activity_id=activity.id,
            user_id=user,
            community_id=community,
            party_size=party,
            registered_by=user,
            status=status,
            waitlist_seq=seq,
            created_at=NOW,
            updated_at=NOW,
        )

    registration_id = str(uuid.uuid4())
    confirmed, waitlisted = registration("confirmed", None), registration("waitlisted", 1)
    events = (
        activities._registration_event("activities.registration.confirmed", activity, confirmed, None),
        activities._registration_event("activities.registration.waitlisted", activity, waitlisted, 1),
    )
    return FirstSignUp(confirmed, waitlisted, events)


@pytest.mark.integration
def test_groups_of_several_processes_racing_for_the_last_places(database, world):
    """Three combiners (three processes' worth) and 60 simultaneous sign-ups, each person twice:
    groups race on the activity's row; never over-booked, one row per person, one line in order."""
    community = world.community_a
    capacity = 20
    activity = _activity(database, community, capacity)
    combiners = [Combiner(), Combiner(), Combiner()]
    residents = [
        Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,)) for _ in range(30)
    ]
    targets = []
    for i, resident in enumerate(residents * 2):
        combiner = combiners[i % 3]
        targets.append(
            lambda r=resident, c=combiner, p=1 + i % 3: activities.register(
                ActivitiesUnitOfWork(database, lambda: NOW, sign_ups=c), r, activity.id, party_size=p
            )
        )
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def runner(i: int) -> None:
        barrier.wait()
        try:
            results[i] = targets[i]()
        except Exception as error:  # noqa: BLE001 - kept for the assertions
            results[i] = error

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == len(residents) and all(isinstance(e, Conflict) for e in errors), errors[:3]
    regs = _registrations(database, activity.id)
    assert len(regs) == len({r.user_id for r in regs}) == len(residents)
    confirmed = [r for r in regs if r.status == "confirmed"]
    waiting = sorted((r for r in regs if r.status == "waitlisted"), key=lambda r: r.waitlist_seq)
    taken = sum(r.party_size for r in confirmed)
    assert taken <= capacity
    assert [r.waitlist_seq for r in waiting] == list(range(1, len(waiting) + 1))
    assert waiting and taken + waiting[0].party_size > capacity
    with database.session() as s:
        row = s.get(Activity, activity.id)
        assert (row.confirmed_places, row.waiting_parties) == (taken, len(waiting))
    events = _events(database, activity.id)
    assert set(events) == {r.id for r in regs}
    assert all(events[r.id][1]["waitlist_position"] == r.waitlist_seq for r in waiting)
    expected = (len(confirmed), taken, len(waiting))
    assert _counted(database, community, world.street_id, activity) == {
        community: expected,
        counts.street_key(world.street_id): expected,
    }
