"""Meetings, their agenda and participants: the rules a meeting lives by. No framework here.

Status: scheduled -> in_progress -> concluded; a scheduled meeting may instead be cancelled, or
rescheduled (it stays scheduled, with new times, the reason and the previous start kept).
Illegal transitions raise Conflict (HTTP 409) naming the current status.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from linli_kit.errors import N_, Conflict, Invalid, Label, Text
from linli_meetings.domain.procedure import MeetingPolicy, ParticipantRole

BUILT_IN_TYPES = {
    "bench": "Bench meeting (板凳会)",
    "pavilion": "Pavilion meeting (凉亭会)",
    "round_table": "Round-table meeting (圆桌会)",
}


class Status(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    CONCLUDED = "concluded"
    CANCELLED = "cancelled"


class Enrolment(StrEnum):
    """How someone came to be a participant."""

    INVITED = "invited"
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    WALK_IN = "walk_in"


class Response(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PeopleCounts:
    """Who a meeting has, by how they came and whether they came."""

    invited: int = 0
    confirmed: int = 0
    registered: int = 0
    waitlisted: int = 0
    checked_in: int = 0

    @classmethod
    def tally(cls, rows: Iterable[tuple[str, str, bool, int]]) -> PeopleCounts:
        """From (enrolment, response, present, how many) rows."""
        counts = dict.fromkeys(("invited", "confirmed", "registered", "waitlisted", "checked_in"), 0)
        for enrolment, response, present, n in rows:
            active = enrolment != Enrolment.WAITLISTED and response not in (Response.DECLINED, Response.CANCELLED)
            if enrolment == Enrolment.INVITED and active:
                counts["invited"] += n
            if enrolment == Enrolment.REGISTERED and active:
                counts["registered"] += n
            if response == Response.CONFIRMED and active:
                counts["confirmed"] += n
            if enrolment == Enrolment.WAITLISTED and response != Response.CANCELLED:
                counts["waitlisted"] += n
            if present:
                counts["checked_in"] += n
        return cls(**counts)


@dataclass(eq=False)
class AgendaItem:
    title: str
    position: int
    duration_minutes: int | None = None
    issue_id: str | None = None
    notes: str | None = None
    id: str = field(default_factory=new_id)
    meeting_id: str | None = None


@dataclass(eq=False)
class Participant:
    role: str
    enrolment: str
    user_id: str | None = None
    name: str | None = None
    organisation_id: str | None = None
    # The body's name as given when it was invited (a party branch, a property company...).
    organisation_name: str | None = None
    # A member of the Communist Party, shown on the participants list (亮身份) and counted in the
    # street's figures; always true for the role party_member.
    party_member: bool = False
    response: str = Response.PENDING.value
    enrolled_at: datetime = field(default_factory=utcnow)
    checked_in_at: datetime | None = None
    check_in_method: str | None = None  # staff | code
    id: str = field(default_factory=new_id)
    meeting_id: str | None = None

    @property
    def is_active(self) -> bool:
        """Counted as one of the meeting's people (not declined, not cancelled, not waiting)."""
        return self.enrolment != Enrolment.WAITLISTED and self.response not in (Response.DECLINED, Response.CANCELLED)

    @property
    def present(self) -> bool:
        return self.checked_in_at is not None


@dataclass(eq=False)
class Meeting:
    community_id: str
    meeting_type: str
    title: str
    starts_at: datetime
    ends_at: datetime
    convener_id: str
    local_date: date
    place: str | None = None
    online_url: str | None = None
    description: str | None = None
    public: bool = True
    capacity: int | None = None
    series_id: str | None = None
    status: str = Status.SCHEDULED.value
    status_reason: str | None = None
    previous_starts_at: datetime | None = None
    rescheduled_count: int = 0
    checkin_code: str | None = None
    minutes: str | None = None
    closing_report: str | None = None
    attendees_count: int | None = None
    photo_urls: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    concluded_at: datetime | None = None
    # When people were first told of the meeting. A recurring meeting's later occurrences are
    # announced as they come near, not all at once when the series is created.
    announced_at: datetime | None = None
    revision: int = 1
    created_at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)
    agenda: list[AgendaItem] = field(default_factory=list)
    participants: list[Participant] = field(default_factory=list)

    # --- creation and times --------------------------------------------------------------------
    @staticmethod
    def check_times(starts_at: datetime, ends_at: datetime) -> None:
        problems = {}
        for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
            if value.tzinfo is None:
                problems[name] = ["must carry a UTC offset"]
        if not problems and ends_at <= starts_at:
            problems["ends_at"] = ["must be after starts_at"]
        if problems:
            raise Invalid("invalid meeting times", fields=problems)

    @staticmethod
    def check_place(place: str | None, online_url: str | None) -> None:
        if not place and not online_url:
            raise Invalid("a meeting needs a place or an online link", fields={"place": ["give a place or online_url"]})

    def set_times(self, starts_at: datetime, ends_at: datetime, tz: ZoneInfo) -> None:
        self.check_times(starts_at, ends_at)
        self.starts_at = starts_at.astimezone(UTC)
        self.ends_at = ends_at.astimezone(UTC)
        self.local_date = starts_at.astimezone(tz).date()

    def touch(self) -> None:
        self.revision += 1

    @property
    def announced(self) -> bool:
        return self.announced_at is not None

    def announce(self, now: datetime) -> bool:
        """Mark the meeting announced; False if it already was (nothing to tell)."""
        if self.announced_at is not None:
            return False
        self.announced_at = now
        return True

    # --- status transitions --------------------------------------------------------------------
    # What `_require` names, as words to translate.
    _ACTIONS = (
        N_("answer an invitation to"),
        N_("cancel"),
        N_("cancel a registration for"),
        N_("change the agenda of"),
        N_("change the participants of"),
        N_("check in to"),
        N_("conclude"),
        N_("edit"),
        N_("invite people to"),
        N_("record the minutes of"),
        N_("register for"),
        N_("reschedule"),
        N_("start"),
    )

    def _require(self, *allowed: Status, action: str) -> None:
        if self.status not in allowed:
            raise Conflict(
                "cannot {action} a meeting that is {status}",
                fields={"status": [self.status]},
                action=Text(action),
                status=Label("meeting_status", self.status),
            )

    def reschedule(self, starts_at: datetime, ends_at: datetime, reason: str | None, tz: ZoneInfo) -> None:
        self._require(Status.SCHEDULED, action="reschedule")
        previous = self.starts_at
        self.set_times(starts_at, ends_at, tz)
        self.previous_starts_at = previous
        self.rescheduled_count += 1
        self.status_reason = reason
        self.touch()

    def cancel(self, reason: str) -> None:
        self._require(Status.SCHEDULED, action="cancel")
        self.status = Status.CANCELLED.value
        self.status_reason = reason
        self.touch()

    def start(self, now: datetime) -> None:
        self._require(Status.SCHEDULED, action="start")
        self.status = Status.IN_PROGRESS.value
        self.started_at = now
        # The code is shown on a screen or a sheet at the meeting; people present check in with it.
        self.checkin_code = f"{secrets.randbelow(1_000_000):06d}"
        self.touch()

    def conclude(
        self,
        now: datetime,
        *,
        minutes: str | None,
        closing_report: str | None,
        attendees_count: int | None,
        photo_urls: list[str] | None,
    ) -> None:
        self._require(Status.IN_PROGRESS, action="conclude")
        self.status = Status.CONCLUDED.value
        self.concluded_at = now
        self.minutes = minutes
        self.closing_report = closing_report
        # Bench meetings in a courtyard often have more people than check in: the convener may
        # give the head count; otherwise it is who checked in.
        self.attendees_count = attendees_count if attendees_count is not None else self.checked_in_count
        self.photo_urls = list(photo_urls or [])
        self.checkin_code = None
        self.touch()

    def record_minutes(
        self,
        *,
        minutes: str | None,
        closing_report: str | None,
        attendees_count: int | None,
        photo_urls: list[str] | None,
    ) -> None:
        """Minutes are often written up after the meeting: allowed while it runs and once concluded."""
        self._require(Status.IN_PROGRESS, Status.CONCLUDED, action="record the minutes of")
        if minutes is not None:
            self.minutes = minutes
        if closing_report is not None:
            self.closing_report = closing_report
        if attendees_count is not None:
            self.attendees_count = attendees_count
        if photo_urls is not None:
            self.photo_urls = list(photo_urls)
        self.touch()

    def update_details(self, **changes: object) -> bool:
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="edit")
        changed = False
        for name, value in changes.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
        if changed:
            self.check_place(self.place, self.online_url)
            self.touch()
        return changed

    # --- agenda --------------------------------------------------------------------------------
    def add_agenda_item(
        self, title: str, *, duration_minutes: int | None, issue_id: str | None, notes: str | None = None
    ) -> AgendaItem:
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="change the agenda of")
        if issue_id and any(item.issue_id == issue_id for item in self.agenda):
            raise Conflict("this issue is already on the agenda", fields={"issue_id": ["already on the agenda"]})
        position = max((item.position for item in self.agenda), default=0) + 1
        item = AgendaItem(
            title=title, position=position, duration_minutes=duration_minutes, issue_id=issue_id, notes=notes
        )
        self.agenda.append(item)
        self.touch()
        return item

    def edit_agenda_item(self, item: AgendaItem, *, position: int | None = None, **changes: str | int | None) -> None:
        """Title, duration or notes of an item, and its place in the order."""
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="change the agenda of")
        for name, value in changes.items():
            if name not in ("title", "duration_minutes", "notes"):
                raise Invalid("not an agenda item field", fields={name: ["cannot be changed"]})
            setattr(item, name, value)
        if position is not None:
            self.move_agenda_item(item, position)
        else:
            self.touch()

    def remove_agenda_item(self, item: AgendaItem) -> None:
        self._require(Status.SCHEDULED, action="change the agenda of")
        self.agenda.remove(item)
        self._renumber(self.ordered_agenda())
        self.touch()

    def move_agenda_item(self, item: AgendaItem, position: int) -> None:
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="change the agenda of")
        ordered = [i for i in self.ordered_agenda() if i is not item]
        position = max(1, min(position, len(ordered) + 1))
        ordered.insert(position - 1, item)
        self._renumber(ordered)
        self.touch()

    def ordered_agenda(self) -> list[AgendaItem]:
        return sorted(self.agenda, key=lambda i: i.position)

    @staticmethod
    def _renumber(items: list[AgendaItem]) -> None:
        for n, item in enumerate(items, start=1):
            item.position = n

    def agenda_item(self, item_id: str) -> AgendaItem | None:
        return next((i for i in self.agenda if i.id == item_id), None)

    @property
    def issue_ids(self) -> list[str]:
        return [i.issue_id for i in self.ordered_agenda() if i.issue_id]

    # --- participants ----------------------------------------------------------------------------
    def participant_of(self, user_id: str) -> Participant | None:
        return next((p for p in self.participants if p.user_id == user_id), None)

    def committee(self, organisation_id: str | None) -> Participant | None:
        """The owners' committee `organisation_id` invited as a body (not a member invited by name)."""
        if organisation_id is None:
            return None
        return next(
            (
                p
                for p in self.participants
                if p.role == ParticipantRole.OWNERS_COMMITTEE
                and p.user_id is None
                and p.organisation_id == organisation_id
                and p.response != Response.CANCELLED
            ),
            None,
        )

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.id == participant_id), None)

    @staticmethod
    def check_person(person: dict[str, Any], prefix: str = "") -> None:
        """Who is invited: a user, a person by name, or a body (a party organisation needs its id;
        its name comes from the register unless given). Raises Invalid naming each bad field, with
        `prefix` (e.g. "participants.3.")."""
        problems: dict[str, list[str]] = {}
        role = person.get("role")
        if role == ParticipantRole.PARTY_ORGANISATION:
            if not person.get("organisation_id"):
                problems[prefix + "organisation_id"] = ["required for a party organisation"]
            if person.get("party_member"):
                problems[prefix + "party_member"] = ["a party organisation is a body, not a member"]
        elif role == ParticipantRole.OWNERS_COMMITTEE and person.get("organisation_id"):
            pass  # the committee as a body: its members vote for it (one vote)
        elif person.get("user_id") is None and not person.get("name"):
            problems[prefix + "user_id"] = ["give a user_id or a name"]
        if role == ParticipantRole.PARTY_MEMBER and person.get("party_member") is False:
            problems[prefix + "party_member"] = ["the role party_member is a party member"]
        if problems:
            raise Invalid("who is invited?", fields=problems)

    @staticmethod
    def _participant(person: dict[str, Any]) -> Participant:
        role = str(person["role"])
        return Participant(
            role=role,
            enrolment=Enrolment.INVITED.value,
            user_id=person.get("user_id"),
            name=person.get("name"),
            organisation_id=person.get("organisation_id"),
            organisation_name=person.get("organisation_name"),
            party_member=bool(person.get("party_member")) or role == ParticipantRole.PARTY_MEMBER,
        )

    def _party_organisation(self, organisation_id: str | None) -> Participant | None:
        return next(
            (
                p
                for p in self.participants
                if p.role == ParticipantRole.PARTY_ORGANISATION
                and p.organisation_id == organisation_id
                and p.response != Response.CANCELLED
            ),
            None,
        )

    def invite(
        self,
        *,
        role: str,
        user_id: str | None,
        name: str | None,
        organisation_id: str | None,
        organisation_name: str | None = None,
        party_member: bool | None = None,
    ) -> Participant:
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="invite people to")
        person: dict[str, Any] = {
            "role": role,
            "user_id": user_id,
            "name": name,
            "organisation_id": organisation_id,
            "organisation_name": organisation_name,
            "party_member": party_member,
        }
        self.check_person(person)
        if role == ParticipantRole.PARTY_ORGANISATION and self._party_organisation(organisation_id) is not None:
            raise Conflict(
                "this party organisation is already invited", fields={"organisation_id": ["already invited"]}
            )
        if user_id is None and self.committee(organisation_id) is not None:
            raise Conflict("this owners' committee is already invited", fields={"organisation_id": ["already invited"]})
        existing = self.participant_of(user_id) if user_id else None
        if existing is not None:
            if existing.enrolment == Enrolment.INVITED and existing.response != Response.CANCELLED:
                raise Conflict("already invited", fields={"user_id": ["already invited"]})
            # A registrant (or someone waiting) who is then invited takes an invited seat.
            existing.enrolment = Enrolment.INVITED.value
            existing.role = role
            existing.response = Response.PENDING.value
            existing.organisation_id = organisation_id or existing.organisation_id
            existing.organisation_name = organisation_name or existing.organisation_name
            if party_member is not None or role == ParticipantRole.PARTY_MEMBER:
                existing.party_member = bool(party_member) or role == ParticipantRole.PARTY_MEMBER
            self.touch()
            return existing
        participant = self._participant(person)
        self.participants.append(participant)
        self.touch()
        return participant

    def invite_all(self, people: list[dict[str, Any]]) -> None:
        """The invitation list of a new meeting: one participant per person (and per party
        organisation), nobody twice."""
        self._require(Status.SCHEDULED, action="invite people to")
        seen = {p.user_id for p in self.participants if p.user_id}
        bodies: set[str] = set()
        invited = []
        for n, person in enumerate(people):
            self.check_person(person, prefix=f"participants.{n}.")
            user_id = person.get("user_id")
            if user_id is not None and user_id in seen:
                raise Invalid("invited twice", fields={f"participants.{n}.user_id": ["already on the list"]})
            if user_id is not None:
                seen.add(user_id)
            if person.get("role") == ParticipantRole.PARTY_ORGANISATION:
                if person["organisation_id"] in bodies:
                    raise Invalid(
                        "invited twice", fields={f"participants.{n}.organisation_id": ["already on the list"]}
                    )
                bodies.add(person["organisation_id"])
            invited.append(self._participant(person))
        # One assignment of the collection instead of an append per person.
        self.participants = [*self.participants, *invited]

    def mark_party_member(self, participant: Participant, party_member: bool) -> None:
        """Staff mark (or unmark) a participant as a party member, also after the meeting: the
        figures count what the list says."""
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, Status.CONCLUDED, action="change the participants of")
        if participant.role == ParticipantRole.PARTY_ORGANISATION and party_member:
            raise Invalid("not a person", fields={"party_member": ["a party organisation is a body, not a member"]})
        if participant.role == ParticipantRole.PARTY_MEMBER and not party_member:
            raise Invalid(
                "a party member", fields={"party_member": ["the role party_member is a party member; change the role"]}
            )
        participant.party_member = party_member

    def respond(self, participant: Participant, confirmed: bool) -> None:
        self._require(Status.SCHEDULED, Status.IN_PROGRESS, action="answer an invitation to")
        if participant.enrolment != Enrolment.INVITED:
            raise Conflict(
                "only an invitation can be confirmed or declined", fields={"enrolment": [participant.enrolment]}
            )
        participant.response = (Response.CONFIRMED if confirmed else Response.DECLINED).value

    def registered_count(self) -> int:
        return sum(1 for p in self.participants if p.enrolment == Enrolment.REGISTERED and p.is_active)

    def register(self, user_id: str, name: str | None) -> Participant:
        """A resident registers for an open meeting: a seat while capacity lasts, then the waiting list."""
        self._require(Status.SCHEDULED, action="register for")
        if not self.public:
            raise Conflict("this meeting is by invitation only", fields={"public": ["false"]})
        existing = self.participant_of(user_id)
        if existing is not None and existing.response != Response.CANCELLED:
            raise Conflict("already registered or invited", fields={"user_id": [existing.enrolment]})
        full = self.capacity is not None and self.registered_count() >= self.capacity
        enrolment = Enrolment.WAITLISTED if full else Enrolment.REGISTERED
        if existing is not None:
            existing.enrolment = enrolment.value
            existing.response = Response.CONFIRMED.value
            existing.enrolled_at = utcnow()
            participant = existing
        else:
            participant = Participant(
                role=ParticipantRole.RESIDENT.value,
                enrolment=enrolment.value,
                user_id=user_id,
                name=name,
                response=Response.CONFIRMED.value,
            )
            self.participants.append(participant)
        self.touch()
        return participant

    def cancel_registration(self, participant: Participant) -> Participant | None:
        """Frees the seat; the first on the waiting list takes it. Returns who was promoted."""
        self._require(Status.SCHEDULED, action="cancel a registration for")
        if participant.enrolment not in (Enrolment.REGISTERED, Enrolment.WAITLISTED):
            raise Conflict("not a registration", fields={"enrolment": [participant.enrolment]})
        if participant.response == Response.CANCELLED:
            raise Conflict("registration already cancelled", fields={"response": [participant.response]})
        had_seat = participant.enrolment == Enrolment.REGISTERED
        participant.response = Response.CANCELLED.value
        promoted = None
        if had_seat:
            waiting = sorted(
                (
                    p
                    for p in self.participants
                    if p.enrolment == Enrolment.WAITLISTED and p.response != Response.CANCELLED
                ),
                key=lambda p: p.enrolled_at,
            )
            if waiting:
                promoted = waiting[0]
                promoted.enrolment = Enrolment.REGISTERED.value
        self.touch()
        return promoted

    def check_in(self, participant: Participant, now: datetime, method: str) -> None:
        self._require(Status.IN_PROGRESS, action="check in to")
        if participant.present:
            raise Conflict("already checked in", fields={"participant": ["already checked in"]})
        participant.checked_in_at = now
        participant.check_in_method = method

    def check_in_with_code(self, code: str, user_id: str, now: datetime) -> Participant:
        """Someone at the meeting types the code shown there; a resident without a seat walks in."""
        self._require(Status.IN_PROGRESS, action="check in to")
        if not self.checkin_code or not secrets.compare_digest(code, self.checkin_code):
            raise Invalid("wrong check-in code", fields={"code": ["does not match the code shown at the meeting"]})
        participant = self.participant_of(user_id)
        if participant is None:
            participant = Participant(
                role=ParticipantRole.RESIDENT.value,
                enrolment=Enrolment.WALK_IN.value,
                user_id=user_id,
                response=Response.CONFIRMED.value,
            )
            self.participants.append(participant)
        elif participant.enrolment == Enrolment.WAITLISTED or participant.response in (
            Response.DECLINED,
            Response.CANCELLED,
        ):
            # They came after all: present people are participants.
            participant.enrolment = (
                Enrolment.WALK_IN.value if participant.enrolment != Enrolment.INVITED else participant.enrolment
            )
            participant.response = Response.CONFIRMED.value
        self.check_in(participant, now, "code")
        return participant

    @property
    def counts(self) -> PeopleCounts:
        return PeopleCounts.tally((p.enrolment, p.response, p.present, 1) for p in self.participants)

    @property
    def checked_in_count(self) -> int:
        return sum(1 for p in self.participants if p.present)

    def participant_ids(self) -> list[str]:
        """Who should hear about this meeting: invited people and registrants with an account."""
        return [p.user_id for p in self.participants if p.user_id and p.is_active]

    # --- voting members ----------------------------------------------------------------------------
    def voting_members(self, policy: MeetingPolicy) -> list[Participant]:
        roles = {r.value for r in policy.voting_roles}
        return [p for p in self.participants if p.role in roles and (p.is_active or p.present)]

    def present_voting_members(self, policy: MeetingPolicy) -> list[Participant]:
        return [p for p in self.voting_members(policy) if p.present]
