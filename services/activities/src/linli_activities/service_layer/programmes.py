"""Use cases of recurring series (with exceptions) and festivals (with their own figures)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select

from linli_activities.adapters.stats_queries import StatsQueries
from linli_activities.adapters.tables import activity_communities as links
from linli_activities.adapters.tables import replica
from linli_activities.domain.activities import Activity, ActivityStatus
from linli_activities.domain.programmes import ActivitySeries, Festival, Recurrence, SeriesStatus
from linli_activities.service_layer import activities, scope
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound

RECURRENCE_FIELDS = (
    "frequency",
    "interval",
    "weekdays",
    "first_date",
    "start_time",
    "duration_minutes",
    "count",
    "until",
)


# --- series -----------------------------------------------------------------------------------------
def _series(uow: ActivitiesUnitOfWork, principal: Principal, series_id: str) -> ActivitySeries:
    """A series the caller may see (as its occurrences: in their scope, a draft only by its
    organisers), else 404 as if it did not exist."""
    series = uow.repo.get(ActivitySeries, series_id)
    if series is None or not any(scope.can_see(uow, principal, c) for c in series.community_ids):
        raise NotFound("series {series_id} not found", series_id=series_id)
    if series.status == SeriesStatus.DRAFT and not _manages(uow, principal, series):
        raise NotFound("series {series_id} not found", series_id=series_id)
    return series


def _manages(uow: ActivitiesUnitOfWork, principal: Principal, series: ActivitySeries) -> bool:
    return all(scope.is_staff_of(uow, principal, c) for c in series.community_ids)


def _require_manager(uow: ActivitiesUnitOfWork, principal: Principal, series: ActivitySeries) -> None:
    if not _manages(uow, principal, series):
        raise Forbidden("only staff of every community of the series change it")


def create_series(
    uow: ActivitiesUnitOfWork, principal: Principal, *, publish: bool = False, **values: Any
) -> tuple[ActivitySeries, int]:
    """A series and all its occurrences (at most a year of a daily programme), each an activity one
    registers for. Published ones are announced as they come within two weeks. Returns the series
    and how many occurrences it has."""
    with uow:
        community_ids = list(dict.fromkeys(values.pop("community_ids")))
        for community_id in community_ids:
            scope.require_staff_of(uow, principal, community_id)
        activities._check_post(uow, values.get("post_id"))
        activities.prepare_template(uow, principal, values, community_ids)
        tz = ZoneInfo(uow.timezone)
        rule = Recurrence(
            **{k: (tuple(v) if k == "weekdays" else v) for k, v in values.items() if k in RECURRENCE_FIELDS}
        )
        occurrences = rule.occurrences(tz)
        if not occurrences:
            raise Invalid("the rule gives no occurrence", fields={"first_date": ["no occurrence from this date"]})
        for _day, starts_at, _ends_at in (occurrences[0], occurrences[-1]):
            activities.check_festival(uow, principal, values.get("festival_id"), community_ids, starts_at)
        series = ActivitySeries(
            community_ids=community_ids,
            timezone=uow.timezone,
            created_by=principal.user_id,
            created_at=uow.clock(),
            status=SeriesStatus.ACTIVE if publish else SeriesStatus.DRAFT,
            **{**values, "weekdays": list(values.get("weekdays") or [])},
        )
        uow.repo.add(series)
        uow.session.flush()
        template = {
            k: values.get(k)
            for k in ("kind", "title", "description", "place", "post_id", "capacity", "max_party_size", "festival_id")
        }
        for day, starts_at, ends_at in occurrences:
            occurrence = Activity(
                community_ids=community_ids,
                starts_at=starts_at,
                ends_at=ends_at,
                organiser_type=series.organiser_type,
                organiser_id=series.organiser_id,
                audience=list(series.audience),
                created_by=principal.user_id,
                created_at=uow.clock(),
                series_id=series.id,
                occurrence_date=day,
                **{k: v for k, v in template.items() if v is not None},
            )
            activities.add_published(uow, occurrence, publish)
        uow.commit()
        return series, len(occurrences)


def get_series(uow: ActivitiesUnitOfWork, principal: Principal, series_id: str) -> tuple[ActivitySeries, int]:
    with uow:
        series = _series(uow, principal, series_id)
        return series, uow.repo.occurrence_count(series.id)


def list_series(
    uow: ActivitiesUnitOfWork, principal: Principal, *, community_id: str | None, offset: int, limit: int
) -> tuple[list[tuple[ActivitySeries, int]], int]:
    """The series with an occurrence in the caller's scope (drafts: staff only)."""
    with uow:
        where: list[ColumnElement[bool]] = []
        visible = scope.visible_communities(principal, links.c.community_id)
        if visible is not None:
            where.append(visible)
        if community_id is not None:
            scope.require_visible(uow, principal, community_id)
            where.append(links.c.community_id == community_id)
        ids = (
            select(Activity.series_id)
            .join(links, links.c.activity_id == Activity.id)
            .where(Activity.series_id.is_not(None), *where)
            .distinct()
        )
        own: list[ColumnElement[bool]] = [ActivitySeries.id.in_(ids)]
        if principal.role not in scope.STAFF:
            own.append(ActivitySeries.status != SeriesStatus.DRAFT)
        items, total = uow.repo.page(
            ActivitySeries, own, [ActivitySeries.first_date, ActivitySeries.id], offset=offset, limit=limit
        )
        return [(s, uow.repo.occurrence_count(s.id)) for s in items], total


def publish_series(uow: ActivitiesUnitOfWork, principal: Principal, series_id: str) -> tuple[ActivitySeries, int]:
    """Publish every draft occurrence of a draft series."""
    with uow:
        series = _series(uow, principal, series_id)
        _require_manager(uow, principal, series)
        if series.status != SeriesStatus.DRAFT:
            raise Conflict(
                "series is {status}; only a draft can be published", status=Label("series_status", series.status)
            )
        series.status = SeriesStatus.ACTIVE
        for occurrence in uow.repo.occurrences(series.id, lock=True):
            if occurrence.status == ActivityStatus.DRAFT:
                occurrence.publish()
                uow.repo.update_activity_links(occurrence)
                activities._plan_reminders(uow, occurrence)
                activities._announce(uow, occurrence)
        uow.commit()
        return series, uow.repo.occurrence_count(series.id)


def add_exception(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    series_id: str,
    *,
    occurrence_date: date,
    action: str,
    reason: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Activity:
    """Skip one occurrence (cancelled, with the reason its registrants are told) or move it."""
    with uow:
        series = _series(uow, principal, series_id)
        _require_manager(uow, principal, series)
        occurrence = uow.repo.occurrence_on(series.id, occurrence_date)
        if occurrence is None:
            raise Invalid("no occurrence that day", fields={"occurrence_date": ["the series has no occurrence then"]})
        if occurrence.status == ActivityStatus.CANCELLED:
            raise Conflict("this occurrence is already cancelled")
        if action == "skip":
            if not (reason or "").strip():
                raise Invalid("say why", fields={"reason": ["required to skip an occurrence"]})
            activities.cancel(uow, occurrence, reason or "")
            occurrence.series_exception = "skipped"
        else:
            if starts_at is None or ends_at is None:
                field = "starts_at" if starts_at is None else "ends_at"
                raise Invalid("say when", fields={field: ["required to move an occurrence"]})
            activities.check_festival(uow, principal, occurrence.festival_id, occurrence.community_ids, starts_at)
            uow.publish(*activities.reschedule(uow, occurrence, starts_at, ends_at))
            uow.repo.update_activity_links(occurrence)
            occurrence.series_exception = "moved"
        uow.commit()
        return occurrence


def cancel_series(
    uow: ActivitiesUnitOfWork, principal: Principal, series_id: str, reason: str
) -> tuple[ActivitySeries, int]:
    """End a series: every occurrence not yet started is cancelled (its registrants told)."""
    with uow:
        series = _series(uow, principal, series_id)
        _require_manager(uow, principal, series)
        if series.status == SeriesStatus.CANCELLED:
            raise Conflict("series is already cancelled")
        series.status, series.cancel_reason = SeriesStatus.CANCELLED, reason
        now = uow.clock()
        for occurrence in uow.repo.occurrences(series.id, lock=True):
            if occurrence.status != ActivityStatus.CANCELLED and occurrence.starts_at > now:
                activities.cancel(uow, occurrence, reason)
        uow.commit()
        return series, uow.repo.occurrence_count(series.id)


# --- festivals ---------------------------------------------------------------------------------------
def create_festival(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    name: str,
    starts_on: date,
    ends_on: date,
    description: str = "",
    street_id: str | None = None,
) -> Festival:
    """A city admin creates a city-wide festival (or one street's); a street official, their street's."""
    principal.require_role(Role.CITY_ADMIN, Role.STREET_OFFICIAL)
    with uow:
        if principal.role == Role.STREET_OFFICIAL:
            if street_id is not None and street_id != principal.street_id:
                raise Forbidden("a street official organises festivals of their own street")
            street_id = principal.street_id
        if street_id is not None:
            streets = replica.streets.c
            if uow.session.scalar(select(streets.street_id).where(streets.street_id == street_id)) is None:
                raise Invalid("unknown street", fields={"street_id": ["no such street"]})
        festival = Festival(
            name=name,
            description=description,
            starts_on=starts_on,
            ends_on=ends_on,
            street_id=street_id,
            created_by=principal.user_id,
            created_at=uow.clock(),
        )
        uow.repo.add(festival)
        uow.commit()
        return festival


def _festival(uow: ActivitiesUnitOfWork, principal: Principal, festival_id: str) -> Festival:
    festival = uow.repo.get(Festival, festival_id)
    if festival is None or not activities.festival_visible(uow, principal, festival):
        raise NotFound("festival {festival_id} not found", festival_id=festival_id)
    return festival


def get_festival(uow: ActivitiesUnitOfWork, principal: Principal, festival_id: str) -> Festival:
    with uow:
        return _festival(uow, principal, festival_id)


def list_festivals(
    uow: ActivitiesUnitOfWork, principal: Principal, *, offset: int, limit: int
) -> tuple[list[Festival], int]:
    """City-wide festivals, and those of the streets of the caller's scope; newest first."""
    with uow:
        where: list[ColumnElement[bool]] = []
        if principal.role == Role.STREET_OFFICIAL:
            where.append(or_(Festival.street_id.is_(None), Festival.street_id == principal.street_id))
        elif principal.role != Role.CITY_ADMIN:
            communities = replica.communities.c
            streets = select(communities.street_id).where(communities.community_id.in_(list(principal.community_ids)))
            where.append(or_(Festival.street_id.is_(None), Festival.street_id.in_(streets)))
        return uow.repo.page(Festival, where, [Festival.starts_on.desc(), Festival.id], offset=offset, limit=limit)


def festival_statistics(uow: ActivitiesUnitOfWork, principal: Principal, festival_id: str) -> dict[str, Any]:
    """The festival's own figures: its activities (published, held so far), the communities taking
    part, registrations and the places they hold, participant-times; in total, and per community
    for the communities of the caller's scope. For staff (community, street, city)."""
    with uow:
        festival = _festival(uow, principal, festival_id)
        principal.require_role(*scope.STAFF)
        queries = StatsQueries(uow.session, uow.timezone)
        totals, per_community = queries.festival(festival.id, uow.clock())
        mine = {c for c in per_community if scope.can_see(uow, principal, c)}
        return {
            "festival": festival,
            "totals": totals,
            "by_community": [{"community_id": c, **per_community[c]} for c in sorted(mine)],
        }
