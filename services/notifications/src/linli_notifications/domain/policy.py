"""Planning rules: which channels a recipient gets for an intent, and when (quiet hours).

Quiet hours defer, they never drop: a message planned at 23:00 waits until the end of the quiet
period in the recipient's own time zone. Urgent safety notices and one-time codes bypass both
quiet hours and opt-outs.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from linli_notifications.domain.model import (
    DEFAULT_CHANNELS,
    Category,
    Channel,
    DeliveryState,
    Intent,
    Plan,
    PlannedDelivery,
    Recipient,
)

_CHANNELS = tuple(Channel)  # iterating the enum itself costs a generator per recipient
# Categories whose messages nobody may switch off.
MANDATORY = frozenset({Category.ACCOUNT, Category.SAFETY})


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@functools.lru_cache(maxsize=256)
def _stored_hhmm(value: str) -> time:
    """`parse_hhmm` of a stored quiet hour, kept per text: every planning decision asks for two."""
    return parse_hhmm(value)


def quiet_until(now: datetime, recipient: Recipient) -> datetime | None:
    """The end of the recipient's current quiet period in UTC, or None when `now` is not quiet."""
    start, end = _stored_hhmm(recipient.quiet_start), _stored_hhmm(recipient.quiet_end)
    if start == end:
        return None
    zone = ZoneInfo(recipient.timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 13:00-14:00, within one day
        if not (start <= clock < end):
            return None
        wake = datetime.combine(local.date(), end, tzinfo=zone)
    else:  # e.g. 22:00-08:00, across midnight
        if end <= clock < start:
            return None
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        wake = datetime.combine(day, end, tzinfo=zone)
    return wake.astimezone(UTC)


def wanted_channels(intent: Intent, preferences: Mapping[tuple[str, str], bool]) -> frozenset[Channel]:
    """The channels this intent goes to for one recipient: defaults overridden by preferences."""
    base = intent.channels if intent.channels is not None else DEFAULT_CHANNELS[intent.category]
    if intent.urgent or intent.category in MANDATORY:
        return base
    chosen = set()
    for channel in _CHANNELS:
        default = channel in base
        if preferences.get((intent.category.value, channel.value), default):
            chosen.add(channel)
    return frozenset(chosen)


def plan_for(
    intent: Intent,
    recipient: Recipient,
    preferences: Mapping[tuple[str, str], bool],
    now: datetime,
) -> Plan:
    """Decide the deliveries for one recipient. Suppressed ones are kept, with their reason."""
    plan = Plan(recipient.user_id)
    bypass = intent.urgent or intent.category in MANDATORY
    wake = None if bypass else quiet_until(now, recipient)
    for channel in sorted(wanted_channels(intent, preferences)):
        reason = _suppression(channel, recipient, bypass)
        if reason is None and intent.expires_at is not None and intent.expires_at <= now:
            plan.deliveries.append(PlannedDelivery(channel, DeliveryState.EXPIRED, now, "expired before planning"))
            continue
        if reason is not None:
            plan.deliveries.append(PlannedDelivery(channel, DeliveryState.SUPPRESSED, now, reason))
        else:
            plan.deliveries.append(PlannedDelivery(channel, DeliveryState.PENDING, wake or now))
    return plan


def _suppression(channel: Channel, recipient: Recipient, bypass: bool) -> str | None:
    if not recipient.active:
        return "recipient inactive"
    if channel == Channel.SMS:
        if not recipient.phone:
            return "no phone number"
        if recipient.sms_opted_out and not bypass:
            return "sms opt-out"
    if channel == Channel.PUSH and not recipient.has_devices:
        return "no registered device"
    return None


def retry_delay(attempt: int, *, first: float = 30.0, cap: float = 3600.0, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): exponential, capped, with full jitter."""
    ceiling = min(cap, first * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)
