"""The aggregate queries behind /stats, in SQL so they stay fast on a city of 10,000 communities.

Each query is filtered by the scope (a condition on a community id column, or none for the whole
city) and by the period, and grouped by community or by month. Months are the city's: PostgreSQL
converts with AT TIME ZONE; SQLite, the embedded default with no time zone tables, shifts by the
zone's current UTC offset (exact for zones without daylight saving, like Asia/Shanghai).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from linli_activities.adapters import tables as t

ScopeFilter = Callable[[Any], ColumnElement[bool] | None]
Figures = dict[str, Any]


class StatsQueries:
    def __init__(self, session: Session, timezone: str) -> None:
        self.session = session
        self.timezone = timezone
        self.dialect = session.get_bind().dialect.name

    # --- helpers ------------------------------------------------------------------------------------
    def _month(self, column: Any) -> Any:
        if self.dialect == "postgresql":
            return func.to_char(func.timezone(self.timezone, column), "YYYY-MM")
        offset = datetime.now(ZoneInfo(self.timezone)).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset else 0
        return func.strftime("%Y-%m", column, f"{minutes:+d} minutes")

    def _date_month(self, column: Any) -> Any:
        if self.dialect == "postgresql":
            return func.to_char(column, "YYYY-MM")
        return func.strftime("%Y-%m", column)

    @staticmethod
    def _where(*conditions: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
        return [c for c in conditions if c is not None]

    def _grouped(self, query: Any, key: Any, names: list[str]) -> dict[str, Figures]:
        rows = self.session.execute(query.add_columns(key.label("key")).group_by(key))
        out: dict[str, Figures] = {}
        for row in rows:
            out[row.key] = {name: row[i] for i, name in enumerate(names)}
        return out

    @staticmethod
    def _summed(per_community: dict[str, Figures], names: list[str]) -> Figures:
        """Totals of additive figures from the per-community rows: one query fewer per figure."""
        return {name: sum(row[name] for row in per_community.values()) for name in names}

    # --- activities ----------------------------------------------------------------------------------
    def activities(self, scope: ScopeFilter, start: datetime, end: datetime) -> tuple[Figures, dict, dict, dict]:
        """(totals, by kind, by community, by month) of activities held: published and started in the period."""
        links = t.activity_communities.c
        where = self._where(
            scope(links.community_id), links.status == "published", links.starts_at >= start, links.starts_at < end
        )
        total = self.session.scalar(select(func.count(distinct(links.activity_id))).where(*where)) or 0
        by_kind = {
            kind: n
            for kind, n in self.session.execute(
                select(links.kind, func.count(distinct(links.activity_id))).where(*where).group_by(links.kind)
            )
        }
        per_community = self._grouped(
            select(func.count(links.activity_id)).where(*where), links.community_id, ["activities_held"]
        )
        monthly = self._grouped(
            select(func.count(distinct(links.activity_id))).where(*where),
            self._month(links.starts_at),
            ["activities_held"],
        )
        return {"activities_held": total}, by_kind, per_community, monthly

    def checkins(self, scope: ScopeFilter, start: datetime, end: datetime) -> tuple[Figures, dict, dict]:
        c = t.checkins.c
        where = self._where(scope(c.community_id), c.checked_in_at >= start, c.checked_in_at < end)
        figures = [func.coalesce(func.sum(c.participants), 0), func.count(distinct(c.user_id))]
        names = ["participant_times", "distinct_participants"]
        row = self.session.execute(select(*figures).where(*where)).one()
        per_community = self._grouped(select(*figures).where(*where), c.community_id, names)
        monthly = self._grouped(select(figures[0]).where(*where), self._month(c.checked_in_at), names[:1])
        return dict(zip(names, row, strict=True)), per_community, monthly

    def registrations(self, scope: ScopeFilter, start: datetime, end: datetime) -> tuple[Figures, dict]:
        """Registrations for activities held in the period, against how many of them checked in."""
        r, a = t.registrations.c, t.activities.c
        holding = r.status.in_(("confirmed", "checked_in"))
        figures = [
            func.count(case((holding, 1))),
            func.coalesce(func.sum(case((holding, r.party_size), else_=0)), 0),
            func.count(case((r.status == "checked_in", 1))),
            func.count(case((r.status == "waitlisted", 1))),
        ]
        names = ["registrations", "registered_places", "registrations_attended", "still_waitlisted"]
        query = (
            select(*figures)
            .select_from(t.registrations.join(t.activities, a.id == r.activity_id))
            .where(
                *self._where(scope(r.community_id), a.status == "published", a.starts_at >= start, a.starts_at < end)
            )
        )
        per_community = self._grouped(query, r.community_id, names)
        return self._summed(per_community, names), per_community

    # --- places, groups, talents, services ----------------------------------------------------------------
    def posts(self, scope: ScopeFilter) -> tuple[Figures, dict]:
        p = t.service_posts.c
        figures = [func.count(p.id), func.coalesce(func.sum(p.residents_served), 0)]
        names = ["service_posts", "residents_covered"]
        query = select(*figures).where(*self._where(scope(p.community_id), p.active.is_(True)))
        per_community = self._grouped(query, p.community_id, names)
        return self._summed(per_community, names), per_community

    def groups(self, scope: ScopeFilter) -> tuple[Figures, dict]:
        g, m = t.mutual_aid_groups.c, t.group_members.c
        where = self._where(scope(g.community_id), g.active.is_(True))
        groups_q = select(func.count(g.id)).where(*where)
        members_q = (
            select(func.count(distinct(m.user_id)))
            .select_from(t.group_members.join(t.mutual_aid_groups, g.id == m.group_id))
            .where(*where)
        )
        group_counts = self._grouped(groups_q, g.community_id, ["mutual_aid_groups"])
        # Members are counted once each, even when they belong to two groups: not a sum.
        totals = {
            **self._summed(group_counts, ["mutual_aid_groups"]),
            "group_members": self.session.scalar(members_q) or 0,
        }
        per_community: dict[str, Figures] = defaultdict(dict)
        for key, figures in group_counts.items():
            per_community[key].update(figures)
        for key, figures in self._grouped(members_q, g.community_id, ["group_members"]).items():
            per_community[key].update(figures)
        return totals, per_community

    def help(self, scope: ScopeFilter, first: date, last: date) -> tuple[Figures, dict, dict]:
        h = t.help_logs.c
        where = self._where(scope(h.community_id), h.helped_on >= first, h.helped_on <= last)
        figures = [func.coalesce(func.sum(h.hours), 0.0), func.count(h.id)]
        names = ["help_hours", "help_entries"]
        per_community = self._grouped(select(*figures).where(*where), h.community_id, names)
        monthly = self._grouped(select(figures[0]).where(*where), self._date_month(h.helped_on), names[:1])
        return self._summed(per_community, names), per_community, monthly

    def talents(self, scope: ScopeFilter) -> tuple[Figures, dict]:
        tl = t.talents.c
        query = select(func.count(tl.id)).where(*self._where(scope(tl.community_id), tl.active.is_(True)))
        per_community = self._grouped(query, tl.community_id, ["talents"])
        return self._summed(per_community, ["talents"]), per_community

    def services(self, scope: ScopeFilter, start: datetime, end: datetime) -> tuple[Figures, dict, dict]:
        b = t.bookings.c
        where = self._where(
            scope(b.community_id), b.status == "completed", b.completed_at >= start, b.completed_at < end
        )
        figures = [
            func.coalesce(func.sum(b.person_times), 0),
            func.coalesce(func.sum(case((b.door_to_door.is_(True), b.person_times), else_=0)), 0),
            func.count(b.id),
        ]
        names = ["service_person_times", "door_to_door_person_times", "services_completed"]
        per_community = self._grouped(select(*figures).where(*where), b.community_id, names)
        monthly = self._grouped(select(*figures[:2]).where(*where), self._month(b.completed_at), names[:2])
        return self._summed(per_community, names), per_community, monthly

    # --- per street -------------------------------------------------------------------------------------
    def distinct_per_street(
        self, scope: ScopeFilter, start: datetime, end: datetime, held_end: datetime
    ) -> dict[str | None, Figures]:
        """The figures that do not add up over a street's communities (an activity is held for two
        of them, a resident checks in or joins groups in two): activities held, distinct
        participants in the period and members of active groups, per street of the directory
        replica (None: communities it does not know yet)."""
        rc, c, g, m = t.replica.communities.c, t.checkins.c, t.mutual_aid_groups.c, t.group_members.c
        out: dict[str | None, Figures] = defaultdict(
            lambda: {"activities_held": 0, "distinct_participants": 0, "group_members": 0}
        )
        for street_id, count in self.held_per_street(scope, start, held_end).items():
            out[street_id]["activities_held"] = count
        checked_in = (
            select(rc.street_id, func.count(distinct(c.user_id)))
            .select_from(t.checkins.outerjoin(t.replica.communities, rc.community_id == c.community_id))
            .where(*self._where(scope(c.community_id), c.checked_in_at >= start, c.checked_in_at < end))
            .group_by(rc.street_id)
        )
        for street_id, count in self.session.execute(checked_in):
            out[street_id]["distinct_participants"] = count
        members = (
            select(rc.street_id, func.count(distinct(m.user_id)))
            .select_from(
                t.group_members.join(t.mutual_aid_groups, g.id == m.group_id).outerjoin(
                    t.replica.communities, rc.community_id == g.community_id
                )
            )
            .where(*self._where(scope(g.community_id), g.active.is_(True)))
            .group_by(rc.street_id)
        )
        for street_id, count in self.session.execute(members):
            out[street_id]["group_members"] = count
        return out

    def held_per_street(self, scope: ScopeFilter, start: datetime, end: datetime) -> dict[str | None, int]:
        """Activities held in [start, end) per street, each once per street however many of its
        communities it is for."""
        rc, links = t.replica.communities.c, t.activity_communities.c
        held = (
            select(rc.street_id, func.count(distinct(links.activity_id)))
            .select_from(t.activity_communities.outerjoin(t.replica.communities, rc.community_id == links.community_id))
            .where(
                *self._where(
                    scope(links.community_id),
                    links.status == "published",
                    links.starts_at >= start,
                    links.starts_at < end,
                )
            )
            .group_by(rc.street_id)
        )
        return dict(self.session.execute(held).all())

    # --- welfare visits ----------------------------------------------------------------------------------
    def visits(self, scope: ScopeFilter, first: date, last: date, today: date) -> tuple[Figures, dict, dict]:
        """Visits made in the period; visit plans in force now and how many are overdue (due before
        today)."""
        v, p = t.welfare_visits.c, t.visit_plans.c
        made = self._where(scope(v.community_id), v.visited_on >= first, v.visited_on <= last)
        visits_q = select(func.count(v.id)).where(*made)
        plans_where = self._where(scope(p.community_id), p.active.is_(True))
        plans_q = select(func.count(p.id), func.count(case((p.next_due_on < today, p.id)))).where(*plans_where)
        names = ["visit_plans", "visits_overdue"]
        per_community: dict[str, Figures] = defaultdict(dict)
        for key, figures in self._grouped(visits_q, v.community_id, ["welfare_visits"]).items():
            per_community[key].update(figures)
        for key, figures in self._grouped(plans_q, p.community_id, names).items():
            per_community[key].update(figures)
        monthly = self._grouped(visits_q, self._date_month(v.visited_on), ["welfare_visits"])
        plans, overdue = self.session.execute(plans_q).one()
        totals = {"welfare_visits": self.session.scalar(visits_q) or 0, "visit_plans": plans, "visits_overdue": overdue}
        return totals, per_community, monthly

    # --- patrols -------------------------------------------------------------------------------------------
    def patrols(self, scope: ScopeFilter, start: datetime, end: datetime) -> tuple[Figures, dict, dict]:
        """Rounds walked, findings recorded and findings raised as issues in the period (each by
        its own moment)."""
        r, f = t.patrol_rounds.c, t.patrol_findings.c
        counted = (
            ("patrol_rounds", r.id, r.community_id, r.walked_at),
            ("patrol_findings", f.id, f.community_id, f.recorded_at),
            ("patrol_issues_raised", f.id, f.community_id, f.raised_at),
        )
        totals: Figures = {}
        per_community: dict[str, Figures] = defaultdict(dict)
        monthly: dict[str, Figures] = defaultdict(dict)
        for name, key, community, moment in counted:
            query = select(func.count(key)).where(*self._where(scope(community), moment >= start, moment < end))
            by_community = self._grouped(query, community, [name])
            for k, figures in by_community.items():
                per_community[k].update(figures)
            for k, figures in self._grouped(query, self._month(moment), [name]).items():
                monthly[k].update(figures)
            totals.update(self._summed(by_community, [name]))
        return totals, per_community, monthly

    # --- what a stretch of time holds ---------------------------------------------------------------------
    def present(
        self,
        scope: ScopeFilter,
        held: tuple[datetime, datetime],
        moments: tuple[datetime, datetime],
        days: tuple[date, date],
    ) -> dict[str, bool]:
        """In one statement: whether the scope has activities starting in `held`, check-ins,
        completed services or patrol records in `moments`, help or visits on `days` (the figures
        read from the counts take off what such stretches hold: most often nothing)."""
        links, c, b = t.activity_communities.c, t.checkins.c, t.bookings.c
        r, f, h, v = t.patrol_rounds.c, t.patrol_findings.c, t.help_logs.c, t.welfare_visits.c

        def inside(column: Any, window: tuple[Any, Any]) -> list[ColumnElement[bool]]:
            return [column >= window[0], column < window[1]]

        day_window = (days[0], days[1] + timedelta(days=1))
        checks = {
            "held": [
                select(links.activity_id).where(
                    *self._where(scope(links.community_id), links.status == "published"), *inside(links.starts_at, held)
                )
            ],
            "moments": [
                select(c.id).where(*self._where(scope(c.community_id)), *inside(c.checked_in_at, moments)),
                select(b.id).where(*self._where(scope(b.community_id)), *inside(b.completed_at, moments)),
                select(r.id).where(*self._where(scope(r.community_id)), *inside(r.walked_at, moments)),
                select(f.id).where(*self._where(scope(f.community_id)), *inside(f.recorded_at, moments)),
                select(f.id).where(*self._where(scope(f.community_id)), *inside(f.raised_at, moments)),
            ],
            "days": [
                select(h.id).where(*self._where(scope(h.community_id)), *inside(h.helped_on, day_window)),
                select(v.id).where(*self._where(scope(v.community_id)), *inside(v.visited_on, day_window)),
            ],
        }
        columns = [or_(*(exists(query) for query in queries)).label(name) for name, queries in checks.items()]
        row = self.session.execute(select(*columns)).one()
        return {name: bool(row[i]) for i, name in enumerate(checks)}

    # --- festivals ------------------------------------------------------------------------------------
    def festival(self, festival_id: str, now: datetime) -> tuple[Figures, dict[str, Figures]]:
        """(totals, per community) of a festival's published activities: how many, how many held
        by `now`, the communities taking part, registrations holding places and their places, and
        participant-times (check-ins, walk-ins included)."""
        a, links, r, c = t.activities.c, t.activity_communities.c, t.registrations.c, t.checkins.c
        published = self._where(a.festival_id == festival_id, a.status == "published")
        ids = select(a.id).where(*published)
        held = case((a.starts_at <= now, a.id))
        totals_row = self.session.execute(select(func.count(a.id), func.count(held)).where(*published)).one()
        holding = r.status.in_(("confirmed", "checked_in"))
        reg_figures = [func.count(r.id), func.coalesce(func.sum(r.party_size), 0)]
        reg_query = select(*reg_figures).where(r.activity_id.in_(ids), holding)
        checkin_query = select(func.coalesce(func.sum(c.participants), 0)).where(c.activity_id.in_(ids))
        per_community: dict[str, Figures] = defaultdict(
            lambda: {
                "activities": 0,
                "activities_held": 0,
                "registrations": 0,
                "registered_places": 0,
                "participant_times": 0,
            }
        )
        link_rows = self.session.execute(
            select(links.community_id, func.count(a.id), func.count(held))
            .select_from(t.activity_communities.join(t.activities, a.id == links.activity_id))
            .where(*published)
            .group_by(links.community_id)
        )
        for community_id, count, held_count in link_rows:
            per_community[community_id].update(activities=count, activities_held=held_count)
        for count, places, community_id in self.session.execute(
            reg_query.add_columns(r.community_id).group_by(r.community_id)
        ):
            per_community[community_id].update(registrations=count, registered_places=places)
        for times, community_id in self.session.execute(
            checkin_query.add_columns(c.community_id).group_by(c.community_id)
        ):
            per_community[community_id]["participant_times"] = times
        registrations, places = self.session.execute(reg_query).one()
        totals = {
            "activities": totals_row[0],
            "activities_held": totals_row[1],
            "communities": len([k for k, v in per_community.items() if v["activities"]]),
            "registrations": registrations,
            "registered_places": places,
            "participant_times": self.session.scalar(checkin_query) or 0,
        }
        return totals, dict(per_community)
