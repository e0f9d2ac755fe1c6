"""Mutual-aid groups, the talent pool, services for vulnerable residents and who needs support."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from linli_activities.domain.common import new_id, utc
from linli_kit.errors import N_, Conflict, Invalid, Label, Text

SKILLS = ("repair", "medical", "legal", "teaching", "care", "massage", "haircut", "handcraft", "cooking", "other")
SERVICE_KINDS = ("massage", "haircut", "handcraft", "repair", "meal_delivery", "cleaning", "health_check", "other")
PROVIDER_TYPES = ("talent", "group", "business")
SUPPORT_NEEDS = (
    "elderly_alone",
    "living_alone",
    "disability",
    "mobility",
    "chronic_illness",
    "economic_difficulty",
    "other",
)
VISIT_CONDITIONS = ("well", "needs_help", "not_home")
MAX_VISIT_INTERVAL_DAYS = 365
MAX_HELP_HOURS_PER_ENTRY = 24.0
MAX_CONCURRENT_SLOTS = 50


# What `_fail` names, as words to translate.
_SUBJECTS = {
    "booking": N_("booking"),
    "help log": N_("help log"),
    "service offering": N_("service offering"),
    "support flag": N_("support flag"),
    "talent": N_("talent"),
    "visit": N_("visit"),
}


def _fail(what: str, problems: dict[str, list[str]]) -> None:
    if problems:
        raise Invalid(
            "invalid {what}: {names}",
            fields=problems,
            what=Text(_SUBJECTS.get(what, what)),
            names=", ".join(sorted(problems)),
        )


# --- mutual-aid groups ------------------------------------------------------------------------------
@dataclass
class MutualAidGroup:
    community_id: str
    name: str
    purpose: str
    coordinator_id: str
    created_at: datetime
    active: bool = True
    id: str = field(default_factory=new_id)


@dataclass
class GroupMember:
    group_id: str
    user_id: str
    display_name: str
    joined_at: datetime
    id: str = field(default_factory=new_id)


@dataclass
class HelpLog:
    group_id: str
    community_id: str
    helper_id: str
    helped_on: date
    hours: float
    recorded_by: str
    recorded_at: datetime
    helped_id: str | None = None  # the resident helped, when they have an account
    helped_description: str = ""  # "Mrs Li, Building 3" when they have none
    note: str = ""
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        problems: dict[str, list[str]] = {}
        if not 0 < self.hours <= MAX_HELP_HOURS_PER_ENTRY:
            problems["hours"] = [
                Text(
                    "more than 0 and at most {MAX_HELP_HOURS_PER_ENTRY:g} per entry",
                    MAX_HELP_HOURS_PER_ENTRY=MAX_HELP_HOURS_PER_ENTRY,
                )
            ]
        if self.helped_id is None and not self.helped_description.strip():
            problems["helped_id"] = ["name who was helped: helped_id or helped_description"]
        if self.helped_on > utc(self.recorded_at).date():
            problems["helped_on"] = ["cannot be in the future"]
        _fail("help log", problems)


# --- talent pool ---------------------------------------------------------------------------------------
class Vetting:
    """Staff vet a talent before residents see them: "capable, prestigious and selfless"."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


# What a talent needs to offer a service of a kind (suggestions for a booking).
SKILL_FOR_SERVICE = {
    "massage": "massage",
    "haircut": "haircut",
    "handcraft": "handcraft",
    "repair": "repair",
    "meal_delivery": "cooking",
    "cleaning": "care",
    "health_check": "medical",
    "other": "other",
}


@dataclass
class Talent:
    community_id: str
    user_id: str
    display_name: str
    skills: list[str]
    availability: str
    created_at: datetime
    description: str = ""
    contact_note: str = ""  # how staff reach them (never a phone number: those live in notifications)
    active: bool = True
    compound_id: str | None = None  # where they live, for the walking distance to a need
    vetting_status: str = Vetting.PENDING
    vetting_note: str | None = None
    vetted_by: str | None = None
    vetted_at: datetime | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.check()

    @property
    def vetted(self) -> bool:
        return self.vetting_status == Vetting.APPROVED

    def vet(self, approve: bool, note: str, by: str, now: datetime) -> None:
        """Record the staff's judgement, with the note saying why; a new judgement replaces it."""
        if not note.strip():
            raise Invalid("say why", fields={"note": ["a vetting note is required"]})
        self.vetting_status = Vetting.APPROVED if approve else Vetting.DECLINED
        self.vetting_note, self.vetted_by, self.vetted_at = note, by, now

    def revise(self, changes: dict[str, object], by_themselves: bool) -> None:
        """Change the entry; what the talent claims (skills, description) changed by themselves goes
        back to the staff for vetting, so residents never see an unvetted claim."""
        claims_changed = any(
            name in ("skills", "description") and getattr(self, name) != value for name, value in changes.items()
        )
        for name, value in changes.items():
            setattr(self, name, value)
        self.check()
        if by_themselves and claims_changed:
            self.vetting_status, self.vetted_by, self.vetted_at = Vetting.PENDING, None, None

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if not self.skills:
            problems["skills"] = ["at least one skill"]
        unknown = [s for s in self.skills if s not in SKILLS]
        if unknown:
            problems["skills"] = [
                Text("unknown: {unknown}; use {choices}", unknown=", ".join(unknown), choices=", ".join(SKILLS))
            ]
        _fail("talent", problems)


class MatchStatus:
    PROPOSED = "proposed"  # the talent is asked
    ACCEPTED = "accepted"
    DECLINED = "declined"


@dataclass
class TalentMatch:
    """A talent asked to help with a need (an issue of the issues service, or a booking here); they
    accept or decline. Matched to a booking, the talent becomes its provider when they accept."""

    talent_id: str
    community_id: str
    matched_by: str
    matched_at: datetime
    issue_id: str | None = None
    booking_id: str | None = None
    note: str = ""
    status: str = MatchStatus.PROPOSED
    responded_at: datetime | None = None
    decline_reason: str | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if (self.issue_id is None) == (self.booking_id is None):
            raise Invalid("name exactly one need", fields={"issue_id": ["give issue_id or booking_id, not both"]})

    def respond(self, accept: bool, reason: str | None, now: datetime) -> None:
        if self.status != MatchStatus.PROPOSED:
            raise Conflict("already {status}", status=Label("match_status", self.status))
        self.status = MatchStatus.ACCEPTED if accept else MatchStatus.DECLINED
        self.responded_at = now
        self.decline_reason = None if accept else reason


# --- services for vulnerable residents ---------------------------------------------------------------------
@dataclass
class ServiceOffering:
    community_id: str
    name: str
    kind: str
    provider_type: str
    provider_name: str
    created_at: datetime
    description: str = ""
    post_id: str | None = None
    provider_id: str | None = None  # the talent or group id; a business has only a name
    at_post: bool = True
    door_to_door: bool = False
    # How many bookings the provider serves at the same time when no single talent is named (a
    # barbershop with two chairs, a group with several volunteers); a talent is one person: 1.
    concurrent_slots: int = 1
    active: bool = True
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        problems: dict[str, list[str]] = {}
        if not 1 <= self.concurrent_slots <= MAX_CONCURRENT_SLOTS:
            problems["concurrent_slots"] = [
                Text("between 1 and {MAX_CONCURRENT_SLOTS}", MAX_CONCURRENT_SLOTS=MAX_CONCURRENT_SLOTS)
            ]
        elif self.provider_type == "talent" and self.concurrent_slots != 1:
            problems["concurrent_slots"] = ["a talent is one person: 1"]
        if self.kind not in SERVICE_KINDS:
            problems["kind"] = [Text("must be one of {choices}", choices=", ".join(SERVICE_KINDS))]
        if self.provider_type not in PROVIDER_TYPES:
            problems["provider_type"] = [Text("must be one of {choices}", choices=", ".join(PROVIDER_TYPES))]
        elif self.provider_type != "business" and self.provider_id is None:
            problems["provider_id"] = [Text("the {provider_type}'s id is required", provider_type=self.provider_type)]
        if not (self.at_post or self.door_to_door):
            problems["door_to_door"] = ["offered neither at a post nor door-to-door"]
        if self.at_post and self.post_id is None:
            problems["post_id"] = ["a service at a post names the post"]
        _fail("service offering", problems)


class BookingStatus:
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# A requested or confirmed booking holds its provider's slot; a completed or cancelled one frees it.
HOLDING_SLOT = (BookingStatus.REQUESTED, BookingStatus.CONFIRMED)


@dataclass(frozen=True)
class Provider:
    """Whose time a booking takes: one talent (a person, across every offering they give), or the
    offering itself (a group or a business, serving `capacity` bookings at once)."""

    key: str
    capacity: int

    @classmethod
    def of(cls, offering: ServiceOffering, provider_talent_id: str | None) -> Provider:
        if provider_talent_id is not None:
            return cls(f"talent:{provider_talent_id}", 1)
        if offering.provider_type == "talent" and offering.provider_id is not None:
            return cls(f"talent:{offering.provider_id}", 1)
        return cls(f"offering:{offering.id}", offering.concurrent_slots)


def slot_taken(busy: list[tuple[datetime, datetime]], start: datetime, end: datetime, capacity: int) -> bool:
    """Whether [start, end) would make the provider serve more than `capacity` bookings at some
    moment, given the half-open intervals `busy` it already holds (back-to-back slots do not meet)."""
    start, end = utc(start), utc(end)
    overlapping = [(max(utc(s), start), min(utc(e), end)) for s, e in busy if utc(s) < end and start < utc(e)]
    if len(overlapping) < capacity:
        return False
    # The most bookings at one moment inside [start, end): sweep the starts (+1) and ends (-1).
    points = sorted([(s, 1) for s, _ in overlapping] + [(e, -1) for _, e in overlapping], key=lambda p: (p[0], p[1]))
    depth = peak = 0
    for _moment, step in points:
        depth += step
        peak = max(peak, depth)
    return peak >= capacity


@dataclass
class Booking:
    offering_id: str
    community_id: str
    resident_id: str
    booked_by: str
    slot_start: datetime
    slot_end: datetime
    door_to_door: bool
    created_at: datetime
    address: str | None = None  # only for door-to-door; shown to the resident and staff only
    note: str = ""
    status: str = BookingStatus.REQUESTED
    provider_talent_id: str | None = None
    provider_key: str = ""  # Provider.key: whose slot this booking holds
    person_times: int = 0  # counted on completion
    completed_at: datetime | None = None
    feedback_rating: int | None = None
    feedback_comment: str | None = None
    id: str = field(default_factory=new_id)

    @classmethod
    def request(cls, offering: ServiceOffering, **values: object) -> Booking:
        booking = cls(offering_id=offering.id, community_id=offering.community_id, **values)  # type: ignore[arg-type]
        problems: dict[str, list[str]] = {}
        if utc(booking.slot_end) <= utc(booking.slot_start):
            problems["slot_end"] = ["must be after slot_start"]
        if not offering.active:
            problems["offering_id"] = ["this service is no longer offered"]
        if booking.door_to_door:
            if not offering.door_to_door:
                problems["door_to_door"] = ["this service is not offered door-to-door"]
            if not (booking.address or "").strip():
                problems["address"] = ["required for a door-to-door visit"]
        else:
            if not offering.at_post:
                problems["door_to_door"] = ["this service is only offered door-to-door"]
            booking.address = None
        _fail("booking", problems)
        return booking

    def confirm(self, provider_talent_id: str | None) -> None:
        if self.status != BookingStatus.REQUESTED:
            raise Conflict(
                "booking is {status}; only a requested one can be confirmed",
                status=Label("booking_status", self.status),
            )
        self.status = BookingStatus.CONFIRMED
        self.provider_talent_id = provider_talent_id or self.provider_talent_id

    def complete(self, person_times: int, now: datetime) -> None:
        if self.status != BookingStatus.CONFIRMED:
            raise Conflict(
                "booking is {status}; only a confirmed one can be completed",
                status=Label("booking_status", self.status),
            )
        if person_times < 1:
            raise Invalid("person_times out of range", fields={"person_times": ["at least 1"]})
        self.status, self.person_times, self.completed_at = BookingStatus.COMPLETED, person_times, now

    def cancel(self) -> None:
        if self.status in (BookingStatus.COMPLETED, BookingStatus.CANCELLED):
            raise Conflict("booking is {status}", status=Label("booking_status", self.status))
        self.status = BookingStatus.CANCELLED

    def give_feedback(self, rating: int, comment: str | None) -> None:
        if self.status != BookingStatus.COMPLETED:
            raise Conflict("feedback is given after the service is completed")
        if self.feedback_rating is not None:
            raise Conflict("feedback already given")
        if not 1 <= rating <= 5:
            raise Invalid("rating out of range", fields={"rating": ["between 1 and 5"]})
        self.feedback_rating, self.feedback_comment = rating, comment


# --- residents needing support -------------------------------------------------------------------------------
@dataclass
class SupportFlag:
    """A resident who needs support. Seen only by the staff of their community."""

    community_id: str
    needs: list[str]
    recorded_by: str
    created_at: datetime
    resident_id: str | None = None
    display_name: str = ""
    address: str = ""
    note: str = ""
    active: bool = True
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if not self.needs:
            problems["needs"] = ["at least one"]
        unknown = [n for n in self.needs if n not in SUPPORT_NEEDS]
        if unknown:
            problems["needs"] = [
                Text("unknown: {unknown}; use {choices}", unknown=", ".join(unknown), choices=", ".join(SUPPORT_NEEDS))
            ]
        if self.resident_id is None and not self.display_name.strip():
            problems["display_name"] = ["name the resident: resident_id or display_name"]
        _fail("support flag", problems)


# --- welfare visits -------------------------------------------------------------------------------------
@dataclass
class VisitPlan:
    """Someone flagged as needing support is visited every `every_days` days by `visitor_id`. The
    next visit is due on `next_due_on` (the start, then each visit's date plus the interval); a
    plan is overdue from the day after."""

    flag_id: str
    community_id: str
    every_days: int
    visitor_id: str
    starts_on: date
    next_due_on: date
    created_by: str
    created_at: datetime
    visitor_name: str = ""
    last_visited_on: date | None = None
    active: bool = True
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if not 1 <= self.every_days <= MAX_VISIT_INTERVAL_DAYS:
            raise Invalid(
                "invalid visit plan",
                fields={
                    "every_days": [
                        Text("between 1 and {MAX_VISIT_INTERVAL_DAYS}", MAX_VISIT_INTERVAL_DAYS=MAX_VISIT_INTERVAL_DAYS)
                    ]
                },
            )

    def change(self, *, every_days: int, visitor_id: str, visitor_name: str, starts_on: date | None) -> None:
        self.every_days, self.visitor_id, self.visitor_name, self.active = every_days, visitor_id, visitor_name, True
        self.check()
        if starts_on is not None:
            self.starts_on = starts_on
        self.next_due_on = self._due_after(self.last_visited_on) if self.last_visited_on else self.starts_on

    def _due_after(self, visited_on: date) -> date:
        return visited_on + timedelta(days=self.every_days)

    def overdue_days(self, today: date) -> int:
        """Days past the due date (0: not overdue)."""
        return max((today - self.next_due_on).days, 0) if self.active else 0

    def record(self, visited_on: date, condition: str) -> None:
        """A visit made: the next is due an interval later (nobody at home: still due)."""
        if condition == "not_home":
            return
        if self.last_visited_on is None or visited_on >= self.last_visited_on:
            self.last_visited_on = visited_on
            self.next_due_on = self._due_after(visited_on)


@dataclass
class WelfareVisit:
    plan_id: str
    flag_id: str
    community_id: str
    visitor_id: str
    visited_on: date
    condition: str
    recorded_by: str
    recorded_at: datetime
    note: str = ""
    booking_id: str | None = None  # a service booked on the spot
    # An issue raised on the spot (the issues service reports it from activities.visit.concern_raised).
    issue_id: str | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        problems: dict[str, list[str]] = {}
        if self.condition not in VISIT_CONDITIONS:
            problems["condition"] = [Text("one of {choices}", choices=", ".join(VISIT_CONDITIONS))]
        if self.visited_on > utc(self.recorded_at).date() + timedelta(days=1):
            # (A day of grace: the city's date may be a day ahead of UTC.)
            problems["visited_on"] = ["cannot be in the future"]
        _fail("visit", problems)
