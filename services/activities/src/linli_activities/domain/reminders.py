"""Reminders of an activity's registrants before it starts ("the opera is tomorrow at 19:00").

Each published activity has a reminder per lead time (by default a day and an hour before), for
the start it has now: moving the activity cancels the reminders of the old start and plans new
ones; cancelling it cancels them. A lead time already past when the activity is published (or
moved) is not planned: someone who signs up an hour before does not need "tomorrow" in their
pocket. When several come due at once (the worker was away), only the nearest to the start is
sent, the others expire: one message, the right one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from linli_activities.domain.common import new_id, utc

DEFAULT_LEAD_MINUTES = (1440, 60)
MAX_LEAD_MINUTES = 7 * 1440


class ReminderState:
    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"  # the activity moved or was cancelled
    EXPIRED = "expired"  # came due after the start, or a nearer one went instead


@dataclass
class ActivityReminder:
    activity_id: str
    lead_minutes: int
    starts_at: datetime  # the start it reminds of
    due_at: datetime
    state: str = ReminderState.SCHEDULED
    sent_at: datetime | None = None
    id: str = field(default_factory=new_id)


def plan(
    activity_id: str,
    starts_at: datetime,
    leads: tuple[int, ...],
    now: datetime,
    make: Callable[..., ActivityReminder] = ActivityReminder,
) -> list[ActivityReminder]:
    """The reminders of a start still ahead of `now` (`make`: makes one of its fields, as
    ActivityReminder does)."""
    starts_at = utc(starts_at)
    planned = []
    for lead in sorted(set(leads), reverse=True):
        due = starts_at - timedelta(minutes=lead)
        if due > utc(now):
            planned.append(make(activity_id=activity_id, lead_minutes=lead, starts_at=starts_at, due_at=due))
    return planned


def settle(due: list[ActivityReminder], current_start: datetime | None, now: datetime) -> ActivityReminder | None:
    """Decide the due reminders of one activity (its start now, or None when it is no longer
    published): return the one to send, mark the rest."""
    to_send = None
    for reminder in sorted(due, key=lambda r: r.lead_minutes):
        if current_start is None or utc(reminder.starts_at) != utc(current_start):
            reminder.state = ReminderState.CANCELLED
        elif utc(reminder.starts_at) <= utc(now) or to_send is not None:
            reminder.state = ReminderState.EXPIRED
        else:
            reminder.state, reminder.sent_at = ReminderState.SENT, utc(now)
            to_send = reminder
    return to_send
