"""Meetings as iCalendar (RFC 5545): one event per meeting, and a feed per community."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from icalendar import Calendar, Event

from linli_meetings.domain.meeting import Meeting, Status

PRODID = "-//Linli//meetings//EN"


def _calendar(name: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def _event(meeting: Meeting, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"{meeting.id}@linli")
    event.add("dtstamp", stamp)
    event.add("dtstart", meeting.starts_at)
    event.add("dtend", meeting.ends_at)
    event.add("summary", meeting.title)
    # Calendar clients take the highest SEQUENCE as the current version of an event.
    event.add("sequence", meeting.revision)
    event.add("categories", [meeting.meeting_type])
    event.add("class", "PUBLIC" if meeting.public else "PRIVATE")
    description = meeting.description or ""
    agenda = meeting.ordered_agenda()
    if agenda:
        lines = [
            f"{i.position}. {i.title}" + (f" ({i.duration_minutes} min)" if i.duration_minutes else "") for i in agenda
        ]
        description = (description + "\n\n" if description else "") + "Agenda:\n" + "\n".join(lines)
    if description:
        event.add("description", description)
    if meeting.place:
        event.add("location", meeting.place)
    if meeting.online_url:
        event.add("url", meeting.online_url)
    if meeting.status == Status.CANCELLED:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    return event


def meeting_ics(meeting: Meeting, stamp: datetime) -> bytes:
    calendar = _calendar()
    calendar.add_component(_event(meeting, stamp))
    return calendar.to_ical()


def feed_ics(name: str, meetings: Iterable[Meeting], stamp: datetime) -> bytes:
    calendar = _calendar(name)
    for meeting in meetings:
        calendar.add_component(_event(meeting, stamp))
    return calendar.to_ical()
