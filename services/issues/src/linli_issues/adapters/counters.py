"""The statistics' read models: per community and month, what `/stats` adds up, kept exact.

Every figure `/stats` sums is the sum, over issues and escalations, of a small contribution dated
by one of the issue's instants: an issue counts as raised (and by category, by tier, as done or as
overdue once) in the month it was reported, as accepted in the month it was accepted, and so on.
`issue_figures` and `escalation_figures` say what those contributions are; the counts are their
sums per community and month of the city's time zone, and per street and month (rows keyed
`street:<street id>`, the street the directory replica gives the community when the change is
written; `street:` alone for a community it does not know yet): the whole city is the sum of its
streets' rows, a hundred rows a month instead of ten thousand. There is no single row for the whole
city that every change would update (it would make every writer wait for the one before).

The hours an issue took to resolve are counted too, in whole hours (`hours`/<n> breakdowns dated
by the resolution), so the median and 90th percentile come exactly from the counts: per community,
and for the whole city in rows keyed `*` per month and number of hours (two writers meet on such a
row only when their issues resolve in the same month in the same number of hours).

They are kept in the transaction of the change: a `before_flush` hook takes every issue whose
counted fields changed, subtracts what its old values contributed and adds what its new ones do,
and adds each new escalation; a `before_commit` hook writes what the transaction added up, one
upsert per table (one statement for all on PostgreSQL), just before the commit. On PostgreSQL the
writer first takes a free writers' slot and adds to that slot's shard of each row (`SLOTS`): a row
written stays locked until its writer has committed (WAL flush included), and with one row per
community and month every report of a community waited for the commit of the one before. The issues
per community and status (the list's exact totals) are kept the same way. Whatever writes an issue
through the session (use cases, event handlers, timers) keeps them; nothing has to remember to.
`rebuild` builds them again from the history (`linli-issues rebuild-counts`), for a database that
had issues before they existed or a change of the city's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, delete, event, func, inspect, literal, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from linli_issues.adapters.tables import (
    COUNTED_ISSUE_FIELDS,
    issue_counts_state,
    issue_month_breakdowns,
    issue_month_counts,
    issue_status_counts,
    issue_updates,
    issues,
    replica,
)
from linli_issues.domain.model import Issue, TimelineEntry

CITY = "*"  # the whole city's hours-to-resolve rows
STREET = "street:"  # prefix of a street's rows
DONE = ("resolved", "closed")
MOVES = ("compound_to_community", "community_to_street", "street_to_city")
FIGURES = ("raised", "done", "overdue", "accepted", "resolved", "ratings", "rating_sum", "escalated", *MOVES)
# The fields of an issue its contributions depend on: a change to any other changes no count.
COUNTED_FIELDS = COUNTED_ISSUE_FIELDS

# A figure is a column of `issue_month_counts`, or (kind, key) of `issue_month_breakdowns`.
Figure = str | tuple[str, str]


def issue_figures(issue: Mapping[str, Any]) -> Iterator[tuple[datetime, Figure, int]]:
    """What one issue adds to the counts: (the instant that dates it, figure, amount)."""
    created = issue["created_at"]
    yield created, "raised", 1
    if issue["status"] in DONE:
        yield created, "done", 1
    if issue["overdue_at"] is not None:
        yield created, "overdue", 1
    yield created, ("category", issue["category"]), 1
    yield created, ("tier", issue["tier"]), 1
    if issue["accepted_at"] is not None:
        yield issue["accepted_at"], "accepted", 1
    if issue["resolved_at"] is not None:
        yield issue["resolved_at"], "resolved", 1
        yield issue["resolved_at"], ("hours", str(hours_to_resolve(created, issue["resolved_at"]))), 1
    if issue["closed_at"] is not None and issue["rating"] is not None:
        yield issue["closed_at"], "ratings", 1
        yield issue["closed_at"], "rating_sum", issue["rating"]


def escalation_figures(created_at: datetime, data: Mapping[str, Any] | None) -> Iterator[tuple[datetime, Figure, int]]:
    """What one escalation (a timeline entry of kind `escalation`) adds to the counts."""
    data = data or {}
    move = f"{data.get('from')}_to_{data.get('to')}"
    yield created_at, "escalated", 1
    yield created_at, (move if move in MOVES else ("escalation", move)), 1


def hours_to_resolve(created: datetime, resolved: datetime) -> int:
    """Whole hours from report to resolution (the unit of the median and 90th percentile)."""
    return int((_aware(resolved) - _aware(created)) // timedelta(hours=1))


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m")


def street_key(street_id: str | None) -> str:
    return STREET + (street_id or "")


def is_hours(figure: Figure) -> bool:
    return isinstance(figure, tuple) and figure[0] == "hours"


class Tally:
    """Amounts per (community, month, figure); given the streets of the communities, each street's
    alongside (and the city's hours to resolve)."""

    def __init__(self, zone: ZoneInfo | None, streets: Mapping[str, str | None] | None = None) -> None:
        self.zone = zone  # None: the month counts are not built, only the issues per status are kept
        self.streets = streets
        self.amounts: dict[tuple[str, str, Figure], int] = defaultdict(int)
        self.statuses: dict[tuple[str, str], int] = defaultdict(int)  # (community, status): issues

    def add_status(self, community_id: str, status: str, sign: int = 1) -> None:
        self.statuses[(community_id, status)] += sign

    def add(self, community_id: str, contributions: Iterable[tuple[datetime, Figure, int]], sign: int = 1) -> None:
        if self.zone is None:
            return
        months: dict[datetime, str] = {}  # most contributions of an issue share its creation's instant
        for moment, figure, amount in contributions:
            month = months.get(moment)
            if month is None:
                month = months[moment] = month_of(moment, self.zone)
            self.amounts[(community_id, month, figure)] += sign * amount
            if self.streets is not None:
                wider = CITY if is_hours(figure) else street_key(self.streets.get(community_id))
                self.amounts[(wider, month, figure)] += sign * amount

    def merge(self, other: Tally) -> None:
        """Add another tally's amounts (of the same zone) to this one."""
        for key, amount in other.amounts.items():
            self.amounts[key] += amount
        for status_key, count in other.statuses.items():
            self.statuses[status_key] += count

    def status_rows(self) -> list[dict[str, Any]]:
        """The non-zero changes of the issues per status, in key order."""
        return [
            {"community_id": community_id, "status": status, "count": count}
            for (community_id, status), count in sorted(self.statuses.items())
            if count
        ]

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The non-zero amounts as rows of the two tables, in key order (so two transactions lock
        the rows they share in the same order and cannot deadlock on them)."""
        wide: dict[tuple[str, str], dict[str, Any]] = {}
        narrow: list[dict[str, Any]] = []
        for (community_id, month, figure), amount in sorted(self.amounts.items(), key=lambda kv: str(kv[0])):
            if amount == 0:
                continue
            if isinstance(figure, tuple):
                kind, key = figure
                narrow.append({"community_id": community_id, "month": month, "kind": kind, "key": key, "count": amount})
            else:
                row = wide.setdefault(
                    (community_id, month), {"community_id": community_id, "month": month, **dict.fromkeys(FIGURES, 0)}
                )
                row[figure] += amount
        narrow.sort(key=lambda r: (r["community_id"], r["month"], r["kind"], r["key"]))
        return [wide[key] for key in sorted(wide)], narrow


# Keys of `Session.info`: the streets the unit of work already read from the directory replica (the
# repository's cache, shared so the hook does not read them again), and the zone of the counts read
# in the current transaction (`remember_zone`).
STREETS_KEY = "linli.issues.streets"
ZONE_KEY = "linli.issues.counts_zone"
PENDING_KEY = "linli.issues.counts_pending"  # (transaction, Tally) to write at its commit


# Writers' slots (PostgreSQL): before writing its counts a transaction takes the first free slot
# of SLOTS (a transaction-scoped advisory lock of class SLOT_LOCKS, held until it has committed)
# and adds to the rows of that shard only. No two writers hold one slot, so no writer waits for
# another's commit on a count row; a community's figures are the sum of its shards. With every
# slot taken (SLOTS concurrent commits), a writer waits for slot 0. `fold` takes every slot.
SLOTS = 32
SLOT_LOCKS = 0x11_55_0C  # the advisory locks' first key: the issues service's counts


def _slot(guard: str | None = None) -> str:
    """The CTE `slot` taking a writers' slot; `guard`: the name of a CTE of the same statement
    without whose row no slot is taken (and so nothing is added)."""
    return f"""slot AS MATERIALIZED (
    SELECT coalesce(
        (SELECT s FROM generate_series(0, {SLOTS - 1}) AS s WHERE pg_try_advisory_xact_lock({SLOT_LOCKS}, s) LIMIT 1),
        (SELECT 0 FROM pg_advisory_xact_lock({SLOT_LOCKS}, 0))
    )::smallint AS shard{f" FROM {guard}" if guard else ""}
)"""


_SLOT = _slot()


def _added_rows(table: str, key: list[str], figures: list[str], prefix: str, types: Mapping[str, str]) -> str:
    """INSERT INTO table SELECT FROM unnest(one array per column), in the slot's shard, adding to
    the row there: its text is the same whatever the number of rows (prepared once per process)."""
    columns = [*key, *figures]
    arrays = ", ".join(f"CAST(:{prefix}{name} AS {types.get(name, 'integer')}[])" for name in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}, shard) "
        f"SELECT {', '.join(f'r.{name}' for name in columns)}, slot.shard "
        f"FROM unnest({arrays}) AS r({', '.join(columns)}) CROSS JOIN slot " + _adding(table, key, figures)
    )


def _adding(row: str, key: list[str], figures: list[str]) -> str:
    """The upsert's end: a row already in the slot's shard (named `row` in the statement) adds."""
    return f"ON CONFLICT ({', '.join(key)}, shard) DO UPDATE SET " + ", ".join(
        f"{name} = {row}.{name} + excluded.{name}" for name in figures
    )


_TEXT = {"community_id": "text", "month": "text", "kind": "text", "key": "text", "status": "text"}
_WIDE_KEY = ["community_id", "month"]
_NARROW_KEY = ["community_id", "month", "kind", "key"]
_STATUS_KEY = ["community_id", "status"]
_WIDE_COLUMNS = (*_WIDE_KEY, *FIGURES)
_NARROW_COLUMNS = (*_NARROW_KEY, "count")
_STATUS_COLUMNS = (*_STATUS_KEY, "count")
# PostgreSQL: the slot and the three tables in one statement (data-modifying CTEs), one round trip.
_ADD_ALL = text(
    f"WITH {_SLOT}, "
    f"wide AS ({_added_rows('issue_month_counts', _WIDE_KEY, list(FIGURES), 'w_', _TEXT)}), "
    f"narrow AS ({_added_rows('issue_month_breakdowns', _NARROW_KEY, ['count'], 'n_', _TEXT)}) "
    + _added_rows("issue_status_counts", _STATUS_KEY, ["count"], "s_", _TEXT)
)


def _added_json_rows(table: str, key: list[str], figures: list[str], parameter: str) -> str:
    """As `_added_rows`, the rows given as one JSON document (json_to_recordset): a shorter text
    with one parameter per table, for a statement that does more than count (`added_counts_ctes`)."""
    columns = [*key, *figures]
    typed = ", ".join(f"{name} {_TEXT.get(name, 'integer')}" for name in columns)
    return (
        f"INSERT INTO {table} AS t ({', '.join(columns)}, shard) SELECT r.*, slot.shard "
        f"FROM json_to_recordset(CAST(%({parameter})s AS json)) AS r({typed}) CROSS JOIN slot "
        + _adding("t", key, figures)
    )


def added_counts_ctes(guard: str) -> str:
    """The CTEs (PostgreSQL) adding a tally to the counts within a larger statement, as `apply`
    does: a writers' slot, taken only if the CTE `guard` (written before these) has a row, and one
    upsert per table from the parameters `tally_documents` gives. For a statement sent to the
    driver as it stands (psycopg's `%(name)s` parameters)."""
    return (
        f"{_slot(guard)}, "
        f"wide AS ({_added_json_rows('issue_month_counts', _WIDE_KEY, list(FIGURES), 'counts_wide')}), "
        f"narrow AS ({_added_json_rows('issue_month_breakdowns', _NARROW_KEY, ['count'], 'counts_narrow')}), "
        f"statuses AS ({_added_json_rows('issue_status_counts', _STATUS_KEY, ['count'], 'counts_statuses')})"
    )


def tally_documents(tally: Tally) -> dict[str, str]:
    """The parameters of `added_counts_ctes` adding `tally`: its rows in key order, as `apply`
    writes them (so that writers lock the rows they share in one order)."""
    wide, narrow = tally.rows()
    # orjson: the same documents for PostgreSQL to read (texts and integers), in a fifth of the time.
    return {
        "counts_wide": orjson.dumps(wide).decode(),
        "counts_narrow": orjson.dumps(narrow).decode(),
        "counts_statuses": orjson.dumps(tally.status_rows()).decode(),
    }


def _sqlite_upserts() -> list[tuple[Any, Any]]:
    """SQLite (one writer at a time): INSERT ... ON CONFLICT DO UPDATE adding, in shard 0."""
    statements = []
    for table, key, figures in (
        (issue_month_counts, _WIDE_KEY, FIGURES),
        (issue_month_breakdowns, _NARROW_KEY, ("count",)),
        (issue_status_counts, _STATUS_KEY, ("count",)),
    ):
        statement = sqlite.insert(table)
        statements.append(
            statement.on_conflict_do_update(
                index_elements=[*key, "shard"],
                set_={name: table.c[name] + statement.excluded[name] for name in figures},
            )
        )
    return statements


_SQLITE_UPSERTS = _sqlite_upserts()


def apply(connection: Connection, tally: Tally) -> None:
    """Add the tally to the stored counts (insert, or add to the row already there)."""
    wide, narrow = tally.rows()
    statuses = tally.status_rows()
    if not (wide or narrow or statuses):
        return
    if connection.dialect.name == "postgresql":
        parameters = {f"w_{c}": [row[c] for row in wide] for c in _WIDE_COLUMNS}
        parameters.update({f"n_{c}": [row[c] for row in narrow] for c in _NARROW_COLUMNS})
        parameters.update({f"s_{c}": [row[c] for row in statuses] for c in _STATUS_COLUMNS})
        connection.execute(_ADD_ALL, parameters)
        return
    for statement, rows in zip(_SQLITE_UPSERTS, (wide, narrow, statuses), strict=True):
        if rows:
            connection.execute(statement, [{**row, "shard": 0} for row in rows])


def fold(connection: Connection) -> int:
    """Fold every shard of the counts into shard 0 (PostgreSQL; SQLite has shard 0 alone), in the
    caller's transaction: it takes every writers' slot first, so no writer adds to a row while it
    moves (writers wait for it to commit). Returns how many rows were folded."""
    if connection.dialect.name != "postgresql":
        return 0
    connection.execute(text(f"SELECT pg_advisory_xact_lock({SLOT_LOCKS}, s) FROM generate_series(0, {SLOTS - 1}) s"))
    folded = 0
    for table, key, figures in (
        ("issue_month_counts", _WIDE_KEY, list(FIGURES)),
        ("issue_month_breakdowns", _NARROW_KEY, ["count"]),
        ("issue_status_counts", _STATUS_KEY, ["count"]),
    ):
        columns = ", ".join(key)
        moved = connection.execute(
            text(
                f"WITH moved AS (DELETE FROM {table} WHERE shard <> 0 RETURNING *), "
                f"added AS (INSERT INTO {table} ({columns}, {', '.join(figures)}, shard) "
                f"SELECT {columns}, {', '.join(f'sum({name})' for name in figures)}, 0 FROM moved "
                f"GROUP BY {columns} ON CONFLICT ({columns}, shard) DO UPDATE SET "
                + ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in figures)
                + ") SELECT count(*) FROM moved"
            )
        ).scalar()
        folded += int(moved or 0)
    return folded


def remember_zone(session: Session, zone: str | None) -> None:
    """The zone of the counts as read in the session's current transaction (by a statement that
    read it along with other things): the hook uses it instead of asking again."""
    session.info[ZONE_KEY] = (session.get_transaction(), zone)


def zone_in_transaction(session: Session) -> ZoneInfo | None:
    """The zone of the counts, as read in the session's current transaction if it was."""
    return _zone(session)


def _zone(session: Session) -> ZoneInfo | None:
    known = session.info.get(ZONE_KEY)
    if known is not None and known[0] is session.get_transaction():
        return ZoneInfo(known[1]) if known[1] else None
    return zone_of_counts(session.connection())


def streets_of(connection: Connection, community_ids: Iterable[str]) -> dict[str, str | None]:
    """The street of each community, as the directory replica knows it now."""
    ids = sorted(set(community_ids))
    c = replica.communities.c
    found = dict(connection.execute(select(c.community_id, c.street_id).where(c.community_id.in_(ids))).all())
    return {community_id: found.get(community_id) for community_id in ids}


def zone_of_counts(connection: Connection) -> ZoneInfo | None:
    """The zone the counts are kept in; None: they are not built (or not at all in this database)."""
    zone = connection.execute(select(issue_counts_state.c.zone).where(issue_counts_state.c.id == 1)).scalar()
    return ZoneInfo(zone) if zone else None


def _old_value(issue: Issue, name: str) -> Any:
    history = inspect(issue).attrs[name].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(issue, name)


_COUNTED_SET = frozenset(COUNTED_FIELDS)


def _counted_field_changed(issue: Issue) -> bool:
    """Whether a field the counts depend on changed. Only a field set since the load is in the
    state's committed values; each of those is checked (set to the same value is no change).
    `state.attrs` would build a mapping of every attribute at each call: a batch of events spent
    a tenth of its time there."""
    state = inspect(issue)
    return any(get_history(issue, name).has_changes() for name in _COUNTED_SET.intersection(state.committed_state))


def _changes(session: Session) -> Tally | None:
    new_issues = [thing for thing in session.new if isinstance(thing, Issue)]
    changed = [thing for thing in session.dirty if isinstance(thing, Issue) and _counted_field_changed(thing)]
    deleted = [thing for thing in session.deleted if isinstance(thing, Issue)]
    escalations = [thing for thing in session.new if isinstance(thing, TimelineEntry) and thing.kind == "escalation"]
    if not (new_issues or changed or deleted or escalations):
        return None
    zone = _zone(session)
    tally = Tally(zone)
    # The issues per status are kept whatever the zone (they have no month).
    for issue in new_issues:
        tally.add_status(issue.community_id, issue.status)
    for issue in (*changed, *deleted):
        tally.add_status(_old_value(issue, "community_id"), _old_value(issue, "status"), sign=-1)
    for issue in changed:
        tally.add_status(issue.community_id, issue.status)
    if zone is None:
        return tally
    with session.no_autoflush:
        involved = {issue.community_id for issue in (*new_issues, *changed)}
        involved |= {_old_value(issue, "community_id") for issue in (*changed, *deleted)}
        involved |= {issue.community_id for e in escalations if (issue := session.get(Issue, e.issue_id)) is not None}
    # The streets the unit of work already read (the repository's cache) are not read again.
    known: dict[str, str | None] = session.info.get(STREETS_KEY, {})
    streets = {c: known[c] for c in involved if c in known}
    if len(streets) < len(involved):
        streets.update(streets_of(session.connection(), involved - streets.keys()))
    tally.streets = streets
    for issue in new_issues:
        tally.add(issue.community_id, issue_figures({name: getattr(issue, name) for name in COUNTED_FIELDS}))
    for issue in changed:
        old = {name: _old_value(issue, name) for name in COUNTED_FIELDS}
        tally.add(old["community_id"], issue_figures(old), sign=-1)
        tally.add(issue.community_id, issue_figures({name: getattr(issue, name) for name in COUNTED_FIELDS}))
    for issue in deleted:
        old = {name: _old_value(issue, name) for name in COUNTED_FIELDS}
        tally.add(old["community_id"], issue_figures(old), sign=-1)
    with session.no_autoflush:
        for entry in escalations:
            issue = session.get(Issue, entry.issue_id)
            if issue is not None:  # an entry of no issue is not counted by /stats either
                tally.add(issue.community_id, escalation_figures(entry.created_at, entry.data))
    return tally


@event.listens_for(Session, "before_flush")
def _keep_counts(session: Session, _flush_context: Any, _instances: Any) -> None:
    tally = _changes(session)
    if tally is not None:
        count_in_transaction(session, tally)


def count_in_transaction(session: Session, tally: Tally) -> None:
    """Count `tally` with the session's transaction: written at its commit (`_write_counts`), or at
    once in a savepoint. The hook's way for what it sees flushed; a writer of issues that does not
    go through the ORM (adapters/preloaded.py) hands its own changes here."""
    if session.in_nested_transaction():
        # A savepoint may be rolled back alone: what it changed is counted with it.
        apply(session.connection(), tally)
        return
    # Added up until the commit (`_write_counts`): the count rows are locked only from then on.
    transaction = session.get_transaction()
    pending = session.info.get(PENDING_KEY)
    if pending is not None and pending[0] is transaction:
        pending[1].merge(tally)
    else:
        session.info[PENDING_KEY] = (transaction, tally)


@event.listens_for(Session, "before_commit")
def _write_counts(session: Session) -> None:
    """The counts of the transaction's changes, written just before it commits. Every writer of
    a community adds to the same rows (its month, its street's month), and a row stays locked until
    the writer commits: written first, they made each report of a community wait for the whole
    transaction of the one before; written last, only for its commit."""
    session.flush()  # the changes not flushed yet are counted too (commit would flush them after this)
    pending = session.info.pop(PENDING_KEY, None)
    # A tally of a transaction rolled back (or of another) is never written.
    if pending is not None and pending[0] is session.get_transaction():
        apply(session.connection(), pending[1])


def rebuild(session: Session, zone: ZoneInfo, *, batch: int = 20_000) -> int:
    """Build the counts again from the history, in the caller's transaction; returns how many
    issues were counted. On PostgreSQL writers wait until it commits, so none is missed or counted
    twice."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE issues, issue_updates, issue_meetings IN SHARE ROW EXCLUSIVE MODE")
    connection.execute(delete(issue_month_counts))
    connection.execute(delete(issue_month_breakdowns))
    rebuild_statuses(connection)
    if connection.dialect.name == "postgresql":
        counted = _rebuild_in_postgres(connection, zone)
    else:
        counted = _rebuild_here(connection, zone, batch)
    # The consultations held (issue_meetings) too: their own rows, from the links.
    from linli_issues.adapters import consultation_counts

    consultation_counts.rebuild(connection, zone)
    connection.execute(delete(issue_counts_state))
    connection.execute(issue_counts_state.insert().values(id=1, zone=zone.key, built_at=datetime.now(UTC)))
    return counted


def rebuild_statuses(connection: Connection) -> None:
    """The issues per community and status, counted again from the issues (in shard 0)."""
    connection.execute(delete(issue_status_counts))
    i = issues.c
    connection.execute(
        issue_status_counts.insert().from_select(
            ["community_id", "status", "shard", "count"],
            select(i.community_id, i.status, literal(0), func.count()).group_by(i.community_id, i.status),
        )
    )


def _rebuild_here(connection: Connection, zone: ZoneInfo, batch: int) -> int:
    """The counts from the history, summed here with the very functions that keep them."""
    c = replica.communities.c
    tally = Tally(zone, dict(connection.execute(select(c.community_id, c.street_id)).all()))
    counted = 0
    columns = [issues.c[name] for name in COUNTED_FIELDS]
    for row in connection.execute(select(*columns).execution_options(yield_per=batch)):
        issue = row._mapping
        tally.add(issue["community_id"], issue_figures(issue))
        counted += 1
    moves = select(issues.c.community_id, issue_updates.c.created_at, issue_updates.c.data).join(
        issues, issues.c.id == issue_updates.c.issue_id
    )
    for community_id, created_at, data in connection.execute(moves.where(issue_updates.c.kind == "escalation")):
        tally.add(community_id, escalation_figures(created_at, data))
    apply(connection, tally)
    return counted


# The same sums in PostgreSQL's own SQL, for a city's millions of issues (the test of the counts
# checks both ways give the counts kept along the way).
_MONTH = "to_char(timezone(:zone, {}), 'YYYY-MM')"
_MOVE = "coalesce(u.data->>'from', 'None') || '_to_' || coalesce(u.data->>'to', 'None')"
# The street of a row of contributions, and the key of a street's rows.
_STREET_ROW = (
    f"CASE WHEN grouping(k.community_id) = 1 THEN '{STREET}' || coalesce(d.street_id, '') ELSE k.community_id END"
)
_WIDE = f"""
INSERT INTO issue_month_counts (community_id, month, {", ".join(FIGURES)})
SELECT {_STREET_ROW}, k.month, {", ".join(f"sum(k.{name})" for name in FIGURES)}
FROM (
    SELECT community_id, {_MONTH.format("created_at")} AS month, 1 AS raised,
           (status IN ('resolved', 'closed'))::int AS done, (overdue_at IS NOT NULL)::int AS overdue,
           0 AS accepted, 0 AS resolved, 0 AS ratings, 0 AS rating_sum, 0 AS escalated,
           0 AS compound_to_community, 0 AS community_to_street, 0 AS street_to_city
    FROM issues
    UNION ALL
    SELECT community_id, {_MONTH.format("accepted_at")}, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0
    FROM issues WHERE accepted_at IS NOT NULL
    UNION ALL
    SELECT community_id, {_MONTH.format("resolved_at")}, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    FROM issues WHERE resolved_at IS NOT NULL
    UNION ALL
    SELECT community_id, {_MONTH.format("closed_at")}, 0, 0, 0, 0, 0, 1, rating, 0, 0, 0, 0
    FROM issues WHERE closed_at IS NOT NULL AND rating IS NOT NULL
    UNION ALL
    SELECT i.community_id, {_MONTH.format("u.created_at")}, 0, 0, 0, 0, 0, 0, 0, 1,
           ({_MOVE} = 'compound_to_community')::int, ({_MOVE} = 'community_to_street')::int,
           ({_MOVE} = 'street_to_city')::int
    FROM issue_updates u JOIN issues i ON i.id = u.issue_id WHERE u.kind = 'escalation'
) k LEFT JOIN directory_communities d ON d.community_id = k.community_id
GROUP BY GROUPING SETS ((k.community_id, k.month), (d.street_id, k.month))
"""
_NARROW = f"""
INSERT INTO issue_month_breakdowns (community_id, month, kind, key, count)
SELECT {_STREET_ROW}, k.month, k.kind, k.key, count(*)
FROM (
    SELECT community_id, {_MONTH.format("created_at")} AS month, 'category' AS kind, category AS key FROM issues
    UNION ALL
    SELECT community_id, {_MONTH.format("created_at")}, 'tier', tier FROM issues
    UNION ALL
    SELECT i.community_id, {_MONTH.format("u.created_at")}, 'escalation', {_MOVE}
    FROM issue_updates u JOIN issues i ON i.id = u.issue_id
    WHERE u.kind = 'escalation' AND {_MOVE} NOT IN ({", ".join(f"'{move}'" for move in MOVES)})
) k LEFT JOIN directory_communities d ON d.community_id = k.community_id
GROUP BY GROUPING SETS ((k.community_id, k.month, k.kind, k.key), (d.street_id, k.month, k.kind, k.key))
"""
# Whole hours to resolve, floored as `hours_to_resolve` does (epoch of an interval is exact numeric).
_HOURS = f"""
INSERT INTO issue_month_breakdowns (community_id, month, kind, key, count)
SELECT CASE WHEN grouping(community_id) = 1 THEN '{CITY}' ELSE community_id END, month, 'hours', key, count(*)
FROM (
    SELECT community_id, {_MONTH.format("resolved_at")} AS month,
           floor(extract(epoch FROM resolved_at - created_at) / 3600)::bigint::text AS key
    FROM issues WHERE resolved_at IS NOT NULL
) k
GROUP BY GROUPING SETS ((community_id, month, key), (month, key))
"""


def _rebuild_in_postgres(connection: Connection, zone: ZoneInfo) -> int:
    connection.execute(text(_WIDE), {"zone": zone.key})
    connection.execute(text(_NARROW), {"zone": zone.key})
    connection.execute(text(_HOURS), {"zone": zone.key})
    return int(connection.execute(text("SELECT count(*) FROM issues")).scalar() or 0)
