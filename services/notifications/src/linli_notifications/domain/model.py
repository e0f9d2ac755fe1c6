"""The vocabulary of notifications: channels, categories, delivery states, recipients, intents.

Plain dataclasses and rules; nothing here knows about databases, HTTP or the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    SMS = "sms"
    PUSH = "push"


class Category(StrEnum):
    """What a notification is about; preferences are kept per category and channel."""

    ACCOUNT = "account"  # one-time codes
    ISSUE_PROGRESS = "issue_progress"
    NEW_ISSUE = "new_issue"
    ESCALATION = "escalation"
    MEETING = "meeting"
    REMINDER = "reminder"
    DECISION = "decision"
    ACTIVITY = "activity"
    REGISTRATION = "registration"
    BOOKING = "booking"
    BROADCAST = "broadcast"
    SAFETY = "safety"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"


FINAL_STATES = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.SUPPRESSED, DeliveryState.EXPIRED}
)

# Channels a category uses when the recipient said nothing. SMS costs money and attention: it is
# kept for what changes someone's plans or needs action.
DEFAULT_CHANNELS: dict[Category, frozenset[Channel]] = {
    Category.ACCOUNT: frozenset({Channel.SMS}),
    Category.ISSUE_PROGRESS: frozenset({Channel.PUSH}),
    Category.NEW_ISSUE: frozenset({Channel.PUSH}),
    Category.ESCALATION: frozenset({Channel.PUSH, Channel.SMS}),
    Category.MEETING: frozenset({Channel.PUSH, Channel.SMS}),
    Category.REMINDER: frozenset({Channel.PUSH}),
    Category.DECISION: frozenset({Channel.PUSH}),
    Category.ACTIVITY: frozenset({Channel.PUSH}),
    Category.REGISTRATION: frozenset({Channel.PUSH, Channel.SMS}),
    Category.BOOKING: frozenset({Channel.PUSH, Channel.SMS}),
    Category.BROADCAST: frozenset({Channel.PUSH, Channel.SMS}),
    Category.SAFETY: frozenset({Channel.PUSH, Channel.SMS}),
}


@dataclass(frozen=True)
class Recipient:
    user_id: str
    role: str
    locale: str = "zh-CN"
    phone: str | None = None
    timezone: str = "Asia/Shanghai"
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    active: bool = True
    sms_opted_out: bool = False
    has_devices: bool = False


@dataclass(frozen=True)
class Intent:
    """Tell these users about this: what an event (or a reminder, or a broadcast) asks for."""

    source_key: str  # unique per source occurrence: the event id, or reminder/broadcast key
    source_type: str
    kind: str  # template kind, e.g. "meeting.scheduled"
    category: Category
    user_ids: tuple[str, ...]
    params: dict[str, Any]
    urgent: bool = False
    community_id: str | None = None
    subject_type: str | None = None  # issue | meeting | activity | booking | broadcast
    subject_id: str | None = None
    expires_at: datetime | None = None
    channels: frozenset[Channel] | None = None  # None: the category's defaults and preferences
    # The subjects ((type, id): an issue, a meeting) each recipient must be allowed to read, when
    # the notice is planned and again when it is sent; () for notices about nothing gated.
    about: tuple[tuple[str, str], ...] = ()


@dataclass
class PlannedDelivery:
    channel: Channel
    state: DeliveryState
    not_before: datetime
    reason: str | None = None


@dataclass
class Plan:
    user_id: str
    deliveries: list[PlannedDelivery] = field(default_factory=list)
