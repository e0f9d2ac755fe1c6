"""Activities and their registrations: the rules of capacity, waiting list, window and check-in.

An activity holds two running totals, `confirmed_places` (the places held by confirmed and
checked-in registrations, party sizes summed) and `waiting_parties`. They are changed only while
the activity is locked (the service layer loads it FOR UPDATE), which is what keeps the last places
of a popular activity from being sold twice.

The waiting list is strictly first come, first served: each waiting registration carries a
sequence number from the activity, and when places free up the head of the list is promoted while
its whole party fits. A later, smaller party never jumps an earlier one ("promoted in order").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from linli_activities.domain.common import new_id, utc
from linli_kit.errors import Conflict, Invalid, Label, Text

KINDS = ("festival", "sports", "culture", "volunteering", "education", "service_day", "other")
AUDIENCES = ("everyone", "children", "families", "elderly", "youth", "disabled")
ORGANISER_TYPES = ("staff", "group")
DEFAULT_MAX_PARTY_SIZE = 4
# Check-in opens a little before the start (people queue at the door) and closes a little after the end.
CHECKIN_OPENS_BEFORE = timedelta(hours=2)
CHECKIN_CLOSES_AFTER = timedelta(hours=2)


class ActivityStatus:
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class RegistrationStatus:
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    CHECKED_IN = "checked_in"


HOLDING_PLACES = (RegistrationStatus.CONFIRMED, RegistrationStatus.CHECKED_IN)


def new_checkin_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


@dataclass
class Registration:
    activity_id: str
    user_id: str
    community_id: str
    party_size: int
    registered_by: str
    status: str
    created_at: datetime
    waitlist_seq: int | None = None
    updated_at: datetime | None = None
    id: str = field(default_factory=new_id)

    @property
    def is_active(self) -> bool:
        return self.status != RegistrationStatus.CANCELLED


@dataclass
class Checkin:
    activity_id: str
    community_id: str
    participants: int
    method: str  # "list" (staff ticks the registration), "code" (the resident enters it), "walk_in"
    recorded_by: str
    checked_in_at: datetime
    registration_id: str | None = None
    user_id: str | None = None
    id: str = field(default_factory=new_id)


@dataclass
class Activity:
    community_ids: list[str]
    kind: str
    title: str
    starts_at: datetime
    ends_at: datetime
    organiser_type: str
    organiser_id: str
    created_by: str
    created_at: datetime
    description: str = ""
    place: str | None = None
    post_id: str | None = None
    audience: list[str] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)
    capacity: int | None = None
    max_party_size: int = DEFAULT_MAX_PARTY_SIZE
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    status: str = ActivityStatus.DRAFT
    cancel_reason: str | None = None
    checkin_code: str = field(default_factory=new_checkin_code)
    confirmed_places: int = 0
    waiting_parties: int = 0
    waitlist_counter: int = 0
    revision: int = 1
    # An occurrence of a recurring series: the series, its date in the rule, and "skipped" or
    # "moved" when that one occurrence was changed.
    series_id: str | None = None
    occurrence_date: date | None = None
    series_exception: str | None = None
    festival_id: str | None = None
    # When residents were first told of it (activities.activity.published); None for a draft, or
    # an occurrence of a series still more than two weeks away.
    announced_at: datetime | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self._normalise_times()
        self.check()

    def _normalise_times(self) -> None:
        self.starts_at, self.ends_at = utc(self.starts_at), utc(self.ends_at)
        if self.registration_opens_at is not None:
            self.registration_opens_at = utc(self.registration_opens_at)
        if self.registration_closes_at is not None:
            self.registration_closes_at = utc(self.registration_closes_at)

    # --- the activity itself -------------------------------------------------------------------
    def check(self) -> None:
        """Raise Invalid naming every field that breaks a rule."""
        problems: dict[str, list[str]] = {}
        if self.kind not in KINDS:
            problems["kind"] = [Text("must be one of {choices}", choices=", ".join(KINDS))]
        if not self.community_ids:
            problems["community_ids"] = ["at least one community"]
        if utc(self.ends_at) <= utc(self.starts_at):
            problems["ends_at"] = ["must be after starts_at"]
        if self.capacity is not None and self.capacity < 1:
            problems["capacity"] = ["must be at least 1, or null for no limit"]
        if self.max_party_size < 1:
            problems["max_party_size"] = ["must be at least 1"]
        if self.capacity is not None and self.max_party_size > self.capacity:
            problems["max_party_size"] = ["cannot exceed the capacity"]
        opens, closes = self.registration_opens_at, self.registration_closes_at
        if opens is not None and closes is not None and utc(closes) <= utc(opens):
            problems["registration_closes_at"] = ["must be after registration_opens_at"]
        if closes is not None and utc(closes) > utc(self.ends_at):
            problems["registration_closes_at"] = ["must not be after the end of the activity"]
        if self.organiser_type not in ORGANISER_TYPES:
            problems["organiser_type"] = [Text("must be one of {choices}", choices=", ".join(ORGANISER_TYPES))]
        bad_audience = [a for a in self.audience if a not in AUDIENCES]
        if bad_audience:
            problems["audience"] = [
                Text("unknown: {unknown}; use {choices}", unknown=", ".join(bad_audience), choices=", ".join(AUDIENCES))
            ]
        if problems:
            raise Invalid("invalid activity: {names}", fields=problems, names=", ".join(sorted(problems)))

    @property
    def free_places(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.confirmed_places, 0)

    def _fits(self, party_size: int) -> bool:
        return self.capacity is None or self.confirmed_places + party_size <= self.capacity

    def publish(self) -> None:
        if self.status != ActivityStatus.DRAFT:
            raise Conflict(
                "activity is {status}; only a draft can be published", status=Label("activity_status", self.status)
            )
        self.status = ActivityStatus.PUBLISHED
        self.revision += 1

    def cancel(self, reason: str) -> None:
        if self.status == ActivityStatus.CANCELLED:
            raise Conflict("activity is already cancelled")
        self.status = ActivityStatus.CANCELLED
        self.cancel_reason = reason
        self.revision += 1

    def edit(self, **changes: object) -> bool:
        """Change descriptive fields (not time or capacity, which have their own rules)."""
        self._require_open_for_change()
        changed = False
        for name, value in changes.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
        if changed:
            self._normalise_times()
            self.check()
            self.revision += 1
        return changed

    def reschedule(self, starts_at: datetime, ends_at: datetime) -> datetime | None:
        """Move the activity; return the previous start when the time really changed."""
        self._require_open_for_change()
        if utc(starts_at) == utc(self.starts_at) and utc(ends_at) == utc(self.ends_at):
            return None
        previous = self.starts_at
        self.starts_at, self.ends_at = utc(starts_at), utc(ends_at)
        if self.registration_closes_at is not None and utc(self.registration_closes_at) > utc(ends_at):
            self.registration_closes_at = ends_at
        self.check()
        self.revision += 1
        return previous

    def change_capacity(
        self, capacity: int | None, max_party_size: int | None, waitlist: list[Registration]
    ) -> list[Registration]:
        """Set new limits; more places promote from the waiting list, fewer than are taken is refused."""
        self._require_open_for_change()
        if capacity is not None and capacity < self.confirmed_places:
            raise Conflict(
                "{confirmed_places} places are already confirmed; capacity cannot go below that",
                fields={"capacity": [Text("at least {confirmed_places}", confirmed_places=self.confirmed_places)]},
                confirmed_places=self.confirmed_places,
            )
        self.capacity = capacity
        if max_party_size is not None:
            self.max_party_size = max_party_size
        self.check()
        self.revision += 1
        return self._promote(waitlist)

    def _require_open_for_change(self) -> None:
        if self.status == ActivityStatus.CANCELLED:
            raise Conflict("activity is cancelled")

    # --- registrations -------------------------------------------------------------------------
    def registration_window(self) -> tuple[datetime | None, datetime]:
        return self.registration_opens_at, self.registration_closes_at or self.starts_at

    def register(
        self,
        *,
        user_id: str,
        community_id: str,
        party_size: int,
        registered_by: str,
        now: datetime,
        existing: Registration | None,
    ) -> Registration:
        """Register a household. `existing` is this user's earlier registration, if any."""
        if self.status != ActivityStatus.PUBLISHED:
            raise Conflict("activity is {status}; registration is closed", status=Label("activity_status", self.status))
        opens, closes = self.registration_window()
        if opens is not None and utc(now) < utc(opens):
            raise Conflict("registration opens at {opens}", opens=utc(opens).isoformat())
        if utc(now) >= utc(closes):
            raise Conflict("registration has closed")
        if party_size < 1 or party_size > self.max_party_size:
            raise Invalid(
                "party size out of range",
                fields={
                    "party_size": [
                        Text("between 1 and {max_party_size} per household", max_party_size=self.max_party_size)
                    ]
                },
            )
        if existing is not None and existing.is_active:
            raise Conflict("already registered for this activity", fields={"user_id": ["already registered"]})
        if self.waiting_parties == 0 and self._fits(party_size):
            status, seq = RegistrationStatus.CONFIRMED, None
            self.confirmed_places += party_size
        else:
            status, seq = RegistrationStatus.WAITLISTED, self._next_seq()
            self.waiting_parties += 1
        if existing is not None:
            # Someone who cancelled and comes back starts again at the end of the line.
            existing.party_size, existing.status, existing.waitlist_seq = party_size, status, seq
            existing.community_id, existing.registered_by, existing.updated_at = community_id, registered_by, now
            return existing
        return Registration(
            activity_id=self.id,
            user_id=user_id,
            community_id=community_id,
            party_size=party_size,
            registered_by=registered_by,
            status=status,
            waitlist_seq=seq,
            created_at=now,
            updated_at=now,
        )

    def _next_seq(self) -> int:
        self.waitlist_counter += 1
        return self.waitlist_counter

    def cancel_registration(
        self, registration: Registration, *, waitlist: list[Registration], now: datetime
    ) -> list[Registration]:
        """Cancel `registration`; return the registrations promoted from `waitlist` (in its order)."""
        if registration.status == RegistrationStatus.CANCELLED:
            raise Conflict("registration is already cancelled")
        if registration.status == RegistrationStatus.CHECKED_IN:
            raise Conflict("registration is already checked in")
        was = registration.status
        registration.status, registration.updated_at = RegistrationStatus.CANCELLED, now
        registration.waitlist_seq = None
        if was == RegistrationStatus.WAITLISTED:
            self.waiting_parties -= 1
            return []
        self.confirmed_places -= registration.party_size
        if self.status != ActivityStatus.PUBLISHED:
            return []
        return self._promote([r for r in waitlist if r.id != registration.id], now=now)

    def _promote(self, waitlist: list[Registration], now: datetime | None = None) -> list[Registration]:
        promoted = []
        for candidate in sorted(waitlist, key=lambda r: r.waitlist_seq or 0):
            if candidate.status != RegistrationStatus.WAITLISTED or not self._fits(candidate.party_size):
                break
            candidate.status, candidate.waitlist_seq = RegistrationStatus.CONFIRMED, None
            candidate.updated_at = now or candidate.updated_at
            self.confirmed_places += candidate.party_size
            self.waiting_parties -= 1
            promoted.append(candidate)
        return promoted

    def waitlist_position(self, registration: Registration, waitlist: list[Registration]) -> int | None:
        if registration.status != RegistrationStatus.WAITLISTED:
            return None
        ahead = [
            r
            for r in waitlist
            if r.status == RegistrationStatus.WAITLISTED and (r.waitlist_seq or 0) < (registration.waitlist_seq or 0)
        ]
        return len(ahead) + 1

    # --- check-in ----------------------------------------------------------------------------------
    def check_in(
        self,
        registration: Registration,
        *,
        participants: int | None,
        method: str,
        recorded_by: str,
        now: datetime,
    ) -> Checkin:
        self._require_checkin_open(now)
        if registration.status == RegistrationStatus.CHECKED_IN:
            raise Conflict("already checked in")
        if registration.status != RegistrationStatus.CONFIRMED:
            raise Conflict(
                "registration is {status}; only a confirmed one can check in",
                status=Label("registration_status", registration.status),
            )
        count = registration.party_size if participants is None else participants
        if count < 1 or count > registration.party_size:
            raise Invalid(
                "participants out of range",
                fields={
                    "participants": [
                        Text("between 1 and the party size {party_size}", party_size=registration.party_size)
                    ]
                },
            )
        registration.status, registration.updated_at = RegistrationStatus.CHECKED_IN, now
        return Checkin(
            activity_id=self.id,
            community_id=registration.community_id,
            participants=count,
            method=method,
            recorded_by=recorded_by,
            checked_in_at=now,
            registration_id=registration.id,
            user_id=registration.user_id,
        )

    def walk_in(
        self, *, community_id: str, participants: int, user_id: str | None, recorded_by: str, now: datetime
    ) -> Checkin:
        """Someone who came without registering: counted, and holding no place."""
        self._require_checkin_open(now)
        if community_id not in self.community_ids:
            raise Invalid("not a community of this activity", fields={"community_id": ["not one of the activity's"]})
        if participants < 1:
            raise Invalid("participants out of range", fields={"participants": ["at least 1"]})
        return Checkin(
            activity_id=self.id,
            community_id=community_id,
            participants=participants,
            method="walk_in",
            recorded_by=recorded_by,
            checked_in_at=now,
            user_id=user_id,
        )

    def _require_checkin_open(self, now: datetime) -> None:
        if self.status != ActivityStatus.PUBLISHED:
            raise Conflict("activity is {status}; no check-in", status=Label("activity_status", self.status))
        if utc(now) < utc(self.starts_at) - CHECKIN_OPENS_BEFORE:
            raise Conflict("check-in has not opened yet")
        if utc(now) > utc(self.ends_at) + CHECKIN_CLOSES_AFTER:
            raise Conflict("check-in has closed")
