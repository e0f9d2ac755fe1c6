"""`GET /stats`: what the activities service did for a community, a street or the city in a period."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, literal, select

from linli_activities.adapters import counts
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


Figures = dict[str, Any]
# What the figures of a scope and period are made of: (totals, activities held by kind, per
# community, per street (with `by` "street"), per month).
Parts = tuple[Figures, dict[str, int], dict[str, Figures], dict[str | None, Figures], dict[str, Figures]]
PERIOD_FIGURES = (
    "activities_held",
    "participant_times",
    "distinct_participants",
    "registrations",
    "registered_places",
    "registrations_attended",
    "still_waitlisted",
    "help_hours",
    "help_entries",
    "service_person_times",
    "door_to_door_person_times",
    "services_completed",
    "welfare_visits",
    "patrol_rounds",
    "patrol_findings",
    "patrol_issues_raised",
)
NOW_FIGURES = ("service_posts", "residents_covered", "mutual_aid_groups", "group_members", "talents")


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
    from_history: bool = False,
) -> dict[str, Any]:
    """The figures of a scope over a period: the platform's period rule (`linli_kit.periods`), the
    scope checked before anything is read. The rows beside the totals are per community, or with
    `by` "street" per street: the communities' figures added up, but distinct participants and
    group members counted once per street.

    Read from the counts kept with every change (adapters/counts.py) when they are built in the
    city's zone; from the history otherwise, for a staff member's list of communities (a few), or
    with `from_history` (the tests' reference)."""
    now = uow.clock()
    with uow:
        answered_scope, condition = _resolve_scope(uow, principal, community_id, street_id)
        period = resolve_period(today_in(timezone, now), period_from, period_to)
        q = StatsQueries(uow.session, timezone)
        zone = counts.zone_of_counts(uow.session.connection())
        counted = zone is not None and zone.key == timezone and "community_ids" not in answered_scope
        if counted and not from_history:
            parts = _from_counts(uow, q, answered_scope, condition, period.start, period.end, timezone, now, by)
        else:
            parts = _from_history(uow, q, condition, period.start, period.end, timezone, now, by)
    totals, by_kind, per_community, per_street, monthly = parts
    totals["activities_by_kind"] = {kind: n for kind, n in sorted(by_kind.items()) if n}
    return {
        "scope": answered_scope,
        "period": {"from": period.start, "to": period.end, "timezone": timezone},
        "totals": _with_ratios(totals),
        "by_community": []
        if by == "street"
        else [{"community_id": key, **_with_ratios(figures)} for key, figures in sorted(per_community.items())],
        "by_street": [
            {"street_id": street_id, **_with_ratios(figures)}
            for street_id, figures in sorted(per_street.items(), key=lambda kv: kv[0] or "")
        ]
        if by == "street"
        else [],
        "monthly": [
            {"month": key, **{**figures, "help_hours": round(float(figures["help_hours"]), 2)}}
            for key, figures in monthly.items()
        ],
    }


def _collect(
    q: StatsQueries,
    condition: Any,
    *,
    held: tuple[datetime, datetime] | None,
    moments: tuple[datetime, datetime] | None,
    days: tuple[date, date] | None,
    today: date,
    months: list[str],
    now_figures: bool,
) -> tuple[Figures, dict[str, int], dict[str, Figures], dict[str, Figures]]:
    """The history's figures: of activities and registrations held in `held`, of what happened in
    `moments` and on `days`; with `now_figures`, the figures as of now too."""
    totals: Figures = dict(ZERO_FIGURES)
    by_kind: dict[str, int] = {}
    per_community: dict[str, Figures] = defaultdict(lambda: dict(ZERO_FIGURES))
    monthly: dict[str, Figures] = {m: {k: 0 for k in MONTHLY_FIGURES} for m in months}
    keep = None if now_figures else set(PERIOD_FIGURES)

    def merge(total: dict, by_community: dict | None = None, by_month: dict | None = None) -> None:
        totals.update({k: v for k, v in total.items() if keep is None or k in keep})
        for key, figures in (by_community or {}).items():
            per_community[key].update({k: v for k, v in figures.items() if keep is None or k in keep})
        for key, figures in (by_month or {}).items():
            if key in monthly:
                monthly[key].update(figures)

    if held is not None and held[0] < held[1]:
        activity_totals, by_kind, activity_communities, activity_months = q.activities(condition, *held)
        merge(activity_totals, activity_communities, activity_months)
        merge(*q.registrations(condition, *held))
    if moments is not None and moments[0] < moments[1]:
        merge(*q.checkins(condition, *moments))
        merge(*q.services(condition, *moments))
        merge(*q.patrols(condition, *moments))
    if days is not None and days[0] <= days[1]:
        merge(*q.help(condition, *days))
        merge(*q.visits(condition, *days, today))
    if now_figures:
        merge(*q.posts(condition))
        merge(*q.groups(condition))
        merge(*q.talents(condition))
    return totals, by_kind, per_community, monthly


def _street_of(uow: ActivitiesUnitOfWork) -> dict[str, str | None]:
    c = replica.communities.c
    return dict(uow.session.execute(select(c.community_id, c.street_id)).all())


def _from_history(
    uow: ActivitiesUnitOfWork,
    q: StatsQueries,
    condition: Any,
    first: date,
    last: date,
    timezone: str,
    now: datetime,
    by: str,
) -> Parts:
    """Every figure aggregated from the history of the period (the counts' reference)."""
    start, end = _instants(first, last, timezone)
    # "Held" means it took place: a future activity in the period is not counted yet.
    held_end = min(end, now)
    totals, by_kind, per_community, monthly = _collect(
        q,
        condition,
        held=(start, held_end),
        moments=(start, end),
        days=(first, last),
        today=today_in(timezone, now),
        months=_month_keys(first, last),
        now_figures=True,
    )
    per_street: dict[str | None, Figures] = {}
    if by == "street":
        street_of = _street_of(uow)
        for community_id, figures in per_community.items():
            _add_to(per_street.setdefault(street_of.get(community_id), dict(ZERO_FIGURES)), figures)
        for street_id, figures in q.distinct_per_street(condition, start, end, held_end).items():
            per_street.setdefault(street_id, dict(ZERO_FIGURES)).update(figures)
    return totals, by_kind, per_community, per_street, monthly


def _instants(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def _add_to(target: Figures, figures: Figures, sign: int = 1) -> None:
    for name, value in figures.items():
        target[name] = target.get(name, 0) + sign * value


def _from_counts(  # noqa: C901 - one assembly of totals, rows and months
    uow: ActivitiesUnitOfWork,
    q: StatsQueries,
    answered_scope: dict[str, Any],
    condition: Any,
    first: date,
    last: date,
    timezone: str,
    now: datetime,
    by: str,
) -> Parts:
    """Every figure from the counts of the period's months (adapters/counts.py). The months' counts
    cover whole months, so what they hold outside the period is taken off, read from the history:
    the days of the first month before `from` and of the last month after `to` (for the usual
    period, the rest of the current month: normally nothing has happened there yet), and the
    activities of the period not held yet (those starting after now). Distinct participants come
    from the counts unless those days have check-ins: then from the history of the period."""
    today = today_in(timezone, now)
    months = _month_keys(first, last)
    month_first = first.replace(day=1)
    month_last = _last_day_of_month(last)
    start, end = _instants(first, last, timezone)
    months_start, months_end = _instants(month_first, month_last, timezone)
    held_end = max(min(end, now), start)
    reader = counts.CountsReader(uow.session.connection())
    c = replica.communities.c

    # Which rows: the scope's own (totals, months, kinds) and those read in all (the scope's own
    # and the rows beside the totals: its communities or streets; for the city, its shards too).
    # One statement per read model reads them all.
    city = "community_id" not in answered_scope and "street_id" not in answered_scope
    if city:
        own = None
        own_rows: counts.ScopeRows = counts.streets
        read_rows: counts.ScopeRows = counts.streets_and_city if by == "street" else counts.every_row
    else:
        if "community_id" in answered_scope:
            own = answered_scope["community_id"]
        else:
            own = counts.street_key(answered_scope["street_id"])

        def own_rows(column: Any) -> list[Any]:
            return [column == own]

        read_rows = own_rows
        if "street_id" in answered_scope and by != "street":
            # The street's row and its communities' (as one list: an OR of the two is read by a
            # scan of every row).
            street_and_members = select(c.community_id).where(c.street_id == answered_scope["street_id"])
            street_and_members = street_and_members.union_all(select(literal(own, String)))

            def read_rows(column: Any) -> list[Any]:
                return [column.in_(street_and_members)]

    def figures_of(found: counts.Found, people: int) -> Figures:
        figures: Figures = dict(ZERO_FIGURES)
        period, now_values = found["period"], found["now"]
        for name in PERIOD_FIGURES:
            if name in period:
                figures[name] = period[name]
        for name in NOW_FIGURES:
            figures[name] = now_values[name]
        figures["visit_plans"] = found["plans"]
        figures["visits_overdue"] = found["overdue"]
        figures["distinct_participants"] = people
        return figures

    found = reader.period(read_rows, months, today)
    people = reader.people(read_rows, months)
    totals: Figures
    if city:
        totals = dict(ZERO_FIGURES)
        for scope, street_found in found.items():
            if scope.startswith(counts.STREET):
                figures = figures_of(street_found, 0)
                # An activity for communities of two streets: once for the city.
                figures["activities_held"] = street_found["period"]["activities_city"]
                _add_to(totals, figures)
        shards = [scope for scope in found.keys() | people.keys() if scope.startswith(counts.CITY)]
        totals["distinct_participants"] = sum(people.get(scope, 0) for scope in shards)
        totals["group_members"] = sum(found[scope]["now"]["group_members"] for scope in shards if scope in found)
    else:
        totals = figures_of(found[own] if own in found else counts.nothing_found(), people.get(own, 0))
    monthly: dict[str, Figures] = {m: {k: 0 for k in MONTHLY_FIGURES} for m in months}
    for month, values in reader.monthly(own_rows, months).items():
        for name in MONTHLY_FIGURES:
            monthly[month][name] = values[name]
        if city:
            monthly[month]["activities_held"] = values["activities_city"]
    by_kind: dict[str, int] = defaultdict(int)
    for kind, (held, held_city) in reader.kinds(own_rows, months).items():
        by_kind[kind] += held_city if city else held

    per_community: dict[str, Figures] = {}
    per_street: dict[str | None, Figures] = {}
    if by == "street":
        if "community_id" in answered_scope:  # the community's street: its own figures
            street = counts.streets_of(uow.session.connection(), [own]).get(own)
            per_street[street] = dict(totals)
        else:
            for scope, street_found in found.items():
                if scope.startswith(counts.STREET):
                    per_street[scope[len(counts.STREET) :] or None] = figures_of(street_found, people.get(scope, 0))
    else:
        for scope, community_found in found.items():
            if counts.is_community(scope):
                per_community[scope] = figures_of(community_found, people.get(scope, 0))

    # What the months' counts hold outside the period (or not held yet), from the history.
    street_of: dict[str, str | None] = {}
    history_people = False
    windows = (
        ((months_start, start), (months_start, start), (month_first, first - timedelta(days=1))),
        ((held_end, months_end), (end, months_end), (last + timedelta(days=1), month_last)),
    )
    for held, moments, days in windows:
        if not (held[0] < held[1] or moments[0] < moments[1] or days[0] <= days[1]):
            continue
        # One statement says which of the history's queries the stretch needs (most often none).
        present = q.present(condition, held, moments, days)
        if not any(present.values()):
            continue
        if by == "street" and not street_of:
            street_of = _street_of(uow)
        w_totals, w_kinds, w_communities, w_monthly = _collect(
            q,
            condition,
            held=held if present["held"] else None,
            moments=moments if present["moments"] else None,
            days=days if present["days"] else None,
            today=today,
            months=months,
            now_figures=False,
        )
        history_people = history_people or w_totals["distinct_participants"] > 0
        _add_to(totals, {k: v for k, v in w_totals.items() if k != "distinct_participants"}, -1)
        for kind, n in w_kinds.items():
            by_kind[kind] -= n
        for month, figures in w_monthly.items():
            _add_to(monthly[month], figures, -1)
        for community_id, figures in w_communities.items():
            figures = {k: v for k, v in figures.items() if k not in ("distinct_participants", "activities_held")}
            if by == "street":
                key = street_of.get(community_id)
                _add_to(per_street.setdefault(key, dict(ZERO_FIGURES)), figures, -1)
            else:
                _add_to(per_community.setdefault(community_id, dict(ZERO_FIGURES)), figures, -1)
                per_community[community_id]["activities_held"] -= w_communities[community_id]["activities_held"]
        if by == "street" and present["held"] and held[0] < held[1]:
            if "community_id" in answered_scope:
                held_here = w_totals["activities_held"]
                per_street[next(iter(per_street))]["activities_held"] -= held_here
            else:
                for street_id, n in q.held_per_street(condition, *held).items():
                    per_street.setdefault(street_id, dict(ZERO_FIGURES))["activities_held"] -= n
    if history_people:  # check-ins on the days cut off: the period's distinct people from its history
        people_totals, people_communities, _ = q.checkins(condition, start, end)
        totals["distinct_participants"] = people_totals["distinct_participants"]
        if by == "street":
            if "community_id" in answered_scope:
                per_street[next(iter(per_street))]["distinct_participants"] = totals["distinct_participants"]
            else:
                for street_id, figures in q.distinct_per_street(condition, start, end, held_end).items():
                    per_street.setdefault(street_id, dict(ZERO_FIGURES))["distinct_participants"] = figures[
                        "distinct_participants"
                    ]
        else:
            for figures in per_community.values():
                figures["distinct_participants"] = 0
            for community_id, figures in people_communities.items():
                per_community.setdefault(community_id, dict(ZERO_FIGURES))["distinct_participants"] = figures[
                    "distinct_participants"
                ]
    per_community = {key: figures for key, figures in per_community.items() if _any(figures)}
    per_street = {key: figures for key, figures in per_street.items() if _any(figures)}
    return totals, dict(by_kind), per_community, per_street, monthly


def _any(figures: Figures) -> bool:
    return any(figures.values())


def _last_day_of_month(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)
