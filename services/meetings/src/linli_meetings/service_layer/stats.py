"""`GET /stats`: figures of meetings, decisions and follow-up for a scope and a period.

The period is of local dates in the city's time zone (a meeting counts on the day it started
there). The figures come from the counts the service keeps per community, street and month
(adapters/counts.py, `_from_counts`): the whole city is its streets' rows, a hundred a month. What
the counts cannot say exactly (a period starting mid-month; distinct issues when the days after the
period's end had deliberations, or an issue was taken up by two communities) comes from the history
(`history`: aggregate queries grouped in the database on the indexes of the local dates, the way
/stats answered before the counts, and the reference they are tested against).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, extract, func, or_, select, text, true

from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden
from linli_kit.periods import resolve_period
from linli_meetings.adapters import counts, tables
from linli_meetings.adapters.repository import MeetingRepository
from linli_meetings.domain.decision import DocumentKind
from linli_meetings.domain.procedure import ParticipantRole
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

m = tables.meetings.c
p = tables.participants.c
dl = tables.deliberations.c
d = tables.decisions.c
ai = tables.action_items.c
doc = tables.documents.c
iss = tables.issue_replica.c
FINISHED_ISSUE = ("resolved", "closed")


def _scope(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str | None, street_id: str | None
) -> tuple[dict[str, Any], Any]:
    """({scope description}, the community ids as a list, a subquery, or None for the whole city)."""
    if principal.role not in (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN):
        raise Forbidden("role {role} may not read statistics", role=principal.role.value)
    if community_id:
        if not principal.can_access_community(community_id, uow.meetings.street_of):
            raise Forbidden("outside your community scope")
        return {"level": "community", "community_id": community_id}, [community_id]
    if street_id:
        if principal.role == Role.COMMUNITY_STAFF or (
            principal.role == Role.STREET_OFFICIAL and principal.street_id != street_id
        ):
            raise Forbidden("outside your street scope")
        return {"level": "street", "street_id": street_id}, MeetingRepository.communities_of_street(street_id)
    if principal.role == Role.CITY_ADMIN:
        return {"level": "city"}, None
    if principal.role == Role.STREET_OFFICIAL:
        if not principal.street_id:
            raise Forbidden("your token names no street")
        return {"level": "street", "street_id": principal.street_id}, MeetingRepository.communities_of_street(
            principal.street_id
        )
    return {"level": "communities", "community_ids": list(principal.community_ids)}, list(principal.community_ids)


def _within(column: ColumnElement, communities: Any) -> ColumnElement[bool]:
    return true() if communities is None else column.in_(communities)


def statistics(
    uow: MeetingsUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None = None,
    street_id: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
    by: str = "community",
) -> dict[str, Any]:
    """The figures of the scope over the period asked for; by default the platform's period, the
    twelve calendar months ending with the current one (`linli_kit.periods.resolve_period`). The
    rows beside the totals are per community, or with `by` "street" per street (every figure of a
    community adds up over its street: an issue belongs to one community)."""
    with uow:
        scope, communities = _scope(uow, principal, community_id, street_id)
        today = uow.today()
        period = resolve_period(today, period_from, period_to)
        start, end = period.start, period.end
        session = uow.session
        counted = _from_counts(session, communities, city=scope["level"] == "city", by=by, period=period, today=today)
        if counted is not None:
            groups, monthly, (resolved_count, consultations), of_streets = counted
        else:
            groups, monthly, (resolved_count, consultations) = history(session, communities, start, end, today)
            of_streets = False
        by_community = {} if of_streets else groups
        totals = _totals(groups.values())
        totals["issues_deliberated"] = sum(row["issues_deliberated"] for row in groups.values())
        totals["resolved_issues_deliberated"] = resolved_count
        totals["consultations_per_resolved_issue"] = (
            round(consultations / resolved_count, 2) if resolved_count else None
        )
        if of_streets:
            by_street = _street_rows({street: [row] for street, row in groups.items()})
        else:
            by_street = _per_street(session, by_community) if by == "street" else []
        return {
            "scope": scope,
            "period": period,
            "totals": totals,
            "by_community": []
            if by == "street"
            else [{"community_id": c, **row} for c, row in sorted(by_community.items())],
            "by_street": by_street,
            "monthly": [{"month": key, **row} for key, row in sorted(monthly.items())],
        }


def history(
    session: Any,
    communities: Any,
    start: date,
    end: date,
    today: date,
    families: frozenset[str] = frozenset({"additive", "distinct", "documents"}),
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], tuple[int, int]]:
    """The figures of the communities (a list, a subquery, None: the whole city) from the history of
    the days start..end, grouped in the database: (per community, per month, (issues deliberated
    now finished, their consultations)). The reference the counts are checked against, and what
    `statistics` reads when the counts cannot say. Families: "additive" (sums: meetings held,
    attendance, the party's part, consultations, decisions, action items), "distinct" (issues
    deliberated, consultations per resolved issue), "documents" (as of now)."""
    if communities is None and session.get_bind().dialect.name == "postgresql":
        # A city-wide answer hash-aggregates some 100,000 rows: give this transaction the memory
        # to do it without spilling to disk (the default work_mem of 4 MB does).
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    by_community: dict[str, dict[str, Any]] = defaultdict(_empty_community)
    monthly: dict[str, dict[str, Any]] = defaultdict(_empty_month)

    # Meetings held (concluded) and attendance, by community and type, and by month.
    held = and_(_within(m.community_id, communities), m.status == "concluded", m.local_date.between(start, end))
    resolved_count, consultations = 0, 0
    if "additive" in families:
        for cid, mtype, n, people in session.execute(
            select(m.community_id, m.meeting_type, func.count(), func.coalesce(func.sum(m.attendees_count), 0))
            .where(held)
            .group_by(m.community_id, m.meeting_type)
        ):
            row = by_community[cid]
            row["meetings_held"] += n
            row["meetings_by_type"][mtype] = row["meetings_by_type"].get(mtype, 0) + n
            row["attendance_sum"] += int(people)
        for y, mo, mtype, n, people in session.execute(
            _by_month(m.local_date, m.meeting_type, func.count(), func.coalesce(func.sum(m.attendees_count), 0))
            .where(held)
            .group_by(m.meeting_type)
        ):
            month = monthly[_month(y, mo)]
            month["meetings_held"] += n
            month["meetings_by_type"][mtype] = n
            month["attendance_sum"] += int(people)

        # The party's part (the article's party organisations and members): participant-times of
        # party members and of party organisations (as bodies) checked in at the meetings held.
        is_party_member = func.sum(case((p.party_member.is_(True), 1), else_=0))
        is_party_body = func.sum(case((p.role == ParticipantRole.PARTY_ORGANISATION.value, 1), else_=0))
        party_present = and_(
            held,
            p.checked_in_at.is_not(None),
            or_(p.party_member.is_(True), p.role == ParticipantRole.PARTY_ORGANISATION.value),
        )
        with_people = tables.participants.join(tables.meetings, m.id == p.meeting_id)
        for cid, members, bodies in session.execute(
            select(m.community_id, is_party_member, is_party_body)
            .select_from(with_people)
            .where(party_present)
            .group_by(m.community_id)
        ):
            by_community[cid]["party_member_participations"] = int(members or 0)
            by_community[cid]["party_organisation_participations"] = int(bodies or 0)
        for y, mo, members, bodies in session.execute(
            _by_month(m.local_date, is_party_member, is_party_body).select_from(with_people).where(party_present)
        ):
            monthly[_month(y, mo)]["party_member_participations"] = int(members or 0)
            monthly[_month(y, mo)]["party_organisation_participations"] = int(bodies or 0)

    # Issues deliberated: distinct issues on the agenda of meetings held in the period. Each
    # count is over a DISTINCT subquery (hash aggregation), much cheaper than count(DISTINCT).
    deliberated = and_(_within(dl.community_id, communities), dl.local_date.between(start, end))
    if "distinct" in families:
        pairs = select(dl.community_id, dl.issue_id).where(deliberated).distinct().subquery()
        for cid, n in session.execute(select(pairs.c.community_id, func.count()).group_by(pairs.c.community_id)):
            by_community[cid]["issues_deliberated"] = n
        year, month = extract("year", dl.local_date).label("y"), extract("month", dl.local_date).label("m")
        in_months = select(year, month, dl.issue_id).where(deliberated).distinct().subquery()
        for y, mo, n in session.execute(
            select(in_months.c.y, in_months.c.m, func.count()).group_by(in_months.c.y, in_months.c.m)
        ):
            monthly[_month(y, mo)]["issues_deliberated"] = n

    # Consultations: each issue taken up by each meeting held (the roof took six).
    if "additive" in families:
        for cid, n in session.execute(
            select(dl.community_id, func.count()).where(deliberated).group_by(dl.community_id)
        ):
            by_community[cid]["consultations"] = n
        for y, mo, n in session.execute(_by_month(dl.local_date, func.count()).where(deliberated)):
            monthly[_month(y, mo)]["consultations"] = n

    # Consultations per resolved issue: for the issues deliberated in the period that are now
    # resolved or closed, how many meetings had taken each up by the end of the period.
    if "distinct" in families:
        taken_up = (
            select(dl.issue_id, func.max(dl.consultation_number).label("times"))
            .join(tables.issue_replica, iss.issue_id == dl.issue_id)
            .where(deliberated, iss.status.in_(FINISHED_ISSUE))
            .group_by(dl.issue_id)
            .subquery()
        )
        resolved_count, consultations = session.execute(
            select(func.count(), func.coalesce(func.sum(taken_up.c.times), 0))
        ).one()

    # Decisions recorded at meetings held in the period.
    if "additive" in families:
        decided = and_(_within(d.community_id, communities), d.status == "recorded", d.local_date.between(start, end))
        for cid, outcome, n in session.execute(
            select(d.community_id, d.outcome, func.count()).where(decided).group_by(d.community_id, d.outcome)
        ):
            by_community[cid][f"decisions_{outcome}"] = n
        for y, mo, outcome, n in session.execute(
            _by_month(d.local_date, d.outcome, func.count()).where(decided).group_by(d.outcome)
        ):
            monthly[_month(y, mo)][f"decisions_{outcome}"] = n

        # Action items created by those decisions, by their state now.
        overdue = and_(ai.due_date < today, ai.status.in_(("open", "in_progress")))
        for cid, status, is_overdue, n in session.execute(
            select(ai.community_id, ai.status, overdue, func.count())
            .join(tables.meetings, ai.meeting_id == m.id)
            .where(held)
            .group_by(ai.community_id, ai.status, overdue)
        ):
            row = by_community[cid]
            if status in ("open", "in_progress"):
                row["action_items_open"] += n
                if is_overdue:
                    row["action_items_overdue"] += n
            elif status == "done":
                row["action_items_done"] += n
        # Action items of those decisions a party organisation owns (whatever their state).
        for cid, n in session.execute(
            select(ai.community_id, func.count())
            .join(tables.meetings, ai.meeting_id == m.id)
            .where(held, ai.owner_body == "party_organisation")
            .group_by(ai.community_id)
        ):
            by_community[cid]["party_organisation_action_items"] = n

    # Communities with a current (adopted) convention and rules of procedure.
    if "documents" in families:
        for cid, kind in session.execute(
            select(doc.community_id, doc.kind).where(_within(doc.community_id, communities)).distinct()
        ):
            key = "has_convention" if kind == DocumentKind.CONVENTION else "has_rules_of_procedure"
            by_community[cid][key] = True

    return by_community, monthly, (resolved_count, consultations)


# --- from the counts (adapters/counts.py) --------------------------------------------------------

# The figures of the monthly rows (action items and documents are not per month).
MONTHLY_FIGURES = ("held", "attendance", "party_members", "party_bodies", "consultations", "decisions", "deliberated")


def _from_counts(
    session: Any, communities: Any, *, city: bool, by: str, period: Any, today: date
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], tuple[int, int], bool] | None:
    """The figures from the counts, exact: (rows per community or, for the whole city by street,
    per street; per month; (resolved issues deliberated, their consultations); whether the rows are
    streets). None when the period does not start on the first of a month (the history says).

    The months of the period are read whole from the counts, less the days after the period's end
    in its last month, read from the history (none, usually: the default period ends today). The
    counts of distinct issues cannot be made less a few days: when issues were deliberated on those
    days, or an issue of the scope was taken up by two communities in the period (`shared`), those
    figures come from the history of the period. Overdue action items: the open items falling due
    in months before this one, from the counts, and those due this month before today, from the
    history (due dates are indexed)."""
    start, end = period.start, period.end
    if start.day != 1:
        return None
    first_month, last_month = counts.month_of(start), counts.month_of(end)
    month_end = (end.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    t = tables.meeting_counts.c
    of_streets = city and by == "street"
    # The rows beside the totals: the streets' rows, or the communities' (of the scope, or all);
    # the months: the streets' rows for the whole city (a hundred a month), else the communities'.
    scope = [] if communities is None else [t.key.in_(communities)]
    group_where = [t.level == (counts.STREET if of_streets else counts.COMMUNITY), *scope]
    month_where = [t.level == (counts.STREET if city else counts.COMMUNITY), *scope]
    months = and_(t.month >= first_month, t.month <= last_month)
    this_month = counts.month_of(today)
    groups: dict[str, dict[str, Any]] = defaultdict(_empty_community)
    shared, resolved_count, consultations = 0, 0, 0

    # Per group: each figure summed over the months; a distinct figure's rows only where they count.
    distinct_rows = or_(
        t.figure.not_in(("deliberated", "resolved_n", "resolved_cn")),
        and_(t.figure == "deliberated", t.item < first_month),
        and_(
            t.figure.in_(("resolved_n", "resolved_cn")),
            func.substr(t.item, 1, 7) < first_month,
            func.substr(t.item, 9, 7) > last_month,
        ),
    )
    for key, figure, item, n in session.execute(
        select(t.key, t.figure, t.item, func.sum(t.count))
        .where(*group_where, months, distinct_rows)
        .group_by(t.key, t.figure, t.item)
    ):
        n = int(n)
        if not n:
            continue
        if figure == "shared":
            shared += n
        elif figure == "resolved_n":
            resolved_count += n
        elif figure == "resolved_cn":
            consultations += n
        else:
            _add(groups[key], figure, item, n, this_month)
    # As of now: conventions, rules of procedure (a street's row: how many of its communities).
    for key, figure, n in session.execute(
        select(t.key, t.figure, func.sum(t.count)).where(*group_where, t.month == counts.NOW).group_by(t.key, t.figure)
    ):
        name = "has_convention" if figure == "convention" else "has_rules_of_procedure"
        groups[key][name] = int(n) if of_streets else int(n) > 0

    monthly: dict[str, dict[str, Any]] = defaultdict(_empty_month)
    for month, figure, item, n in session.execute(
        select(t.month, t.figure, t.item, func.sum(t.count))
        .where(
            *month_where,
            months,
            t.figure.in_(MONTHLY_FIGURES),
            or_(t.figure != "deliberated", t.item < t.month),
        )
        .group_by(t.month, t.figure, t.item)
    ):
        if int(n):
            _add(monthly[month], figure, item, int(n), this_month)

    street_of: dict[str, str] = {}

    def grouped(rows: Any) -> list[tuple[str, Any]]:
        """(group, value) of (community, value) rows: the community, or its street now."""
        rows = list(rows)
        if not of_streets:
            return rows
        street_of.update(counts.streets_of(session.connection(), {cid for cid, _ in rows} - set(street_of)))
        return [(street_of[cid], value) for cid, value in rows]

    # Open items of the months read falling due this month before today: overdue now.
    first_of_month = today.replace(day=1)
    if first_of_month < today:
        # Per street for the whole city by street: its communities' streets joined in the query.
        rc = tables.replica.communities.c
        group = func.coalesce(rc.street_id, "") if of_streets else ai.community_id
        overdue = session.execute(
            select(group, func.count())
            .select_from(tables.action_items.join(tables.meetings, ai.meeting_id == m.id))
            .outerjoin(tables.replica.communities, rc.community_id == ai.community_id)
            .where(
                _within(m.community_id, communities),
                m.status == "concluded",
                m.local_date.between(start, month_end),
                ai.status.in_(counts.OPEN_ACTION),
                ai.due_date >= first_of_month,
                ai.due_date < today,
            )
            .group_by(group)
        )
        for key, n in overdue:
            groups[key]["action_items_overdue"] += n

    # The days after the end, in its month: taken off.
    tail_deliberated = False
    if end < month_end and _anything_on(session, communities, end + timedelta(days=1), month_end):
        tail, tail_monthly, _ = history(session, communities, end + timedelta(days=1), month_end, today, ADDITIVE)
        for group, row in grouped(tail.items()):
            _subtract(groups[group], row)
            tail_deliberated = tail_deliberated or row["consultations"] > 0
        for month, row in tail_monthly.items():
            _subtract(monthly[month], row)
    if shared or tail_deliberated:
        exact, exact_monthly, (resolved_count, consultations) = history(
            session, communities, start, end, today, DISTINCT
        )
        for row in groups.values():
            row["issues_deliberated"] = 0
        for row in monthly.values():
            row["issues_deliberated"] = 0
        for group, row in grouped(exact.items()):
            groups[group]["issues_deliberated"] += row["issues_deliberated"]
        for month, row in exact_monthly.items():
            monthly[month]["issues_deliberated"] = row["issues_deliberated"]
    groups = {key: row for key, row in groups.items() if _says_something(row)}
    monthly = {key: row for key, row in monthly.items() if _says_something(row)}
    return groups, monthly, (resolved_count, consultations), of_streets


ADDITIVE, DISTINCT = frozenset({"additive"}), frozenset({"distinct"})


def _anything_on(session: Any, communities: Any, first: date, last: date) -> bool:
    """Whether the history has anything counted on these days (a meeting held, a deliberation, a
    decision recorded; people and action items come with a meeting held): one round trip, on the
    indexes of the local dates. After today, usually nothing."""
    found = session.execute(
        select(
            exists().where(
                _within(m.community_id, communities), m.status == "concluded", m.local_date.between(first, last)
            ),
            exists().where(_within(dl.community_id, communities), dl.local_date.between(first, last)),
            exists().where(
                _within(d.community_id, communities), d.status == "recorded", d.local_date.between(first, last)
            ),
        )
    ).one()
    return any(found)


def _add(row: dict[str, Any], figure: str, item: str, n: int, this_month: str) -> None:
    """Add a count to a row of figures (a community's, a street's or a month's)."""
    if figure == "held":
        row["meetings_held"] += n
        row["meetings_by_type"][item] = row["meetings_by_type"].get(item, 0) + n
    elif figure == "attendance":
        row["attendance_sum"] += n
    elif figure == "party_members":
        row["party_member_participations"] += n
    elif figure == "party_bodies":
        row["party_organisation_participations"] += n
    elif figure == "consultations":
        row["consultations"] += n
    elif figure == "decisions":
        row[f"decisions_{item}"] = row.get(f"decisions_{item}", 0) + n
    elif figure == "deliberated":
        row["issues_deliberated"] += n
    elif figure == "ai_open":
        row["action_items_open"] += n
        if item and item < this_month:  # due in a month before this one: overdue
            row["action_items_overdue"] += n
    elif figure == "ai_done":
        row["action_items_done"] += n
    elif figure == "ai_party":
        row["party_organisation_action_items"] += n


def _subtract(row: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key == "meetings_by_type":
            for mtype, n in value.items():
                left = row["meetings_by_type"].get(mtype, 0) - n
                if left:
                    row["meetings_by_type"][mtype] = left
                else:
                    row["meetings_by_type"].pop(mtype, None)
        elif isinstance(value, int) and not isinstance(value, bool):
            row[key] = row.get(key, 0) - value


def _says_something(row: dict[str, Any]) -> bool:
    """A row the history would have: some figure not zero (a community with nothing in the period
    and no document has no row)."""
    return any(value for value in row.values())


def _per_street(session: Any, by_community: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The communities' rows added up per street (the directory replica's; none for a community it
    does not know yet)."""
    rc = tables.replica.communities.c
    street_of = dict(session.execute(select(rc.community_id, rc.street_id)).all())
    streets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for community_id, row in by_community.items():
        streets[street_of.get(community_id) or ""].append(row)
    return _street_rows(streets)


def _street_rows(streets: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for street_id, rows in sorted(streets.items()):
        figures = _totals(rows)
        figures["issues_deliberated"] = sum(row["issues_deliberated"] for row in rows)
        del figures["attendance_mean"]
        out.append({"street_id": street_id or None, **figures})
    return out


def _by_month(day: ColumnElement, *figures: ColumnElement) -> Select:
    """SELECT year, month of `day`, figures... GROUP BY year, month (add keys with .group_by)."""
    year, month = extract("year", day), extract("month", day)
    return select(year, month, *figures).group_by(year, month)


def _month(year: Any, month: Any) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def _empty_community() -> dict[str, Any]:
    return {
        "meetings_held": 0,
        "meetings_by_type": {},
        "attendance_sum": 0,
        "issues_deliberated": 0,
        "consultations": 0,
        "decisions_adopted": 0,
        "decisions_rejected": 0,
        "decisions_no_quorum": 0,
        "action_items_open": 0,
        "action_items_done": 0,
        "action_items_overdue": 0,
        "party_member_participations": 0,
        "party_organisation_participations": 0,
        "party_organisation_action_items": 0,
        "has_convention": False,
        "has_rules_of_procedure": False,
    }


def _empty_month() -> dict[str, Any]:
    return {
        "meetings_held": 0,
        "meetings_by_type": {},
        "attendance_sum": 0,
        "consultations": 0,
        "issues_deliberated": 0,
        "decisions_adopted": 0,
        "decisions_rejected": 0,
        "decisions_no_quorum": 0,
        "party_member_participations": 0,
        "party_organisation_participations": 0,
    }


def _totals(rows: Any) -> dict[str, Any]:
    totals: dict[str, Any] = {
        "meetings_held": 0,
        "meetings_by_type": {},
        "attendance_sum": 0,
        "consultations": 0,
        "decisions_adopted": 0,
        "decisions_rejected": 0,
        "decisions_no_quorum": 0,
        "action_items_open": 0,
        "action_items_done": 0,
        "action_items_overdue": 0,
        "party_member_participations": 0,
        "party_organisation_participations": 0,
        "party_organisation_action_items": 0,
        "communities_with_convention": 0,
        "communities_with_rules_of_procedure": 0,
    }
    for row in rows:
        for key in (
            "meetings_held",
            "attendance_sum",
            "consultations",
            "decisions_adopted",
            "decisions_rejected",
            "decisions_no_quorum",
        ):
            totals[key] += row[key]
        for key in (
            "action_items_open",
            "action_items_done",
            "action_items_overdue",
            "party_member_participations",
            "party_organisation_participations",
            "party_organisation_action_items",
        ):
            totals[key] += row[key]
        for mtype, n in row["meetings_by_type"].items():
            totals["meetings_by_type"][mtype] = totals["meetings_by_type"].get(mtype, 0) + n
        totals["communities_with_convention"] += row["has_convention"]
        totals["communities_with_rules_of_procedure"] += row["has_rules_of_procedure"]
    held = totals["meetings_held"]
    totals["attendance_mean"] = round(totals["attendance_sum"] / held, 2) if held else None
    return totals
