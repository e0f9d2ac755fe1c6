"""Use cases of activities: create, publish, change, cancel; register, cancel a registration with
automatic promotion from the waiting list; check-in by staff list, by code, or as a walk-in.

Every change of places happens with the activity row locked (Repository.activity_for_update, or for
a first sign-up the conditional UPDATE that counts the place: on PostgreSQL part of the one statement
of Repository.sign_up_in_one_statement, on SQLite Repository.take_place), so concurrent sign-ups for
the last places are serialised by the database, not by this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from linli_activities import SERVICE
from linli_activities.adapters.repository import ActivityPage, FirstSignUp, SignUpOutcome, SignUpTarget
from linli_activities.adapters.tables import activity_communities as links
from linli_activities.adapters.tables import activity_list_totals as totals
from linli_activities.domain.activities import (
    DEFAULT_MAX_PARTY_SIZE,
    Activity,
    ActivityStatus,
    Checkin,
    Registration,
    RegistrationStatus,
)
from linli_activities.domain.calendar import render_calendar
from linli_activities.domain.care import MutualAidGroup
from linli_activities.domain.common import new_id
from linli_activities.domain.places import ServicePost
from linli_activities.domain.programmes import ANNOUNCE_AHEAD, Festival
from linli_activities.domain.reminders import ActivityReminder, ReminderState, plan, settle
from linli_activities.service_layer import scope
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound, Text
from linli_kit.events import Event, new_event

DESCRIPTIVE_FIELDS = ("title", "description", "place", "post_id", "audience", "photos", "kind")


# --- events ---------------------------------------------------------------------------------------
def _snapshot(uow: ActivitiesUnitOfWork, activity: Activity, registrant_ids: list[str] | None) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "community_ids": activity.community_ids,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": activity.starts_at,
        "ends_at": activity.ends_at,
        "place": activity.place,
        "capacity": activity.capacity,
        "organiser_id": activity.organiser_id,
        "registrant_ids": uow.repo.registrant_ids(activity.id) if registrant_ids is None else registrant_ids,
        "revision": activity.revision,
        "series_id": activity.series_id,
        "festival_id": activity.festival_id,
    }


def _activity_event(
    uow: ActivitiesUnitOfWork,
    event_type: str,
    activity: Activity,
    *,
    known: KnownOfNew | None = None,
    **extra: Any,
) -> Event:
    """`known`: what is known of a new activity, not read again."""
    community_id = activity.community_ids[0] if len(activity.community_ids) == 1 else None
    first = activity.community_ids[0]
    street_id = uow.repo.street_of(first) if known is None else known.streets[first]
    return new_event(
        event_type,
        {**_snapshot(uow, activity, None if known is None else []), **extra},
        producer=SERVICE,
        community_id=community_id,
        street_id=street_id,
    )


def _registration_event(
    event_type: str, activity: Activity | SignUpTarget, registration: Registration, position: int | None
) -> Event:
    return new_event(
        event_type,
        {
            "registration_id": registration.id,
            "activity_id": activity.id,
            "community_id": registration.community_id,
            "user_id": registration.user_id,
            "title": activity.title,
            "starts_at": activity.starts_at,
            "party_size": registration.party_size,
            "status": registration.status,
            "waitlist_position": position,
        },
        producer=SERVICE,
        community_id=registration.community_id,
    )


def _checkin_event(checkin: Checkin) -> Event:
    return new_event(
        "activities.checkin.recorded",
        {
            "registration_id": checkin.registration_id,
            "activity_id": checkin.activity_id,
            "community_id": checkin.community_id,
            "user_id": checkin.user_id,
            "participants": checkin.participants,
            "checked_in_at": checkin.checked_in_at,
        },
        producer=SERVICE,
        community_id=checkin.community_id,
    )


@dataclass(frozen=True)
class KnownOfNew:
    """What is known of a new activity while it is added, not read again for its event: its
    communities' streets (it has no registrants yet)."""

    streets: dict[str, str | None]


# --- reminders ----------------------------------------------------------------------------------
def _plan_reminders(uow: ActivitiesUnitOfWork, activity: Activity) -> None:
    """Cancel the reminders of another start (or of an activity no longer published); plan those
    of the activity's start still ahead. Called with the activity locked (or new)."""
    published = activity.status == ActivityStatus.PUBLISHED
    for reminder in uow.repo.scheduled_reminders(activity.id):
        if not published or reminder.starts_at != activity.starts_at:
            reminder.state = ReminderState.CANCELLED
    if not published:
        return
    for reminder in plan(activity.id, activity.starts_at, uow.reminder_minutes, uow.clock()):
        if not uow.repo.reminder_exists(activity.id, reminder.lead_minutes, reminder.starts_at):
            uow.repo.add(reminder)


def _announce(
    uow: ActivitiesUnitOfWork, activity: Activity, *, force: bool = False, known: KnownOfNew | None = None
) -> None:
    """Tell residents of a published activity (activities.activity.published), once. An occurrence
    of a series more than ANNOUNCE_AHEAD away waits for the timer, unless `force` (someone is
    registering for it, so from now on its changes concern people)."""
    if activity.status != ActivityStatus.PUBLISHED or activity.announced_at is not None:
        return
    now = uow.clock()
    if activity.series_id is not None and not force and activity.starts_at > now + ANNOUNCE_AHEAD:
        return
    activity.announced_at = now
    uow.publish(_activity_event(uow, "activities.activity.published", activity, known=known))


def announce_due(uow: ActivitiesUnitOfWork, *, limit: int = 500) -> int:
    """Announce the published occurrences that have come within ANNOUNCE_AHEAD of their start (the
    worker's timer). Returns how many."""
    with uow:
        now = uow.clock()
        due = uow.repo.unannounced_between(now, now + ANNOUNCE_AHEAD, limit)
        for activity in due:
            _announce(uow, activity)
        uow.commit()
        return len(due)


def send_due_reminders(uow: ActivitiesUnitOfWork, *, limit: int = 500) -> int:
    """Publish `activities.activity.reminder` for every reminder come due (the worker's timer):
    one per activity and start, to the people holding a place then. Returns how many were sent."""
    with uow:
        now = uow.clock()
        due = uow.repo.due_reminders(now, limit)
        by_activity: dict[str, list] = {}
        for reminder in due:
            by_activity.setdefault(reminder.activity_id, []).append(reminder)
        sent = 0
        for activity_id, reminders in by_activity.items():
            activity = uow.repo.get(Activity, activity_id)
            current = activity.starts_at if activity and activity.status == ActivityStatus.PUBLISHED else None
            chosen = settle(reminders, current, now)
            if chosen is not None and activity is not None:
                uow.publish(
                    _activity_event(
                        uow,
                        "activities.activity.reminder",
                        activity,
                        lead_minutes=chosen.lead_minutes,
                        confirmed_ids=uow.repo.confirmed_ids(activity.id),
                    )
                )
                sent += 1
        uow.commit()
        return sent


# --- authorisation --------------------------------------------------------------------------
def _require_manager(uow: ActivitiesUnitOfWork, principal: Principal, community_ids: list[str]) -> None:
    """Organising an activity takes staff rights over every community it is for."""
    for community_id in community_ids:
        scope.require_staff_of(uow, principal, community_id)


def may_manage(uow: ActivitiesUnitOfWork, principal: Principal, activity: Activity | SignUpTarget) -> bool:
    return any(scope.is_staff_of(uow, principal, c) for c in activity.community_ids)


def may_see(uow: ActivitiesUnitOfWork, principal: Principal, activity: Activity | SignUpTarget) -> bool:
    """An activity is seen in the scope of any of its communities; a draft only by its organisers."""
    if not any(scope.can_see(uow, principal, c) for c in activity.community_ids):
        return False
    return activity.status != ActivityStatus.DRAFT or may_manage(uow, principal, activity)


def _load(uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, *, lock: bool = False) -> Activity:
    """The activity as the caller may see it: 404 when it does not exist or is not theirs to see,
    before anything about its state is looked at (no 409 or 422 tells an outsider it exists)."""
    activity = uow.repo.activity_for_update(activity_id) if lock else uow.repo.get(Activity, activity_id)
    if activity is None or not may_see(uow, principal, activity):
        raise NotFound("activity {activity_id} not found", activity_id=activity_id)
    return activity


def _require_managed(uow: ActivitiesUnitOfWork, principal: Principal, activity: Activity) -> None:
    """Changing a visible activity takes staff rights over every community it is for (403)."""
    _require_manager(uow, principal, activity.community_ids)


def festival_visible(uow: ActivitiesUnitOfWork, principal: Principal, festival: Festival) -> bool:
    """A city-wide festival is everyone's; a street's, seen by those whose scope is in that street."""
    if festival.street_id is None or principal.role == Role.CITY_ADMIN:
        return True
    if principal.role == Role.STREET_OFFICIAL:
        return principal.street_id == festival.street_id
    return any(uow.repo.street_of(c) == festival.street_id for c in principal.community_ids)


def check_festival(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    festival_id: str | None,
    community_ids: list[str],
    starts_at: datetime,
) -> None:
    """An activity (or a series' first occurrence) joining a festival: one the caller sees, for
    communities of its street, starting within its dates. 422 naming festival_id otherwise."""
    if festival_id is None:
        return
    festival = uow.repo.get(Festival, festival_id)
    if festival is None or not festival_visible(uow, principal, festival):
        raise Invalid("unknown festival", fields={"festival_id": ["no such festival"]})
    if festival.street_id is not None and any(uow.repo.street_of(c) != festival.street_id for c in community_ids):
        raise Invalid("outside the festival", fields={"festival_id": ["a festival of another street"]})
    if not festival.covers(starts_at, ZoneInfo(uow.timezone)):
        raise Invalid(
            "outside the festival's dates",
            fields={
                "festival_id": [
                    Text(
                        "the festival runs {starts_on} to {ends_on}",
                        starts_on=festival.starts_on,
                        ends_on=festival.ends_on,
                    )
                ]
            },
        )


def _check_post(uow: ActivitiesUnitOfWork, post_id: str | None) -> None:
    if post_id is not None and uow.repo.get(ServicePost, post_id) is None:
        raise Invalid("unknown service post", fields={"post_id": ["no such service post"]})


def prepare_template(
    uow: ActivitiesUnitOfWork, principal: Principal, values: dict[str, Any], community_ids: list[str]
) -> None:
    """Fill in what an activity (or a series' template) takes by default: the party size and the
    organiser (the caller, or a mutual-aid group of these communities, 422 otherwise)."""
    if values.get("max_party_size") is None:
        # A household of four by default, but never more than the whole activity holds.
        values["max_party_size"] = min(DEFAULT_MAX_PARTY_SIZE, values.get("capacity") or DEFAULT_MAX_PARTY_SIZE)
    values.setdefault("organiser_type", "staff")
    if values["organiser_type"] == "staff":
        values["organiser_id"] = values.get("organiser_id") or principal.user_id
    else:
        group = uow.repo.get(MutualAidGroup, values.get("organiser_id") or "")
        if group is None or group.community_id not in community_ids:
            raise Invalid(
                "name the organising group", fields={"organiser_id": ["a mutual-aid group of these communities"]}
            )


# How many times a new activity is written before giving up, each time from its communities' streets
# read again: the directory replica changed them between the reading and the writing every time.
_NEW_ACTIVITY_ATTEMPTS = 3


def add_published(uow: ActivitiesUnitOfWork, activity: Activity, publish: bool) -> None:
    """Store a new activity (published when `publish`): its reminders planned, residents told.
    A new activity has no registrations and no reminders yet, so neither is read: its reminders
    are those `plan` gives (what _plan_reminders adds for it), and its communities' streets (for
    the counts and the event; a draft counts for neither) are read once, or not at all when held
    from an earlier activity in one that writes in one statement. Announced before it is written:
    one INSERT, with the events published so far (its announcement's among them), which writes
    nothing if the streets it was made from no longer hold: then read and made again."""
    if publish:
        activity.publish()
    reminders = []
    if publish:
        reminders = plan(
            activity.id,
            activity.starts_at,
            uow.reminder_minutes,
            uow.clock(),
            make=partial(uow.repo.new_written, ActivityReminder),
        )
    streets = uow.repo.held_streets(activity.community_ids) if publish else {}
    earlier = uow.take_pending()
    for attempt in range(_NEW_ACTIVITY_ATTEMPTS):
        if streets is None:
            streets = uow.repo.streets_of(activity.community_ids)
        if attempt:
            activity.announced_at = None  # announced again, by the statement made again
        _announce(uow, activity, known=KnownOfNew(streets))
        if uow.repo.insert_new_activity(activity, streets, reminders, [*earlier, *uow.take_pending()]):
            return
        streets = None
    raise RuntimeError("the directory changed the streets of these communities while each attempt was written")


def reschedule(uow: ActivitiesUnitOfWork, activity: Activity, starts_at: datetime, ends_at: datetime) -> list[Event]:
    """Move a (locked) activity; its reminders follow; those told of it hear of the new time."""
    previous = activity.reschedule(starts_at, ends_at)
    if previous is None:
        return []
    if activity.status == ActivityStatus.PUBLISHED:
        _plan_reminders(uow, activity)
    if activity.announced_at is None:
        return []
    return [_activity_event(uow, "activities.activity.rescheduled", activity, previous_starts_at=previous)]


def cancel(uow: ActivitiesUnitOfWork, activity: Activity, reason: str) -> None:
    """Cancel a (locked) activity; its reminders too; those told of it hear why."""
    was_announced = activity.status == ActivityStatus.PUBLISHED and activity.announced_at is not None
    activity.cancel(reason)
    uow.repo.update_activity_links(activity)
    _plan_reminders(uow, activity)
    if was_announced:
        uow.publish(_activity_event(uow, "activities.activity.cancelled", activity, reason=reason))


# --- activities -------------------------------------------------------------------------------------
def create_activity(
    uow: ActivitiesUnitOfWork, principal: Principal, *, publish: bool = False, **values: Any
) -> Activity:
    with uow:
        # PostgreSQL: it reads (usually nothing: its communities' streets are held from the last
        # activity of these communities, and checked by the statement), then writes everything
        # (its row, links, reminders, counts and event) in one statement, atomic on its own: in
        # autocommit, without the round trips of BEGIN and COMMIT. Under READ COMMITTED its reads
        # saw no more in a transaction (each statement its own snapshot, no lock taken). SQLite:
        # one transaction, as before.
        in_one_statement = uow.repo.writes_in_one_statement()
        community_ids = list(dict.fromkeys(values.pop("community_ids")))
        _require_manager(uow, principal, community_ids)
        _check_post(uow, values.get("post_id"))
        check_festival(uow, principal, values.get("festival_id"), community_ids, values["starts_at"])
        prepare_template(uow, principal, values, community_ids)
        # Written by its own statements, never by the session: made without the ORM's events.
        activity = uow.repo.new_written(
            Activity, community_ids=community_ids, created_by=principal.user_id, created_at=uow.clock(), **values
        )
        add_published(uow, activity, publish)
        if in_one_statement:
            if uow.session.new or uow.session.dirty:  # a programming error
                raise RuntimeError("a new activity's change is its one statement: nothing else is written")
            return activity  # committed by that statement
        uow.commit()
        return activity


def get_activity(uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str) -> tuple[Activity, bool]:
    """The activity and whether the caller manages it (and so may see its check-in code)."""
    with uow:
        activity = _load(uow, principal, activity_id)
        return activity, may_manage(uow, principal, activity)


def list_activities(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    offset: int,
    limit: int,
    community_id: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    series_id: str | None = None,
    festival_id: str | None = None,
) -> tuple[list[Sequence[Any]], int]:
    """A page of the activities the caller may see, by start, and their total: each a row of
    LISTED_COLUMNS in order (the check-in code is not among them: a list shows it to nobody)."""
    with uow:
        if community_id is not None:
            scope.require_visible(uow, principal, community_id)
        form, parameters = scope.visibility(principal)
        given = {
            "community_id": community_id,
            "kind": kind,
            "status": status,
            "starts_from": starts_from,
            "starts_before": starts_before,
            "series_id": series_id,
            "festival_id": festival_id,
        }
        parameters.update((name, value) for name, value in given.items() if value is not None)
        # Drafts are the organisers' business; residents see what was published (or cancelled).
        hide_drafts = principal.role not in scope.STAFF
        statements = _listing(form, tuple(name for name, value in given.items() if value is not None), hide_drafts)
        return uow.repo.activity_page(statements, parameters, offset=offset, limit=limit)


# The filters of a list of activities: on its rows of `activity_communities`, and on its own.
_LINK_FILTERS = {
    "community_id": links.c.community_id == bindparam("community_id"),
    "kind": links.c.kind == bindparam("kind"),
    "status": links.c.status == bindparam("status"),
    "starts_from": links.c.starts_at >= bindparam("starts_from"),
    "starts_before": links.c.starts_at < bindparam("starts_before"),
}
_OWN_FILTERS = {
    "series_id": Activity.series_id == bindparam("series_id"),
    "festival_id": Activity.festival_id == bindparam("festival_id"),
}
# The same filters on the kept totals of one community's list (`activity_list_totals`), for those
# it holds totals by: a list filtered by nothing else has its total added up from them.
_TOTALS_FILTERS = {
    "community_id": totals.c.community_id == bindparam("community_id"),
    "kind": totals.c.kind == bindparam("kind"),
    "status": totals.c.status == bindparam("status"),
}


@lru_cache(maxsize=256)
def _listing(form: str, given: tuple[str, ...], hide_drafts: bool) -> ActivityPage:
    """The statements of a list of activities for a scope of this form (scope.visibility), these
    filters given and drafts hidden or not, their values bind parameters: built once per form (a
    list is the hottest read; building and keying its statement cost more than running it)."""

    def link_conditions(visible: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [] if visible is None else [visible]
        where.extend(_LINK_FILTERS[name] for name in given if name in _LINK_FILTERS)
        if hide_drafts:
            where.append(links.c.status != ActivityStatus.DRAFT)
        return where

    visible = scope.visible_in(form, links.c.community_id)

    own_filters = [_OWN_FILTERS[name] for name in given if name in _OWN_FILTERS]
    if "community_id" in given:
        # One community, the usual list: its link rows give the page in order (see of_one_community).
        kept = None
        if _TOTALS_FILTERS.keys() >= set(given):
            # Its total by the same conditions (scope, filters, drafts) on the rows of its totals.
            # The scope is asked of the community named (the rows' own): a condition of its
            # parameters, decided once, which leaves the planner's estimate of the community's
            # rows alone (a second condition on their column made it think them a handful).
            named_visible = scope.visible_in(form, bindparam("community_id", type_=String), array=True)
            kept_total = [_TOTALS_FILTERS[name] for name in given]
            if named_visible is not None:
                kept_total.append(named_visible)
            if hide_drafts:
                kept_total.append(totals.c.status != ActivityStatus.DRAFT)
            kept = (link_conditions(named_visible), kept_total)
        return ActivityPage.of_one_community(link_conditions(visible), own_filters, kept)
    ids = select(links.c.activity_id).where(*link_conditions(visible)).distinct()
    return ActivityPage.of([Activity.id.in_(ids), *own_filters])


def publish_activity(uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str) -> Activity:
    with uow:
        activity = _load(uow, principal, activity_id, lock=True)
        _require_managed(uow, principal, activity)
        activity.publish()
        uow.repo.update_activity_links(activity)
        _plan_reminders(uow, activity)
        _announce(uow, activity)
        uow.commit()
        return activity


def update_activity(uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, **changes: Any) -> Activity:
    """Change what an activity is, when it is, or how many it takes; registrants hear of a new time."""
    with uow:
        activity = _load(uow, principal, activity_id, lock=True)
        _require_managed(uow, principal, activity)
        _check_post(uow, changes.get("post_id"))
        events: list[Event] = []
        descriptive = {k: v for k, v in changes.items() if k in DESCRIPTIVE_FIELDS}
        activity.edit(**descriptive)
        if "registration_opens_at" in changes or "registration_closes_at" in changes:
            activity.edit(
                registration_opens_at=changes.get("registration_opens_at", activity.registration_opens_at),
                registration_closes_at=changes.get("registration_closes_at", activity.registration_closes_at),
            )
        if "starts_at" in changes or "ends_at" in changes:
            events.extend(
                reschedule(
                    uow,
                    activity,
                    changes.get("starts_at", activity.starts_at),
                    changes.get("ends_at", activity.ends_at),
                )
            )
        if "capacity" in changes or "max_party_size" in changes:
            promoted = activity.change_capacity(
                changes.get("capacity", activity.capacity),
                changes.get("max_party_size"),
                uow.repo.waitlist(activity.id),
            )
            events.extend(_registration_event("activities.registration.promoted", activity, r, None) for r in promoted)
        if "festival_id" in changes:
            activity.festival_id = changes["festival_id"]
        if "festival_id" in changes or "starts_at" in changes:
            check_festival(uow, principal, activity.festival_id, activity.community_ids, activity.starts_at)
        uow.repo.update_activity_links(activity)
        uow.publish(*events)
        uow.commit()
        return activity


def cancel_activity(uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, reason: str) -> Activity:
    with uow:
        activity = _load(uow, principal, activity_id, lock=True)
        _require_managed(uow, principal, activity)
        cancel(uow, activity, reason)
        uow.commit()
        return activity


def activity_calendar(uow: ActivitiesUnitOfWork, activity_id: str) -> str:
    """A published (or cancelled, so calendars drop it) activity as iCalendar; public like a poster."""
    with uow:
        activity = uow.repo.get(Activity, activity_id)
        if activity is None or activity.status == ActivityStatus.DRAFT:
            raise NotFound("activity {activity_id} not found", activity_id=activity_id)
        return render_calendar([activity], name=activity.title, now=uow.clock())


def community_calendar(uow: ActivitiesUnitOfWork, community_id: str, *, since: datetime) -> str:
    with uow:
        ids = select(links.c.activity_id).where(
            links.c.community_id == community_id,
            links.c.status != ActivityStatus.DRAFT,
            links.c.starts_at >= since,
        )
        activities = uow.repo.all(Activity, [Activity.id.in_(ids)], [Activity.starts_at])
        return render_calendar(activities, name="Neighbourhood activities", now=uow.clock())


# --- registrations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistrationView:
    registration: Registration
    waitlist_position: int | None


def _registrant(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity: Activity | SignUpTarget,
    user_id: str | None,
    community_id: str | None,
) -> tuple[str, str]:
    """Whose registration this is, and for which of the activity's communities."""
    user = user_id or principal.user_id
    if user != principal.user_id:
        # Staff register residents who have no phone; nobody else registers someone else.
        if community_id is None:
            raise Invalid(
                "name the resident's community", fields={"community_id": ["required when registering someone else"]}
            )
        scope.require_staff_of(uow, principal, community_id)
    if community_id is None:
        mine = [c for c in activity.community_ids if c in principal.community_ids]
        if not mine:
            raise Forbidden("this activity is not open to your community")
        community_id = mine[0]
    elif user == principal.user_id and community_id not in principal.community_ids:
        raise Forbidden("you can only register as a member of your own community")
    if community_id not in activity.community_ids:
        raise Forbidden("this activity is not open to that community")
    return user, community_id


def register(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity_id: str,
    *,
    party_size: int,
    user_id: str | None = None,
    community_id: str | None = None,
) -> RegistrationView:
    with uow:
        if uow.repo.one_statement_follows_reads():
            # PostgreSQL: a first sign-up reads, then writes in one statement, in autocommit.
            try:
                view = _first_sign_up(uow, principal, activity_id, party_size, user_id, community_id)
            finally:
                uow.repo.end_one_statement()
            if view is not None:
                return view
            # Not a first sign-up taken so: the general path, in the session's transaction.
            return _sign_up(uow, principal, activity_id, party_size, user_id, community_id, first_time=False)
        return _sign_up(uow, principal, activity_id, party_size, user_id, community_id)


def _first_sign_up(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity_id: str,
    party_size: int,
    user_id: str | None,
    community_id: str | None,
) -> RegistrationView | None:
    """PostgreSQL: a first sign-up by the common path (_register_first_time), from the little it
    reads of the activity (a SignUpTarget, with whether the person is registered already). None
    when the general path is to decide: no such activity or not the caller's to see (it answers
    404 as for any), a registration already there, or one the common path does not take; the
    general path reads the activity whole and names its reason. The registrant's refusals are
    raised here as there, after the activity is known visible."""
    target, registered = uow.repo.sign_up_target(activity_id, user_id or principal.user_id)
    if target is None or not may_see(uow, principal, target):
        return None
    user, community = _registrant(uow, principal, target, user_id, community_id)
    if registered or party_size < 1:
        return None
    return _register_first_time(uow, principal, target, user, community, party_size)


def _sign_up(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity_id: str,
    party_size: int,
    user_id: str | None,
    community_id: str | None,
    *,
    first_time: bool = True,
) -> RegistrationView:
    """A sign-up by the common path for a first one (`first_time`, _register_first_time) and, if
    it does not take it, by the general one."""
    # The look for an earlier registration comes before the lock, to keep the lock short; a
    # double sign-up racing past it is stopped by the unique (activity, user) constraint. It
    # reads the activity too: held here, _load finds it in the session (whose map is weak).
    held, existing = uow.repo.activity_with_registration(activity_id, user_id or principal.user_id)
    activity = _load(uow, principal, activity_id)
    del held
    user, community = _registrant(uow, principal, activity, user_id, community_id)
    if first_time and existing is None and party_size >= 1:
        view = _register_first_time(uow, principal, activity, user, community, party_size)
        if view is not None:
            return view
    uow.repo.lock_places(activity)
    if existing is not None:
        uow.session.refresh(existing)  # as it is now that the activity is locked
    registration = activity.register(
        user_id=user,
        community_id=community,
        party_size=party_size,
        registered_by=principal.user_id,
        now=uow.clock(),
        existing=existing,
    )
    if existing is None:
        uow.repo.add(registration)
    # An occurrence far ahead is announced now: whoever signs up hears of its changes.
    _announce(uow, activity, force=True)
    position = activity.waiting_parties if registration.status == RegistrationStatus.WAITLISTED else None
    kind = "confirmed" if registration.status == RegistrationStatus.CONFIRMED else "waitlisted"
    uow.publish(_registration_event(f"activities.registration.{kind}", activity, registration, position))
    try:
        uow.commit()
    except IntegrityError as exc:
        raise Conflict("already registered for this activity", fields={"user_id": ["already registered"]}) from exc
    return RegistrationView(registration, position)


def _register_first_time(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity: Activity | SignUpTarget,
    user: str,
    community: str,
    party_size: int,
) -> RegistrationView | None:
    """The common sign-up (a first registration for a published, announced activity open to
    sign-ups) in few statements. PostgreSQL (in autocommit): with the concurrent first sign-ups of
    this process for the activity (uow.sign_ups), one statement takes the places and writes the
    registrations, their counts and their events (_sign_up_together). SQLite: the place taken by
    one conditional UPDATE that locks the row, the counts, the registration and its event
    inserted, commit. None, with nothing changed, when the row does not qualify: the general path
    then decides (and names the reason for a refusal)."""
    now = uow.clock()

    def registration(status: str, seq: int | None) -> Registration:
        # Written by the statements below, never by the session: made without the ORM's events.
        return uow.repo.new_written(
            Registration,
            id=registration_id,
            activity_id=activity.id,
            user_id=user,
            community_id=community,
            party_size=party_size,
            registered_by=principal.user_id,
            status=status,
            waitlist_seq=seq,
            created_at=now,
            updated_at=now,
        )

    registration_id = new_id()
    try:
        if uow.session.get_bind().dialect.name == "postgresql":
            confirmed = registration(RegistrationStatus.CONFIRMED, None)
            # The waiting one's place in the line is the statement's to say: 1 stands in for it.
            waitlisted = registration(RegistrationStatus.WAITLISTED, 1)
            events = (
                _registration_event("activities.registration.confirmed", activity, confirmed, None),
                _registration_event("activities.registration.waitlisted", activity, waitlisted, 1),
            )
            outcome = uow.sign_ups.run(
                (activity.id, activity.revision),
                FirstSignUp(confirmed, waitlisted, events),
                lambda group: _sign_up_together(uow, activity, group),
            )
            if outcome is None:
                return None
            if isinstance(activity, Activity):  # a SignUpTarget is no object of the session
                uow.repo.note_places(activity, outcome.places)
            made = waitlisted if outcome.waits else confirmed
            made.waitlist_seq = outcome.waitlist_seq
            return RegistrationView(made, outcome.waitlist_position)
        if not uow.repo.take_place(activity, party_size, now):
            return None
        confirmed_now = activity.waiting_parties == 0  # a waitlisted party always leaves someone waiting
        made = registration(
            RegistrationStatus.CONFIRMED if confirmed_now else RegistrationStatus.WAITLISTED,
            None if confirmed_now else activity.waitlist_counter,
        )
        position = None if confirmed_now else activity.waiting_parties
        kind = "confirmed" if confirmed_now else "waitlisted"
        uow.publish(_registration_event(f"activities.registration.{kind}", activity, made, position))
        # The statistics' counts are the activity's as published, by its start as locked.
        uow.repo.count_sign_up(made, activity.starts_at)
        uow.repo.insert_registration(made)
        uow.commit()
    except IntegrityError as exc:  # a double sign-up raced past the look for an earlier one
        raise Conflict("already registered for this activity", fields={"user_id": ["already registered"]}) from exc
    return RegistrationView(made, position)


def _sign_up_together(
    uow: ActivitiesUnitOfWork, activity: Activity | SignUpTarget, group: list[FirstSignUp]
) -> list[SignUpOutcome | None | BaseException]:
    """Run by one sign-up of the group (its session, its reading of the activity: the group's
    revision) for all: one statement when they are several. When that statement fails (someone
    signing up twice at once) or does not take them all (one party too large), each is taken on
    its own, so one's error or refusal is its own and the others' places are taken as they came:
    an outcome, None (the general path decides it), or the error to raise in its thread."""
    if len(group) > 1:
        try:
            together = uow.repo.sign_up_together(activity, group)
        except DBAPIError:
            together = None  # nothing written (one statement, in autocommit)
        if together is not None:
            return list(together)
    outcomes: list[SignUpOutcome | None | BaseException] = []
    for sign_up in group:
        try:
            outcomes.append(uow.repo.sign_up_in_one_statement(activity, sign_up))
        except DBAPIError as error:
            outcomes.append(error)
    return outcomes


def _registration(
    uow: ActivitiesUnitOfWork, principal: Principal, activity: Activity, registration_id: str
) -> Registration:
    """A registration of `activity` the caller may see: their own, or any on the list of an activity
    they organise (404 otherwise, as for one that does not exist)."""
    registration = uow.repo.get(Registration, registration_id)
    if (
        registration is None
        or registration.activity_id != activity.id
        or (registration.user_id != principal.user_id and not may_manage(uow, principal, activity))
    ):
        raise NotFound("registration {registration_id} not found", registration_id=registration_id)
    return registration


def cancel_registration(
    uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, registration_id: str
) -> Registration:
    with uow:
        activity = _load(uow, principal, activity_id, lock=True)
        registration = _registration(uow, principal, activity, registration_id)
        if registration.user_id != principal.user_id:
            scope.require_staff_of(uow, principal, registration.community_id)
        promoted = activity.cancel_registration(registration, waitlist=uow.repo.waitlist(activity.id), now=uow.clock())
        uow.publish(_registration_event("activities.registration.cancelled", activity, registration, None))
        for r in promoted:
            uow.publish(_registration_event("activities.registration.promoted", activity, r, None))
        uow.commit()
        return registration


def list_registrations(
    uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, *, status: str | None, offset: int, limit: int
) -> tuple[list[RegistrationView], int]:
    """The activity's staff see the whole list; anyone else, their own registration."""
    with uow:
        activity = _load(uow, principal, activity_id)
        where: list[ColumnElement[bool]] = [Registration.activity_id == activity.id]
        if not may_manage(uow, principal, activity):
            # The organisers hold the list for the door (all communities of a street-wide festival).
            where.append(Registration.user_id == principal.user_id)
        if status is not None:
            where.append(Registration.status == status)
        items, total = uow.repo.page(
            Registration,
            where,
            [Registration.waitlist_seq, Registration.created_at, Registration.id],
            offset=offset,
            limit=limit,
        )
        waitlist = (
            uow.repo.waitlist(activity.id) if any(r.status == RegistrationStatus.WAITLISTED for r in items) else []
        )
        return [RegistrationView(r, activity.waitlist_position(r, waitlist)) for r in items], total


def my_registrations(
    uow: ActivitiesUnitOfWork, principal: Principal, *, status: str | None, offset: int, limit: int
) -> tuple[list[RegistrationView], int]:
    """What the caller signed up for, across activities, with their place in each waiting list."""
    with uow:
        where: list[ColumnElement[bool]] = [Registration.user_id == principal.user_id]
        if status is not None:
            where.append(Registration.status == status)
        items, total = uow.repo.page(
            Registration, where, [Registration.created_at.desc(), Registration.id], offset=offset, limit=limit
        )
        views = []
        for r in items:
            position = None
            if r.status == RegistrationStatus.WAITLISTED:
                activity = uow.repo.get(Activity, r.activity_id)
                assert activity is not None
                position = activity.waitlist_position(r, uow.repo.waitlist(r.activity_id))
            views.append(RegistrationView(r, position))
        return views, total


# --- check-in ---------------------------------------------------------------------------------------------
def check_in(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity_id: str,
    *,
    registration_id: str | None = None,
    code: str | None = None,
    participants: int | None = None,
) -> Checkin:
    """By the staff list (registration_id, staff only) or by the code shown at the door (the registrant)."""
    with uow:
        # Scope first: someone who may not see the activity learns nothing of its code or their
        # registration (404), as for an activity that does not exist.
        activity = _load(uow, principal, activity_id, lock=True)
        if registration_id is not None:
            if not may_manage(uow, principal, activity):
                raise Forbidden("the staff list is ticked by the activity's organisers")
            try:
                registration = _registration(uow, principal, activity, registration_id)
            except NotFound as exc:
                # An id in the body, not the path: bad input naming the field, like every such id.
                raise Invalid(
                    "unknown registration", fields={"registration_id": ["no such registration of this activity"]}
                ) from exc
            method = "list"
        else:
            if code is None or code != activity.checkin_code:
                raise Invalid("wrong check-in code", fields={"code": ["does not match this activity's code"]})
            found = uow.repo.registration_of(activity.id, principal.user_id)
            if found is None or not found.is_active:
                raise Conflict("you have no registration for this activity")
            registration, method = found, "code"
        checkin = activity.check_in(
            registration, participants=participants, method=method, recorded_by=principal.user_id, now=uow.clock()
        )
        uow.repo.add(checkin)
        uow.publish(_checkin_event(checkin))
        uow.commit()
        return checkin


def walk_in(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    activity_id: str,
    *,
    community_id: str,
    participants: int,
    user_id: str | None = None,
) -> Checkin:
    with uow:
        activity = _load(uow, principal, activity_id, lock=True)
        if not may_manage(uow, principal, activity):
            raise Forbidden("walk-ins are counted by the activity's organisers")
        checkin = activity.walk_in(
            community_id=community_id,
            participants=participants,
            user_id=user_id,
            recorded_by=principal.user_id,
            now=uow.clock(),
        )
        uow.repo.add(checkin)
        uow.publish(_checkin_event(checkin))
        uow.commit()
        return checkin


def list_checkins(
    uow: ActivitiesUnitOfWork, principal: Principal, activity_id: str, *, offset: int, limit: int
) -> tuple[list[Checkin], int]:
    with uow:
        activity = _load(uow, principal, activity_id)
        if not may_manage(uow, principal, activity):
            raise Forbidden("only the activity's staff see who came")
        return uow.repo.page(
            Checkin,
            [Checkin.activity_id == activity.id],
            [Checkin.checked_in_at, Checkin.id],
            offset=offset,
            limit=limit,
        )
