"""The last places of a popular activity under many simultaneous sign-ups, on the real PostgreSQL:
no over-booking, one registration per person, a waiting list in a single strict order, and the
statistics' counts exact (written in the sign-up's own statement, refused sign-ups leave nothing)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from linli_activities.adapters import counts
from linli_activities.domain.activities import Activity, Registration
from linli_activities.service_layer import activities
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict

pytestmark = pytest.mark.integration

CLIENTS = 50
CAPACITY = 12


def run_all(targets):
    """Start every target at the same moment and wait for all; return what each returned or raised."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def runner(i, target):
        barrier.wait()
        try:
            results[i] = target()
        except Exception as exc:  # noqa: BLE001 - kept for the assertions
            results[i] = exc

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_sign_ups_for_the_last_places(database, world):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))
    activity = activities.create_activity(
        ActivitiesUnitOfWork(database, lambda: now),
        staff,
        publish=True,
        community_ids=[world.community_a],
        kind="festival",
        title="Neighbourhood festival",
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=3, hours=3),
        capacity=CAPACITY,
        max_party_size=3,
    )
    residents = [
        Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(world.community_a,))
        for _ in range(CLIENTS)
    ]
    party = {r.user_id: 1 + i % 3 for i, r in enumerate(residents)}

    def sign_up(resident):
        return lambda: activities.register(
            ActivitiesUnitOfWork(database, lambda: now), resident, activity.id, party_size=party[resident.user_id]
        )

    # Every resident signs up twice at once: the second must always be refused.
    results = run_all([sign_up(r) for r in residents] + [sign_up(r) for r in residents])
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == CLIENTS and all(isinstance(e, Conflict) for e in errors), errors[:3]

    def state():
        with database.session() as s:
            regs = list(s.scalars(select(Registration).where(Registration.activity_id == activity.id)))
            row = s.get(Activity, activity.id)
            return regs, row

    regs, row = state()
    assert len(regs) == CLIENTS  # one row per person
    confirmed = [r for r in regs if r.status == "confirmed"]
    waiting = sorted((r for r in regs if r.status == "waitlisted"), key=lambda r: r.waitlist_seq)
    taken = sum(r.party_size for r in confirmed)
    assert taken <= CAPACITY
    assert row.confirmed_places == taken and row.waiting_parties == len(waiting)
    assert len(confirmed) + len(waiting) == CLIENTS
    # The list is one strict order with no gaps and no duplicates.
    assert [r.waitlist_seq for r in waiting] == list(range(1, len(waiting) + 1))
    # Nobody was turned away while a place that would have fitted them stood free before the line formed:
    # the head of the line did not fit in what is left.
    assert waiting and taken + waiting[0].party_size > CAPACITY

    def counted() -> dict[str, tuple[int, int, int]]:
        """(registrations, registered places, still waitlisted) of the activity's month, on its
        community's row and its street's."""
        month = counts.month_of(activity.starts_at, ZoneInfo("Asia/Shanghai"))
        c = counts.activity_counts.c
        with database.session() as s:
            rows = s.execute(
                select(c.scope, c.registrations, c.registered_places, c.still_waitlisted).where(
                    c.scope.in_([world.community_a, counts.street_key(world.street_id)]), c.month == month
                )
            )
            return {scope: tuple(figures) for scope, *figures in rows}

    expected = (len(confirmed), taken, len(waiting))
    assert counted() == {world.community_a: expected, counts.street_key(world.street_id): expected}

    # Now the confirmed households all cancel at once; the line moves up in order, never over capacity.
    by_user = {r.user_id: r for r in residents}
    cancels = run_all(
        [
            (
                lambda reg=reg: activities.cancel_registration(
                    ActivitiesUnitOfWork(database, lambda: now), by_user[reg.user_id], activity.id, reg.id
                )
            )
            for reg in confirmed
        ]
    )
    assert not [c for c in cancels if isinstance(c, Exception)]
    regs, row = state()
    now_confirmed = [r for r in regs if r.status == "confirmed"]
    still_waiting = sorted((r for r in regs if r.status == "waitlisted"), key=lambda r: r.waitlist_seq)
    assert sum(r.party_size for r in now_confirmed) == row.confirmed_places <= CAPACITY
    promoted_ids = {r.id for r in now_confirmed}
    # Exactly a prefix of the old line was promoted.
    prefix = [r.id for r in waiting[: len(promoted_ids)]]
    assert set(prefix) == promoted_ids
    assert [r.id for r in still_waiting] == [r.id for r in waiting[len(promoted_ids) :]]
    if still_waiting:
        assert row.confirmed_places + still_waiting[0].party_size > CAPACITY
    expected = (len(now_confirmed), row.confirmed_places, len(still_waiting))
    assert counted() == {world.community_a: expected, counts.street_key(world.street_id): expected}
    with database.session() as s:
        assert s.scalar(
            select(func.count())
            .select_from(Registration)
            .where(Registration.activity_id == activity.id, Registration.status == "cancelled")
        ) == len(confirmed)
