"""The rules of the domain core, without a database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from linli_activities.domain.activities import Activity, Registration
from linli_activities.domain.calendar import render_calendar
from linli_activities.domain.care import Booking, HelpLog, ServiceOffering
from linli_kit.errors import Conflict, Invalid

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def activity(**kw) -> Activity:
    values = dict(
        community_ids=["c1"],
        kind="sports",
        title="Sports day",
        starts_at=NOW + timedelta(days=2),
        ends_at=NOW + timedelta(days=2, hours=2),
        organiser_type="staff",
        organiser_id="staff",
        created_by="staff",
        created_at=NOW,
        capacity=4,
        max_party_size=3,
    )
    values.update(kw)
    a = Activity(**values)
    a.publish()
    return a


def sign_up(a: Activity, user: str, size: int, existing: Registration | None = None) -> Registration:
    return a.register(user_id=user, community_id="c1", party_size=size, registered_by=user, now=NOW, existing=existing)


def test_places_fill_then_households_wait_in_order():
    a = activity()
    r1, r2 = sign_up(a, "u1", 3), sign_up(a, "u2", 1)
    assert (r1.status, r2.status, a.confirmed_places, a.free_places) == ("confirmed", "confirmed", 4, 0)
    w1, w2 = sign_up(a, "u3", 2), sign_up(a, "u4", 1)
    assert (w1.status, w1.waitlist_seq, w2.waitlist_seq, a.waiting_parties) == ("waitlisted", 1, 2, 2)
    assert a.waitlist_position(w2, [w1, w2]) == 2


def test_a_cancelled_place_goes_to_the_head_of_the_line_only_while_it_fits():
    a = activity()
    r1, _ = sign_up(a, "u1", 1), sign_up(a, "u2", 3)
    w_big, w_small = sign_up(a, "u3", 3), sign_up(a, "u4", 1)
    promoted = a.cancel_registration(r1, waitlist=[w_big, w_small], now=NOW)
    # One place is free; the head needs three: nobody moves, not even the party of one behind it.
    assert promoted == [] and a.free_places == 1 and w_small.status == "waitlisted"


def test_promotion_moves_several_in_order_and_keeps_totals():
    a = activity(capacity=5)
    r1 = sign_up(a, "u1", 3)
    sign_up(a, "u2", 2)
    w = [sign_up(a, f"w{i}", s) for i, s in enumerate((1, 2, 1))]
    promoted = a.cancel_registration(r1, waitlist=w, now=NOW)
    assert [p.user_id for p in promoted] == ["w0", "w1"]
    assert (a.confirmed_places, a.waiting_parties, w[2].status) == (5, 1, "waitlisted")


def test_cancelling_a_waiting_registration_frees_no_place():
    a = activity(capacity=1, max_party_size=1)
    sign_up(a, "u1", 1)
    w = sign_up(a, "u2", 1)
    assert a.cancel_registration(w, waitlist=[w], now=NOW) == []
    assert (a.confirmed_places, a.waiting_parties, w.status) == (1, 0, "cancelled")
    with pytest.raises(Conflict):
        a.cancel_registration(w, waitlist=[], now=NOW)


def test_no_limit_means_everyone_is_confirmed():
    a = activity(capacity=None, max_party_size=10)
    assert all(sign_up(a, f"u{i}", 10).status == "confirmed" for i in range(20))
    assert a.free_places is None and a.confirmed_places == 200


def test_raising_capacity_promotes_and_lowering_below_taken_is_refused():
    a = activity(capacity=2, max_party_size=2)
    sign_up(a, "u1", 2)
    w = sign_up(a, "u2", 2)
    assert a.change_capacity(4, None, [w]) == [w]
    with pytest.raises(Conflict) as caught:
        a.change_capacity(3, None, [])
    assert "capacity" in caught.value.fields


def test_double_registration_party_size_and_window():
    a = activity(registration_opens_at=NOW - timedelta(hours=1), registration_closes_at=NOW + timedelta(hours=1))
    r = sign_up(a, "u1", 1)
    with pytest.raises(Conflict):
        sign_up(a, "u1", 1, existing=r)
    with pytest.raises(Invalid) as caught:
        sign_up(a, "u2", 4)
    assert "party_size" in caught.value.fields
    with pytest.raises(Conflict, match="closed"):
        a.register(
            user_id="u3",
            community_id="c1",
            party_size=1,
            registered_by="u3",
            now=NOW + timedelta(hours=1),
            existing=None,
        )


def test_check_in_once_within_the_window_and_never_for_the_waiting():
    a = activity(capacity=1, max_party_size=1)
    r, w = sign_up(a, "u1", 1), sign_up(a, "u2", 1)
    at_door = a.starts_at - timedelta(minutes=5)
    with pytest.raises(Conflict, match="not opened"):
        a.check_in(r, participants=None, method="list", recorded_by="s", now=NOW)
    checkin = a.check_in(r, participants=None, method="list", recorded_by="s", now=at_door)
    assert (checkin.participants, r.status) == (1, "checked_in")
    with pytest.raises(Conflict, match="already checked in"):
        a.check_in(r, participants=None, method="code", recorded_by="u1", now=at_door)
    with pytest.raises(Conflict, match="waitlisted"):
        a.check_in(w, participants=None, method="list", recorded_by="s", now=at_door)


def test_an_activity_names_every_bad_field():
    with pytest.raises(Invalid) as caught:
        Activity(
            community_ids=[],
            kind="rave",
            title="t",
            starts_at=NOW,
            ends_at=NOW,
            organiser_type="boss",
            organiser_id="x",
            created_by="x",
            created_at=NOW,
            capacity=0,
            audience=["aliens"],
        )
    assert set(caught.value.fields) >= {"community_ids", "kind", "ends_at", "capacity", "organiser_type", "audience"}


def test_booking_lifecycle_and_door_to_door_rules():
    door_only = ServiceOffering(
        community_id="c1",
        name="Meals",
        kind="meal_delivery",
        provider_type="group",
        provider_id="g1",
        provider_name="Caring grandmas",
        created_at=NOW,
        at_post=False,
        door_to_door=True,
    )
    with pytest.raises(Invalid) as caught:
        Booking.request(
            door_only, resident_id="r", booked_by="s", slot_start=NOW, slot_end=NOW, door_to_door=False, created_at=NOW
        )
    assert {"slot_end", "door_to_door"} <= set(caught.value.fields)
    booking = Booking.request(
        door_only,
        resident_id="r",
        booked_by="s",
        slot_start=NOW,
        slot_end=NOW + timedelta(hours=1),
        door_to_door=True,
        address="Building 7",
        created_at=NOW,
    )
    with pytest.raises(Conflict):
        booking.complete(1, NOW)
    booking.confirm("talent-1")
    booking.complete(3, NOW)
    assert (booking.status, booking.person_times) == ("completed", 3)
    with pytest.raises(Conflict):
        booking.cancel()


def test_help_hours_are_bounded():
    with pytest.raises(Invalid) as caught:
        HelpLog(
            group_id="g",
            community_id="c",
            helper_id="h",
            helped_on=NOW.date() + timedelta(days=1),
            hours=0,
            recorded_by="h",
            recorded_at=NOW,
        )
    assert set(caught.value.fields) == {"hours", "helped_id", "helped_on"}


def test_calendar_escapes_folds_and_uses_utc():
    a = activity(title="邻里节; 灯笼, 音乐 " + "长" * 40, description="line one\nline two", place="Xihu inn")
    text = render_calendar([a], name="Xihu", now=NOW)
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert "DTSTART:20261203T020000Z\r\n" in text and "DESCRIPTION:line one\\nline two\r\n" in text
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    unfolded = text.replace("\r\n ", "")
    assert "SUMMARY:邻里节\\; 灯笼\\, 音乐 " + "长" * 40 + "\r\n" in unfolded


def test_a_slot_is_taken_when_the_provider_would_serve_more_than_it_can_at_one_moment():
    from linli_activities.domain.care import Provider, slot_taken

    h = [NOW + timedelta(hours=i) for i in range(6)]
    assert not slot_taken([], h[0], h[1], 1)
    assert slot_taken([(h[0], h[2])], h[1], h[3], 1)
    assert not slot_taken([(h[0], h[1])], h[1], h[2], 1)  # back to back
    # Two chairs: two overlapping bookings fit, a third at a moment both are busy does not...
    assert not slot_taken([(h[0], h[2])], h[1], h[3], 2)
    assert slot_taken([(h[0], h[2]), (h[1], h[3])], h[1], h[2], 2)
    # ...but two bookings that never meet each other leave a chair free all along.
    assert not slot_taken([(h[0], h[2]), (h[2], h[4])], h[1], h[3], 2)
    talent_offering = ServiceOffering(
        community_id="c1",
        name="Massage",
        kind="massage",
        provider_type="talent",
        provider_id="t1",
        provider_name="Zhang",
        created_at=NOW,
        at_post=False,
        door_to_door=True,
    )
    assert Provider.of(talent_offering, None) == Provider("talent:t1", 1)
    assert Provider.of(talent_offering, "t2") == Provider("talent:t2", 1)
    with pytest.raises(Invalid) as bad:
        dataclasses.replace(talent_offering, concurrent_slots=2)
    assert "concurrent_slots" in bad.value.fields
