"""Consultations held, per community, street and the whole city and month: the read model of
`/stats`' "consultations held", kept exact.

The figure is how many distinct meetings concluded in the period with a link to an issue (rows of
`issue_meetings` of status `concluded`, dated by their `concluded_at`): per community (the link's
community), per street (the street of the link's community), for the whole city, and per month. A
meeting linked in two communities counts once in each, and once in their street or the city.

A distinct count over a period is not a sum of months: a meeting whose links concluded in two
months (links updated by events out of order) counts in each month but once over both. So a
meeting adds, per scope (each community, street and the city `*` its concluded links are in):

- a row `(scope, month, '')` worth +1 for each month in which one of its links of that scope
  concluded, and
- a row `(scope, month, later)` worth -1 for each two consecutive such months `month < later`.

Over the months a..b (consecutive), the rows of months a..b whose item is '' or one of a..b add up
to 1 for a meeting with a link of the scope concluded within a..b (its n months there are
consecutive among its months: n rows of +1, n - 1 pairs of -1) and to 0 otherwise; one month's
figure is its rows of item ''. A meeting concludes once as a rule: one month, no pair rows.

`issue_meeting_consultations` holds the rows each meeting adds now; `issue_consultation_counts`
their sums per (scope, month, item). A street is the one the directory replica gives the community
when the meeting's rows are written (`street:` alone for a community it does not know yet), as for
the issues' counts (adapters/counters.py).

They are kept in the transaction of the change: whatever writes a meeting's links names the
meeting (`touch`; the repositories do it); just before the commit, for each meeting named, its rows
are worked out from its links as they are then, compared with the rows stored for it, and the
difference added to the counts. On PostgreSQL a transaction lock on each meeting is taken first (in
order), so two writers of one meeting take turns and the second sees the first's links committed
(a meeting of which nothing is counted nor concluded, as most a batch of events names, is passed
over with one statement and no lock); nothing is read before the change, so a change rolled back
to a savepoint or written by any path is counted as it ends. `rebuild` builds them from the
history (`linli-issues rebuild-counts` builds them with the issues' counts; migration 0016 builds
them for a database whose counts are built).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, bindparam, delete, event, insert, literal_column, select, text, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from linli_issues.adapters import counters
from linli_issues.adapters.sql import among
from linli_issues.adapters.tables import (
    issue_consultation_counts,
    issue_meeting_consultations,
    issue_meetings,
    replica,
)
from linli_kit.events.consumer import text_array_literal

CITY = "*"
ALONE = ""  # the item of a month's own rows
TOUCHED_KEY = "linli.issues.meetings_touched"  # Session.info: (transaction, meetings named)
# The class of the transaction locks on meetings (pg_advisory_xact_lock(class, hash of the id)):
# a space of its own beside the single-key locks others take.
LOCK_CLASS = 1_604_113_537

Row = tuple[str, str, str]  # (scope, month, item)


def rows_of_meeting(
    links: Iterable[Mapping[str, Any]], streets: Mapping[str, str | None], zone: ZoneInfo
) -> dict[Row, int]:
    """What one meeting adds to the counts, from its links: row -> +1 or -1."""
    months: dict[str, set[str]] = defaultdict(set)
    for link in links:
        if link["status"] != "concluded" or link["concluded_at"] is None:
            continue
        month = counters.month_of(link["concluded_at"], zone)
        community_id = link["community_id"]
        for scope in (community_id, counters.street_key(streets.get(community_id)), CITY):
            months[scope].add(month)
    rows: dict[Row, int] = {}
    for scope, found in months.items():
        ordered = sorted(found)
        for month in ordered:
            rows[(scope, month, ALONE)] = 1
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            rows[(scope, earlier, later)] = -1
    return rows


def amount_of(row: Row) -> int:
    return 1 if row[2] == ALONE else -1


def touch(session: Session, meeting_ids: Iterable[str]) -> None:
    """Name meetings whose links this transaction writes: their rows are worked out at commit."""
    meeting_ids = set(meeting_ids)
    if not meeting_ids:
        return
    session.connection()  # the transaction begun, so its commit is the one that counts them
    transaction = session.get_transaction()
    touched = session.info.get(TOUCHED_KEY)
    if touched is None or touched[0] is not transaction:
        touched = session.info[TOUCHED_KEY] = (transaction, set())
    touched[1].update(meeting_ids)


@event.listens_for(Session, "before_commit")
def _write_consultations(session: Session) -> None:
    touched = session.info.pop(TOUCHED_KEY, None)
    # Meetings named in a transaction rolled back (or in another) are not this commit's.
    if touched is None or touched[0] is not session.get_transaction() or not touched[1]:
        return
    zone = counters.zone_in_transaction(session)
    if zone is None:  # the counts are not built: `rebuild` will count these meetings
        return
    known: dict[str, str | None] = session.info.get(counters.STREETS_KEY, {})
    recount(session.connection(), touched[1], zone, known)


_LOCK_MEETINGS = text(
    "SELECT pg_advisory_xact_lock(:lock_class, hashtext(m)) "
    "FROM (SELECT m FROM unnest(CAST(:meeting_ids AS text[])) AS m ORDER BY m) AS ordered"
)


def recount(
    connection: Connection, meeting_ids: Iterable[str], zone: ZoneInfo, known: Mapping[str, str | None] | None = None
) -> None:
    """Bring the meetings' rows and the counts to what their links are now."""
    m, s = issue_meetings.c, issue_meeting_consultations.c
    # Most meetings named are only scheduled: nothing of them is counted nor is to be, and one
    # statement (no lock) says so. A meeting with no rows and no concluded link in this view has
    # none committed either (whoever concluded a link of it stored its rows in the same commit),
    # so no writer can be counting it meanwhile from a link this transaction changes.
    asked = sorted(set(meeting_ids))
    dialect = connection.dialect.name
    ids = sorted(
        set(
            connection.execute(
                union(
                    select(s.meeting_id).where(among(s.meeting_id, asked, dialect)),
                    select(m.meeting_id).where(among(m.meeting_id, asked, dialect), m.status == "concluded"),
                )
            ).scalars()
        )
    )
    if not ids:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_MEETINGS, {"lock_class": LOCK_CLASS, "meeting_ids": text_array_literal(ids)})
    stored: dict[str, set[Row]] = defaultdict(set)
    for meeting_id, scope, month, item in connection.execute(
        select(s.meeting_id, s.scope, s.month, s.item).where(among(s.meeting_id, ids, dialect))
    ):
        stored[meeting_id].add((scope, month, item))
    links: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in connection.execute(
        select(m.meeting_id, m.community_id, m.status, m.concluded_at).where(
            among(m.meeting_id, ids, dialect), m.status == "concluded"
        )
    ):
        links[row.meeting_id].append(row._mapping)
    if not links and not stored:
        return  # none of them is or was concluded: nothing is counted of them
    communities = {link["community_id"] for found in links.values() for link in found}
    streets = {c: known[c] for c in communities if known and c in known}
    if len(streets) < len(communities):
        streets.update(counters.streets_of(connection, communities - streets.keys()))
    delta: dict[Row, int] = defaultdict(int)
    added: list[dict[str, str]] = []
    removed: list[dict[str, str]] = []
    for meeting_id in ids:
        now = rows_of_meeting(links.get(meeting_id, ()), streets, zone)
        before = stored.get(meeting_id, set())
        for row in now.keys() - before:
            delta[row] += now[row]
            added.append({"meeting_id": meeting_id, "scope": row[0], "month": row[1], "item": row[2]})
        for row in before - now.keys():
            delta[row] -= amount_of(row)
            removed.append({"m_id": meeting_id, "m_scope": row[0], "m_month": row[1], "m_item": row[2]})
    if removed:
        connection.execute(
            delete(issue_meeting_consultations).where(
                s.meeting_id == bindparam("m_id"),
                s.scope == bindparam("m_scope"),
                s.month == bindparam("m_month"),
                s.item == bindparam("m_item"),
            ),
            removed,
        )
    if added:
        connection.execute(insert(issue_meeting_consultations), added)
    add_to_counts(connection, delta)


def _upsert(dialect: Any) -> Any:
    statement = dialect.insert(issue_consultation_counts)
    return statement.on_conflict_do_update(
        index_elements=["scope", "month", "item"],
        set_={"held": issue_consultation_counts.c.held + statement.excluded.held},
    )


_UPSERTS = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


def add_to_counts(connection: Connection, delta: Mapping[Row, int]) -> None:
    """Add to the counts, in key order (two writers lock the rows they share in the same order)."""
    rows = [
        {"scope": scope, "month": month, "item": item, "held": amount}
        for (scope, month, item), amount in sorted(delta.items())
        if amount
    ]
    if rows:
        dialect = "postgresql" if connection.dialect.name == "postgresql" else "sqlite"
        connection.execute(_UPSERTS[dialect], rows)


def rebuild(connection: Connection, zone: ZoneInfo) -> int:
    """Build the meetings' rows and the counts again from the links (the caller holds off writers,
    as `counters.rebuild` does); returns how many meetings were counted."""
    connection.execute(delete(issue_meeting_consultations))
    connection.execute(delete(issue_consultation_counts))
    c = replica.communities.c
    streets = dict(connection.execute(select(c.community_id, c.street_id)).all())
    m = issue_meetings.c
    links: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in connection.execute(
        select(m.meeting_id, m.community_id, m.status, m.concluded_at).where(m.status == "concluded")
    ):
        links[row.meeting_id].append(row._mapping)
    totals: dict[Row, int] = defaultdict(int)
    per_meeting: list[dict[str, str]] = []
    for meeting_id in sorted(links):
        for row, amount in rows_of_meeting(links[meeting_id], streets, zone).items():
            totals[row] += amount
            per_meeting.append({"meeting_id": meeting_id, "scope": row[0], "month": row[1], "item": row[2]})
    for start in range(0, len(per_meeting), 10_000):
        connection.execute(insert(issue_meeting_consultations), per_meeting[start : start + 10_000])
    add_to_counts(connection, totals)
    return len(links)


# --- reading ----------------------------------------------------------------------------------------


def read_whole_months(connection: Connection, months: list[str], by: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """Over consecutive whole months: (the city's total, per street or community, per month)."""
    k = issue_consultation_counts.c
    counted = and_(k.month.in_(months), (k.item == ALONE) | k.item.in_(months))
    total = 0
    monthly: dict[str, int] = {}
    for month, item, held in connection.execute(
        select(k.month, k.item, k.held).where(k.scope == CITY, k.month.in_(months))
    ):
        if item == ALONE:
            monthly[month] = monthly.get(month, 0) + held
        if item == ALONE or item in months:
            total += held
    if by == "street":
        # The pattern as a literal, as the partial index of the streets' rows has it.
        scopes = k.scope.like(literal_column("'" + counters.STREET + "%'"))
    else:
        scopes = and_(k.scope != CITY, k.scope.not_like(counters.STREET + "%"))
    groups: dict[str, int] = {}
    for scope, held in connection.execute(select(k.scope, k.held).where(counted, scopes)):
        key = scope[len(counters.STREET) :] if by == "street" else scope
        groups[key] = groups.get(key, 0) + held
    return total, groups, monthly


def spanning_meetings(connection: Connection) -> set[str]:
    """The meetings counted in more than one month (the city's pair rows: rare)."""
    s = issue_meeting_consultations.c
    # The condition as a literal, as the partial index has it.
    return set(
        connection.execute(select(s.meeting_id).where(s.scope == CITY, s.item != literal_column("''"))).scalars()
    )


def concluded_between(connection: Connection, start: datetime, end: datetime) -> list[tuple[str, str, datetime]]:
    """The links concluded in [start, end): (meeting, community, when)."""
    m = issue_meetings.c
    rows = connection.execute(
        select(m.meeting_id, m.community_id, m.concluded_at).where(
            m.status == literal_column("'concluded'"), m.concluded_at >= start, m.concluded_at < end
        )
    )
    return [(meeting_id, community_id, concluded_at) for meeting_id, community_id, concluded_at in rows]


def concluded_links_of(connection: Connection, meeting_ids: Iterable[str]) -> list[tuple[str, str, datetime]]:
    """The concluded links of these meetings: (meeting, community, when)."""
    m = issue_meetings.c
    rows = connection.execute(
        select(m.meeting_id, m.community_id, m.concluded_at).where(
            m.meeting_id.in_(sorted(set(meeting_ids))), m.status == "concluded", m.concluded_at.is_not(None)
        )
    )
    return [(meeting_id, community_id, concluded_at) for meeting_id, community_id, concluded_at in rows]
