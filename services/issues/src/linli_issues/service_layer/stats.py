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
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, cast, distinct, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.types import Float

from linli_issues.adapters import counters
from linli_issues.adapters.repository import communities_of_street_query
from linli_issues.adapters.tables import (
    issue_meetings,
    issue_month_breakdowns,
    issue_month_counts,
    issue_updates,
    issues,
)
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden, Invalid

DONE = ("resolved", "closed")
# An issue escalates one tier at a time: these are the only moves (domain TIERS, in order).
ESCALATIONS = ("compound_to_community", "community_to_street", "street_to_city")
# The groups of figures read from the history: raised (with done and overdue), accepted, resolved
# (with the hours to resolve), rated (closed with a rating), held (consultations).
FAMILIES = frozenset({"raised", "accepted", "resolved", "rated", "held"})


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
    raise Forbidden("role {role} may not read statistics", role=principal.role.value)


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
        counted_in = counters.zone_of_counts(uow.session.connection())
        if counted_in is not None and counted_in.key == zone.key:
            totals, by_community, monthly = _Counted(figures, query).rollup()
        else:  # counts not built (or in another zone): read the history
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

    def rollup(
        self, families: frozenset[str] = FAMILIES
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The figures in total, per community and per month (of the families asked for)."""
        if not self.postgres:
            totals = self.grouped(lambda _col: literal("all"), families=families).get("all", _empty())
            by_community = self.grouped(
                lambda _col: issues.c.community_id, meetings_key=issue_meetings.c.community_id, families=families
            )
            return totals, by_community, self.grouped(self.month, families=families)
        # PostgreSQL computes all three groupings in one pass over the rows (GROUPING SETS).
        totals: dict[str, Any] = _empty()
        by_community: dict[str, dict[str, Any]] = {}
        monthly: dict[str, dict[str, Any]] = {}

        def run(family: str, community: Any, moment: Any, aggregates: list[Any], where: list[Any], fill: Any) -> None:
            if family not in families:
                return
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
            "raised",
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
        run("accepted", c.community_id, c.accepted_at, [func.count()], [], accepted)
        run(
            "resolved",
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
            "rated",
            c.community_id,
            c.closed_at,
            [func.avg(cast(c.rating, Float)), func.count()],
            [c.rating.is_not(None)],
            rated,
        )
        m = issue_meetings.c
        run(
            "held",
            m.community_id,
            m.concluded_at,
            [func.count(distinct(m.meeting_id))],
            [m.status == "concluded"],
            held,
        )
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

    def grouped(
        self, key_of: Any, meetings_key: Any = None, families: frozenset[str] = FAMILIES
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}

        def slot(key: Any) -> dict[str, Any]:
            return out.setdefault(str(key), _empty())

        scope = self._scope(issues.c.community_id)
        if "raised" in families:
            key = key_of(issues.c.created_at)
            done = func.sum(case((issues.c.status.in_(DONE), 1), else_=0))
            overdue = func.sum(case((issues.c.overdue_at.is_not(None), 1), else_=0))
            raised = select(key, func.count(), done, overdue).where(self._between(issues.c.created_at), *scope)
            for group, count, resolved_now, went_overdue in self.session.execute(raised.group_by(key)):
                figures = slot(group)
                figures["raised"] = count
                figures["overdue"] = int(went_overdue or 0)
                figures["resolution_rate"] = round((resolved_now or 0) / count, 3) if count else None

        if "accepted" in families:
            key = key_of(issues.c.accepted_at)
            accepted = select(key, func.count()).where(self._between(issues.c.accepted_at), *scope).group_by(key)
            for group, count in self.session.execute(accepted):
                slot(group)["accepted"] = count

        if "resolved" in families:
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

        if "rated" in families:
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

        if "held" in families:
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


def _plan(start: date, end: date, today: date) -> tuple[list[str], list[tuple[int, date, date]]]:
    """How to add up the period from monthly counts: the months whose counts are read, and the
    days (first, last) whose history is added (+1) to them or taken off (-1) to be exact. A month
    the period covers in part is read whole, less the days outside, or its days inside are read
    from the history, whichever reads fewer days of history; days after today cost nothing (the
    default period ends today, so its current month is read whole, less days yet to come)."""

    def cost(first: date, last: date) -> int:
        return max(0, (min(last, today) - first).days + 1)

    whole: list[str] = []
    adjust: list[tuple[int, date, date]] = []
    cursor = start.replace(day=1)
    while cursor <= end:
        following = (cursor + timedelta(days=32)).replace(day=1)
        last = following - timedelta(days=1)
        first_in, last_in = max(cursor, start), min(last, end)
        outside = [(cursor, first_in - timedelta(days=1))] if first_in > cursor else []
        if last_in < last:
            outside.append((last_in + timedelta(days=1), last))
        if not outside:
            whole.append(cursor.strftime("%Y-%m"))
        elif sum(cost(a, b) for a, b in outside) < cost(first_in, last_in):
            whole.append(cursor.strftime("%Y-%m"))
            adjust.extend((-1, a, b) for a, b in outside)
        else:
            adjust.append((1, first_in, last_in))
        cursor = following
    return whole, adjust


class _Counted:
    """The period's figures from the monthly counts (adapters/counters.py), exact: the counts of
    the months, the edge days from the history (`_plan`), and what no count can add up (the median
    and 90th percentile hours to resolve, and consultations, a few per issue) from the history."""

    def __init__(self, figures: _Figures, query: StatsQuery) -> None:
        self.figures = figures
        self.session = figures.session
        self.query = query
        self.zone = figures.zone
        self.totals: Counter[Any] = Counter()
        self.by_community: dict[str, Counter[Any]] = {}
        self.monthly: dict[str, Counter[Any]] = {}
        self._breakdown: Counter[tuple[str, str]] = Counter()  # issues raised by category and by tier

    def _add(self, community_id: str | None, month: str | None, figure: Any, amount: int) -> None:
        if community_id is not None:
            self.by_community.setdefault(community_id, Counter())[figure] += amount
        if month is not None:
            self.monthly.setdefault(month, Counter())[figure] += amount

    def _scope(self, column: Any) -> list[ColumnElement[bool]]:
        return self.figures._scope(column) or [column != counters.CITY]

    def rollup(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        today = datetime.now(self.zone).date()
        whole, adjust = _plan(self.query.start, self.query.end, today)
        if whole:
            self._read_counts(whole)
        for sign, first, last in adjust:
            self._read_history(sign, first, last)
        totals = self._finish(self.totals)
        by_community = {key: self._finish(value) for key, value in self.by_community.items() if _any(value)}
        monthly = {key: self._finish(value) for key, value in self.monthly.items()}
        # The hours to resolve and the consultations, from the history of the period.
        p_totals, p_by_community, p_monthly = self.figures.rollup(frozenset({"resolved", "held"}))
        for target, source in [(totals, p_totals)] + [
            (groups.setdefault(key, _empty()), value)
            for groups, read in ((by_community, p_by_community), (monthly, p_monthly))
            for key, value in read.items()
        ]:
            for name in ("median_hours_to_resolve", "p90_hours_to_resolve", "consultations_held"):
                target[name] = source[name]
        totals["by_category"] = {
            key: n for (kind, key), n in sorted(self._breakdown.items()) if kind == "category" and n
        }
        totals["by_tier"] = {key: n for (kind, key), n in sorted(self._breakdown.items()) if kind == "tier" and n}
        return totals, by_community, monthly

    def _read_counts(self, months: list[str]) -> None:
        t, b = issue_month_counts.c, issue_month_breakdowns.c
        names = counters.FIGURES
        city = not self.query.community_id and not self.query.street_id
        if city:
            # The whole city's own rows give the totals and months; communities are summed apart.
            rows = self.session.execute(
                select(t.month, *[t[n] for n in names]).where(t.community_id == counters.CITY, t.month.in_(months))
            )
            for month, *values in rows:
                amounts = dict(zip(names, values, strict=True))
                self.monthly.setdefault(month, Counter()).update(amounts)
                self.totals.update(amounts)
            sums = select(t.community_id, *[func.sum(t[n]) for n in names])
            rows = self.session.execute(
                sums.where(t.month.in_(months), t.community_id != counters.CITY).group_by(t.community_id)
            )
            for community_id, *values in rows:
                amounts = {name: int(value) for name, value in zip(names, values, strict=True)}
                self.by_community.setdefault(community_id, Counter()).update(amounts)
            breakdown_scope = [b.community_id == counters.CITY]
        elif self.figures.postgres:
            # The three groupings summed in one pass in the database: a street's 1,200 rows come
            # back as 113.
            rows = self.session.execute(
                select(t.community_id, t.month, func.grouping(t.community_id), func.grouping(t.month))
                .add_columns(*[func.sum(t[n]) for n in names])
                .where(t.month.in_(months), *self.figures._scope(t.community_id))
                .group_by(func.grouping_sets(tuple_(), tuple_(t.community_id), tuple_(t.month)))
            )
            for community_id, month, all_communities, all_months, *values in rows:
                amounts = {name: int(value) for name, value in zip(names, values, strict=True)}
                if all_communities and all_months:
                    self.totals.update(amounts)
                elif not all_communities:
                    self.by_community.setdefault(community_id, Counter()).update(amounts)
                else:
                    self.monthly.setdefault(month, Counter()).update(amounts)
            breakdown_scope = self.figures._scope(b.community_id)
        else:
            rows = self.session.execute(
                select(t.community_id, t.month, *[t[n] for n in names]).where(
                    t.month.in_(months), *self.figures._scope(t.community_id)
                )
            )
            for community_id, month, *values in rows:
                amounts = dict(zip(names, values, strict=True))
                self.by_community.setdefault(community_id, Counter()).update(amounts)
                self.monthly.setdefault(month, Counter()).update(amounts)
                self.totals.update(amounts)
            breakdown_scope = self.figures._scope(b.community_id)
        rows = self.session.execute(
            select(b.kind, b.key, func.sum(b.count))
            .where(b.kind.in_(("category", "tier")), b.month.in_(months), *breakdown_scope)
            .group_by(b.kind, b.key)
        )
        for kind, key, count in rows:
            self._breakdown[(kind, key)] += int(count)
        # Moves other than the three one-tier ones: none are made today; read per community.
        rows = self.session.execute(
            select(b.community_id, b.month, b.key, b.count).where(
                b.kind == "escalation", b.month.in_(months), *self._scope(b.community_id)
            )
        )
        for community_id, month, key, count in rows:
            self._add(community_id, month, ("escalation", key), count)
            self.totals[("escalation", key)] += count

    def _read_history(self, sign: int, first: date, last: date) -> None:
        """Add (or take off) what the issues and escalations of these days contribute."""
        start = datetime.combine(first, time.min, self.zone).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, self.zone).astimezone(UTC)
        c = issues.c

        def inside(column: Any) -> ColumnElement[bool]:
            return and_(column >= start, column < end)

        tally = counters.Tally(self.zone, city=False)
        rows = self.session.execute(
            select(*[c[name] for name in counters.COUNTED_FIELDS]).where(
                or_(inside(c.created_at), inside(c.accepted_at), inside(c.resolved_at), inside(c.closed_at)),
                *self.figures._scope(c.community_id),
            )
        )
        for row in rows:
            issue = row._mapping
            tally.add(issue["community_id"], (f for f in counters.issue_figures(issue) if start <= f[0] < end))
        u = issue_updates.c
        moves = (
            select(c.community_id, u.created_at, u.data)
            .select_from(issue_updates.join(issues, c.id == u.issue_id))
            .where(u.kind == "escalation", inside(u.created_at), *self.figures._scope(c.community_id))
        )
        for community_id, created_at, data in self.session.execute(moves):
            tally.add(community_id, counters.escalation_figures(created_at, data))
        for (community_id, month, figure), amount in tally.amounts.items():
            if isinstance(figure, tuple) and figure[0] != "escalation":
                self._breakdown[figure] += sign * amount
                continue
            self._add(community_id, month, figure, sign * amount)
            self.totals[figure] += sign * amount

    @staticmethod
    def _finish(amounts: Counter[Any]) -> dict[str, Any]:
        figures = _empty()
        raised, ratings = amounts["raised"], amounts["ratings"]
        figures["raised"] = raised
        figures["accepted"] = amounts["accepted"]
        figures["resolved"] = amounts["resolved"]
        figures["overdue"] = amounts["overdue"]
        figures["resolution_rate"] = round(amounts["done"] / raised, 3) if raised else None
        figures["ratings"] = ratings
        figures["average_satisfaction"] = round(amounts["rating_sum"] / ratings, 2) if ratings else None
        figures["escalated"] = amounts["escalated"]
        by_tier = figures["escalated_by_tier"]
        for move in ESCALATIONS:
            by_tier[move] = amounts[move]
        for figure, count in amounts.items():
            if isinstance(figure, tuple) and count:
                by_tier[figure[1]] = by_tier.get(figure[1], 0) + count
        return figures


def _any(amounts: Counter[Any]) -> bool:
    """Whether the history would list the community at all: something happened in it in the period."""
    return any(amounts[name] for name in ("raised", "accepted", "resolved", "ratings", "escalated"))


def _percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
