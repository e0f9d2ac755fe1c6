"""iCalendar (RFC 5545) for activities, written by hand: a VCALENDAR of VEVENTs is small, and the
rules that matter (escaping, CRLF, lines folded at 75 octets, UTC times) are all here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from linli_activities.domain.activities import Activity, ActivityStatus
from linli_activities.domain.common import utc

PRODID = "-//Linli//Activities//EN"


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _stamp(moment: datetime) -> str:
    return utc(moment).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> str:
    """Split a content line into pieces of at most 75 octets, continued by CRLF and a space."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    pieces, current, limit = [], b"", 75
    for char in line:
        octets = char.encode("utf-8")
        if len(current) + len(octets) > limit:
            pieces.append(current.decode("utf-8"))
            current, limit = b"", 74  # continuation lines start with a space
        current += octets
    pieces.append(current.decode("utf-8"))
    return "\r\n ".join(pieces)


def _event_lines(activity: Activity, stamp: datetime, host: str) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{activity.id}@{host}",
        f"DTSTAMP:{_stamp(stamp)}",
        f"DTSTART:{_stamp(activity.starts_at)}",
        f"DTEND:{_stamp(activity.ends_at)}",
        f"SUMMARY:{_escape(activity.title)}",
        f"SEQUENCE:{activity.revision}",
        f"CATEGORIES:{_escape(activity.kind)}",
        "STATUS:" + ("CANCELLED" if activity.status == ActivityStatus.CANCELLED else "CONFIRMED"),
    ]
    if activity.description:
        lines.append(f"DESCRIPTION:{_escape(activity.description)}")
    if activity.place:
        lines.append(f"LOCATION:{_escape(activity.place)}")
    lines.append("END:VEVENT")
    return lines


def render_calendar(
    activities: Iterable[Activity], *, name: str, host: str = "linli", now: datetime | None = None
) -> str:
    stamp = now or datetime.now(UTC)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
    lines.append(f"X-WR-CALNAME:{_escape(name)}")
    for activity in activities:
        lines.extend(_event_lines(activity, stamp, host))
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
