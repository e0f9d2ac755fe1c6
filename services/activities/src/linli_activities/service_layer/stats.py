"""`GET /stats`: what the activities service did for a community, a street or the city in a period."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select

from linli_activities.adapters.stats_queries import StatsQueries
from linli_activities.adapters.tables import replica
from linli_activities.service_layer import scope as scopes
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden
from linli_kit.periods import resolve_period, today_in

ZERO_FIGURES = {
    "activities_held": 0,
    "participant_times": 0,
    "distinct_participants": 0,
    "registrations": 0,
    "registered_places": 0,
    "registrations_attended": 0,
    "still_waitlisted": 0,
    "service_posts": 0,
    "residents_covered": 0,
    "mutual_aid_groups": 0,
    "group_members": 0,
    "help_hours": 0.0,
    "help_entries": 0,
    "talents": 0,
    "service_person_times": 0,
    "door_to_door_person_times": 0,
    "services_completed": 0,
    "welfare_visits": 0,
    "visit_plans": 0,
    "visits_overdue": 0,
    "patrol_rounds": 0,
    "patrol_findings": 0,
    "patrol_issues_raised": 0,
}
MONTHLY_FIGURES = (
    "activities_held",
    "participant_times",
    "service_person_times",
    "door_to_door_person_times",
    "help_hours",
    "welfare_visits",
    "patrol_rounds",
    "patrol_findings",
    "patrol_issues_raised",
)


def _resolve_scope(
    uow: ActivitiesUnitOfWork, principal: Principal, community_id: str | None, street_id: str | None
) -> tuple[dict[str, Any], Any]:
    """(the scope as answered, a function giving the SQL condition on a community id column)."""
    principal.require_role(Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)
    if community_id is not None:
        scopes.require_staff_of(uow, principal, community_id)
        return {"community_id": community_id}, lambda column: column == community_id
    if street_id is None and principal.role == Role.STREET_OFFICIAL:
        street_id = principal.street_id
    if street_id is not None:
        if principal.role == Role.STREET_OFFICIAL and principal.street_id != street_id:
            raise Forbidden("a street official sees their own street")
        if principal.role == Role.COMMUNITY_STAFF:
            raise Forbidden("community staff see their own community")
        communities = select(replica.communities.c.community_id).where(replica.communities.c.street_id == street_id)
        return {"street_id": street_id}, lambda column: column.in_(communities)
    if principal.role == Role.CITY_ADMIN:
        return {"city": True}, lambda _column: None
    ids = list(principal.community_ids)
    return {"community_ids": ids}, lambda column: column.in_(ids)


def _month_keys(first: date, last: date) -> list[str]:
    keys, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _with_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    figures["attendance_rate"] = _share(figures["registrations_attended"], figures["registrations"])
    figures["door_to_door_share"] = _share(figures["door_to_door_person_times"], figures["service_person_times"])
    figures["help_hours"] = round(float(figures["help_hours"]), 2)
    return figures


def _per_street(
    uow: ActivitiesUnitOfWork, per_community: dict[str, dict[str, Any]], distinct: dict[str | None, dict[str, Any]]
) -> list[dict[str, Any]]:
    c = replica.communities.c
    street_of = dict(uow.session.execute(select(c.community_id, c.street_id)).all())
    streets: dict[str | None, dict[str, Any]] = {}
    for community_id, figures in per_community.items():
        street = streets.setdefault(street_of.get(community_id), dict(ZERO_FIGURES))
        for name, value in figures.items():
            street[name] += value
    for street_id, figures in distinct.items():
        streets.setdefault(street_id, dict(ZERO_FIGURES)).update(figures)
    return [
        {"street_id": street_id, **_with_ratios(figures)}
        for street_id, figures in sorted(streets.items(), key=lambda kv: kv[0] or "")
    ]


def statistics(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    timezone: str,
    community_id: str | None = None,
    street_id: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
    by: str = "community",
) -> dict[str, Any]:
    """The figures of a scope over a period: the platform's period rule (`linli_kit.periods`), the
    scope checked before anything is read. The rows beside the totals are per community, or with
    `by` "street" per street: the communities' figures added up, but distinct participants and
    group members counted once per street."""
    now = uow.clock()
    with uow:
        answered_scope, condition = _resolve_scope(uow, principal, community_id, street_id)
        period = resolve_period(today_in(timezone, now), period_from, period_to)
        first, last = period.start, period.end
        start, end = period.instants(timezone)
        # "Held" means it took place: a future activity in the period is not counted yet.
        held_end = min(end, now)
        q = StatsQueries(uow.session, timezone)
        totals: dict[str, Any] = dict(ZERO_FIGURES)
        per_community: dict[str, dict[str, Any]] = defaultdict(lambda: dict(ZERO_FIGURES))
        monthly: dict[str, dict[str, Any]] = {m: {k: 0 for k in MONTHLY_FIGURES} for m in _month_keys(first, last)}

        def merge(total: dict, by_community: dict | None = None, by_month: dict | None = None) -> None:
            totals.update(total)
            for key, figures in (by_community or {}).items():
                per_community[key].update(figures)
            for key, figures in (by_month or {}).items():
                if key in monthly:
                    monthly[key].update(figures)

        activity_totals, by_kind, activity_communities, activity_months = q.activities(condition, start, held_end)
        merge(activity_totals, activity_communities, activity_months)
        merge(*q.checkins(condition, start, end))
        merge(*q.registrations(condition, start, held_end))
        merge(*q.posts(condition))
        merge(*q.groups(condition))
        merge(*q.help(condition, first, last))
        merge(*q.talents(condition))
        merge(*q.services(condition, start, end))
        merge(*q.visits(condition, first, last, today_in(timezone, now)))
        merge(*q.patrols(condition, start, end))
        per_street = (
            _per_street(uow, per_community, q.distinct_per_street(condition, start, end, held_end))
            if by == "street"
            else []
        )
    totals["activities_by_kind"] = by_kind
    return {
        "scope": answered_scope,
        "period": {"from": first, "to": last, "timezone": timezone},
        "totals": _with_ratios(totals),
        "by_community": []
        if by == "street"
        else [{"community_id": key, **_with_ratios(figures)} for key, figures in sorted(per_community.items())],
        "by_street": per_street,
        "monthly": [
            {"month": key, **{**figures, "help_hours": round(float(figures["help_hours"]), 2)}}
            for key, figures in monthly.items()
        ],
    }
