"""The periods statistics are asked for: one rule for every service, the gateway included.

A period is two local dates in the city's time zone, both included. Without `from` and `to` it is
the twelve calendar months ending with the current one: from the first day of the month eleven
months back to today. Whole months, so a monthly trend never starts with half a month, and the same
on every service, so the figures of the overview add up. Dates outside `EARLIEST`..`LATEST` are
refused by the schemas (their instants would overflow the databases' and Python's ranges).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from linli_kit.errors import Invalid, Text

EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
DEFAULT_MONTHS = 12


@dataclass(frozen=True)
class Period:
    start: date  # first local day, included
    end: date  # last local day, included

    def instants(self, timezone: str | ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) as UTC instants: midnight of the first day to midnight after the last."""
        zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        first = datetime.combine(self.start, time.min, tzinfo=zone)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone)
        return first.astimezone(UTC), after.astimezone(UTC)

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def first_of_month_back(today: date, months: int) -> date:
    index = today.year * 12 + (today.month - 1) - months
    return date(index // 12, index % 12 + 1, 1)


def resolve_period(today: date, start: date | None = None, end: date | None = None) -> Period:
    """The period asked for, with the platform's defaults filled in; 422 naming the field if it
    runs backwards or leaves the supported range."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Invalid(
                "'{name}' is out of range",
                fields={
                    name: [
                        Text(
                            "must be between {earliest} and {latest}",
                            earliest=EARLIEST.isoformat(),
                            latest=LATEST.isoformat(),
                        )
                    ]
                },
                name=name,
            )
    if end is None:
        end = max(today, start) if start is not None else today
    if start is None:
        start = first_of_month_back(end, DEFAULT_MONTHS - 1)
    if start > end:
        raise Invalid("the period ends before it starts", fields={"from": ["must not be after 'to'"]})
    return Period(start, end)


def today_in(timezone: str | ZoneInfo, now: datetime | None = None) -> date:
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return (now or datetime.now(UTC)).astimezone(zone).date()
