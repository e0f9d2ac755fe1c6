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
from sqlalchemy.types import Float, Integer

from linli_issues.adapters import consultation_counts, counters
from linli_issues.adapters.repository import communities_of_street_query
from linli_issues.adapters.tables import (
    issue_meetings,
    issue_month_breakdowns,
    issue_month_counts,
    issue_updates,
    issues,
    replica,
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


STREET_ROWS_PATTERN = "'" + counters.STREET + "%'"

# What the rows beside the totals and months are per: each community of the scope, or each street
# (a city's hundred rows instead of its ten thousand; a street's row has no hours to resolve).
BY = ("community", "street")


@dataclass(frozen=True)
class StatsQuery:
    community_id: str | None
    street_id: str | None
    start: date
    end: date  # inclusive
    by: str = "community"


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
        return StatsQuery(None, principal.street_id, query.start, query.end, query.by)
    if principal.role == Role.COMMUNITY_STAFF:
        if query.street_id:
            raise Forbidden("community staff see their own community")
        community_id = query.community_id
        if community_id is None and len(principal.community_ids) == 1:
            community_id = principal.community_ids[0]
        if community_id is None or community_id not in principal.community_ids:
            raise Forbidden("outside your community scope")
        return StatsQuery(community_id, None, query.start, query.end, query.by)
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
            totals, groups, monthly = _Counted(figures, query).rollup()
        else:  # counts not built (or in another zone): read the history
            totals, groups, monthly = figures.rollup()
            figures.escalations(totals, groups, monthly)
            totals["by_category"], totals["by_tier"] = figures.by_category_and_tier()
            if query.by == "street":
                for value in groups.values():
                    value["median_hours_to_resolve"] = value["p90_hours_to_resolve"] = None
        months = _months(query.start, query.end)
        rows = [{f"{query.by}_id": key or None, **value} for key, value in sorted(groups.items())]
        return {
            "scope": {
                "level": "community" if query.community_id else "street" if query.street_id else "city",
                "community_id": query.community_id,
                "street_id": query.street_id,
            },
            "period": {"from": query.start, "to": query.end, "timezone": timezone},
            "totals": totals,
            "by_community": rows if query.by == "community" else [],
            "by_street": rows if query.by == "street" else [],
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

    def _street(self, community_column: Any) -> Any:
        """The street of a row's community, as a correlated subquery ('' when the directory does not
        know the community)."""
        rc = replica.communities.c
        street = select(rc.street_id).where(rc.community_id == community_column).scalar_subquery()
        return func.coalesce(street, literal_column("''"))

    def _joined(self, table: Any, community_column: Any) -> tuple[Any, Any]:
        """(the group of a row, the rows to read): per community, the table itself; per street, the
        table joined to the directory replica (one hash join, not a lookup per row)."""
        if self.query.by != "street":
            return community_column, table
        rc = replica.communities.c
        joined = table.outerjoin(replica.communities, rc.community_id == community_column)
        return func.coalesce(rc.street_id, literal_column("''")), joined

    def _group(self, community_column: Any) -> Any:
        return self._street(community_column) if self.query.by == "street" else community_column

    def _between(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def rollup(
        self, families: frozenset[str] = FAMILIES
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The figures in total, per community and per month (of the families asked for)."""
        if not self.postgres:
            totals = self.grouped(lambda _col: literal("all"), families=families).get("all", _empty())
            by_community = self.grouped(
                lambda _col: self._group(issues.c.community_id),
                meetings_key=self._group(issue_meetings.c.community_id),
                families=families,
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
            group, rows = self._joined(community.table, community)
            query = (
                select(group, month, func.grouping(group), func.grouping(month), *aggregates)
                .select_from(rows)
                .where(self._between(moment), *where, *self._scope(community))
                .group_by(func.grouping_sets(tuple_(), tuple_(group), tuple_(month)))
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
        group, rows = self._joined(issue_updates.join(issues, issues.c.id == u.issue_id), issues.c.community_id)
        moves = (
            select(
                group.label("community_id"),
                month.label("month"),
                u.data["from"].as_string().label("from_tier"),
                u.data["to"].as_string().label("to_tier"),
            )
            .select_from(rows)
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
        """Whole hours from report to resolution (counters.hours_to_resolve)."""
        if self.postgres:
            return func.floor(func.extract("epoch", issues.c.resolved_at - issues.c.created_at) / 3600)
        # SQLite: in whole milliseconds first, so a float's last digit cannot tip the hour.
        millis = func.round((func.julianday(issues.c.resolved_at) - func.julianday(issues.c.created_at)) * 86_400_000)
        return cast(millis, Integer) // 3_600_000  # whole hours (never negative)

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
    the months, the edge days from the history (`_plan`), and consultations (a few per issue) from
    the history. The median and 90th percentile hours come from the counts of issues resolved by
    whole hours. A city's totals and months are its streets' rows and its hours rows, never its ten
    thousand communities' (unless the rows per community are asked for)."""

    def __init__(self, figures: _Figures, query: StatsQuery) -> None:
        self.figures = figures
        self.session = figures.session
        self.query = query
        self.zone = figures.zone
        self.city = not query.community_id and not query.street_id
        self.totals: Counter[Any] = Counter()
        self.groups: dict[str, Counter[Any]] = {}  # per community, or per street
        self.monthly: dict[str, Counter[Any]] = {}
        self._breakdown: Counter[tuple[str, str]] = Counter()  # issues raised by category and by tier
        self._streets: dict[str, str | None] = {}

    def _group_of(self, community_id: str) -> str:
        if self.query.by == "community":
            return community_id
        if community_id not in self._streets:
            self._streets.update(counters.streets_of(self.session.connection(), [community_id]))
        return self._streets[community_id] or ""

    def _add(self, group: str | None, month: str | None, figure: Any, amount: int, *, total: bool = True) -> None:
        if group is not None:
            _counter(self.groups, group)[figure] += amount
        if month is not None:
            _counter(self.monthly, month)[figure] += amount
        if total:
            self.totals[figure] += amount

    def _communities(self, column: Any) -> list[ColumnElement[bool]]:
        """Rows of the scope's communities (not of streets, nor the city's hours)."""
        return self.figures._scope(column) or [column != counters.CITY, column.not_like(counters.STREET + "%")]

    def rollup(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        today = datetime.now(self.zone).date()
        whole, adjust = _plan(self.query.start, self.query.end, today)
        # The percentiles are read from PostgreSQL, a row per community or month, when no day of
        # history is added or taken off (the usual period: whole months to today); else here,
        # from every (community or month, hours) row.
        self.percentiles_in_sql = self.figures.postgres and all(first > today for _sign, first, _last in adjust)
        self.percentiles: dict[str, dict[str | None, tuple[float, float]]] = {"groups": {}, "monthly": {}, "totals": {}}
        if whole:
            if self.city:
                self._read_city(whole)
            else:
                self._read_communities(whole)
        for sign, first, last in adjust:
            self._read_history(sign, first, last)
        with_hours = self.query.by == "community"
        totals = self._finish(self.totals)
        groups = {key: self._finish(value, hours=with_hours) for key, value in self.groups.items() if _any(value)}
        monthly = {key: self._finish(value) for key, value in self.monthly.items()}
        for level, found in (("totals", {None: totals}), ("groups", groups), ("monthly", monthly)):
            for key, (median, p90) in self.percentiles[level].items():
                if key in found and (level != "groups" or with_hours):
                    found[key]["median_hours_to_resolve"], found[key]["p90_hours_to_resolve"] = median, p90
        if self.city:
            # The whole city's consultations, from their counts (a street's or a community's, a
            # few hundred links, from the history as below).
            held, held_groups, held_monthly = self._city_consultations()
            totals["consultations_held"] = held
            for target, counted in ((groups, held_groups), (monthly, held_monthly)):
                for key, count in counted.items():
                    if count:
                        target.setdefault(key, _empty())["consultations_held"] = count
        else:
            h_totals, h_groups, h_monthly = self.figures.rollup(frozenset({"held"}))
            totals["consultations_held"] = h_totals["consultations_held"]
            for target, read in ((groups, h_groups), (monthly, h_monthly)):
                for key, value in read.items():
                    target.setdefault(key, _empty())["consultations_held"] = value["consultations_held"]
        totals["by_category"] = {
            key: n for (kind, key), n in sorted(self._breakdown.items()) if kind == "category" and n
        }
        totals["by_tier"] = {key: n for (kind, key), n in sorted(self._breakdown.items()) if kind == "tier" and n}
        return totals, groups, monthly

    def _city_consultations(self) -> tuple[int, dict[str, int], dict[str, int]]:
        """The whole city's consultations held (distinct meetings): in all, per street or community,
        per month. The months the period covers whole are read from their counts; the days of a
        month it covers in part from the links concluded then, each meeting counted there unless
        the whole months count it already (only a meeting concluded over several months can be
        in both: adapters/consultation_counts.py)."""
        connection = self.session.connection()
        whole: list[str] = []
        parts: list[tuple[date, date]] = []
        cursor = self.query.start.replace(day=1)
        while cursor <= self.query.end:
            following = (cursor + timedelta(days=32)).replace(day=1)
            first, last = max(cursor, self.query.start), min(following - timedelta(days=1), self.query.end)
            if first == cursor and last == following - timedelta(days=1):
                whole.append(cursor.strftime("%Y-%m"))
            else:
                parts.append((first, last))
            cursor = following
        if whole:
            total, groups, monthly = consultation_counts.read_whole_months(connection, whole, self.query.by)
        else:
            total, groups, monthly = 0, {}, {}
        if not parts:
            return total, groups, monthly

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time.min, self.zone).astimezone(UTC)

        links: list[tuple[str, str, datetime]] = []
        for first, last in parts:
            links += consultation_counts.concluded_between(connection, midnight(first), midnight(last + timedelta(1)))
        by_street = self.query.by == "street"
        streets = counters.streets_of(connection, {link[1] for link in links}) if by_street else {}

        def group_of(community_id: str) -> str:
            return (streets.get(community_id) or "") if by_street else community_id

        counted_in_all: set[str] = set()
        counted_in: set[tuple[str, str]] = set()
        if whole:
            spanning = consultation_counts.spanning_meetings(connection) & {link[0] for link in links}
            if spanning:
                begins = midnight(date.fromisoformat(whole[0] + "-01"))
                ends = midnight((date.fromisoformat(whole[-1] + "-01") + timedelta(days=32)).replace(day=1))
                for meeting_id, community_id, when in consultation_counts.concluded_links_of(connection, spanning):
                    if begins <= (when if when.tzinfo else when.replace(tzinfo=UTC)) < ends:
                        if by_street and community_id not in streets:
                            streets.update(counters.streets_of(connection, [community_id]))
                        counted_in_all.add(meeting_id)
                        counted_in.add((group_of(community_id), meeting_id))
        in_month: dict[str, set[str]] = {}
        in_group: dict[str, set[str]] = {}
        in_all: set[str] = set()
        for meeting_id, community_id, when in links:
            in_month.setdefault(counters.month_of(when, self.zone), set()).add(meeting_id)
            group = group_of(community_id)
            if (group, meeting_id) not in counted_in:
                in_group.setdefault(group, set()).add(meeting_id)
            if meeting_id not in counted_in_all:
                in_all.add(meeting_id)
        for month, found in in_month.items():
            monthly[month] = monthly.get(month, 0) + len(found)
        for group, found in in_group.items():
            groups[group] = groups.get(group, 0) + len(found)
        return total + len(in_all), groups, monthly

    def _read_city(self, months: list[str]) -> None:
        """The whole city: the streets' rows (a hundred a month), the city's hours rows."""
        t, b = issue_month_counts.c, issue_month_breakdowns.c
        names = counters.FIGURES
        per_street = self.query.by == "street"
        # The pattern as a literal, as the partial indexes of the streets' rows have it: a bound
        # parameter would let a generic plan miss them.
        streets = t.community_id.like(literal_column(STREET_ROWS_PATTERN))
        for key, month, *values in self.session.execute(
            select(t.community_id, t.month, *[t[n] for n in names]).where(streets, t.month.in_(months))
        ):
            street = key[len(counters.STREET) :] if per_street else None
            for name, value in zip(names, values, strict=True):
                self._add(street, month, name, value)
        street_rows = [b.community_id.like(literal_column(STREET_ROWS_PATTERN)), b.month.in_(months)]
        for key, month, kind, figure, count in self.session.execute(
            select(b.community_id, b.month, b.kind, b.key, b.count).where(*street_rows, b.kind == "escalation")
        ):
            street = key[len(counters.STREET) :] if per_street else None
            self._add(street, month, (kind, figure), count)
        # By category and by tier, the city's totals only: summed in the database (the streets'
        # 14,000 rows of a year come back as a dozen).
        for kind, figure, count in self.session.execute(
            select(b.kind, b.key, func.sum(b.count)).where(*street_rows, b.kind != "escalation").group_by(b.kind, b.key)
        ):
            self._breakdown[(kind, figure)] += int(count)
        city_hours = [b.community_id == counters.CITY]
        if self.percentiles_in_sql:
            self.percentiles = self._percentiles(months, city_hours, per_community=False)
        else:
            for month, figure, count in self.session.execute(
                select(b.month, b.key, b.count).where(*city_hours, b.kind == "hours", b.month.in_(months))
            ):
                self._add(None, month, ("hours", figure), count)
        if not per_street:
            # Rows per community of the whole city, asked for: summed over the months in the database.
            rows = self.session.execute(
                select(t.community_id, *[func.sum(t[n]) for n in names])
                .where(t.month.in_(months), *self._communities(t.community_id))
                .group_by(t.community_id)
            )
            for community_id, *values in rows:
                for name, value in zip(names, values, strict=True):
                    self._add(community_id, None, name, int(value), total=False)
            rows = self.session.execute(
                select(b.community_id, b.kind, b.key, func.sum(b.count))
                .where(b.kind.in_(("hours", "escalation")), b.month.in_(months), *self._communities(b.community_id))
                .group_by(b.community_id, b.kind, b.key)
            )
            for community_id, kind, figure, count in rows:
                self._add(community_id, None, (kind, figure), int(count), total=False)

    def _read_communities(self, months: list[str]) -> None:
        """A street or a community: the rows of its communities."""
        t, b = issue_month_counts.c, issue_month_breakdowns.c
        names = counters.FIGURES
        if self.figures.postgres and self.query.by == "community":
            # The three groupings summed in one pass in the database: a street's 1,200 rows come
            # back as 113.
            rows = self.session.execute(
                select(t.community_id, t.month, func.grouping(t.community_id), func.grouping(t.month))
                .add_columns(*[func.sum(t[n]) for n in names])
                .where(t.month.in_(months), *self.figures._scope(t.community_id))
                .group_by(func.grouping_sets(tuple_(), tuple_(t.community_id), tuple_(t.month)))
            )
            for community_id, month, all_communities, all_months, *values in rows:
                # No row in these months: the grand total's sums are NULL.
                amounts = {name: int(value or 0) for name, value in zip(names, values, strict=True)}
                if all_communities and all_months:
                    self.totals.update(amounts)
                elif not all_communities:
                    _counter(self.groups, community_id).update(amounts)
                else:
                    _counter(self.monthly, month).update(amounts)
        else:
            for community_id, month, *values in self.session.execute(
                select(t.community_id, t.month, *[t[n] for n in names]).where(
                    t.month.in_(months), *self.figures._scope(t.community_id)
                )
            ):
                group = self._group_of(community_id)
                for name, value in zip(names, values, strict=True):
                    self._add(group, month, name, value)
        scope = self.figures._scope(b.community_id)
        rows = self.session.execute(
            select(b.kind, b.key, func.sum(b.count))
            .where(b.kind.in_(("category", "tier")), b.month.in_(months), *scope)
            .group_by(b.kind, b.key)
        )
        for kind, key, count in rows:
            self._breakdown[(kind, key)] += int(count)
        rows = self.session.execute(
            select(b.community_id, b.month, b.kind, b.key, b.count).where(
                b.kind == "escalation", b.month.in_(months), *scope
            )
        )
        for community_id, month, kind, key, count in rows:
            self._add(self._group_of(community_id), month, (kind, key), count)
        # Hours to resolve: a street's year is some 15,000 rows (a community's month has its own
        # few resolutions): PostgreSQL reads the percentiles off them.
        if self.percentiles_in_sql:
            self.percentiles = self._percentiles(months, scope, per_community=self.query.by == "community")
            return
        rows = self.session.execute(
            select(b.community_id, b.month, b.key, b.count).where(b.kind == "hours", b.month.in_(months), *scope)
        )
        for community_id, month, key, count in rows:
            self._add(self._group_of(community_id), month, ("hours", key), count)

    def _percentiles(
        self, months: list[str], where: list[ColumnElement[bool]], *, per_community: bool
    ) -> dict[str, dict[str | None, tuple[float, float]]]:
        """The median and 90th percentile hours per community (if asked), per month and in all,
        from the hours rows in one pass: summed per (community or month or nothing, hours), the
        values at the two ranks either side of each percentile's position found by running sums;
        interpolated here as `_percentile_of_counts` does (the position in float8 there and in
        Python alike)."""
        b = issue_month_breakdowns.c
        hours = cast(b.key, Integer)
        sets = [tuple_(b.month, hours), tuple_(hours)]
        if per_community:
            sets.insert(0, tuple_(b.community_id, hours))
            # grouping(community_id, month): 1 grouped by community, 2 by month, 3 neither.
            level, part = func.grouping(b.community_id, b.month), func.coalesce(b.community_id, b.month)
        else:
            level, part = func.grouping(b.month) + 2, b.month  # 2 by month, 3 neither
        summed = (
            select(
                level.label("level"),
                # Byte order, not the locale's: the window only needs equal keys together.
                func.coalesce(part, literal_column("''")).collate("C").label("part"),
                hours.label("hours"),
                func.sum(b.count).label("n"),
            )
            .where(b.kind == "hours", b.month.in_(months), *where)
            .group_by(func.grouping_sets(*sets))
            .subquery()
        )
        window = {"partition_by": (summed.c.level, summed.c.part)}
        running = select(
            summed.c.level,
            summed.c.part,
            summed.c.hours,
            func.sum(summed.c.n).over(order_by=summed.c.hours, **window).label("upto"),
            func.sum(summed.c.n).over(**window).label("total"),
        ).subquery()

        def at(fraction: float, above: int) -> Any:
            position = func.floor(cast(running.c.total - 1, Float) * literal_column(repr(fraction)))
            return func.min(running.c.hours).filter(running.c.upto > position + above)

        rows = self.session.execute(
            select(running.c.level, running.c.part, func.max(running.c.total))
            .add_columns(at(0.5, 0), at(0.5, 1), at(0.9, 0), at(0.9, 1))
            .where(running.c.total > 0)
            .group_by(running.c.level, running.c.part)
        )
        levels = {1: "groups", 2: "monthly", 3: "totals"}
        out: dict[str, dict[str | None, tuple[float, float]]] = {"groups": {}, "monthly": {}, "totals": {}}
        for level, key, total, low50, high50, low90, high90 in rows:
            figures = []
            for fraction, low, high in ((0.5, low50, high50), (0.9, low90, high90)):
                position = (int(total) - 1) * fraction
                high = low if high is None else high
                figures.append(round(low + (high - low) * (position - int(position)), 2))
            out[levels[level]][None if level == 3 else key] = (figures[0], figures[1])
        return out

    def _read_history(self, sign: int, first: date, last: date) -> None:
        """Add (or take off) what the issues and escalations of these days contribute."""
        start = datetime.combine(first, time.min, self.zone).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, self.zone).astimezone(UTC)
        c = issues.c

        def inside(column: Any) -> ColumnElement[bool]:
            return and_(column >= start, column < end)

        tally = counters.Tally(self.zone)
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
        if self.query.by == "street":
            self._streets.update(
                counters.streets_of(self.session.connection(), {key[0] for key in tally.amounts} - set(self._streets))
            )
        for (community_id, month, figure), amount in tally.amounts.items():
            if isinstance(figure, tuple) and figure[0] in ("category", "tier"):
                self._breakdown[figure] += sign * amount
                continue
            self._add(self._group_of(community_id), month, figure, sign * amount)

    @staticmethod
    def _finish(amounts: Counter[Any], *, hours: bool = True) -> dict[str, Any]:
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
        histogram: list[tuple[int, int]] = []
        for figure, count in amounts.items():
            if not (isinstance(figure, tuple) and count):
                continue
            if figure[0] == "hours":
                histogram.append((int(figure[1]), count))
            else:
                by_tier[figure[1]] = by_tier.get(figure[1], 0) + count
        if hours and histogram:
            histogram.sort()
            figures["median_hours_to_resolve"] = round(_percentile_of_counts(histogram, 0.5), 2)
            figures["p90_hours_to_resolve"] = round(_percentile_of_counts(histogram, 0.9), 2)
        return figures


def _counter(counters: dict[str, Counter[Any]], key: str) -> Counter[Any]:
    found = counters.get(key)
    if found is None:
        found = counters[key] = Counter()
    return found


def _percentile_of_counts(histogram: list[tuple[int, int]], fraction: float) -> float:
    """`_percentile` of the values a histogram (value, how many; in order) stands for, without
    spelling them out: the two values at the ranks either side of the position, interpolated."""
    position = (sum(count for _value, count in histogram) - 1) * fraction
    low = int(position)

    def at(rank: int) -> int:
        seen = 0
        for value, count in histogram:
            seen += count
            if rank < seen:
                return value
        return histogram[-1][0]

    below, above = at(low), at(low + 1)
    return below + (above - below) * (position - low)


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
