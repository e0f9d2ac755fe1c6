"""The statistics' read models: what `/stats` adds up, per community, street and month, kept exact.

Every figure of `/stats` is a sum of small contributions of rows of the history, each dated by one
of the row's own moments in the city's time zone (a check-in by when it was made, a registration by
the start of its activity, a help-log entry by the day helped) or "as of now" (posts, groups,
talents: month `now`; visit plans: `due:<day>`, so the overdue ones are those due before today).
`*_figures` below say what each kind of row contributes; the counts (`activity_counts`,
`activity_kind_counts`) are their sums per community and month, and per street and month (rows
keyed `street:<street id>`, the street the directory replica gives the community when the change
is written; `street:` alone for a community it does not know yet). The whole city is the sum of its
streets' rows: a hundred rows a month, and no single row that every writer updates.

Three figures are not sums, and have rules of their own:

- Activities held: an activity for two communities is one activity for their street and for the
  city. A street's row counts it once (`activities_held`, and `held` by kind), whichever of its
  communities it is for; for the city it is counted once, on the row of the street of its first
  community in id order (`activities_city`, `held_city`), so the city's figure is still a sum of
  street rows.
- Distinct participants (people checked in, counted once however often and wherever): per person,
  scope and month, a reference count of their check-ins (`activity_people`). When a person appears
  in a month of a scope (0 -> 1), `activity_first_seen` counts them in that month under the last
  earlier month they appeared in the scope (`since`, "" for never), and the next later month's
  person moves from `since` to this month; leaving (1 -> 0) undoes it. The people of months a..b
  are then those of each month m in a..b whose `since` is before a: each person once, in the first
  month of the period they appear in. Exact for any run of whole months, and additive over
  scopes' rows, so the city's people are kept on `city:<shard>` rows (a person's shard is fixed by
  their id) instead of one row every check-in of the city would update. A person appearing in a
  new month first locks their anchor row in the scope (month `*`), so two such changes of one
  person take turns and each reads the other's months.
- Group members (as of now, counted once even in two groups): per person and scope, a reference
  count of their memberships of active groups (`activity_people`, month `member`); `group_members`
  of the scope's `now` row counts the people with one or more (the city's on `city:<shard>` rows).

They are kept in the transaction of the change: a `before_flush` hook takes every counted object
new, changed in a counted field or deleted, subtracts what its old values contributed and adds what
its new ones do. An activity whose status or start changes carries its registrations' contributions
along (read from the database: they are dated by its start and count only while it is published);
a group made inactive or active again takes its members' off or puts them back. Whatever writes
through the session (use cases, event handlers, timers) keeps them; the sign-up's Core statements
(Repository.take_place and the registration's INSERT) add theirs with SIGN_UP_COUNTS, which
PostgreSQL runs within the registration's own statement. `rebuild` builds them again from the
history (`linli-activities rebuild-counts`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Executable,
    and_,
    bindparam,
    case,
    delete,
    event,
    func,
    inspect,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from linli_activities.adapters.tables import (
    COUNTED_INTEGERS,
    activities,
    activity_communities,
    activity_counts,
    activity_counts_state,
    activity_first_seen,
    activity_kind_counts,
    activity_people,
    bookings,
    checkins,
    group_members,
    help_logs,
    mutual_aid_groups,
    patrol_findings,
    patrol_rounds,
    registrations,
    replica,
    service_posts,
    talents,
    visit_plans,
    welfare_visits,
)
from linli_activities.domain.activities import Activity, Checkin, Registration
from linli_activities.domain.care import Booking, GroupMember, HelpLog, MutualAidGroup, Talent, VisitPlan, WelfareVisit
from linli_activities.domain.patrols import PatrolFinding, PatrolRound
from linli_activities.domain.places import ServicePost

ZONE_KEY = "linli.activities.zone"  # Session.info: the city's time zone the counts are kept in
STREET = "street:"
CITY = "city:"
CITY_SHARDS = 16
NOW = "now"
DUE = "due:"
MEMBER = "member"
ANCHOR = "*"  # activity_people: a person's row in a scope that check-ins appearing in a new month lock
COLUMNS = (*COUNTED_INTEGERS, "help_hours")
HOLDING = ("confirmed", "checked_in")
# The only columns a registration's figures move (registration_figures): a sign-up's statements
# write these, the others keep their zero (default) or their value.
REGISTRATION_COLUMNS = ("registrations", "registered_places", "registrations_attended", "still_waitlisted")

# Which rows to read: conditions on a table's scope column.
ScopeRows = Callable[[Any], list[Any]]
# (community id, month, column, amount): a contribution to a community's row and its street's.
Contribution = tuple[str, str, str, float]


def month_of(moment: datetime | date, zone: ZoneInfo) -> str:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone).strftime("%Y-%m")
    return moment.strftime("%Y-%m")


def street_key(street_id: str | None) -> str:
    return STREET + (street_id or "")


def city_shard(user_id: str) -> str:
    return CITY + str(int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16) % CITY_SHARDS)


# --- what one row contributes -------------------------------------------------------------------
def registration_figures(
    registration: Mapping[str, Any], activity_status: str, starts_at: datetime, zone: ZoneInfo
) -> Iterator[Contribution]:
    """Registrations count for the activity's month, while it is published."""
    if activity_status != "published":
        return
    community, month, status = registration["community_id"], month_of(starts_at, zone), registration["status"]
    if status in HOLDING:
        yield community, month, "registrations", 1
        yield community, month, "registered_places", registration["party_size"]
    if status == "checked_in":
        yield community, month, "registrations_attended", 1
    if status == "waitlisted":
        yield community, month, "still_waitlisted", 1


def simple_figures(kind: type, row: Mapping[str, Any], zone: ZoneInfo) -> Iterator[Contribution]:
    """The additive figures of every counted row but activities, registrations and memberships."""
    community = row["community_id"]
    if kind is Checkin:
        yield community, month_of(row["checked_in_at"], zone), "participant_times", row["participants"]
    elif kind is HelpLog:
        month = month_of(row["helped_on"], zone)
        yield community, month, "help_hours", row["hours"]
        yield community, month, "help_entries", 1
    elif kind is Booking:
        if row["status"] == "completed" and row["completed_at"] is not None:
            month = month_of(row["completed_at"], zone)
            yield community, month, "service_person_times", row["person_times"]
            if row["door_to_door"]:
                yield community, month, "door_to_door_person_times", row["person_times"]
            yield community, month, "services_completed", 1
    elif kind is WelfareVisit:
        yield community, month_of(row["visited_on"], zone), "welfare_visits", 1
    elif kind is PatrolRound:
        if row["walked_at"] is not None:
            yield community, month_of(row["walked_at"], zone), "patrol_rounds", 1
    elif kind is PatrolFinding:
        yield community, month_of(row["recorded_at"], zone), "patrol_findings", 1
        if row["raised_at"] is not None:
            yield community, month_of(row["raised_at"], zone), "patrol_issues_raised", 1
    elif kind is ServicePost:
        if row["active"]:
            yield community, NOW, "service_posts", 1
            yield community, NOW, "residents_covered", row["residents_served"]
    elif kind is MutualAidGroup:
        if row["active"]:
            yield community, NOW, "mutual_aid_groups", 1
    elif kind is Talent:
        if row["active"]:
            yield community, NOW, "talents", 1
    elif kind is VisitPlan:
        if row["active"]:
            yield community, DUE + row["next_due_on"].isoformat(), "visit_plans", 1


# The fields each kind of row's contribution depends on: a change to any other changes no count.
FIELDS: dict[type, tuple[str, ...]] = {
    Checkin: ("community_id", "checked_in_at", "participants", "user_id"),
    HelpLog: ("community_id", "helped_on", "hours"),
    Booking: ("community_id", "status", "completed_at", "person_times", "door_to_door"),
    WelfareVisit: ("community_id", "visited_on"),
    PatrolRound: ("community_id", "walked_at"),
    PatrolFinding: ("community_id", "recorded_at", "raised_at"),
    ServicePost: ("community_id", "active", "residents_served"),
    MutualAidGroup: ("community_id", "active"),
    Talent: ("community_id", "active"),
    VisitPlan: ("community_id", "active", "next_due_on"),
    Registration: ("activity_id", "community_id", "status", "party_size"),
    GroupMember: ("group_id", "user_id"),
    Activity: ("community_ids", "kind", "status", "starts_at"),
}


# The tables of the rows `simple_figures` counts.
KIND_TABLES: dict[type, Any] = {
    Checkin: checkins,
    HelpLog: help_logs,
    Booking: bookings,
    WelfareVisit: welfare_visits,
    PatrolRound: patrol_rounds,
    PatrolFinding: patrol_findings,
    ServicePost: service_posts,
    MutualAidGroup: mutual_aid_groups,
    Talent: talents,
    VisitPlan: visit_plans,
}


class Tally:
    """Amounts per (scope, month, column), by kind, and per person, to add to the stored counts."""

    def __init__(self, zone: ZoneInfo, streets: Mapping[str, str | None]) -> None:
        self.zone = zone
        self.streets = streets
        self.amounts: dict[tuple[str, str, str], float] = defaultdict(float)
        self.kinds: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.people: dict[tuple[str, str, str, str], int] = defaultdict(int)  # (scope, user, month, counter scope)

    def street(self, community_id: str) -> str:
        return street_key(self.streets.get(community_id))

    def add(self, contributions: Iterable[Contribution], sign: int = 1) -> None:
        for community, month, column, amount in contributions:
            self.amounts[(community, month, column)] += sign * amount
            self.amounts[(self.street(community), month, column)] += sign * amount

    def add_activity(self, activity: Mapping[str, Any], sign: int = 1) -> None:
        if activity["status"] != "published":
            return
        month, kind = month_of(activity["starts_at"], self.zone), activity["kind"]
        communities = list(dict.fromkeys(activity["community_ids"] or []))
        for community in communities:
            self.amounts[(community, month, "activities_held")] += sign
            self.kinds[(community, month, kind, "held")] += sign
        for street in dict.fromkeys(self.street(c) for c in communities):
            self.amounts[(street, month, "activities_held")] += sign
            self.kinds[(street, month, kind, "held")] += sign
        if communities:
            first = self.street(min(communities))
            self.amounts[(first, month, "activities_city")] += sign
            self.kinds[(first, month, kind, "held_city")] += sign

    def add_person(self, community_id: str, user_id: str | None, month: str, sign: int = 1) -> None:
        """A check-in (month) or a membership of an active group (MEMBER) of a person."""
        if user_id is None:  # a walk-in: counted in participant-times only, as /stats does
            return
        self.people[(community_id, user_id, month, community_id)] += sign
        street = self.street(community_id)
        self.people[(street, user_id, month, street)] += sign
        self.people[(CITY, user_id, month, city_shard(user_id))] += sign


def _insert(connection: Connection, table: Any) -> Any:
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


def _adding_upserts(dialect: Any) -> tuple[Executable, Executable]:
    """INSERT ... ON CONFLICT DO UPDATE adding to `activity_counts` and `activity_kind_counts`, in
    `dialect`'s words."""
    counts_insert = dialect.insert(activity_counts)
    kinds_insert = dialect.insert(activity_kind_counts)
    return (
        counts_insert.on_conflict_do_update(
            index_elements=["scope", "month"],
            set_={name: activity_counts.c[name] + counts_insert.excluded[name] for name in COLUMNS},
        ),
        kinds_insert.on_conflict_do_update(
            index_elements=["scope", "month", "kind"],
            set_={
                "held": activity_kind_counts.c.held + kinds_insert.excluded.held,
                "held_city": activity_kind_counts.c.held_city + kinds_insert.excluded.held_city,
            },
        ),
    )


# Built once per dialect: building them (and their `excluded` columns) cost more than running them.
_ADDING_UPSERTS = {"postgresql": _adding_upserts(postgresql), "sqlite": _adding_upserts(sqlite)}


def _upserts(connection: Connection) -> tuple[Executable, Executable]:
    return _ADDING_UPSERTS["postgresql" if connection.dialect.name == "postgresql" else "sqlite"]


def _upsert_counts(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    connection.execute(_upserts(connection)[0], rows)


def _wide_rows(tally: Tally) -> dict[tuple[str, str], dict[str, Any]]:
    """The tally's rows of `activity_counts`, by (scope, month)."""
    wide: dict[tuple[str, str], dict[str, Any]] = {}
    for (scope, month, column), amount in tally.amounts.items():
        if amount:
            row = wide.setdefault((scope, month), {"scope": scope, "month": month, **dict.fromkeys(COLUMNS, 0)})
            row[column] += amount
    for row in wide.values():
        for name in COUNTED_INTEGERS:
            row[name] = int(row[name])
    return wide


def _kind_rows(tally: Tally) -> list[dict[str, Any]]:
    """The tally's rows of `activity_kind_counts` in key order (a key twice when it adds to both)."""
    return [
        {"scope": s, "month": m, "kind": k, "held": n if c == "held" else 0, "held_city": n if c == "held_city" else 0}
        for (s, m, k, c), n in sorted(tally.kinds.items())
        if n
    ]


def new_activity_rows(
    zone: ZoneInfo, activity: Mapping[str, Any], streets: Mapping[str, str | None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a new activity (FIELDS[Activity]) adds to `activity_counts` and `activity_kind_counts`,
    as `count_new_activity` adds it: each key once (for one INSERT ... ON CONFLICT per table, which
    may touch a row once), in key order."""
    tally = Tally(zone, streets)
    tally.add_activity(activity)
    wide = _wide_rows(tally)
    kinds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in _kind_rows(tally):
        merged = kinds.setdefault((row["scope"], row["month"], row["kind"]), {**row, "held": 0, "held_city": 0})
        merged["held"] += row["held"]
        merged["held_city"] += row["held_city"]
    return [wide[key] for key in sorted(wide)], [kinds[key] for key in sorted(kinds)]


def apply(connection: Connection, tally: Tally) -> None:
    """Add the tally to the stored counts, rows in key order (two transactions lock the rows they
    share in the same order and cannot deadlock on them)."""
    wide = _wide_rows(tally)
    first_seen: dict[tuple[str, str, str], int] = defaultdict(int)
    members: dict[str, int] = defaultdict(int)
    for (scope, user, month, counted_on), delta in sorted(tally.people.items()):
        if delta:
            _person(connection, scope, user, month, counted_on, delta, first_seen, members)
    for scope, delta in members.items():
        row = wide.setdefault((scope, NOW), {"scope": scope, "month": NOW, **dict.fromkeys(COLUMNS, 0)})
        row["group_members"] += delta
    _upsert_counts(connection, [wide[key] for key in sorted(wide)])
    kinds = _kind_rows(tally)
    if kinds:
        connection.execute(_upserts(connection)[1], kinds)
    seen = [{"scope": s, "month": m, "since": p, "people": n} for (s, m, p), n in sorted(first_seen.items()) if n]
    if seen:
        statement = _insert(connection, activity_first_seen)
        statement = statement.on_conflict_do_update(
            index_elements=["scope", "month", "since"],
            set_={"people": activity_first_seen.c.people + statement.excluded.people},
        )
        connection.execute(statement, seen)


def _person(
    connection: Connection,
    scope: str,
    user: str,
    month: str,
    counted_on: str,
    delta: int,
    first_seen: dict[tuple[str, str, str], int],
    members: dict[str, int],
) -> None:
    """Move a person's reference count in a scope; when it leaves or reaches zero, count the
    person in or out (see the module's docstring)."""
    p = activity_people.c
    statement = _insert(connection, activity_people).values(scope=scope, user_id=user, month=month, times=delta)
    statement = statement.on_conflict_do_update(
        index_elements=["scope", "user_id", "month"], set_={"times": p.times + delta}
    ).returning(p.times)
    times = connection.execute(statement).scalar_one()
    before = times - delta
    if (before > 0) == (times > 0):
        return
    sign = 1 if times > 0 else -1
    if times <= 0:
        connection.execute(delete(activity_people).where(p.scope == scope, p.user_id == user, p.month == month))
    if month == MEMBER:
        members[counted_on] += sign
        return
    # The person's anchor row in the scope, locked until commit: two transactions making the same
    # person appear in two months take turns, so the second reads the first's month.
    anchor = _insert(connection, activity_people).values(scope=scope, user_id=user, month=ANCHOR, times=0)
    connection.execute(
        anchor.on_conflict_do_update(index_elements=["scope", "user_id", "month"], set_={"times": p.times})
    )
    others = list(
        connection.execute(
            select(p.month).where(p.scope == scope, p.user_id == user, p.month.not_in((MEMBER, ANCHOR, month)))
        ).scalars()
    )
    since = max((m for m in others if m < month), default="")
    later = min((m for m in others if m > month), default=None)
    first_seen[(counted_on, month, since)] += sign
    if later is not None:
        first_seen[(counted_on, later, since)] -= sign
        first_seen[(counted_on, later, month)] += sign


def streets_of(connection: Connection, community_ids: Iterable[str]) -> dict[str, str | None]:
    """The street of each community, as the directory replica knows it now."""
    ids = sorted(set(community_ids))
    if not ids:
        return {}
    found = dict(connection.execute(_STREETS_OF, {"ids": ids}).all())
    return {community_id: found.get(community_id) for community_id in ids}


_STREETS_OF = select(replica.communities.c.community_id, replica.communities.c.street_id).where(
    replica.communities.c.community_id.in_(bindparam("ids", expanding=True))
)


def count_new_activity(
    connection: Connection, zone: ZoneInfo, activity: Mapping[str, Any], streets: Mapping[str, str | None]
) -> None:
    """Add what a new activity (FIELDS[Activity]) adds to the counts, as the hook counts one flushed
    (`streets`: its communities' as `streets_of` gives them): for an activity written without the
    session's flush (Repository.insert_new_activity)."""
    tally = Tally(zone, streets)
    tally.add_activity(activity)
    apply(connection, tally)


def zone_of_counts(connection: Connection) -> ZoneInfo | None:
    """The zone the counts are built in; None: not built (/stats reads the history)."""
    zone = connection.execute(select(activity_counts_state.c.zone).where(activity_counts_state.c.id == 1)).scalar()
    return ZoneInfo(zone) if zone else None


# --- the sign-up's one statement ----------------------------------------------------------------
def sign_up_parameters(zone: str, registration: Registration, starts_at: datetime) -> dict[str, Any]:
    """The parameters of SIGN_UP_COUNTS for a first registration (Repository.take_place's, for a
    published activity): what it adds to its community's row and its street's."""
    figures = dict.fromkeys(COLUMNS, 0)
    for _community, _month, column, amount in registration_figures(
        {name: getattr(registration, name) for name in FIELDS[Registration]}, "published", starts_at, ZoneInfo(zone)
    ):
        figures[column] += amount
    return {
        "community": registration.community_id,
        "street_prefix": STREET,
        "month": month_of(starts_at, ZoneInfo(zone)),
        **{f"c_{n}": v for n, v in figures.items()},
    }


def sign_up_statement(zone: str, registration: Registration, starts_at: datetime) -> Executable:
    """SIGN_UP_COUNTS alone, with its parameters (SQLite; PostgreSQL writes it with the
    registration and its event: Repository.registration_counts_and_event)."""
    return SIGN_UP_COUNTS.bindparams(**sign_up_parameters(zone, registration, starts_at))


# What a sign-up adds to the counts, in one INSERT ... ON CONFLICT: the community's row and its
# street's (`street:` and the replica's street id, or `street:` alone for a community the replica
# does not know yet), each given the registration's amounts; the street is looked up by the statement
# itself (a scalar subquery of the directory replica), not by a round trip. Its text never changes
# (every column is added, zeros included), so it is compiled once per process: it runs while the
# sign-up holds the activity's row, where compiling a new statement each time halved the
# registrations a popular activity takes per second. `WHERE true`: SQLite needs it to read ON
# CONFLICT after INSERT ... SELECT.
SIGN_UP_COUNTS = text(
    "INSERT INTO activity_counts (scope, month, "
    + ", ".join(COLUMNS)
    + ") SELECT rows.scope, :month, "
    + ", ".join(f":c_{n}" for n in COLUMNS)
    + " FROM (SELECT :community AS scope UNION ALL SELECT :street_prefix || COALESCE("
    "(SELECT street_id FROM directory_communities WHERE community_id = :community), '')) AS rows WHERE true"
    " ON CONFLICT (scope, month) DO UPDATE SET "
    + ", ".join(f"{n} = activity_counts.{n} + excluded.{n}" for n in COLUMNS)
)
# The same as a common table expression, for PostgreSQL to run in the statement of the registration
# and its event (data-modifying WITH): no round trip of its own while the activity's row is held.
SIGN_UP_COUNTS_CTE = SIGN_UP_COUNTS.columns().cte("sign_up_counts")


# --- kept with every flush ------------------------------------------------------------------------
def _old(obj: Any, name: str) -> Any:
    history = inspect(obj).attrs[name].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(obj, name)


def _values(obj: Any, *, old: bool = False) -> dict[str, Any]:
    fields = FIELDS[type(obj)]
    return {name: _old(obj, name) if old else getattr(obj, name) for name in fields}


def _changed(obj: Any) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in FIELDS[type(obj)])


def _changes(session: Session, zone: ZoneInfo) -> Tally | None:  # noqa: C901 - one pass over the flush
    new = [o for o in session.new if type(o) in FIELDS]
    dirty = [o for o in session.dirty if type(o) in FIELDS and _changed(o)]
    deleted = [o for o in session.deleted if type(o) in FIELDS]
    if not (new or dirty or deleted):
        return None
    connection = session.connection()
    with session.no_autoflush:
        involved: set[str] = set()
        for obj in (*new, *dirty, *deleted):
            if isinstance(obj, Activity):
                involved |= set(obj.community_ids or []) | set(_old(obj, "community_ids") or [])
            elif isinstance(obj, GroupMember):
                group = next((o for o in new if isinstance(o, MutualAidGroup) and o.id == obj.group_id), None)
                group = group or session.get(MutualAidGroup, obj.group_id)
                if group is not None:
                    involved.add(group.community_id)
            else:
                involved |= {obj.community_id, _old(obj, "community_id")}
        moved_activities = [o for o in dirty if isinstance(o, Activity)]
        toggled_groups = [o for o in dirty if isinstance(o, MutualAidGroup)]
        tally = Tally(zone, {})
        # Registrations of activities whose status or start changed, as the database has them.
        moved_rows: dict[str, list[Any]] = {}
        for activity in moved_activities:
            reg = registrations.c
            moved_rows[activity.id] = list(
                connection.execute(
                    select(reg.community_id, reg.status, reg.party_size).where(reg.activity_id == activity.id)
                )
            )
            involved |= {row.community_id for row in moved_rows[activity.id]}
        member_rows: dict[str, list[str]] = {}
        for group in toggled_groups:
            gm = group_members.c
            member_rows[group.id] = list(
                connection.execute(select(gm.user_id).where(gm.group_id == group.id)).scalars()
            )
        tally.streets = streets_of(connection, involved - {None})

        pending_activities = {o.id: o for o in new if isinstance(o, Activity)}
        pending_groups = {o.id: o for o in new if isinstance(o, MutualAidGroup)}

        def activity_state(activity_id: str, *, old: bool = False) -> tuple[str, datetime] | None:
            activity = pending_activities.get(activity_id) or session.get(Activity, activity_id)
            if activity is None:
                return None
            if old:
                return _old(activity, "status"), _old(activity, "starts_at")
            return activity.status, activity.starts_at

        def group_state(group_id: str, *, old: bool = False) -> tuple[str, bool] | None:
            group = pending_groups.get(group_id) or session.get(MutualAidGroup, group_id)
            if group is None:
                return None
            return group.community_id, bool(_old(group, "active") if old else group.active)

        # Activities: held, and their registrations carried to the new status and start.
        for activity in moved_activities:
            tally.add_activity(_values(activity, old=True), -1)
            tally.add_activity(_values(activity))
            before, after = activity_state(activity.id, old=True), activity_state(activity.id)
            for row in moved_rows[activity.id]:
                values = dict(row._mapping)
                if before is not None:
                    tally.add(registration_figures(values, *before, zone), -1)
                if after is not None:
                    tally.add(registration_figures(values, *after, zone))
        for activity in (o for o in new if isinstance(o, Activity)):
            tally.add_activity(_values(activity))
        for activity in (o for o in deleted if isinstance(o, Activity)):
            tally.add_activity(_values(activity, old=True), -1)
        # Groups: the group itself, and its members taken off or put back when it changes activity.
        for group in toggled_groups:
            old_community, was_active = _old(group, "community_id"), bool(_old(group, "active"))
            for user in member_rows[group.id]:
                if was_active:
                    tally.add_person(old_community, user, MEMBER, -1)
                if group.active:
                    tally.add_person(group.community_id, user, MEMBER)
        # Registrations and memberships (under their activity's and group's state after the flush).
        for obj, sign, old in (
            *((o, 1, False) for o in new),
            *((o, -1, True) for o in dirty),
            *((o, 1, False) for o in dirty),
            *((o, -1, True) for o in deleted),
        ):
            kind = type(obj)
            if kind is Activity:
                continue
            values = _values(obj, old=old)
            if kind is Registration:
                state = activity_state(values["activity_id"])
                if state is not None:
                    tally.add(registration_figures(values, *state, zone), sign)
            elif kind is GroupMember:
                group = group_state(values["group_id"])
                if group is not None and group[1]:
                    tally.add_person(group[0], values["user_id"], MEMBER, sign)
            else:
                tally.add(simple_figures(kind, values, zone), sign)
                if kind is Checkin:
                    tally.add_person(
                        values["community_id"], values["user_id"], month_of(values["checked_in_at"], zone), sign
                    )
    return tally


@event.listens_for(Session, "before_flush")
def _keep_counts(session: Session, _flush_context: Any, _instances: Any) -> None:
    zone_name = session.info.get(ZONE_KEY)
    if zone_name is None:
        return
    tally = _changes(session, ZoneInfo(zone_name))
    if tally is not None:
        apply(session.connection(), tally)


# --- reading -----------------------------------------------------------------------------------------
def streets(column: Any) -> list[Any]:
    """Rows of streets."""
    return [column.like(literal_column(f"'{STREET}%'"))]


def streets_and_city(column: Any) -> list[Any]:
    """Rows of streets and of the city's shards: the text of the partial indexes that hold them
    (tables.AGGREGATE_ROWS), so the planners read those rows alone."""
    return [or_(column.like(literal_column(f"'{STREET}%'")), column.like(literal_column(f"'{CITY}%'")))]


def every_row(_column: Any) -> list[Any]:
    return []


def is_community(scope: str) -> bool:
    return not (scope.startswith(STREET) or scope.startswith(CITY))


# What `CountsReader.period` gives per scope: the months' sums ("period"), the figures as of now
# ("now"), the visit plans in force ("plans") and of those overdue ("overdue").
Found = dict[str, Any]


def nothing_found() -> Found:
    return {"period": dict.fromkeys(COLUMNS, 0), "now": dict.fromkeys(COLUMNS, 0), "plans": 0, "overdue": 0}


class CountsReader:
    """The stored counts of a set of scopes (conditions on the scope column) for whole months,
    added up by the database: a statement per read model, whatever the number of scopes."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def period(self, scoped: ScopeRows, months: list[str], today: date) -> dict[str, Found]:
        """Per scope: the sums of `months`, the figures as of now and the visit plans in force and
        overdue (due before today), in one statement (the rows labelled by what they hold)."""
        t = activity_counts.c
        label = case(
            (t.month == NOW, NOW),
            (t.month < DUE, "period"),
            (t.month < DUE + today.isoformat(), "overdue"),
            else_="plans",
        ).label("label")
        query = (
            select(t.scope, label, *(func.sum(t[name]) for name in COLUMNS))
            .where(*scoped(t.scope), or_(t.month.in_([*months, NOW]), and_(t.month >= DUE, t.month < DUE + "9")))
            .group_by(t.scope, label)
        )
        out: dict[str, Found] = defaultdict(nothing_found)
        for row in self.connection.execute(query):
            found = out[row[0]]
            if row[1] in ("period", NOW):
                found[row[1]] = dict(zip(COLUMNS, row[2:], strict=True))
            else:  # a visit plan is in force on any day it is due; overdue before today
                plans = int(row[2 + COLUMNS.index("visit_plans")] or 0)
                found["plans"] += plans
                if row[1] == "overdue":
                    found["overdue"] += plans
        return out

    def monthly(self, scoped: ScopeRows, months: list[str]) -> dict[str, dict[str, Any]]:
        """Per month of `months`: the scopes' rows added up."""
        t = activity_counts.c
        query = (
            select(t.month, *(func.sum(t[name]) for name in COLUMNS))
            .where(*scoped(t.scope), t.month.in_(months))
            .group_by(t.month)
        )
        return {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in self.connection.execute(query)}

    def kinds(self, scoped: ScopeRows, months: list[str]) -> dict[str, tuple[int, int]]:
        """{kind: (held, held_city)} over the months, the scopes' rows added up."""
        k = activity_kind_counts.c
        query = (
            select(k.kind, func.sum(k.held), func.sum(k.held_city))
            .where(*scoped(k.scope), k.month.in_(months))
            .group_by(k.kind)
        )
        return {kind: (int(held or 0), int(held_city or 0)) for kind, held, held_city in self.connection.execute(query)}

    def people(self, scoped: ScopeRows, months: list[str]) -> dict[str, int]:
        """Per scope: the different people checked in in the months (see the module's docstring)."""
        f = activity_first_seen.c
        query = (
            select(f.scope, func.sum(f.people))
            .where(*scoped(f.scope), f.month.in_(months), f.since < months[0])
            .group_by(f.scope)
        )
        return {scope: int(n or 0) for scope, n in self.connection.execute(query)}


# --- built again from the history -----------------------------------------------------------------
def rebuild(session: Session, zone: ZoneInfo) -> int:
    """Build the counts again from the history, in the caller's transaction, with the very
    functions that keep them; returns how many rows of history were counted. On PostgreSQL writers
    wait until it commits, so nothing is missed or counted twice."""
    connection = session.connection()
    counted_tables = (
        "activities, activity_communities, registrations, checkins, service_posts, mutual_aid_groups, "
        "group_members, help_logs, talents, bookings, visit_plans, welfare_visits, patrol_rounds, patrol_findings"
    )
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE {counted_tables} IN SHARE ROW EXCLUSIVE MODE")
    for table in (activity_counts, activity_kind_counts, activity_people, activity_first_seen):
        connection.execute(delete(table))
    c = replica.communities.c
    tally = Tally(zone, dict(connection.execute(select(c.community_id, c.street_id)).all()))
    counted = 0
    # Activities by their rows of `activity_communities` (what lists and the history's figures read).
    a, links = activities.c, activity_communities.c
    query = select(links.activity_id, links.community_id, links.kind, links.status, links.starts_at).order_by(
        links.activity_id, links.community_id
    )
    current: dict[str, Any] | None = None
    for activity_id, community_id, kind, status, starts_at in connection.execute(query):
        if current is None or current["id"] != activity_id:
            if current is not None:
                tally.add_activity(current)
            current = {"id": activity_id, "kind": kind, "status": status, "starts_at": starts_at, "community_ids": []}
            counted += 1
        current["community_ids"].append(community_id)
    if current is not None:
        tally.add_activity(current)
    r = registrations.c
    query = select(*(r[name] for name in FIELDS[Registration]), a.status.label("a_status"), a.starts_at).join(
        activities, a.id == r.activity_id
    )
    for row in connection.execute(query):
        tally.add(registration_figures(row._mapping, row.a_status, row.starts_at, zone))
        counted += 1
    for kind, table in KIND_TABLES.items():
        for row in connection.execute(select(*(table.c[name] for name in FIELDS[kind]))):
            values = row._mapping
            tally.add(simple_figures(kind, values, zone))
            if kind is Checkin:
                tally.add_person(values["community_id"], values["user_id"], month_of(values["checked_in_at"], zone))
            counted += 1
    g, gm = mutual_aid_groups.c, group_members.c
    query = select(g.community_id, gm.user_id).join(mutual_aid_groups, g.id == gm.group_id).where(g.active.is_(True))
    for community_id, user_id in connection.execute(query):
        tally.add_person(community_id, user_id, MEMBER)
        counted += 1
    _apply_built(connection, tally)
    connection.execute(delete(activity_counts_state))
    connection.execute(activity_counts_state.insert().values(id=1, zone=zone.key, built_at=datetime.now(UTC)))
    return counted


def _apply_built(connection: Connection, tally: Tally) -> None:
    """Store a tally of the whole history into empty tables: the people's reference counts, and
    their first appearances worked out here at once (not person by person as `apply` does)."""
    months_of: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    people_rows = []
    members: dict[str, int] = defaultdict(int)
    for (scope, user, month, counted_on), times in tally.people.items():
        if times <= 0:
            continue
        people_rows.append({"scope": scope, "user_id": user, "month": month, "times": times})
        if month == MEMBER:
            members[counted_on] += 1
        else:
            months_of[(scope, user, counted_on)].append(month)
    first_seen: dict[tuple[str, str, str], int] = defaultdict(int)
    for (_scope, _user, counted_on), months in months_of.items():
        since = ""
        for month in sorted(months):
            first_seen[(counted_on, month, since)] += 1
            since = month
    tally.people.clear()
    for scope, n in members.items():
        tally.amounts[(scope, NOW, "group_members")] += n
    apply(connection, tally)
    for start in range(0, len(people_rows), 10_000):
        connection.execute(activity_people.insert(), people_rows[start : start + 10_000])
    seen = [{"scope": s, "month": m, "since": p, "people": n} for (s, m, p), n in sorted(first_seen.items())]
    for start in range(0, len(seen), 10_000):
        connection.execute(activity_first_seen.insert(), seen[start : start + 10_000])
