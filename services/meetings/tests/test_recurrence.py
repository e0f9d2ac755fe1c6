"""Recurring meetings keep their local wall-clock time across DST and month boundaries."""

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from linli_kit.errors import Invalid
from linli_meetings.domain.recurrence import Frequency, Recurrence

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_weekly_across_the_end_of_summer_time_keeps_19_00_local():
    rec = Recurrence(
        Frequency.WEEKLY, date(2026, 10, 20), time(19, 0), timedelta(minutes=90), weekdays=("TU",), count=3
    )
    starts = [s for s, _ in rec.occurrences(BERLIN)]
    assert [s.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2026-10-20 19:00",
        "2026-10-27 19:00",  # summer time ended on Sunday 25 October
        "2026-11-03 19:00",
    ]
    assert [s.hour for s in starts] == [17, 18, 18]  # the UTC instant moves by the hour


def test_a_local_time_skipped_by_spring_forward_moves_past_the_gap():
    rec = Recurrence(Frequency.DAILY, date(2026, 3, 28), time(2, 30), timedelta(hours=1), count=3)
    starts = [s.astimezone(BERLIN) for s, _ in rec.occurrences(BERLIN)]
    assert [s.strftime("%d %H:%M %Z") for s in starts] == ["28 02:30 CET", "29 03:30 CEST", "30 02:30 CEST"]


def test_weekly_across_a_month_boundary_in_shanghai():
    rec = Recurrence(
        Frequency.WEEKLY,
        date(2026, 11, 24),
        time(19, 30),
        timedelta(hours=1),
        weekdays=("TU",),
        until=date(2026, 12, 15),
    )
    occurrences = rec.occurrences(SHANGHAI)
    local = [s.astimezone(SHANGHAI) for s, _ in occurrences]
    assert [d.date().isoformat() for d in local] == ["2026-11-24", "2026-12-01", "2026-12-08", "2026-12-15"]
    assert all((d.hour, d.minute) == (19, 30) for d in local)
    assert all(e - s == timedelta(hours=1) for s, e in occurrences)


def test_late_evening_meeting_falls_on_the_previous_utc_day():
    rec = Recurrence(Frequency.MONTHLY, date(2026, 1, 31), time(7, 0), timedelta(hours=1), count=3)
    occurrences = rec.occurrences(SHANGHAI)
    # dateutil skips months without a 31st, as RFC 5545 says; 07:00 Shanghai is 23:00 UTC the day before.
    assert [s.date().isoformat() for s, _ in occurrences] == ["2026-01-30", "2026-03-30", "2026-05-30"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": None}, "count"),
        ({"count": 500}, "count"),
        ({"weekdays": ("XX",)}, "weekdays"),
        ({"until": date(2020, 1, 1), "count": None}, "until"),
        ({"duration": timedelta(0)}, "duration_minutes"),
    ],
)
def test_bad_recurrences_name_the_field(kwargs, field):
    base = dict(
        frequency=Frequency.WEEKLY,
        first_date=date(2026, 1, 6),
        start_time=time(19),
        duration=timedelta(hours=1),
        count=4,
    )
    with pytest.raises(Invalid) as err:
        Recurrence(**(base | kwargs)).occurrences(SHANGHAI)
    assert field in err.value.fields


def test_rrule_text():
    rec = Recurrence(Frequency.WEEKLY, date(2026, 1, 6), time(19), timedelta(hours=1), weekdays=("TU",), count=4)
    assert rec.rrule_text() == "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=4"
