"""`GET /stats`: what the street office overview shows, for a community, a street or the city, over a period.

Figures (per scope, per community and per month): issues raised, accepted and resolved in the
period; resolution rate (share of the period's issues resolved or closed by now); median and 90th
percentile hours from report to resolution; how many of the period's issues went overdue; average
satisfaction of the ratings given; consultations held (meetings on these issues concluded in the
period); issues raised by category and by tier; escalations (`escalated`: the moves of an issue
up a tier in the period, by deadline or by hand, and `escalated_by_tier`: the same by from-tier and
to-tier, as `compound_to_community`, `community_to_street`, `street_to_city`).

Every figure is an aggregate in the database over indexed time ranges, so a city of 2,000,000
issues answers without loading them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, cast, distinct, func, literal, literal_column, select, tuple_
from sqlalchemy.types import Float

from linli_issues.adapters.repository import communities_of_street_query
from linli_issues.adapters.tables import issue_meetings, issue_updates, issues
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden, Invalid

DONE = ("resolved", "closed")
# An issue escalates one tier at a time: these are the only moves (domain TIERS, in order).
ESCALATIONS = ("compound_to_community", "community_to_street", "street_to_city")


@dataclass(frozen=True)
class StatsQuery:
    community_id: str | None
    street_id: str | None
    start: date
    end: date  # inclusive


def authorise(principal: Principal, uow: IssuesUnitOfWork, query: StatsQuery) -> StatsQuery:
    """Check the caller may see the scope; a caller who names none gets their own."""
    if query.community_id and query.street_id:
        raise Invalid("choose one scope", fields={"street_id": ["give a community or a street, not both"]})
    if principal.role == Role.CITY_ADMIN:
        return query
    if principal.role == Role.STREET_OFFICIAL:
        if query.community_id:
            if uow.issues.street_of(query.community_id) != principal.street_id:
                raise Forbidden("that community is not in your street")
            return query
        if query.street_id and query.street_id != principal.street_id:
            raise Forbidden("that is not your street")
        return StatsQuery(None, principal.street_id, query.start, query.end)
    if principal.role == Role.COMMUNITY_STAFF:
        if query.street_id:
            raise Forbidden("community staff see their own community")
        community_id = query.community_id
        if community_id is None and len(principal.community_ids) == 1:
            community_id = principal.community_ids[0]
        if community_id is None or community_id not in principal.community_ids:
            raise Forbidden("outside your community scope")
        return StatsQuery(community_id, None, query.start, query.end)
    raise Forbidden(f"role {principal.role.value} may not read statistics")


def compute(uow: IssuesUnitOfWork, principal: Principal, query: StatsQuery, timezone: str) -> dict[str, Any]:
    with uow:
        # Scope before state: who may not see the scope learns nothing of what a period must be.
        query = authorise(principal, uow, query)
        if query.end < query.start:
            raise Invalid("empty period", fields={"to": ["must not be before from"]})
        if (query.end - query.start).days > 3660:
            raise Invalid("period too long", fields={"from": ["at most ten years"]})
        zone = ZoneInfo(timezone)
        start = datetime.combine(query.start, time.min, zone).astimezone(UTC)
        end = datetime.combine(query.end + timedelta(days=1), time.min, zone).astimezone(UTC)
        figures = _Figures(uow, query, start, end, zone)
        totals, by_community, monthly = figures.rollup()
        figures.escalations(totals, by_community, monthly)
        totals["by_category"], totals["by_tier"] = figures.by_category_and_tier()
        months = _months(query.start, query.end)
        return {
            "scope": {
                "level": "community" if query.community_id else "street" if query.street_id else "city",
                "community_id": query.community_id,
                "street_id": query.street_id,
            },
            "period": {"from": query.start, "to": query.end, "timezone": timezone},
            "totals": totals,
            "by_community": [{"community_id": key, **value} for key, value in sorted(by_community.items())],
            "monthly": [{"month": month, **monthly.get(month, _empty())} for month in months],
        }


def _months(start: date, end: date) -> list[str]:
    months, cursor = [], start.replace(day=1)
    while cursor <= end:
        months.append(cursor.strftime("%Y-%m"))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return months


def _empty() -> dict[str, Any]:
    return {
        "raised": 0,
        "accepted": 0,
        "resolved": 0,
        "resolution_rate": None,
        "median_hours_to_resolve": None,
        "p90_hours_to_resolve": None,
        "overdue": 0,
        "average_satisfaction": None,
        "ratings": 0,
        "consultations_held": 0,
        "escalated": 0,
        "escalated_by_tier": dict.fromkeys(ESCALATIONS, 0),
    }


class _Figures:
    def __init__(self, uow: IssuesUnitOfWork, query: StatsQuery, start: datetime, end: datetime, zone: ZoneInfo):
        self.session = uow.session
        self.postgres = self.session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        self.query = query
        self.start, self.end, self.zone = start, end, zone

    def _scope(self, community_column: Any) -> list[ColumnElement[bool]]:
        if self.query.community_id:
            return [community_column == self.query.community_id]
        if self.query.street_id:
            return [community_column.in_(communities_of_street_query(self.query.street_id))]
        return []

    def _between(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def rollup(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The figures in total, per community and per month."""
        if not self.postgres:
            totals = self.grouped(lambda _col: literal("all")).get("all", _empty())
            by_community = self.grouped(lambda _col: issues.c.community_id, meetings_key=issue_meetings.c.community_id)
            return totals, by_community, self.grouped(self.month)
        # PostgreSQL computes all three groupings in one pass over the rows (GROUPING SETS).
        totals: dict[str, Any] = _empty()
        by_community: dict[str, dict[str, Any]] = {}
        monthly: dict[str, dict[str, Any]] = {}

        def run(community: Any, moment: Any, aggregates: list[Any], where: list[Any], fill: Any) -> None:
            month = self._month_sql(moment)
            query = (
                select(community, month, func.grouping(community), func.grouping(month), *aggregates)
                .where(self._between(moment), *where, *self._scope(community))
                .group_by(func.grouping_sets(tuple_(), tuple_(community), tuple_(month)))
            )
            for key_community, key_month, all_communities, all_months, *values in self.session.execute(query):
                if all_communities and all_months:
                    figures = totals
                elif not all_communities:
                    figures = by_community.setdefault(str(key_community), _empty())
                else:
                    figures = monthly.setdefault(str(key_month), _empty())
                fill(figures, *values)

        def raised(figures: dict[str, Any], count: int, resolved_now: int | None, went_overdue: int | None) -> None:
            figures["raised"] = count
            figures["overdue"] = int(went_overdue or 0)
            figures["resolution_rate"] = round((resolved_now or 0) / count, 3) if count else None

        def accepted(figures: dict[str, Any], count: int) -> None:
            figures["accepted"] = count

        def resolved(figures: dict[str, Any], count: int, median: float | None, p90: float | None) -> None:
            figures["resolved"] = count
            figures["median_hours_to_resolve"] = round(float(median), 2) if median is not None else None
            figures["p90_hours_to_resolve"] = round(float(p90), 2) if p90 is not None else None

        def rated(figures: dict[str, Any], average: float | None, count: int) -> None:
            figures["average_satisfaction"] = round(float(average), 2) if average is not None else None
            figures["ratings"] = count

        def held(figures: dict[str, Any], count: int) -> None:
            figures["consultations_held"] = count

        hours = self._hours()
        c = issues.c
        run(
            c.community_id,
            c.created_at,
            [
                func.count(),
                func.sum(case((c.status.in_(DONE), 1), else_=0)),
                func.sum(case((c.overdue_at.is_not(None), 1), else_=0)),
            ],
            [],
            raised,
        )
        run(c.community_id, c.accepted_at, [func.count()], [], accepted)
        run(
            c.community_id,
            c.resolved_at,
            [
                func.count(),
                func.percentile_cont(0.5).within_group(hours),
                func.percentile_cont(0.9).within_group(hours),
            ],
            [],
            resolved,
        )
        run(
            c.community_id,
            c.closed_at,
            [func.avg(cast(c.rating, Float)), func.count()],
            [c.rating.is_not(None)],
            rated,
        )
        m = issue_meetings.c
        run(m.community_id, m.concluded_at, [func.count(distinct(m.meeting_id))], [m.status == "concluded"], held)
        # A community or month with no row at all in a family keeps that family's empty figures.
        return totals, by_community, monthly

    def escalations(
        self, totals: dict[str, Any], by_community: dict[str, dict[str, Any]], monthly: dict[str, dict[str, Any]]
    ) -> None:
        """Escalations in the period (the timeline's escalation entries, when they happened), by
        community, month, from-tier and to-tier in one grouped query; the three groupings are
        added up here from its few rows (communities x months x three moves at most)."""
        u = issue_updates.c
        month = self._month_sql(u.created_at) if self.postgres else self.month(u.created_at)
        moves = (
            select(
                issues.c.community_id.label("community_id"),
                month.label("month"),
                u.data["from"].as_string().label("from_tier"),
                u.data["to"].as_string().label("to_tier"),
            )
            .select_from(issue_updates.join(issues, issues.c.id == u.issue_id))
            .where(u.kind == "escalation", self._between(u.created_at), *self._scope(issues.c.community_id))
            .subquery()
        )
        rows = self.session.execute(
            select(moves.c.community_id, moves.c.month, moves.c.from_tier, moves.c.to_tier, func.count()).group_by(
                moves.c.community_id, moves.c.month, moves.c.from_tier, moves.c.to_tier
            )
        )
        for community_id, key_month, from_tier, to_tier, count in rows:
            move = f"{from_tier}_to_{to_tier}"
            for figures in (
                totals,
                by_community.setdefault(str(community_id), _empty()),
                monthly.setdefault(str(key_month), _empty()),
            ):
                figures["escalated"] += count
                by_tier = figures["escalated_by_tier"]
                by_tier[move] = by_tier.get(move, 0) + count

    def by_category_and_tier(self) -> tuple[dict[str, int], dict[str, int]]:
        if not self.postgres:
            return self.counts(issues.c.category), self.counts(issues.c.tier)
        c = issues.c
        rows = self.session.execute(
            select(c.category, c.tier, func.grouping(c.category), func.count())
            .where(self._between(c.created_at), *self._scope(c.community_id))
            .group_by(func.grouping_sets(tuple_(c.category), tuple_(c.tier)))
        )
        by_category: dict[str, int] = {}
        by_tier: dict[str, int] = {}
        for category, tier, all_categories, count in rows:
            if all_categories:
                by_tier[tier] = count
            else:
                by_category[category] = count
        return by_category, by_tier

    def _month_sql(self, column: Any) -> Any:
        # Literal arguments, so the expression in SELECT and in GROUPING SETS is textually the same.
        zone = self.zone.key.replace("'", "")
        return func.to_char(func.timezone(literal_column(f"'{zone}'"), column), literal_column("'YYYY-MM'"))

    def month(self, column: Any) -> Any:
        if self.postgres:
            return func.to_char(func.timezone(self.zone.key, column), "YYYY-MM")
        # SQLite keeps naive UTC text; the city's offset (no daylight saving in most of China) is added.
        offset = datetime.now(self.zone).utcoffset() or timedelta()
        return func.strftime("%Y-%m", column, f"{int(offset.total_seconds())} seconds")

    def _hours(self) -> Any:
        if self.postgres:
            return func.extract("epoch", issues.c.resolved_at - issues.c.created_at) / 3600.0
        return (func.julianday(issues.c.resolved_at) - func.julianday(issues.c.created_at)) * 24.0

    def counts(self, column: Any) -> dict[str, int]:
        rows = self.session.execute(
            select(column, func.count())
            .where(self._between(issues.c.created_at), *self._scope(issues.c.community_id))
            .group_by(column)
        )
        return {key: count for key, count in rows}

    def grouped(self, key_of: Any, meetings_key: Any = None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}

        def slot(key: Any) -> dict[str, Any]:
            return out.setdefault(str(key), _empty())

        scope = self._scope(issues.c.community_id)
        key = key_of(issues.c.created_at)
        done = func.sum(case((issues.c.status.in_(DONE), 1), else_=0))
        overdue = func.sum(case((issues.c.overdue_at.is_not(None), 1), else_=0))
        raised = select(key, func.count(), done, overdue).where(self._between(issues.c.created_at), *scope)
        for group, count, resolved_now, went_overdue in self.session.execute(raised.group_by(key)):
            figures = slot(group)
            figures["raised"] = count
            figures["overdue"] = int(went_overdue or 0)
            figures["resolution_rate"] = round((resolved_now or 0) / count, 3) if count else None

        key = key_of(issues.c.accepted_at)
        accepted = select(key, func.count()).where(self._between(issues.c.accepted_at), *scope).group_by(key)
        for group, count in self.session.execute(accepted):
            slot(group)["accepted"] = count

        key = key_of(issues.c.resolved_at)
        resolved_where = [self._between(issues.c.resolved_at), *scope]
        if self.postgres:
            hours = self._hours()
            resolved = select(
                key,
                func.count(),
                func.percentile_cont(0.5).within_group(hours),
                func.percentile_cont(0.9).within_group(hours),
            ).where(*resolved_where)
            for group, count, median, p90 in self.session.execute(resolved.group_by(key)):
                figures = slot(group)
                figures["resolved"] = count
                figures["median_hours_to_resolve"] = round(float(median), 2) if median is not None else None
                figures["p90_hours_to_resolve"] = round(float(p90), 2) if p90 is not None else None
        else:
            durations: dict[str, list[float]] = {}
            for group, hours in self.session.execute(select(key, self._hours()).where(*resolved_where)):
                durations.setdefault(str(group), []).append(float(hours))
            for group, values in durations.items():
                figures = slot(group)
                figures["resolved"] = len(values)
                figures["median_hours_to_resolve"] = round(statistics.median(values), 2)
                figures["p90_hours_to_resolve"] = round(_percentile(values, 0.9), 2)

        key = key_of(issues.c.closed_at)
        rated = (
            select(key, func.avg(cast(issues.c.rating, Float)), func.count())
            .where(self._between(issues.c.closed_at), issues.c.rating.is_not(None), *scope)
            .group_by(key)
        )
        for group, average, count in self.session.execute(rated):
            figures = slot(group)
            figures["average_satisfaction"] = round(float(average), 2)
            figures["ratings"] = count

        meetings_group = meetings_key if meetings_key is not None else key_of(issue_meetings.c.concluded_at)
        held = (
            select(meetings_group, func.count(distinct(issue_meetings.c.meeting_id)))
            .where(
                self._between(issue_meetings.c.concluded_at),
                issue_meetings.c.status == "concluded",
                *self._scope(issue_meetings.c.community_id),
            )
            .group_by(meetings_group)
        )
        for group, count in self.session.execute(held):
            slot(group)["consultations_held"] = count
        return out


def _percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
