"""Recurring activities (the inn's daily programme, a weekly class) and festivals grouping
activities across communities (the city's Neighbourhood Festival).

A series is a template and a rule; each occurrence is an ordinary activity one registers for,
checks in to and counts, carrying its series and its date in the rule. An exception changes one
occurrence: skipped (cancelled, its registrants told) or moved (rescheduled).

Occurrences keep their wall-clock time in the city's time zone: a 09:00 class stays at 09:00 local
time across a daylight-saving change. A local time that does not exist (a spring-forward gap)
moves forward by the gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from linli_activities.domain.common import new_id
from linli_kit.errors import Invalid, Text

FREQUENCIES = ("daily", "weekly", "monthly")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_OCCURRENCES = 366  # a year of the inn's daily programme
# Occurrences are announced (activities.activity.published) as they come this near their start,
# so a daily programme does not tell every follower 366 times on the day it is created.
ANNOUNCE_AHEAD = timedelta(days=14)
EXCEPTIONS = ("skipped", "moved")


class SeriesStatus:
    DRAFT = "draft"  # its occurrences are drafts: seen by its organisers only
    ACTIVE = "active"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Recurrence:
    frequency: str
    first_date: date
    start_time: time
    duration_minutes: int
    interval: int = 1
    weekdays: tuple[str, ...] = ()
    count: int | None = None
    until: date | None = None

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if self.frequency not in FREQUENCIES:
            problems["frequency"] = [Text("one of {choices}", choices=", ".join(FREQUENCIES))]
        if (self.count is None) == (self.until is None):
            problems["count"] = ["give count or until, one of them"]
        if self.count is not None and not 1 <= self.count <= MAX_OCCURRENCES:
            problems["count"] = [Text("between 1 and {MAX_OCCURRENCES}", MAX_OCCURRENCES=MAX_OCCURRENCES)]
        if self.until is not None and self.until < self.first_date:
            problems["until"] = ["must not be before first_date"]
        if not 1 <= self.interval <= 52:
            problems["interval"] = ["between 1 and 52"]
        if any(w not in WEEKDAYS for w in self.weekdays):
            problems["weekdays"] = [Text("among {choices}", choices=", ".join(WEEKDAYS))]
        elif self.weekdays and self.frequency != "weekly":
            problems["weekdays"] = ["only for a weekly series"]
        if not 1 <= self.duration_minutes <= 24 * 60:
            problems["duration_minutes"] = ["between 1 minute and 24 hours"]
        if problems:
            raise Invalid("invalid recurrence: {names}", fields=problems, names=", ".join(sorted(problems)))

    def dates(self) -> list[date]:
        """The local dates of the occurrences, in order; more than MAX_OCCURRENCES is a 422."""
        self.check()
        last = self.until or date.max
        wanted = self.count or MAX_OCCURRENCES + 1
        found: list[date] = []
        if self.frequency == "daily":
            day = self.first_date
            while day <= last and len(found) < wanted:
                found.append(day)
                day += timedelta(days=self.interval)
        elif self.frequency == "weekly":
            days = {WEEKDAYS.index(w) for w in self.weekdays} or {self.first_date.weekday()}
            week_start = self.first_date - timedelta(days=self.first_date.weekday())
            day = self.first_date
            while day <= last and len(found) < wanted:
                if day.weekday() in days and ((day - week_start).days // 7) % self.interval == 0:
                    found.append(day)
                day += timedelta(days=1)
        else:
            # The same day of the month; a month without it (the 31st in June) has no occurrence.
            n = 0
            while len(found) < wanted:
                month_index = self.first_date.month - 1 + n * self.interval
                year, month = self.first_date.year + month_index // 12, month_index % 12 + 1
                if year > min(last.year, 9998):
                    break
                n += 1
                try:
                    day = date(year, month, self.first_date.day)
                except ValueError:
                    continue
                if day > last:
                    break
                found.append(day)
        if len(found) > MAX_OCCURRENCES:
            raise Invalid(
                "too many occurrences",
                fields={
                    "until": [
                        Text("at most {MAX_OCCURRENCES} occurrences in a series", MAX_OCCURRENCES=MAX_OCCURRENCES)
                    ]
                },
            )
        return found

    def occurrences(self, tz: ZoneInfo) -> list[tuple[date, datetime, datetime]]:
        """(local date, start, end) of each occurrence, instants in UTC."""
        result = []
        for day in self.dates():
            local_start = datetime.combine(day, self.start_time)
            start = _localise(local_start, tz)
            end = _localise(local_start + timedelta(minutes=self.duration_minutes), tz)
            result.append((day, start, end))
        return result


def _localise(naive: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 takes the offset from before a change: a nonexistent local time lands after the gap.
    return naive.replace(tzinfo=tz).astimezone(UTC)


@dataclass
class ActivitySeries:
    """What every occurrence is (the template) and when they are (the rule)."""

    community_ids: list[str]
    kind: str
    title: str
    organiser_type: str
    organiser_id: str
    frequency: str
    first_date: date
    start_time: time
    duration_minutes: int
    timezone: str
    created_by: str
    created_at: datetime
    interval: int = 1
    weekdays: list[str] = field(default_factory=list)
    count: int | None = None
    until: date | None = None
    description: str = ""
    place: str | None = None
    post_id: str | None = None
    audience: list[str] = field(default_factory=list)
    capacity: int | None = None
    max_party_size: int = 4
    festival_id: str | None = None
    status: str = SeriesStatus.ACTIVE
    cancel_reason: str | None = None
    id: str = field(default_factory=new_id)

    @property
    def recurrence(self) -> Recurrence:
        return Recurrence(
            frequency=self.frequency,
            first_date=self.first_date,
            start_time=self.start_time,
            duration_minutes=self.duration_minutes,
            interval=self.interval,
            weekdays=tuple(self.weekdays),
            count=self.count,
            until=self.until,
        )


@dataclass
class Festival:
    """A festival grouping activities: city-wide (no street) or of one street, between two local dates."""

    name: str
    starts_on: date
    ends_on: date
    created_by: str
    created_at: datetime
    description: str = ""
    street_id: str | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.ends_on < self.starts_on:
            raise Invalid("invalid festival", fields={"ends_on": ["must not be before starts_on"]})

    def covers(self, starts_at: datetime, tz: ZoneInfo) -> bool:
        return self.starts_on <= starts_at.astimezone(tz).date() <= self.ends_on
