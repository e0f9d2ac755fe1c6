"""Recurring meetings in the configured time zone, and iCalendar validated by parsing it back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from linli_kit.config import load_settings
from linli_meetings.entrypoints.web import create_app

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def test_weekly_series_across_the_end_of_summer_time_in_berlin(monkeypatch, settings, database, world, staff):
    monkeypatch.setenv("LINLI_TIMEZONE", "Europe/Berlin")
    client = create_app(load_settings("meetings"), database).test_client()
    body = {
        "community_id": world.community_id,
        "meeting_type": "bench",
        "title": "Tuesday bench meeting",
        "place": "Courtyard of Building 3",
        "frequency": "weekly",
        "weekdays": ["TU"],
        "first_date": "2026-10-13",
        "start_time": "19:00",
        "duration_minutes": 90,
        "until": "2026-11-03",
    }
    response = client.post("/series", json=body, headers=staff)
    assert response.status_code == 201, response.get_json()
    meetings = response.get_json()
    berlin = ZoneInfo("Europe/Berlin")
    starts = [datetime.fromisoformat(m["starts_at"]) for m in meetings]
    assert [s.astimezone(berlin).strftime("%m-%d %H:%M") for s in starts] == [
        "10-13 19:00",
        "10-20 19:00",
        "10-27 19:00",
        "11-03 19:00",
    ]
    assert [s.astimezone(UTC).hour for s in starts] == [17, 17, 18, 18]
    assert len({m["series_id"] for m in meetings}) == 1
    listed = client.get("/", query_string={"series_id": meetings[0]["series_id"]}, headers=staff).get_json()
    assert len(listed) == 4

    bad = client.post("/series", json=body | {"until": None, "weekdays": ["XX"], "frequency": "hourly"}, headers=staff)
    assert bad.status_code == 422 and {"weekdays", "frequency"} <= set(bad.get_json()["error"]["fields"])
    unbounded = client.post("/series", json=body | {"until": None}, headers=staff)
    assert unbounded.status_code == 422 and "count" in unbounded.get_json()["error"]["fields"]


def test_monthly_series_across_month_ends_in_shanghai(client, world, staff):
    body = {
        "community_id": world.community_id,
        "meeting_type": "round_table",
        "title": "Monthly round table",
        "place": "Hall",
        "frequency": "monthly",
        "first_date": "2026-11-30",
        "start_time": "07:30",
        "duration_minutes": 60,
        "count": 3,
    }
    meetings = client.post("/series", json=body, headers=staff).get_json()
    # Each on the 30th across month ends; 07:30 in Shanghai is 23:30 UTC the day before.
    assert [m["local_date"] for m in meetings] == ["2026-11-30", "2026-12-30", "2027-01-30"]
    assert [m["starts_at"][:16] for m in meetings] == ["2026-11-29T23:30", "2026-12-29T23:30", "2027-01-29T23:30"]


def test_meeting_ics_parses_back(client, world, staff, meeting_body):
    start = datetime(2026, 12, 8, 11, 0, tzinfo=UTC)
    meeting = client.post(
        "/",
        json=meeting_body(
            title="Roof consultation",
            starts_at=start.isoformat(),
            ends_at=(start + timedelta(hours=2)).isoformat(),
            description="Sixth consultation, with the Housing Bureau",
            online_url="https://meet.example.org/roof",
            agenda=[{"title": "Inspection report", "duration_minutes": 20}],
        ),
        headers=staff,
    ).get_json()
    response = client.get(f"/{meeting['id']}.ics")  # a public meeting needs no token
    assert response.status_code == 200 and response.content_type.startswith("text/calendar")
    [event] = Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["UID"]) == f"{meeting['id']}@linli"
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == start + timedelta(hours=2)
    assert str(event["SUMMARY"]) == "Roof consultation" and str(event["LOCATION"]) == "Community hall, room 2"
    assert "1. Inspection report (20 min)" in str(event["DESCRIPTION"])
    assert str(event["URL"]) == "https://meet.example.org/roof" and int(event["SEQUENCE"]) == 1

    client.post(f"/{meeting['id']}/cancel", json={"reason": "snow"}, headers=staff)
    [event] = Calendar.from_ical(client.get(f"/{meeting['id']}.ics").data).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 2


def test_community_feed_shows_private_meetings_only_to_those_who_may_see_them(client, world, staff, meeting_body):
    client.post("/", json=meeting_body(title="Open bench", meeting_type="bench"), headers=staff)
    private = client.post("/", json=meeting_body(title="Committee only", public=False), headers=staff).get_json()
    assert client.get(f"/{private['id']}.ics").status_code == 404
    assert client.get(f"/{private['id']}.ics", headers=staff).status_code == 200

    def summaries(**kw):
        response = client.get(f"/calendar/{world.community_id}.ics", **kw)
        assert response.status_code == 200
        calendar = Calendar.from_ical(response.data)
        assert str(calendar["VERSION"]) == "2.0"
        return sorted(str(e["SUMMARY"]) for e in calendar.walk("VEVENT"))

    assert summaries() == ["Open bench"]
    assert summaries(headers=world.headers("resident")) == ["Open bench"]
    assert summaries(headers=staff) == ["Committee only", "Open bench"]
    assert (
        client.get(f"/calendar/{world.community_id}.ics", headers={"Authorization": "Bearer junk"}).status_code == 401
    )


@on_both
def test_occurrences_are_announced_as_they_come_near(client, database, settings, world, staff, clock, outbox_events):
    from linli_meetings.service_layer.meetings import announce_due
    from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

    first = clock().astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)
    body = {
        "community_id": world.community_id,
        "meeting_type": "bench",
        "title": "Weekly bench meeting",
        "place": "Courtyard",
        "frequency": "weekly",
        "first_date": first.isoformat(),
        "start_time": "19:00",
        "duration_minutes": 60,
        "count": 6,
    }
    meetings = client.post("/series", json=body, headers=staff).get_json()
    announced = [e["data"]["meeting_id"] for e in outbox_events("meetings.meeting.scheduled", world.community_id)]
    assert announced == [m["id"] for m in meetings[:2]]  # in 2 and 9 days; 16 is beyond two weeks

    # Changing an occurrence nobody was told of tells nobody; it goes out when announced.
    later = meetings[5]
    client.post(f"/{later['id']}/cancel", json={"reason": "holiday"}, headers=staff)
    assert outbox_events("meetings.meeting.cancelled", world.community_id) == []
    # An issue put on a later occurrence's agenda announces it at once (the issue side must know).
    client.post(f"/{meetings[3]['id']}/agenda", json={"title": "Bikes", "issue_id": str(uuid.uuid4())}, headers=staff)
    assert (
        outbox_events("meetings.meeting.scheduled", world.community_id)[-1]["data"]["meeting_id"] == meetings[3]["id"]
    )
    assert outbox_events("meetings.agenda_item.added", world.community_id) == []

    def announce_with_offset(days: int) -> int:
        clock.offset = timedelta(days=days)
        return announce_due(MeetingsUnitOfWork(database, timezone=settings.timezone, clock=clock))

    announce_with_offset(0)
    assert len(outbox_events("meetings.meeting.scheduled", world.community_id)) == 3
    announce_with_offset(8)  # the third occurrence (in 16 days) is now within two weeks
    announce_with_offset(8)  # and is announced once
    announce_with_offset(30)  # the rest, but not the cancelled one
    announced = [e["data"]["meeting_id"] for e in outbox_events("meetings.meeting.scheduled", world.community_id)]
    assert sorted(announced) == sorted(m["id"] for m in meetings[:5])
    assert len(announced) == 5


@on_both
def test_the_workers_timer_announces_the_occurrences_now_within_two_weeks(
    client, database, settings, world, staff, clock, outbox_events
):
    """The worker's own timer, on real time: the series was planned ten days ago, when only its
    first occurrence was near; now the second is too."""
    from linli_meetings.definition import definition

    clock.offset = timedelta(days=-10)
    first = (datetime.now(UTC) + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    body = {
        "community_id": world.community_id,
        "meeting_type": "bench",
        "title": "Weekly bench meeting",
        "place": "Courtyard",
        "frequency": "weekly",
        "first_date": first.isoformat(),
        "start_time": "19:00",
        "duration_minutes": 60,
        "count": 4,
    }
    meetings = client.post("/series", json=body, headers=staff).get_json()
    announced = [e["data"]["meeting_id"] for e in outbox_events("meetings.meeting.scheduled", world.community_id)]
    assert announced == [meetings[0]["id"]]

    [timer] = definition.timers(settings, database)
    timer.run()
    timer.run()  # once each
    announced = [e["data"]["meeting_id"] for e in outbox_events("meetings.meeting.scheduled", world.community_id)]
    assert announced == [m["id"] for m in meetings[:2]]
    second = client.get(f"/{meetings[1]['id']}", headers=staff).get_json()
    assert second["starts_at"].endswith("+00:00") and second["starts_at"] == meetings[1]["starts_at"]
