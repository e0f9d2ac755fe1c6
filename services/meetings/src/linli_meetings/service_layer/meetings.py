"""Use cases of meetings: schedule, edit, reschedule, cancel, run and conclude; agenda; participants,
registrations and attendance; recurring series. Each change and its events commit together."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound, Text
from linli_meetings.adapters.repository import MEETING_AND_EVENT_INSERT, meeting_parameters
from linli_meetings.domain.meeting import BUILT_IN_TYPES, AgendaItem, Meeting, Participant, PeopleCounts, Status
from linli_meetings.domain.recurrence import Frequency, Recurrence
from linli_meetings.service_layer import access, events
from linli_meetings.service_layer.issue_privacy import AgendaItemLike, agenda_view, hidden_issues, hidden_of_private
from linli_meetings.service_layer.organisations import named_participant, named_participants
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

DETAIL_FIELDS = ("title", "description", "place", "online_url", "public", "capacity")
# Occurrences of a recurring meeting are announced this long before they start (a timer of the
# worker announces them as they come near), so a weekly series does not tell people 52 times at once.
ANNOUNCE_AHEAD = timedelta(days=14)


# --- reading ------------------------------------------------------------------------------------------
def load_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, *, lock: bool = False) -> Meeting:
    meeting = uow.meetings.get(meeting_id, lock=lock)
    if meeting is None or not access.can_see_meeting(principal, uow.meetings, meeting):
        # A meeting outside your scope is as good as absent: its existence is not disclosed.
        raise NotFound("meeting {meeting_id} not found", meeting_id=meeting_id)
    return meeting


def managed_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, *, lock: bool = False) -> Meeting:
    meeting = load_meeting(uow, principal, meeting_id, lock=lock)
    access.require_manager(principal, uow.meetings, meeting.community_id)
    return meeting


def get_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str) -> MeetingView:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id)
        return MeetingView(meeting, hidden_issues(uow, principal, meeting.issue_ids))


class MeetingView:
    """A meeting as a caller sees it: an agenda item on a private issue hidden from them shows
    a placeholder instead of its title (service_layer.issue_privacy)."""

    def __init__(self, meeting: Meeting, hidden: set[str]) -> None:
        self._meeting = meeting
        self._hidden = hidden

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meeting, name)

    def ordered_agenda(self) -> list[AgendaItemLike]:
        return agenda_view(self._meeting.ordered_agenda(), self._hidden)


@dataclass
class MeetingPage:
    """A page of a list of meetings as the caller sees it: each meeting as stored (rows of
    `LISTED_COLUMNS`), its agenda (a hidden issue's item without its title), how many people it
    has (not who), and how many meetings the list has in all."""

    rows: list[Any]
    agenda: dict[str, list[AgendaItemLike]]
    counts: dict[str, PeopleCounts]
    total: int


def list_meetings(
    uow: MeetingsUnitOfWork, principal: Principal, *, offset: int, limit: int, **filters: Any
) -> MeetingPage:
    with uow:
        rows, total = uow.meetings.list_page(access.visible_meetings(principal), offset=offset, limit=limit, **filters)
        ids = [row.id for row in rows]
        if not ids:
            return MeetingPage([], {}, {}, total)
        items = uow.meetings.listed_agenda(ids, principal.user_id)
        private = {item.issue_id: item.private_in for item in items if item.private_in is not None}
        hidden = hidden_of_private(uow, principal, private) if private else set()
        agenda: dict[str, list[AgendaItemLike]] = {i: [] for i in ids}
        for item in items:
            agenda[item.meeting_id].append(item)
        if hidden:
            agenda = {i: agenda_view(a, hidden) for i, a in agenda.items()}
        counts = uow.meetings.people_counts(ids)
        return MeetingPage(rows, agenda, counts, total)


def search_meetings(uow: MeetingsUnitOfWork, principal: Principal, terms: list[str], limit: int) -> list[Any]:
    """The meetings the caller's list would show that hold every term (rows of id, title,
    description, community_id, starts_at, in_title)."""
    with uow:
        return uow.meetings.search(access.visible_meetings(principal), terms, limit)


def checkin_code(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str) -> str:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id)
        if meeting.checkin_code is None:
            raise Conflict(
                "the check-in code exists while the meeting is in progress; it is {status}",
                fields={"status": [meeting.status]},
                status=Label("meeting_status", meeting.status),
            )
        return meeting.checkin_code


# --- scheduling ---------------------------------------------------------------------------------------
def _check_type(uow: MeetingsUnitOfWork, community_id: str, meeting_type: str) -> None:
    if meeting_type not in BUILT_IN_TYPES and not uow.meetings.has_meeting_type(community_id, meeting_type):
        raise Invalid(
            "unknown meeting type",
            fields={
                "meeting_type": [
                    Text("not one of {types} nor a type of this community", types=", ".join(BUILT_IN_TYPES))
                ]
            },
        )


def _new_meeting(uow: MeetingsUnitOfWork, principal: Principal, data: dict[str, Any]) -> Meeting:
    Meeting.check_times(data["starts_at"], data["ends_at"])
    Meeting.check_place(data.get("place"), data.get("online_url"))
    meeting = Meeting(
        community_id=data["community_id"],
        meeting_type=data["meeting_type"],
        title=data["title"],
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        local_date=data["starts_at"].astimezone(uow.tz).date(),
        convener_id=data.get("convener_id") or principal.user_id,
        place=data.get("place"),
        online_url=data.get("online_url"),
        description=data.get("description"),
        public=data.get("public", True),
        capacity=data.get("capacity"),
        series_id=data.get("series_id"),
    )
    meeting.set_times(data["starts_at"], data["ends_at"], uow.tz)
    meeting.agenda = [
        AgendaItem(
            title=item["title"],
            position=n,
            duration_minutes=item.get("duration_minutes"),
            issue_id=item.get("issue_id"),
            notes=item.get("notes"),
        )
        for n, item in enumerate(data.get("agenda") or [], start=1)
    ]
    issue_ids = [i.issue_id for i in meeting.agenda if i.issue_id]
    if len(issue_ids) != len(set(issue_ids)):
        raise Invalid("an issue appears twice on the agenda", fields={"agenda": ["each issue at most once"]})
    meeting.invite_all(data.get("participants") or [])
    meeting.revision = 1
    return meeting


def schedule_meeting(uow: MeetingsUnitOfWork, principal: Principal, data: dict[str, Any]) -> Meeting:
    with uow:
        access.require_manager(principal, uow.meetings, data["community_id"])
        _check_type(uow, data["community_id"], data["meeting_type"])
        people = named_participants(uow, data["community_id"], data.get("participants") or [])
        meeting = _new_meeting(uow, principal, data | {"participants": people})
        meeting.announce(uow.now())
        uow.publish(events.scheduled(meeting, uow.meetings.street_for_event(meeting.community_id)))
        # Written with Core statements of fixed text rather than an ORM flush (the meeting is
        # returned as built). It is scheduled: none of the statistics' counts change.
        assert meeting.status == Status.SCHEDULED
        if uow.session.get_bind().dialect.name == "postgresql" and not meeting.agenda and not meeting.participants:
            # The meeting and its event in one statement, atomic by itself: when the checks read
            # nothing, it is the whole transaction (no BEGIN and COMMIT round trips).
            parameters = meeting_parameters(meeting)
            uow.meetings.one_statement_follows()
            commit_or_conflict(uow, lambda: uow.commit_with(MEETING_AND_EVENT_INSERT, parameters))
        else:
            uow.meetings.insert_new(meeting)
            commit_or_conflict(uow)
        return meeting


def schedule_series(uow: MeetingsUnitOfWork, principal: Principal, data: dict[str, Any]) -> list[Meeting]:
    """A recurring meeting: one meeting per occurrence, each scheduled (and announced) on its own."""
    recurrence = Recurrence(
        frequency=Frequency(data["frequency"]),
        first_date=data["first_date"],
        start_time=data["start_time"],
        duration=timedelta(minutes=data["duration_minutes"]),
        interval=data.get("interval", 1),
        weekdays=tuple(data.get("weekdays") or ()),
        count=data.get("count"),
        until=data.get("until"),
    )
    occurrences = recurrence.occurrences(uow.tz)
    with uow:
        access.require_manager(principal, uow.meetings, data["community_id"])
        _check_type(uow, data["community_id"], data["meeting_type"])
        data = data | {"participants": named_participants(uow, data["community_id"], data.get("participants") or [])}
        series_id = str(uuid.uuid4())
        uow.meetings.add_series(
            {
                "id": series_id,
                "community_id": data["community_id"],
                "meeting_type": data["meeting_type"],
                "title": data["title"],
                "rrule": recurrence.rrule_text(),
                "timezone": uow.tz.key,
                "created_by": principal.user_id,
                "created_at": uow.now(),
            }
        )
        street_id = uow.meetings.street_for_event(data["community_id"])
        created = []
        for starts_at, ends_at in occurrences:
            meeting = _new_meeting(
                uow, principal, data | {"starts_at": starts_at, "ends_at": ends_at, "series_id": series_id}
            )
            uow.meetings.add(meeting)
            if meeting.starts_at <= uow.now() + ANNOUNCE_AHEAD:
                meeting.announce(uow.now())
                uow.publish(events.scheduled(meeting, street_id))
            created.append(meeting)
        commit_or_conflict(uow)
        return created


def update_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, changes: dict[str, Any]) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        details = {k: v for k, v in changes.items() if k in DETAIL_FIELDS}
        if "meeting_type" in changes:
            _check_type(uow, meeting.community_id, changes["meeting_type"])
            details["meeting_type"] = changes["meeting_type"]
        if meeting.update_details(**details) and meeting.announced:
            # Details that change what people were told go out as a fresh scheduled snapshot.
            uow.publish(events.scheduled(meeting, uow.meetings.street_for_event(meeting.community_id)))
        commit_or_conflict(uow)
        return meeting


def reschedule_meeting(
    uow: MeetingsUnitOfWork,
    principal: Principal,
    meeting_id: str,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str | None,
) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        previous = meeting.starts_at
        meeting.reschedule(starts_at, ends_at, reason, uow.tz)
        if meeting.announced:  # an occurrence nobody was told of yet is announced with its new times
            uow.publish(
                events.rescheduled(meeting, previous, reason, uow.meetings.street_for_event(meeting.community_id))
            )
        commit_or_conflict(uow)
        return meeting


def cancel_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, *, reason: str) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        meeting.cancel(reason)
        if meeting.announced:
            uow.publish(events.cancelled(meeting, reason, uow.meetings.street_for_event(meeting.community_id)))
        commit_or_conflict(uow)
        return meeting


def start_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        meeting.start(uow.now())
        commit_or_conflict(uow)
        return meeting


def conclude_meeting(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        if any(d.is_open for d in uow.meetings.decisions_of(meeting.id)):
            raise Conflict("a motion is still open: record or withdraw it first", fields={"motions": ["open"]})
        meeting.conclude(
            uow.now(),
            minutes=data.get("minutes"),
            closing_report=data.get("closing_report"),
            attendees_count=data.get("attendees_count"),
            photo_urls=data.get("photo_urls"),
        )
        uow.meetings.record_deliberations(meeting)
        uow.publish(events.concluded(meeting, uow.meetings.street_for_event(meeting.community_id)))
        commit_or_conflict(uow)
        return meeting


def record_minutes(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> Meeting:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        meeting.record_minutes(
            minutes=data.get("minutes"),
            closing_report=data.get("closing_report"),
            attendees_count=data.get("attendees_count"),
            photo_urls=data.get("photo_urls"),
        )
        commit_or_conflict(uow)
        return meeting


def announce_due(uow: MeetingsUnitOfWork, *, limit: int = 500) -> int:
    """Announce the occurrences that have come within ANNOUNCE_AHEAD of their start (worker timer)."""
    with uow:
        due = uow.meetings.unannounced_before(uow.now() + ANNOUNCE_AHEAD, limit=limit)
        for meeting in due:
            meeting.announce(uow.now())
            uow.publish(events.scheduled(meeting, uow.meetings.street_for_event(meeting.community_id)))
        commit_or_conflict(uow)
        return len(due)


# --- agenda --------------------------------------------------------------------------------------------
def add_agenda_item(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> AgendaItem:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        item = meeting.add_agenda_item(
            data["title"],
            duration_minutes=data.get("duration_minutes"),
            issue_id=data.get("issue_id"),
            notes=data.get("notes"),
        )
        if data.get("position") is not None:
            meeting.move_agenda_item(item, data["position"])
        if item.issue_id:
            # The issues service counts consultations from this (and from the snapshots). An
            # occurrence not yet announced is announced now, its snapshot carrying the item.
            street_id = uow.meetings.street_for_event(meeting.community_id)
            if meeting.announce(uow.now()):
                uow.publish(events.scheduled(meeting, street_id))
            else:
                uow.publish(events.agenda_item_added(meeting, item, street_id))
        commit_or_conflict(uow)
        return item


def update_agenda_item(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, item_id: str, changes: dict[str, Any]
) -> AgendaItem:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        item = meeting.agenda_item(item_id)
        if item is None:
            raise NotFound("agenda item {item_id} not found", item_id=item_id)
        meeting.edit_agenda_item(item, **changes)
        commit_or_conflict(uow)
        return item


def remove_agenda_item(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, item_id: str) -> None:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        item = meeting.agenda_item(item_id)
        if item is None:
            raise NotFound("agenda item {item_id} not found", item_id=item_id)
        meeting.remove_agenda_item(item)
        if item.issue_id and meeting.announced:
            # The snapshot without the item tells the issue side it left the agenda.
            uow.publish(events.scheduled(meeting, uow.meetings.street_for_event(meeting.community_id)))
        commit_or_conflict(uow)


# --- participants ------------------------------------------------------------------------------------------
def invite(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> Participant:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        data = named_participant(uow, meeting.community_id, data)
        participant = meeting.invite(
            role=data["role"],
            user_id=data.get("user_id"),
            name=data.get("name"),
            organisation_id=data.get("organisation_id"),
            organisation_name=data.get("organisation_name"),
            party_member=data.get("party_member"),
        )
        commit_or_conflict(uow)
        return participant


def mark_party_member(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, participant_id: str, party_member: bool
) -> Participant:
    """Staff mark a participant as a party member (or correct the mark)."""
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        participant = meeting.participant(participant_id)
        if participant is None:
            raise NotFound("participant {participant_id} not found", participant_id=participant_id)
        meeting.mark_party_member(participant, party_member)
        commit_or_conflict(uow)
        return participant


def respond_to_invitation(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, *, confirmed: bool
) -> Participant:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id, lock=True)
        participant = meeting.participant_of(principal.user_id)
        if participant is None:
            raise NotFound("you are not invited to this meeting")
        meeting.respond(participant, confirmed)
        commit_or_conflict(uow)
        return participant


def register(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, name: str | None) -> Participant:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id, lock=True)
        if principal.role != Role.RESIDENT or meeting.community_id not in principal.community_ids:
            raise Forbidden("residents register for open meetings of their own community")
        participant = meeting.register(principal.user_id, name)
        commit_or_conflict(uow)
        return participant


def cancel_registration(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, participant_id: str
) -> Participant:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id, lock=True)
        participant = meeting.participant(participant_id)
        if participant is None:
            raise NotFound("participant {participant_id} not found", participant_id=participant_id)
        if participant.user_id != principal.user_id:
            access.require_manager(principal, uow.meetings, meeting.community_id)
        meeting.cancel_registration(participant)
        commit_or_conflict(uow)
        return participant


def check_in_participant(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, participant_id: str
) -> Participant:
    """Staff tick off someone present."""
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        participant = meeting.participant(participant_id)
        if participant is None:
            raise NotFound("participant {participant_id} not found", participant_id=participant_id)
        meeting.check_in(participant, uow.now(), "staff")
        commit_or_conflict(uow)
        return participant


def check_in_with_code(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, code: str) -> Participant:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id, lock=True)
        if meeting.participant_of(principal.user_id) is None and not (
            principal.role == Role.RESIDENT and meeting.community_id in principal.community_ids
        ):
            raise Forbidden("only residents of the community or invited people check in to this meeting")
        participant = meeting.check_in_with_code(code, principal.user_id, uow.now())
        commit_or_conflict(uow)
        return participant


def list_participants(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str) -> list[Participant]:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id)
        if access.can_manage_community(principal, uow.meetings, meeting.community_id):
            return list(meeting.participants)
        # Others see who takes part in which role, not who is waiting or who declined.
        return [p for p in meeting.participants if p.is_active]


# --- meeting types ------------------------------------------------------------------------------------------
def meeting_types(uow: MeetingsUnitOfWork, principal: Principal, community_id: str) -> list[dict[str, Any]]:
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        built_in = [{"key": k, "name": v, "description": None, "built_in": True} for k, v in BUILT_IN_TYPES.items()]
        own = [t | {"built_in": False} for t in uow.meetings.meeting_types(community_id)]
        return built_in + own


def define_meeting_type(uow: MeetingsUnitOfWork, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    with uow:
        access.require_manager(principal, uow.meetings, data["community_id"])
        if data["key"] in BUILT_IN_TYPES or uow.meetings.has_meeting_type(data["community_id"], data["key"]):
            raise Conflict("this meeting type already exists", fields={"key": ["already exists"]})
        row = {**data, "created_at": uow.now()}
        uow.meetings.add_meeting_type(row)
        commit_or_conflict(uow)
        return {"key": data["key"], "name": data["name"], "description": data.get("description"), "built_in": False}


def commit_or_conflict(uow: MeetingsUnitOfWork, commit: Callable[[], None] | None = None) -> None:
    """Commit (`uow.commit`, or `commit` given); a uniqueness the database enforces (a version
    number, a seat) becomes a 409."""
    try:
        (commit or uow.commit)()
    except IntegrityError as exc:
        uow.rollback()
        raise Conflict("a concurrent change conflicts with this one; retry") from exc
