"""Issues as the platform understands them: lifecycle, tiers, deadlines. Plain Python, no framework.

An issue moves through explicit states; every change bumps `revision` so that consumers of the
published snapshots can ignore an older one that arrives late.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from linli_issues.domain import privacy
from linli_kit.errors import Conflict, Invalid, Label, Text

STATUSES = ("reported", "accepted", "rejected", "duplicate", "deliberating", "resolving", "resolved", "closed")
TIERS = ("compound", "community", "street", "city")
URGENCIES = ("low", "normal", "high", "urgent")
BODIES = ("property_company", "owners_committee", "community", "bureau")
CHANNELS = ("app", "phone", "doorstep", "open311")
# Finished issues: no deadline runs, nothing escalates.
FINAL_STATUSES = frozenset({"rejected", "duplicate", "closed"})
DONE_STATUSES = FINAL_STATUSES | {"resolved"}

# The legal moves of the lifecycle. Reopening goes back to "accepted": the issue is handled again.
TRANSITIONS: dict[str, frozenset[str]] = {
    "reported": frozenset({"accepted", "rejected", "duplicate", "deliberating"}),
    "accepted": frozenset({"deliberating", "resolving", "resolved"}),
    "deliberating": frozenset({"resolving", "resolved"}),
    "resolving": frozenset({"deliberating", "resolved"}),
    "resolved": frozenset({"closed", "accepted"}),
    "closed": frozenset({"accepted"}),
    "rejected": frozenset(),
    "duplicate": frozenset(),
}


def new_id() -> str:
    return str(uuid.uuid4())


_last_v7 = (0, 0)  # (milliseconds, counter) of the last id made here


def sortable_id() -> str:
    """A UUIDv7 (RFC 9562): ids made later sort later, so same-instant timeline entries keep their order."""
    global _last_v7
    millis = time.time_ns() // 1_000_000
    last_millis, last_counter = _last_v7
    if millis <= last_millis:
        millis, counter = last_millis, last_counter + 1
    else:
        counter = int.from_bytes(os.urandom(9), "big") >> 8  # 64 random bits, room left to count up
    _last_v7 = (millis, counter)
    # 48 bits of time, version 7, 12 high bits of the counter, variant 10, 62 low bits of the counter.
    value = millis << 80 | 0x7 << 76 | (counter >> 62 & 0xFFF) << 64 | 0x2 << 62 | (counter & (1 << 62) - 1)
    # str(uuid.UUID(int=value)) written out: a batch of meetings' events makes one per timeline entry.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Category:
    """A kind of issue, configured per city: where it starts, who is responsible, how long it may take."""

    key: str
    name: str
    default_tier: str = "community"
    responsible_body: str = "community"
    # Hours allowed to resolve, by urgency.
    deadline_hours: dict[str, int] = field(
        default_factory=lambda: {"low": 720, "normal": 336, "high": 72, "urgent": 24}
    )
    active: bool = True
    position: int = 0
    # Who reads its issues (domain/privacy.py): public | community | private.
    publication: str = privacy.COMMUNITY

    def __post_init__(self) -> None:
        problems: dict[str, list[str]] = {}
        if self.publication not in privacy.PUBLICATIONS:
            problems["publication"] = [Text("must be one of {choices}", choices=", ".join(privacy.PUBLICATIONS))]
        if self.default_tier not in TIERS:
            problems["default_tier"] = [Text("must be one of {choices}", choices=", ".join(TIERS))]
        if self.responsible_body not in BODIES:
            problems["responsible_body"] = [Text("must be one of {choices}", choices=", ".join(BODIES))]
        hours = self.deadline_hours or {}
        if set(hours) != set(URGENCIES) or any(not isinstance(h, int) or h <= 0 for h in hours.values()):
            problems["deadline_hours"] = [
                Text("give a positive number of hours for each of {choices}", choices=", ".join(URGENCIES))
            ]
        if problems:
            raise Invalid("invalid category", fields=problems)

    def deadline(self, urgency: str, start: datetime) -> datetime:
        return start + timedelta(hours=self.deadline_hours[urgency])


def _hours(low: int, normal: int, high: int, urgent: int) -> dict[str, int]:
    return {"low": low, "normal": normal, "high": high, "urgent": urgent}


def default_categories() -> list[Category]:
    """The eight categories every city starts with (the issue's list); cities change them freely.

    A function, not a constant: mapped classes must not have instances made before the mapping.
    """
    return [
        Category("safety_hazard", "Safety hazard", "community", "community", _hours(72, 48, 24, 4), position=1),
        Category(
            "repairs_facilities",
            "Repairs and facilities",
            "compound",
            "property_company",
            _hours(720, 336, 120, 24),
            True,
            2,
        ),
        Category(
            "environment_sanitation",
            "Environment and sanitation",
            "compound",
            "property_company",
            _hours(336, 168, 72, 24),
            True,
            3,
        ),
        Category(
            "property_management",
            "Property management",
            "compound",
            "owners_committee",
            _hours(720, 336, 120, 48),
            True,
            4,
        ),
        Category("parking", "Parking", "compound", "property_company", _hours(720, 336, 168, 48), position=5),
        Category(
            "neighbour_dispute",
            "Neighbour dispute",
            "community",
            "community",
            _hours(720, 336, 120, 48),
            position=6,
            publication=privacy.PRIVATE,
        ),
        Category(
            "elderly_vulnerable_support",
            "Elderly and vulnerable support",
            "community",
            "community",
            _hours(168, 72, 24, 6),
            True,
            7,
            privacy.PRIVATE,
        ),
        Category("other", "Other", "community", "community", _hours(720, 336, 168, 48), position=8),
    ]


@dataclass
class TimelineEntry:
    """One line of an issue's history. Internal entries are for staff and the assignee only."""

    issue_id: str
    kind: str  # report | reply | note | status | inspection | escalation | assignment | meeting | decision | ...
    created_at: datetime
    body: str | None = None
    internal: bool = False
    author_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=sortable_id)


class IssueReadings:
    """What an issue's fields say, for an `Issue` and for an `IssueSummary` alike."""

    action_items: int
    action_items_done: int
    publication: str
    anonymous: bool
    marked_private: bool
    status: str
    due_at: datetime | None

    @property
    def follow_up(self) -> dict[str, int]:
        """How far the action items of the decisions taken on the issue are: {action_items, done}."""
        return {"action_items": self.action_items, "done": self.action_items_done}

    @property
    def visibility(self) -> str:
        """public | community | private (domain/privacy.py)."""
        return privacy.visibility(self.publication, anonymous=self.anonymous, marked_private=self.marked_private)

    @property
    def is_open(self) -> bool:
        return self.status not in DONE_STATUSES

    def is_overdue(self, now: datetime) -> bool:
        return self.is_open and self.due_at is not None and self.due_at <= now


@dataclass(frozen=True, slots=True)
class IssueSummary(IssueReadings):
    """An issue as a list shows it: the fields of a list row and those deciding who reads what
    (reporter, anonymity, publication, assignee), read without the rest of the issue."""

    id: str
    community_id: str
    compound_id: str | None
    title: str
    category: str
    urgency: str
    status: str
    tier: str
    reporter_id: str
    anonymous: bool
    publication: str
    marked_private: bool
    assignee_type: str | None
    assignee_id: str | None
    supporter_count: int
    consultation_count: int
    action_items: int
    action_items_done: int
    resolution_summary: str | None
    rating: int | None
    created_at: datetime
    updated_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None


@dataclass
class Issue(IssueReadings):
    community_id: str
    title: str
    description: str
    category: str
    urgency: str
    tier: str
    reporter_id: str
    created_at: datetime
    due_at: datetime | None = None
    compound_id: str | None = None
    building: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    anonymous: bool = False
    # The category's publication when it was reported (narrowed if the city narrows the category
    # since), and whether staff marked the issue private: see `visibility`.
    publication: str = privacy.COMMUNITY
    marked_private: bool = False
    channel: str = "app"
    reported_by: str | None = None  # the staff member who took a phone or door-step report
    client_name: str | None = None  # the Open311 client that sent it
    # The mutual-aid group whose patrol found it (the issue is theirs to be thanked for).
    credited_group_id: str | None = None
    credited_group_name: str | None = None
    status: str = "reported"
    assignee_type: str | None = None
    assignee_id: str | None = None
    supporter_count: int = 0
    consultation_count: int = 0
    # Its decisions' action items and how many are done (kept from the meetings service's events).
    action_items: int = 0
    action_items_done: int = 0
    duplicate_of: str | None = None
    reason: str | None = None  # of the last rejection, escalation or reopening
    resolution_plan: str | None = None
    resolution_summary: str | None = None
    rating: int | None = None
    rating_comment: str | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    overdue_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 1
    id: str = field(default_factory=new_id)

    def mark_private(self, private: bool, now: datetime) -> bool:
        """Staff mark the issue private (or lift their mark); returns whether anything changed."""
        if self.marked_private == private:
            return False
        self.marked_private = private
        self.touch(now)
        return True

    # --- lifecycle ----------------------------------------------------------------------------
    def can_move_to(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, frozenset())

    def move_to(self, status: str, now: datetime) -> str:
        """Change status or raise Conflict naming the illegal move; returns the previous status."""
        if status not in STATUSES:
            raise Invalid(
                "unknown status", fields={"status": [Text("must be one of {choices}", choices=", ".join(STATUSES))]}
            )
        if not self.can_move_to(status):
            raise Conflict(
                "an issue that is {status} cannot become {target}",
                fields={"status": [self.status]},
                status=Label("issue_status", self.status),
                target=Label("issue_status", status),
            )
        previous = self.status
        self.status = status
        if status in {"accepted", "deliberating"} and self.accepted_at is None:
            self.accepted_at = now
        if status == "resolved":
            self.resolved_at = now
        if status == "closed":
            self.closed_at = now
        if status == "accepted" and previous in {"resolved", "closed"}:
            # Reopened: it is being handled again, with neither resolution nor rating.
            self.resolved_at = None
            self.closed_at = None
            self.rating = None
            self.rating_comment = None
        self.touch(now)
        return previous

    def touch(self, now: datetime) -> None:
        self.updated_at = now
        self.revision += 1

    # --- tiers ----------------------------------------------------------------------------------
    def next_tier(self) -> str | None:
        index = TIERS.index(self.tier)
        return TIERS[index + 1] if index + 1 < len(TIERS) else None

    def escalate(self, category: Category, now: datetime, reason: str | None) -> str:
        """Move one tier up with a fresh deadline; returns the tier it left."""
        if not self.is_open:
            raise Conflict("an issue that is {status} cannot be escalated", status=Label("issue_status", self.status))
        target = self.next_tier()
        if target is None:
            raise Conflict("the issue is already handled by the city, the highest tier")
        previous = self.tier
        self.tier = target
        self.reason = reason
        self.due_at = category.deadline(self.urgency, now)
        self.touch(now)
        return previous

    def restart_deadline(self, category: Category, now: datetime) -> None:
        """A fresh deadline from `now` by the category's rule for the issue's urgency (on reopening)."""
        self.due_at = category.deadline(self.urgency, now)

    def assign(self, body: str, assignee_id: str | None, now: datetime) -> None:
        if body not in BODIES:
            raise Invalid(
                "unknown body", fields={"assignee_type": [Text("must be one of {choices}", choices=", ".join(BODIES))]}
            )
        if not self.is_open:
            raise Conflict("an issue that is {status} cannot be assigned", status=Label("issue_status", self.status))
        self.assignee_type = body
        self.assignee_id = assignee_id
        self.touch(now)

    def rate(self, rating: int, comment: str | None, now: datetime) -> str:
        """The reporter's rating closes the issue; returns the status it left (resolved)."""
        if not 1 <= rating <= 5:
            raise Invalid("rating out of range", fields={"rating": ["must be between 1 and 5"]})
        if self.status != "resolved":
            raise Conflict(
                "only a resolved issue can be rated; this one is {status}", status=Label("issue_status", self.status)
            )
        self.rating = rating
        self.rating_comment = comment
        return self.move_to("closed", now)


def priority(issue: Issue) -> int:
    """Higher first: urgency weighs most, then how many residents support it."""
    return URGENCIES.index(issue.urgency) * 1000 + issue.supporter_count
