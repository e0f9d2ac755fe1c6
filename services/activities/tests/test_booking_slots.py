"""A provider's slot is booked once: many residents asking for the same slot at the same moment,
on SQLite (the default platform) and on PostgreSQL; a talent is one person across offerings; a
business serves `concurrent_slots` at once; cancelled or completed bookings free the slot."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli_activities.adapters.repository import Repository
from linli_activities.domain.care import Booking
from linli_activities.service_layer import care
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict

pytestmark = pytest.mark.integration

CLIENTS = 16  # under the pool of 20 connections, so all of them meet at the rendezvous
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SLOT = (NOW + timedelta(days=2, hours=1), NOW + timedelta(days=2, hours=2))


@pytest.fixture
def racing(monkeypatch):
    """Make every request that has looked at the provider's calendar wait for all the others to
    have looked too, before it books: without the provider lock they would all see the slot free
    and all take it, every run, not only when the scheduler happens to interleave them. With the
    lock only one of them can be there at a time, so the rendezvous gives up after a second and
    they go on one by one."""

    def arm(parties: int) -> None:
        rendezvous = threading.Barrier(parties, timeout=1)
        looked = Repository.provider_busy

        def provider_busy(self, *args, **kwargs):
            busy = looked(self, *args, **kwargs)
            try:
                rendezvous.wait()
            except threading.BrokenBarrierError:
                pass
            return busy

        monkeypatch.setattr(Repository, "provider_busy", provider_busy)

    return arm


def uow(database):
    return ActivitiesUnitOfWork(database, lambda: NOW)


def staff_of(world):
    return Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))


def residents(world, n):
    return [
        Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(world.community_a,)) for _ in range(n)
    ]


def offering(database, world, staff, **values):
    return care.create_offering(
        uow(database),
        staff,
        **{
            "community_id": world.community_a,
            "name": "Massage at home",
            "kind": "massage",
            "at_post": False,
            "door_to_door": True,
            **values,
        },
    )


def talent(database, world, staff, name="Mr Zhang"):
    return care.add_talent(
        uow(database),
        staff,
        community_id=world.community_a,
        user_id=str(uuid.uuid4()),
        display_name=name,
        skills=["massage"],
        availability="mornings",
    )


def request(database, resident, offering_id, start=SLOT[0], end=SLOT[1]):
    return lambda: care.book(
        uow(database),
        resident,
        offering_id=offering_id,
        resident_id=None,
        slot_start=start,
        slot_end=end,
        door_to_door=True,
        address="Building 7, room 401",
        note="",
    )


def holding(database, offering_id):
    with database.session() as s:
        return list(
            s.scalars(
                select(Booking).where(
                    Booking.offering_id == offering_id, Booking.status.in_(("requested", "confirmed"))
                )
            )
        )


def test_one_talent_one_slot_under_simultaneous_requests(any_database, any_world, simultaneously, racing):
    database, world = any_database, any_world
    staff = staff_of(world)
    masseur = talent(database, world, staff)
    service = offering(database, world, staff, provider_type="talent", provider_id=masseur.id, provider_name="Zhang")
    people = residents(world, CLIENTS)
    # Everyone asks for the same hour; half of them a half hour later, overlapping it.
    half = timedelta(minutes=30)
    targets = [request(database, r, service.id) for r in people[: CLIENTS // 2]] + [
        request(database, r, service.id, SLOT[0] + half, SLOT[1] + half) for r in people[CLIENTS // 2 :]
    ]
    racing(len(targets))
    results = simultaneously(targets)
    booked = [r for r in results if isinstance(r, Booking)]
    refused = [r for r in results if not isinstance(r, Booking)]
    assert len(booked) == 1 and len(refused) == CLIENTS - 1, refused[:3]
    assert all(isinstance(e, Conflict) and "slot_start" in e.fields for e in refused)
    assert [b.id for b in holding(database, service.id)] == [booked[0].id]
    assert booked[0].provider_key == f"talent:{masseur.id}"

    # Back to back is not a double booking; the same talent through another offering is.
    end = booked[0].slot_end
    after = request(database, people[0], service.id, end, end + timedelta(hours=1))()
    assert after.status == "requested"
    other = offering(
        database, world, staff, name="Foot massage", provider_type="talent", provider_id=masseur.id, provider_name="Z"
    )
    with pytest.raises(Conflict):
        request(database, people[1], other.id)()

    # A cancelled booking frees the slot; the next one to ask gets it.
    care.change_booking(uow(database), staff, booked[0].id, "cancel")
    again = simultaneously([request(database, r, service.id) for r in people[2:8]])
    assert len([r for r in again if isinstance(r, Booking)]) == 1


def test_a_business_serves_its_concurrent_slots_and_no_more(any_database, any_world, simultaneously, racing):
    database, world = any_database, any_world
    staff = staff_of(world)
    barbers = offering(
        database,
        world,
        staff,
        name="Haircut at home",
        kind="haircut",
        provider_type="business",
        provider_name="Li's barbershop",
        concurrent_slots=2,
    )
    racing(CLIENTS)
    results = simultaneously([request(database, r, barbers.id) for r in residents(world, CLIENTS)])
    assert len([r for r in results if isinstance(r, Booking)]) == 2
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Booking))
    assert len(holding(database, barbers.id)) == 2


def test_confirming_with_a_busy_talent_is_refused(any_database, any_world):
    database, world = any_database, any_world
    staff = staff_of(world)
    volunteer = talent(database, world, staff, "Auntie Wang")
    group_service = offering(database, world, staff, provider_type="business", provider_name="Caring grandmas")
    own_service = offering(
        database, world, staff, provider_type="talent", provider_id=volunteer.id, provider_name="Wang"
    )
    first, second = residents(world, 2)
    held = request(database, first, own_service.id)()
    other = request(database, second, group_service.id)()
    # Auntie Wang is booked for that hour already: she cannot be sent to the second resident too.
    with pytest.raises(Conflict) as refused:
        care.change_booking(uow(database), staff, other.id, "confirm", provider_talent_id=volunteer.id)
    assert "slot_start" in refused.value.fields
    with database.session() as s:
        assert s.get(Booking, other.id).status == "requested"  # nothing changed
    with pytest.raises(Conflict):
        care.match_talent(uow(database), staff, volunteer.id, booking_id=other.id)
    # Once her own booking is done, she is free for that hour.
    care.change_booking(uow(database), staff, held.id, "confirm")
    care.change_booking(uow(database), staff, held.id, "cancel")
    confirmed = care.change_booking(uow(database), staff, other.id, "confirm", provider_talent_id=volunteer.id)
    assert (confirmed.status, confirmed.provider_key) == ("confirmed", f"talent:{volunteer.id}")


def test_over_http_a_double_booking_is_409_naming_the_slot(any_client, any_world):
    client, world = any_client, any_world
    staff = world.headers("community_staff")
    body = {
        "community_id": world.community_a,
        "name": "Repairs",
        "kind": "repair",
        "provider_type": "business",
        "provider_name": "Handyman Liu",
        "at_post": False,
        "door_to_door": True,
    }
    bad = client.post("/offerings", json={**body, "concurrent_slots": 0}, headers=staff)
    assert bad.status_code == 422 and "concurrent_slots" in bad.get_json()["error"]["fields"]
    created = client.post("/offerings", json=body, headers=staff)
    assert created.status_code == 201 and created.get_json()["concurrent_slots"] == 1
    booking = {
        "offering_id": created.get_json()["id"],
        "door_to_door": True,
        "address": "Building 2",
        "slot_start": "2026-12-03T09:00:00+08:00",
        "slot_end": "2026-12-03T10:00:00+08:00",
    }
    assert client.post("/bookings", json=booking, headers=world.headers()).status_code == 201
    twice = client.post(
        "/bookings",
        json={**booking, "slot_start": "2026-12-03T09:59:00+08:00", "slot_end": "2026-12-03T11:00:00+08:00"},
        headers=world.headers(),
    )
    assert twice.status_code == 409 and "slot_start" in twice.get_json()["error"]["fields"]
    later = {**booking, "slot_start": "2026-12-03T10:00:00+08:00", "slot_end": "2026-12-03T11:00:00+08:00"}
    assert client.post("/bookings", json=later, headers=world.headers()).status_code == 201
