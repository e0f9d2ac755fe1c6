"""Occurrences of a recurring meeting ("bench meeting every Tuesday evening").

Occurrences keep their wall-clock time in the city's time zone: a 19:00 meeting stays at 19:00
local time across a daylight-saving change, so its UTC instant moves by the offset. A local time
that does not exist (skipped by a spring-forward change) moves forward by the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrule, weekdays

from linli_kit.errors import Invalid, Text

MAX_OCCURRENCES = 104  # two years of a weekly meeting


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


_FREQ = {Frequency.DAILY: DAILY, Frequency.WEEKLY: WEEKLY, Frequency.MONTHLY: MONTHLY}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Recurrence:
    frequency: Frequency
    first_date: date
    start_time: time
    duration: timedelta
    interval: int = 1
    weekdays: tuple[str, ...] = ()
    count: int | None = None
    until: date | None = None

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if self.count is None and self.until is None:
            problems["count"] = ["give count or until"]
        if self.count is not None and not 1 <= self.count <= MAX_OCCURRENCES:
            problems["count"] = [Text("between 1 and {MAX_OCCURRENCES}", MAX_OCCURRENCES=MAX_OCCURRENCES)]
        if self.until is not None and self.until < self.first_date:
            problems["until"] = ["must not be before first_date"]
        if not 1 <= self.interval <= 52:
            problems["interval"] = ["between 1 and 52"]
        if any(w not in WEEKDAYS for w in self.weekdays):
            problems["weekdays"] = [Text("among {choices}", choices=", ".join(WEEKDAYS))]
        if self.weekdays and self.frequency != Frequency.WEEKLY:
            problems["weekdays"] = ["only for weekly meetings"]
        if self.duration <= timedelta(0) or self.duration > timedelta(hours=24):
            problems["duration_minutes"] = ["between 1 minute and 24 hours"]
        if problems:
            raise Invalid("invalid recurrence", fields=problems)

    def rrule_text(self) -> str:
        """The RRULE of RFC 5545 for this recurrence (for calendars)."""
        parts = [f"FREQ={self.frequency.value.upper()}", f"INTERVAL={self.interval}"]
        if self.weekdays:
            parts.append("BYDAY=" + ",".join(self.weekdays))
        if self.count:
            parts.append(f"COUNT={self.count}")
        if self.until:
            parts.append(f"UNTIL={self.until.strftime('%Y%m%d')}T235959Z")
        return ";".join(parts)

    def occurrences(self, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """(start, end) of each occurrence in UTC, at most MAX_OCCURRENCES."""
        self.check()
        rule = rrule(
            _FREQ[self.frequency],
            dtstart=datetime.combine(self.first_date, self.start_time),
            interval=self.interval,
            byweekday=[weekdays[WEEKDAYS.index(w)] for w in self.weekdays] or None,
            count=self.count,
            until=datetime.combine(self.until, time.max) if self.until else None,
        )
        result = []
        for local_start in rule:
            if len(result) >= MAX_OCCURRENCES:
                break
            start = _localise(local_start, tz)
            # The end is also a wall-clock time, so a meeting spanning a change keeps its length
            # as people experience it on the clock.
            end = _localise(local_start + self.duration, tz)
            result.append((start.astimezone(UTC), end.astimezone(UTC)))
        return result


def _localise(naive: datetime, tz: ZoneInfo) -> datetime:
    # With fold=0 a nonexistent local time (spring-forward gap) takes the offset from before the
    # change, which lands on the real instant after the gap: 02:30 becomes 03:30 summer time.
    # The round trip through UTC makes the wall-clock reading match that instant.
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
