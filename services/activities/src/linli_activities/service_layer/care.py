"""Use cases of mutual-aid groups, the talent pool, services for vulnerable residents and the
residents flagged as needing support."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from linli_activities import SERVICE
from linli_activities.domain.care import (
    SKILL_FOR_SERVICE,
    Booking,
    BookingStatus,
    GroupMember,
    HelpLog,
    MutualAidGroup,
    Provider,
    ServiceOffering,
    SupportFlag,
    Talent,
    TalentMatch,
    Vetting,
    VisitPlan,
    WelfareVisit,
    slot_taken,
)
from linli_activities.domain.common import new_id
from linli_activities.domain.places import CIRCLE_MINUTES, ServicePost, Walk, WalkingModel
from linli_activities.service_layer import scope
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound
from linli_kit.events import Event, new_event
from linli_kit.periods import today_in

# What a concern raised on a welfare visit is filed under when the visitor names no category: the
# issues service's category for vulnerable residents (private by default: it is about a person).
DEFAULT_CONCERN_CATEGORY = "elderly_vulnerable_support"


def _get(uow: ActivitiesUnitOfWork, kind: type, obj_id: str, label: str) -> Any:
    obj = uow.repo.get(kind, obj_id)
    if obj is None:
        raise NotFound("{label} {obj_id} not found", label=label, obj_id=obj_id)
    return obj


def _group(uow: ActivitiesUnitOfWork, principal: Principal, group_id: str) -> MutualAidGroup:
    """A group the caller may see (one of their scope's communities), else 404 as if it did not exist."""
    group = uow.repo.get(MutualAidGroup, group_id)
    if group is None or not scope.can_see(uow, principal, group.community_id):
        raise NotFound("group {group_id} not found", group_id=group_id)
    return group


def _talent(uow: ActivitiesUnitOfWork, principal: Principal, talent_id: str) -> Talent:
    """A talent entry the caller may see (their own; in their scope once vetted; any of their scope
    for staff), else 404."""
    talent = uow.repo.get(Talent, talent_id)
    if talent is None or not (
        talent.user_id == principal.user_id
        or scope.is_staff_of(uow, principal, talent.community_id)
        or (talent.vetted and scope.can_see(uow, principal, talent.community_id))
    ):
        raise NotFound("talent {talent_id} not found", talent_id=talent_id)
    return talent


def _scoped(principal: Principal, column: Any, community_id: str | None, uow: ActivitiesUnitOfWork) -> list:
    where: list[ColumnElement[bool]] = []
    visible = scope.visible_communities(principal, column)
    if visible is not None:
        where.append(visible)
    if community_id is not None:
        scope.require_visible(uow, principal, community_id)
        where.append(column == community_id)
    return where


def _own_community(principal: Principal, community_id: str | None) -> str:
    """The community a resident acts in: the one named (if theirs) or their only one."""
    if community_id is not None:
        if community_id not in principal.community_ids:
            raise Forbidden("you can only act in your own community")
        return community_id
    if not principal.community_ids:
        raise Forbidden("your account belongs to no community")
    return principal.community_ids[0]


# --- mutual-aid groups ---------------------------------------------------------------------------------
def create_group(uow: ActivitiesUnitOfWork, principal: Principal, **values: Any) -> MutualAidGroup:
    with uow:
        scope.require_staff_of(uow, principal, values["community_id"])
        existing = uow.repo.all(
            MutualAidGroup,
            [MutualAidGroup.community_id == values["community_id"], MutualAidGroup.name == values["name"]],
        )
        if existing:
            raise Conflict("the community already has a group of that name", fields={"name": ["already exists"]})
        group = MutualAidGroup(created_at=uow.clock(), **values)
        uow.repo.add(group)
        uow.commit()
        return group


def list_groups(
    uow: ActivitiesUnitOfWork, principal: Principal, *, community_id: str | None, offset: int, limit: int
) -> tuple[list[MutualAidGroup], int]:
    with uow:
        where = _scoped(principal, MutualAidGroup.community_id, community_id, uow)
        return uow.repo.page(
            MutualAidGroup, where, [MutualAidGroup.name, MutualAidGroup.id], offset=offset, limit=limit
        )


def get_group(uow: ActivitiesUnitOfWork, principal: Principal, group_id: str) -> MutualAidGroup:
    with uow:
        return _group(uow, principal, group_id)


def _may_run(uow: ActivitiesUnitOfWork, principal: Principal, group: MutualAidGroup) -> bool:
    return principal.user_id == group.coordinator_id or scope.is_staff_of(uow, principal, group.community_id)


def add_member(
    uow: ActivitiesUnitOfWork, principal: Principal, group_id: str, *, user_id: str | None, display_name: str
) -> GroupMember:
    """Staff and the coordinator add anyone of the community; a resident may join by themselves."""
    with uow:
        group = _group(uow, principal, group_id)
        user = user_id or principal.user_id
        if user == principal.user_id and not _may_run(uow, principal, group):
            if group.community_id not in principal.community_ids:
                raise Forbidden("only residents of the group's community may join it")
        elif not _may_run(uow, principal, group):
            raise Forbidden("only the coordinator or staff add other members")
        if uow.repo.all(GroupMember, [GroupMember.group_id == group.id, GroupMember.user_id == user]):
            raise Conflict("already a member", fields={"user_id": ["already a member"]})
        member = GroupMember(group_id=group.id, user_id=user, display_name=display_name, joined_at=uow.clock())
        uow.repo.add(member)
        uow.commit()
        return member


def remove_member(uow: ActivitiesUnitOfWork, principal: Principal, group_id: str, user_id: str) -> None:
    with uow:
        group = _group(uow, principal, group_id)
        if user_id != principal.user_id and not _may_run(uow, principal, group):
            raise Forbidden("only the coordinator or staff remove other members")
        found = uow.repo.all(GroupMember, [GroupMember.group_id == group.id, GroupMember.user_id == user_id])
        if not found:
            raise NotFound("not a member of this group")
        uow.session.delete(found[0])
        uow.commit()


def list_members(
    uow: ActivitiesUnitOfWork, principal: Principal, group_id: str, *, offset: int, limit: int
) -> tuple[list[GroupMember], int]:
    with uow:
        group = _group(uow, principal, group_id)
        return uow.repo.page(
            GroupMember,
            [GroupMember.group_id == group.id],
            [GroupMember.joined_at, GroupMember.id],
            offset=offset,
            limit=limit,
        )


def log_help(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    group_id: str,
    *,
    helper_id: str | None,
    hours: float,
    helped_on: date,
    helped_id: str | None = None,
    helped_description: str = "",
    note: str = "",
) -> HelpLog:
    """A member logs their own help; the coordinator and staff log anyone's."""
    with uow:
        group = _group(uow, principal, group_id)
        helper = helper_id or principal.user_id
        runs_it = _may_run(uow, principal, group)
        is_member = bool(uow.repo.all(GroupMember, [GroupMember.group_id == group.id, GroupMember.user_id == helper]))
        if helper != principal.user_id and not runs_it:
            raise Forbidden("members log their own help; the coordinator and staff log anyone's")
        if helper == principal.user_id and not (is_member or runs_it):
            raise Forbidden("only members of the group log help in it")
        if helper != principal.user_id and not is_member and helper != group.coordinator_id:
            raise Invalid("the helper is not a member of this group", fields={"helper_id": ["not a member"]})
        entry = HelpLog(
            group_id=group.id,
            community_id=group.community_id,
            helper_id=helper,
            helped_id=helped_id,
            helped_description=helped_description,
            helped_on=helped_on,
            hours=hours,
            note=note,
            recorded_by=principal.user_id,
            recorded_at=uow.clock(),
        )
        uow.repo.add(entry)
        uow.commit()
        return entry


def list_help(
    uow: ActivitiesUnitOfWork, principal: Principal, group_id: str, *, offset: int, limit: int
) -> tuple[list[HelpLog], int]:
    """Who was helped is personal: the coordinator and staff see the log."""
    with uow:
        group = _group(uow, principal, group_id)
        if not _may_run(uow, principal, group):
            raise Forbidden("the help log is seen by the coordinator and staff")
        return uow.repo.page(
            HelpLog, [HelpLog.group_id == group.id], [HelpLog.helped_on.desc(), HelpLog.id], offset=offset, limit=limit
        )


# --- the talent pool ----------------------------------------------------------------------------------------
def _check_compound(uow: ActivitiesUnitOfWork, compound_id: str | None) -> None:
    if compound_id is not None and uow.repo.compound(compound_id) is None:
        raise Invalid("unknown compound", fields={"compound_id": ["no such compound"]})


def add_talent(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None = None,
    user_id: str | None = None,
    **values: Any,
) -> Talent:
    """A resident volunteers a skill; staff may enter one for a resident. Either way the entry waits
    for staff to vet it before residents see it."""
    with uow:
        user = user_id or principal.user_id
        if user != principal.user_id:
            if community_id is None:
                raise Invalid("name the resident's community", fields={"community_id": ["required"]})
            scope.require_staff_of(uow, principal, community_id)
        elif community_id is None or not scope.is_staff_of(uow, principal, community_id):
            community_id = _own_community(principal, community_id)
        _check_compound(uow, values.get("compound_id"))
        if uow.repo.all(Talent, [Talent.community_id == community_id, Talent.user_id == user]):
            raise Conflict(
                "already in the talent pool; change the entry instead", fields={"user_id": ["already listed"]}
            )
        talent = Talent(community_id=community_id, user_id=user, created_at=uow.clock(), **values)
        uow.repo.add(talent)
        uow.commit()
        return talent


def update_talent(uow: ActivitiesUnitOfWork, principal: Principal, talent_id: str, **changes: Any) -> Talent:
    with uow:
        talent = _talent(uow, principal, talent_id)
        staff = scope.is_staff_of(uow, principal, talent.community_id)
        if talent.user_id != principal.user_id and not staff:
            raise Forbidden("only staff of this community may do this")
        _check_compound(uow, changes.get("compound_id"))
        talent.revise(changes, by_themselves=not staff)
        uow.commit()
        return talent


def list_talents(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None,
    skill: str | None,
    vetting: str | None = None,
    offset: int,
    limit: int,
) -> tuple[list[Talent], int]:
    """Staff see every entry of their scope (filter by `vetting`); residents the vetted ones, and
    their own."""
    with uow:
        where = _scoped(principal, Talent.community_id, community_id, uow)
        where.append(Talent.active.is_(True))
        if principal.role not in scope.STAFF:
            where.append(or_(Talent.vetting_status == Vetting.APPROVED, Talent.user_id == principal.user_id))
        elif vetting is not None:
            where.append(Talent.vetting_status == vetting)
        if skill is not None:
            where.append(Talent.skills.like(f"%,{skill},%"))
        return uow.repo.page(Talent, where, [Talent.display_name, Talent.id], offset=offset, limit=limit)


def sees_contacts(principal: Principal) -> bool:
    """Contact details of talents are for staff only (their scope is applied to the list itself)."""
    return principal.role in scope.STAFF


def _talent_event(event_type: str, talent: Talent) -> Event:
    return new_event(
        event_type,
        {
            "talent_id": talent.id,
            "user_id": talent.user_id,
            "community_id": talent.community_id,
            "display_name": talent.display_name,
            "status": talent.vetting_status,
            "vetted_by_id": talent.vetted_by,
        },
        producer=SERVICE,
        community_id=talent.community_id,
    )


def vet_talent(uow: ActivitiesUnitOfWork, principal: Principal, talent_id: str, *, approve: bool, note: str) -> Talent:
    """Staff of the talent's community judge the entry (a note saying why, who, when); residents see
    it once approved. The talent is told (activities.talent.vetted)."""
    with uow:
        talent = _talent(uow, principal, talent_id)
        scope.require_staff_of(uow, principal, talent.community_id)
        talent.vet(approve, note, principal.user_id, uow.clock())
        uow.publish(_talent_event("activities.talent.vetted", talent))
        uow.commit()
        return talent


def _match_event(event_type: str, match: TalentMatch, talent: Talent) -> Event:
    return new_event(
        event_type,
        {
            "match_id": match.id,
            "talent_id": talent.id,
            "talent_user_id": talent.user_id,
            "community_id": match.community_id,
            "issue_id": match.issue_id,
            "booking_id": match.booking_id,
            "matched_by_id": match.matched_by,
            "status": match.status,
            "note": match.note or None,
            "decline_reason": match.decline_reason,
        },
        producer=SERVICE,
        community_id=match.community_id,
    )


def _talent_free(uow: ActivitiesUnitOfWork, talent: Talent, booking: Booking) -> bool:
    key = f"talent:{talent.id}"
    busy = uow.repo.provider_busy(key, booking.slot_start, booking.slot_end, exclude_id=booking.id)
    return not slot_taken(busy, booking.slot_start, booking.slot_end, 1)


def match_talent(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    talent_id: str,
    *,
    issue_id: str | None = None,
    booking_id: str | None = None,
    note: str = "",
) -> TalentMatch:
    """Staff ask a vetted talent to help with a need; the talent is told (activities.talent.matched)
    and accepts or declines. For a booking, they become its provider when they accept."""
    with uow:
        talent = _talent(uow, principal, talent_id)
        scope.require_staff_of(uow, principal, talent.community_id)
        match = TalentMatch(
            talent_id=talent.id,
            community_id=talent.community_id,
            issue_id=issue_id,
            booking_id=booking_id,
            note=note,
            matched_by=principal.user_id,
            matched_at=uow.clock(),
        )
        if booking_id is not None:
            booking = uow.repo.get(Booking, booking_id)
            if booking is None or not scope.is_staff_of(uow, principal, booking.community_id):
                raise Invalid("unknown booking", fields={"booking_id": ["no such booking in your scope"]})
            if booking.status in (BookingStatus.COMPLETED, BookingStatus.CANCELLED):
                raise Conflict("booking is {status}", status=Label("booking_status", booking.status))
        if not talent.vetted or not talent.active:
            raise Conflict("only an active, vetted talent is asked to help", fields={"talent_id": ["not vetted"]})
        if booking_id is not None and not _talent_free(uow, talent, booking):
            raise Conflict(
                "the talent is already booked at that time", fields={"booking_id": ["the talent is busy then"]}
            )
        uow.repo.add(match)
        uow.publish(_match_event("activities.talent.matched", match, talent))
        uow.commit()
        return match


def _match_for(uow: ActivitiesUnitOfWork, principal: Principal, match_id: str) -> tuple[TalentMatch, Talent]:
    """A match is seen by the talent asked and the staff of its community; anyone else gets 404."""
    match = uow.repo.get(TalentMatch, match_id)
    talent = uow.repo.get(Talent, match.talent_id) if match is not None else None
    if (
        match is None
        or talent is None
        or not (talent.user_id == principal.user_id or scope.is_staff_of(uow, principal, match.community_id))
    ):
        raise NotFound("match {match_id} not found", match_id=match_id)
    return match, talent


def respond_to_match(
    uow: ActivitiesUnitOfWork, principal: Principal, match_id: str, *, accept: bool, reason: str | None = None
) -> TalentMatch:
    """The talent accepts (for a booking: they become its provider, their slot held) or declines."""
    with uow:
        match, talent = _match_for(uow, principal, match_id)
        if talent.user_id != principal.user_id:
            raise Forbidden("only the talent asked answers")
        match.respond(accept, reason, uow.clock())
        if accept and match.booking_id is not None:
            booking = _get(uow, Booking, match.booking_id, "booking")
            if booking.status in (BookingStatus.COMPLETED, BookingStatus.CANCELLED):
                raise Conflict(
                    "the booking is {status}; nothing to accept", status=Label("booking_status", booking.status)
                )
            booking.provider_talent_id = talent.id
            _hold_slot(uow, booking, _get(uow, ServiceOffering, booking.offering_id, "service offering"), talent.id)
        kind = "accepted" if accept else "declined"
        uow.publish(_match_event(f"activities.talent.match_{kind}", match, talent))
        uow.commit()
        return match


def list_matches(
    uow: ActivitiesUnitOfWork, principal: Principal, *, status: str | None, offset: int, limit: int
) -> tuple[list[TalentMatch], int]:
    """Staff: the matches of their scope; anyone else: what they were asked to help with."""
    with uow:
        if principal.role in scope.STAFF:
            where = _scoped(principal, TalentMatch.community_id, None, uow)
        else:
            mine = select(Talent.id).where(Talent.user_id == principal.user_id)
            where = [TalentMatch.talent_id.in_(mine)]
        if status is not None:
            where.append(TalentMatch.status == status)
        return uow.repo.page(
            TalentMatch, where, [TalentMatch.matched_at.desc(), TalentMatch.id], offset=offset, limit=limit
        )


@dataclass(frozen=True)
class Suggestion:
    talent: Talent
    walk: Walk | None  # None: the talent's compound has no coordinates (or none is known)


def suggest_talents(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    model: WalkingModel,
    *,
    skill: str | None = None,
    booking_id: str | None = None,
    compound_id: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    minutes: float = CIRCLE_MINUTES,
    limit: int = 20,
) -> list[Suggestion]:
    """Vetted, active talents of the caller's scope with the skill the need takes (given, or the
    booking's service's), within `minutes` on foot of the need (a compound or a point), nearest
    first; then those whose whereabouts are unknown. For a booking, a talent already booked at its
    time is left out. Staff only: they then ask one (POST /talents/<id>/matches)."""
    principal.require_role(*scope.STAFF)
    with uow:
        booking = None
        if booking_id is not None:
            booking = uow.repo.get(Booking, booking_id)
            if booking is None or not scope.is_staff_of(uow, principal, booking.community_id):
                raise Invalid("unknown booking", fields={"booking_id": ["no such booking in your scope"]})
            offering = _get(uow, ServiceOffering, booking.offering_id, "service offering")
            skill = skill or SKILL_FOR_SERVICE[offering.kind]
        if skill is None:
            raise Invalid("say what the need takes", fields={"skill": ["give skill or booking_id"]})
        if compound_id is not None:
            found = uow.repo.compound(compound_id)
            if found is None:
                raise Invalid("unknown compound", fields={"compound_id": ["no such compound"]})
            point, _community = found
            latitude, longitude = point.latitude, point.longitude
        where = _scoped(principal, Talent.community_id, None, uow)
        where += [
            Talent.active.is_(True),
            Talent.vetting_status == Vetting.APPROVED,
            Talent.skills.like(f"%,{skill},%"),
        ]
        talents = uow.repo.all(Talent, where, [Talent.display_name, Talent.id])
        near: list[Suggestion] = []
        unknown: list[Suggestion] = []
        for talent in talents:
            if booking is not None and not _talent_free(uow, talent, booking):
                continue
            home = uow.repo.compound(talent.compound_id) if talent.compound_id else None
            if home is None or home[0].latitude is None or latitude is None or longitude is None:
                unknown.append(Suggestion(talent, None))
                continue
            walk = model.walk(latitude, longitude, home[0].latitude, home[0].longitude)  # type: ignore[arg-type]
            if walk.minutes <= minutes:
                near.append(Suggestion(talent, walk))
        near.sort(key=lambda s: s.walk.minutes if s.walk else 0.0)
        return (near + unknown)[:limit]


# --- service offerings and bookings ---------------------------------------------------------------------
def create_offering(uow: ActivitiesUnitOfWork, principal: Principal, **values: Any) -> ServiceOffering:
    with uow:
        scope.require_staff_of(uow, principal, values["community_id"])
        if values.get("post_id") is not None and uow.repo.get(ServicePost, values["post_id"]) is None:
            raise Invalid("unknown service post", fields={"post_id": ["no such service post"]})
        provider = values.get("provider_id")
        kind = {"talent": Talent, "group": MutualAidGroup}.get(values.get("provider_type", ""))
        if kind is not None and provider is not None and uow.repo.get(kind, provider) is None:
            raise Invalid(
                "unknown {provider_type}", fields={"provider_id": ["not found"]}, provider_type=values["provider_type"]
            )
        offering = ServiceOffering(created_at=uow.clock(), **values)
        uow.repo.add(offering)
        uow.commit()
        return offering


def list_offerings(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None,
    kind: str | None,
    door_to_door: bool | None,
    offset: int,
    limit: int,
) -> tuple[list[ServiceOffering], int]:
    with uow:
        where = _scoped(principal, ServiceOffering.community_id, community_id, uow)
        where.append(ServiceOffering.active.is_(True))
        if kind is not None:
            where.append(ServiceOffering.kind == kind)
        if door_to_door is not None:
            where.append(ServiceOffering.door_to_door.is_(door_to_door))
        return uow.repo.page(
            ServiceOffering, where, [ServiceOffering.name, ServiceOffering.id], offset=offset, limit=limit
        )


def _booking_event(event_type: str, booking: Booking, offering: ServiceOffering) -> Event:
    return new_event(
        event_type,
        {
            "booking_id": booking.id,
            "offering_id": offering.id,
            "service_name": offering.name,
            "community_id": booking.community_id,
            "resident_id": booking.resident_id,
            "booked_by_id": booking.booked_by,
            "provider_id": booking.provider_talent_id,
            "slot_start": booking.slot_start,
            "slot_end": booking.slot_end,
            "door_to_door": booking.door_to_door,
            "status": booking.status,
        },
        producer=SERVICE,
        community_id=booking.community_id,
    )


def _hold_slot(uow: ActivitiesUnitOfWork, booking: Booking, offering: ServiceOffering, talent_id: str | None) -> None:
    """Make `booking` hold its provider's slot (the provider being `talent_id` when one is named),
    or refuse with 409 when the provider is already booked then. The provider's calendar is locked
    until commit: two bookings of the same slot arriving at once are decided one after the other."""
    provider = Provider.of(offering, talent_id)
    uow.repo.lock_provider(provider.key)
    busy = uow.repo.provider_busy(provider.key, booking.slot_start, booking.slot_end, exclude_id=booking.id)
    if slot_taken(busy, booking.slot_start, booking.slot_end, provider.capacity):
        who = "the talent" if provider.key.startswith("talent:") else "this service"
        raise Conflict(
            "{who} is already booked at that time",
            fields={"slot_start": ["the provider is already booked between slot_start and slot_end"]},
            who=who,
        )
    booking.provider_key = provider.key


def book(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    offering_id: str,
    resident_id: str | None,
    slot_start: datetime,
    slot_end: datetime,
    door_to_door: bool,
    address: str | None,
    note: str,
) -> Booking:
    """A resident books for themselves; staff book for residents (who may have no phone at all)."""
    with uow:
        offering = uow.repo.get(ServiceOffering, offering_id)
        if offering is None or not scope.can_see(uow, principal, offering.community_id):
            # Offerings are listed within the caller's scope; one outside it is unknown to them.
            raise Invalid("unknown service offering", fields={"offering_id": ["no such service offering"]})
        resident = resident_id or principal.user_id
        if resident != principal.user_id:
            scope.require_staff_of(uow, principal, offering.community_id)
        elif offering.community_id not in principal.community_ids and not scope.is_staff_of(
            uow, principal, offering.community_id
        ):
            raise Forbidden("this service is offered to another community")
        booking = Booking.request(
            offering,
            resident_id=resident,
            booked_by=principal.user_id,
            slot_start=slot_start,
            slot_end=slot_end,
            door_to_door=door_to_door,
            address=address,
            note=note,
            created_at=uow.clock(),
        )
        _hold_slot(uow, booking, offering, None)
        uow.repo.add(booking)
        uow.publish(_booking_event("activities.booking.requested", booking, offering))
        uow.commit()
        return booking


def _booking_for(uow: ActivitiesUnitOfWork, principal: Principal, booking_id: str, *, staff_only: bool) -> Booking:
    """A booking is seen by the resident served and the staff of its community (as listed);
    anyone else gets 404, as for one that does not exist. Seen but staff-only: 403."""
    booking = uow.repo.get(Booking, booking_id)
    is_staff = booking is not None and scope.is_staff_of(uow, principal, booking.community_id)
    if booking is None or not (is_staff or booking.resident_id == principal.user_id):
        raise NotFound("booking {booking_id} not found", booking_id=booking_id)
    if staff_only and not is_staff:
        raise Forbidden("only staff of the community do this")
    return booking


def get_booking(uow: ActivitiesUnitOfWork, principal: Principal, booking_id: str) -> Booking:
    with uow:
        return _booking_for(uow, principal, booking_id, staff_only=False)


def list_bookings(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Booking], int]:
    """Staff see the bookings of their communities; a resident sees their own."""
    with uow:
        if principal.role in scope.STAFF:
            where = _scoped(principal, Booking.community_id, community_id, uow)
        else:
            where = [Booking.resident_id == principal.user_id]
        if status is not None:
            where.append(Booking.status == status)
        return uow.repo.page(Booking, where, [Booking.slot_start, Booking.id], offset=offset, limit=limit)


def change_booking(
    uow: ActivitiesUnitOfWork, principal: Principal, booking_id: str, action: str, **values: Any
) -> Booking:
    """confirm / complete (staff), cancel / feedback (the resident or staff)."""
    with uow:
        booking = _booking_for(uow, principal, booking_id, staff_only=action in ("confirm", "complete"))
        offering = _get(uow, ServiceOffering, booking.offering_id, "service offering")
        event_type = None
        if action == "confirm":
            provider = values.get("provider_talent_id")
            talent = uow.repo.get(Talent, provider) if provider is not None else None
            if provider is not None and (talent is None or talent.community_id != booking.community_id):
                raise Invalid("unknown talent", fields={"provider_talent_id": ["no such talent in this community"]})
            booking.confirm(provider)
            if provider is not None:
                _hold_slot(uow, booking, offering, provider)
            event_type = "activities.booking.confirmed"
        elif action == "complete":
            booking.complete(values.get("person_times") or 1, uow.clock())
            event_type = "activities.booking.completed"
        elif action == "cancel":
            booking.cancel()
            event_type = "activities.booking.cancelled"
        elif action == "feedback":
            if booking.resident_id != principal.user_id and principal.role == Role.RESIDENT:
                raise Forbidden("feedback comes from the resident served")
            booking.give_feedback(values["rating"], values.get("comment"))
        if event_type is not None:
            uow.publish(_booking_event(event_type, booking, offering))
        uow.commit()
        return booking


# --- residents needing support ----------------------------------------------------------------------------
def _is_community_staff(principal: Principal, community_id: str) -> bool:
    """Stricter than other staff rights: only the community's own staff, who visit these residents."""
    return principal.role == Role.COMMUNITY_STAFF and community_id in principal.community_ids


def _require_community_staff(principal: Principal, community_id: str) -> None:
    if not _is_community_staff(principal, community_id):
        raise Forbidden("residents needing support are seen only by the staff of their community")


def flag_support(uow: ActivitiesUnitOfWork, principal: Principal, **values: Any) -> SupportFlag:
    _require_community_staff(principal, values["community_id"])
    with uow:
        flag = SupportFlag(recorded_by=principal.user_id, created_at=uow.clock(), **values)
        uow.repo.add(flag)
        uow.commit()
        return flag


def update_support(uow: ActivitiesUnitOfWork, principal: Principal, flag_id: str, **changes: Any) -> SupportFlag:
    with uow:
        flag = uow.repo.get(SupportFlag, flag_id)
        if flag is None or not _is_community_staff(principal, flag.community_id):
            raise NotFound("support record {flag_id} not found", flag_id=flag_id)
        for name, value in changes.items():
            setattr(flag, name, value)
        flag.check()
        uow.commit()
        return flag


def list_support(
    uow: ActivitiesUnitOfWork, principal: Principal, *, community_id: str, need: str | None, offset: int, limit: int
) -> tuple[list[SupportFlag], int]:
    _require_community_staff(principal, community_id)
    with uow:
        where: list[ColumnElement[bool]] = [SupportFlag.community_id == community_id, SupportFlag.active.is_(True)]
        if need is not None:
            where.append(SupportFlag.needs.like(f"%,{need},%"))
        return uow.repo.page(SupportFlag, where, [SupportFlag.display_name, SupportFlag.id], offset=offset, limit=limit)


# --- welfare visits ---------------------------------------------------------------------------------------
def _today(uow: ActivitiesUnitOfWork) -> date:
    return today_in(uow.timezone, uow.clock())


def _flag(uow: ActivitiesUnitOfWork, principal: Principal, flag_id: str) -> SupportFlag:
    flag = uow.repo.get(SupportFlag, flag_id)
    if flag is None or not _is_community_staff(principal, flag.community_id):
        raise NotFound("support record {flag_id} not found", flag_id=flag_id)
    return flag


def _plan_of(uow: ActivitiesUnitOfWork, flag_id: str) -> VisitPlan | None:
    found = uow.repo.all(VisitPlan, [VisitPlan.flag_id == flag_id])
    return found[0] if found else None


def set_visit_plan(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    flag_id: str,
    *,
    every_days: int,
    visitor_id: str,
    visitor_name: str = "",
    starts_on: date | None = None,
) -> VisitPlan:
    """Make or change the visit plan of a resident needing support: every N days, by whom; the first
    visit due on `starts_on` (default today). Community staff only."""
    with uow:
        flag = _flag(uow, principal, flag_id)
        plan = _plan_of(uow, flag.id)
        if plan is None:
            first = starts_on or _today(uow)
            plan = VisitPlan(
                flag_id=flag.id,
                community_id=flag.community_id,
                every_days=every_days,
                visitor_id=visitor_id,
                visitor_name=visitor_name,
                starts_on=first,
                next_due_on=first,
                created_by=principal.user_id,
                created_at=uow.clock(),
            )
            uow.repo.add(plan)
        else:
            plan.change(every_days=every_days, visitor_id=visitor_id, visitor_name=visitor_name, starts_on=starts_on)
        uow.commit()
        return plan


def get_visit_plan(uow: ActivitiesUnitOfWork, principal: Principal, flag_id: str) -> VisitPlan:
    with uow:
        flag = _flag(uow, principal, flag_id)
        plan = _plan_of(uow, flag.id)
        if plan is None:
            raise NotFound("support record {flag_id} has no visit plan", flag_id=flag_id)
        return plan


def _for_visit(uow: ActivitiesUnitOfWork, principal: Principal, flag_id: str) -> tuple[SupportFlag, VisitPlan | None]:
    """The flag for someone recording a visit: its community's staff, or the plan's visitor (who
    goes to the door); 404 for anyone else."""
    flag = uow.repo.get(SupportFlag, flag_id)
    plan = _plan_of(uow, flag_id) if flag is not None else None
    if flag is None or not (
        _is_community_staff(principal, flag.community_id) or (plan is not None and plan.visitor_id == principal.user_id)
    ):
        raise NotFound("support record {flag_id} not found", flag_id=flag_id)
    return flag, plan


def _prefixed(error: Invalid | Conflict, prefix: str) -> Invalid | Conflict:
    fields = {f"{prefix}.{name}": problems for name, problems in (error.fields or {}).items()} or {prefix: [str(error)]}
    return type(error)(str(error), fields=fields)


def _book_on_the_spot(
    uow: ActivitiesUnitOfWork, principal: Principal, flag: SupportFlag, request: dict[str, Any]
) -> Booking:
    if flag.resident_id is None:
        raise Invalid("the resident has no account to book for", fields={"booking": ["the resident has no account"]})
    offering = uow.repo.get(ServiceOffering, request["offering_id"])
    if offering is None or offering.community_id != flag.community_id:
        raise Invalid("unknown service offering", fields={"booking.offering_id": ["no such service here"]})
    try:
        booking = Booking.request(
            offering,
            resident_id=flag.resident_id,
            booked_by=principal.user_id,
            slot_start=request["slot_start"],
            slot_end=request["slot_end"],
            door_to_door=offering.door_to_door,
            address=flag.address if offering.door_to_door else None,
            note=request.get("note") or "",
            created_at=uow.clock(),
        )
        _hold_slot(uow, booking, offering, None)
    except (Invalid, Conflict) as exc:
        raise _prefixed(exc, "booking") from exc
    uow.repo.add(booking)
    uow.publish(_booking_event("activities.booking.requested", booking, offering))
    return booking


def record_visit(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    flag_id: str,
    *,
    visited_on: date,
    condition: str,
    note: str = "",
    visitor_id: str | None = None,
    booking: dict[str, Any] | None = None,
    concern: dict[str, Any] | None = None,
) -> WelfareVisit:
    """Record a visit (the next one is then due an interval later), optionally booking a service for
    the resident on the spot (door-to-door at their address when the service goes door to door),
    and optionally raising a problem the visitor found as an issue (the issues service reports it
    from `activities.visit.concern_raised`, under the id the visit keeps)."""
    with uow:
        flag, plan = _for_visit(uow, principal, flag_id)
        if plan is None or not plan.active:
            raise Conflict("this resident has no visit plan; make one first")
        if visited_on > _today(uow):
            raise Invalid("a visit in the future", fields={"visited_on": ["cannot be in the future"]})
        visit = WelfareVisit(
            plan_id=plan.id,
            flag_id=flag.id,
            community_id=flag.community_id,
            visitor_id=visitor_id or principal.user_id,
            visited_on=visited_on,
            condition=condition,
            note=note,
            recorded_by=principal.user_id,
            recorded_at=uow.clock(),
        )
        if booking is not None:
            visit.booking_id = _book_on_the_spot(uow, principal, flag, booking).id
        if concern is not None:
            visit.issue_id = new_id()
            uow.publish(_concern_event(uow, principal, flag, visit, concern))
        plan.record(visited_on, condition)
        uow.repo.add(visit)
        uow.commit()
        return visit


def _concern_event(
    uow: ActivitiesUnitOfWork, principal: Principal, flag: SupportFlag, visit: WelfareVisit, concern: dict[str, Any]
) -> Event:
    return new_event(
        "activities.visit.concern_raised",
        {
            "visit_id": visit.id,
            "issue_id": visit.issue_id,
            "flag_id": flag.id,
            "community_id": flag.community_id,
            "resident_id": flag.resident_id,
            "raised_by": principal.user_id,
            "title": concern["title"],
            "description": concern["description"],
            "category": concern.get("category") or DEFAULT_CONCERN_CATEGORY,
            "urgency": concern.get("urgency") or "normal",
            # Where the resident lives, so whoever takes the issue finds the door.
            "address": flag.address or None,
        },
        producer=SERVICE,
        community_id=flag.community_id,
        street_id=uow.repo.street_of(flag.community_id),
    )


def list_visits(
    uow: ActivitiesUnitOfWork, principal: Principal, flag_id: str, *, offset: int, limit: int
) -> tuple[list[WelfareVisit], int]:
    with uow:
        flag = _flag(uow, principal, flag_id)
        return uow.repo.page(
            WelfareVisit,
            [WelfareVisit.flag_id == flag.id],
            [WelfareVisit.visited_on.desc(), WelfareVisit.id],
            offset=offset,
            limit=limit,
        )


@dataclass(frozen=True)
class QueuedVisit:
    plan: VisitPlan
    flag: SupportFlag
    overdue_days: int


def visit_queue(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None,
    within_days: int = 0,
    offset: int,
    limit: int,
) -> tuple[list[QueuedVisit], int]:
    """The visits that are overdue (and, with `within_days`, due in the next days), most overdue
    first: for community staff, of their communities (or the one named); for anyone else, the
    visits they were given to make."""
    with uow:
        today = _today(uow)
        where: list[ColumnElement[bool]] = [
            VisitPlan.active.is_(True),
            VisitPlan.next_due_on < today + timedelta(days=within_days),
        ]
        if principal.role == Role.COMMUNITY_STAFF:
            if community_id is not None:
                _require_community_staff(principal, community_id)
                where.append(VisitPlan.community_id == community_id)
            else:
                where.append(VisitPlan.community_id.in_(list(principal.community_ids)))
        else:
            if community_id is not None:
                raise Forbidden("visits of a community are seen by its own staff")
            where.append(VisitPlan.visitor_id == principal.user_id)
        plans, total = uow.repo.page(
            VisitPlan, where, [VisitPlan.next_due_on, VisitPlan.id], offset=offset, limit=limit
        )
        items = []
        for plan in plans:
            flag = _get(uow, SupportFlag, plan.flag_id, "support record")
            items.append(QueuedVisit(plan, flag, plan.overdue_days(today)))
        return items, total
