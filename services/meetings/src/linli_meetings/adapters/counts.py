"""The statistics' read model: what `/stats` adds up, per community and per street, kept exact.

`meeting_counts` holds amounts per (level, key, month, figure, item): level "c" a community, "s" a
street (keyed by the street the directory replica gives the community, "" for one it does not know
yet; when the replica moves a community, `move_community` moves its amounts: the whole city is its
streets' rows, some hundred a month, and no single row for the city makes every writer wait for
the one before). The month is that of the
local date (meetings, deliberations and decisions carry it), "" for the figures "as of now".

What a row holds comes from three kinds of units, each read from the tables by the functions
below (`_meeting_amounts`, `_issue_amounts`, `_document_amounts`):

- a meeting: held (concluded) by type, attendance, the party's participations (its participants
  checked in), its action items by their state now (open ones by the month they fall due, so
  "overdue" is a sum of earlier months and this month's days read from the history), its
  deliberations (consultations) and its recorded decisions. All additive: a period's figure is the
  sum of its months.
- an issue (its deliberations, and its replica's status): figures that count an issue once over a
  period, which a sum of months cannot give. They stay exact as sums of rows whose item says when
  they count:
  * issues deliberated: per (community, issue), only its first deliberation of each month makes a
    row, item = the month of its deliberation before that ("0000-00" none). Over the months a..b,
    the pairs deliberated are the rows of those months whose item is before a (each pair counts
    once: at its first deliberation from a on); in one month m, the rows of m with item before m.
  * consultations per resolved issue (issues now resolved or closed): the figure is, per issue,
    the highest consultation number among its deliberations in the period (numbers are given at
    conclusion, so not always in date order). A deliberation k is that maximum over months a..b
    exactly when no deliberation with a higher number falls within a..b: its row's item is
    "P|N", P the latest month before k's with a higher-numbered deliberation, N the earliest
    after ("0000-00" and "9999-99" none; k has no row when one falls in its own month); over a..b
    it counts when P < a and N > b.
  These are per (community, issue). An issue's agenda items come from its community's pending
  issues, so the per-issue figures of the old query and these agree; an issue taken up by two
  communities' meetings adds "shared" rows (one per deliberation) and `/stats` reads its scope's
  distinct figures from the history whenever a shared row falls in the period.
- a community's documents: whether it has a convention, rules of procedure (as of now).

They are kept in the transaction of the change. A `before_flush` hook notes each unit the flush
touches (meetings, participants, decisions, action items, documents) and, the first time in the
transaction, reads its amounts before the change (on PostgreSQL after taking a transaction lock on
the unit, so two writers of one unit take turns and neither counts the other's change); the
writes outside the ORM (deliberations, issue snapshots) name their units with `touch` first. When
the transaction commits, each unit's amounts are read again and the difference added to the rows.
A meeting the transaction inserts is neither read nor locked: it had nothing before, and until a
decision, an action item or a deliberation names it, it has nothing after unless it is concluded
(scheduling a meeting touches no amounts).
So whatever writes through the session (use cases, event handlers, timers) keeps them. `rebuild`
builds them from the history (`linli-meetings rebuild-counts`; migration 0014 runs it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, event, inspect, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from linli_meetings.adapters import tables
from linli_meetings.domain.decision import ActionItem, CommunityDocument, Decision, DocumentKind
from linli_meetings.domain.meeting import Meeting, Participant, Status
from linli_meetings.domain.procedure import ParticipantRole

COMMUNITY, STREET = "c", "s"
NOW = ""  # the month of the figures "as of now"
NONE_BEFORE, NONE_AFTER = "0000-00", "9999-99"
FINISHED_ISSUE = ("resolved", "closed")
OPEN_ACTION = ("open", "in_progress")
_INFO = "linli_meetings.counts"  # session.info: {unit: amounts before} of this transaction
_FRESH = "linli_meetings.counts.fresh"  # session.info: {unit: meeting} inserted, not changed since

# A unit: ("meeting", id), ("issue", id) or ("documents", community id).
Unit = tuple[str, str]
# Amounts: (community id, month, figure, item) -> amount.
Amounts = dict[tuple[str, str, str, str], int]


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


# --- what each unit adds -------------------------------------------------------------------------


def _meeting_amounts(connection: Connection, ids: list[str]) -> Iterator[tuple[str, tuple[str, str, str, str], int]]:
    """(meeting id, (community, month, figure, item), amount) of these meetings."""
    m, p, ai, dl, d = (
        tables.meetings.c,
        tables.participants.c,
        tables.action_items.c,
        tables.deliberations.c,
        tables.decisions.c,
    )
    held: dict[str, tuple[str, str]] = {}
    for mid, cid, status, day, mtype, people in connection.execute(
        select(m.id, m.community_id, m.status, m.local_date, m.meeting_type, m.attendees_count).where(m.id.in_(ids))
    ):
        if status != "concluded":
            continue
        month = month_of(day)
        held[mid] = (cid, month)
        yield mid, (cid, month, "held", mtype), 1
        yield mid, (cid, month, "attendance", ""), int(people or 0)
    if held:
        for mid, member, role in connection.execute(
            select(p.meeting_id, p.party_member, p.role).where(
                p.meeting_id.in_(sorted(held)), p.checked_in_at.is_not(None)
            )
        ):
            cid, month = held[mid]
            if member:
                yield mid, (cid, month, "party_members", ""), 1
            if role == ParticipantRole.PARTY_ORGANISATION.value:
                yield mid, (cid, month, "party_bodies", ""), 1
        # Action items of the meetings held, by their state now. The statistics take the meetings
        # of the scope and count their items under the item's community (the meeting's: an item
        # is its decision's, a decision its meeting's).
        for mid, cid, status, due, owner in connection.execute(
            select(ai.meeting_id, ai.community_id, ai.status, ai.due_date, ai.owner_body).where(
                ai.meeting_id.in_(sorted(held))
            )
        ):
            month = held[mid][1]
            if status in OPEN_ACTION:
                yield mid, (cid, month, "ai_open", month_of(due) if due is not None else ""), 1
            elif status == "done":
                yield mid, (cid, month, "ai_done", ""), 1
            if owner == "party_organisation":
                yield mid, (cid, month, "ai_party", ""), 1
    for mid, cid, day in connection.execute(
        select(dl.meeting_id, dl.community_id, dl.local_date).where(dl.meeting_id.in_(ids))
    ):
        yield mid, (cid, month_of(day), "consultations", ""), 1
    for mid, cid, day, outcome in connection.execute(
        select(d.meeting_id, d.community_id, d.local_date, d.outcome).where(
            d.meeting_id.in_(ids), d.status == "recorded", d.local_date.is_not(None)
        )
    ):
        yield mid, (cid, month_of(day), "decisions", str(outcome)), 1


def _issue_amounts(connection: Connection, ids: list[str]) -> Iterator[tuple[str, tuple[str, str, str, str], int]]:
    """(issue id, (community, month, figure, item), amount) of these issues' deliberations."""
    dl, iss = tables.deliberations.c, tables.issue_replica.c
    finished = {
        issue_id
        for (issue_id,) in connection.execute(
            select(iss.issue_id).where(iss.issue_id.in_(ids), iss.status.in_(FINISHED_ISSUE))
        )
    }
    taken_up: dict[str, list[tuple[date, str, str, int]]] = defaultdict(list)
    for issue_id, day, mid, cid, number in connection.execute(
        select(dl.issue_id, dl.local_date, dl.meeting_id, dl.community_id, dl.consultation_number).where(
            dl.issue_id.in_(ids)
        )
    ):
        taken_up[issue_id].append((day, mid, cid, number))
    for issue_id, rows in taken_up.items():
        rows.sort()
        communities = {cid for _day, _mid, cid, _n in rows}
        previous: dict[str, str] = {}  # per community: the month of its last deliberation so far
        for day, _mid, cid, _n in rows:
            month = month_of(day)
            if previous.get(cid) != month:
                yield issue_id, (cid, month, "deliberated", previous.get(cid, NONE_BEFORE)), 1
                previous[cid] = month
            if len(communities) > 1:
                yield issue_id, (cid, month, "shared", ""), 1
        if issue_id not in finished:
            continue
        months = [month_of(day) for day, _mid, _cid, _n in rows]
        for k, (_day, _mid, cid, number) in enumerate(rows):
            higher = [months[j] for j, row in enumerate(rows) if row[3] > number]
            if months[k] in higher:
                continue  # never the highest over months that include its own
            before = max((mo for mo in higher if mo < months[k]), default=NONE_BEFORE)
            after = min((mo for mo in higher if mo > months[k]), default=NONE_AFTER)
            item = f"{before}|{after}"
            yield issue_id, (cid, months[k], "resolved_n", item), 1
            yield issue_id, (cid, months[k], "resolved_cn", item), number


def _document_amounts(connection: Connection, ids: list[str]) -> Iterator[tuple[str, tuple[str, str, str, str], int]]:
    doc = tables.documents.c
    for cid, kind in connection.execute(select(doc.community_id, doc.kind).where(doc.community_id.in_(ids)).distinct()):
        figure = "convention" if kind == DocumentKind.CONVENTION else "rules"
        yield cid, (cid, NOW, figure, ""), 1


_READERS = {"meeting": _meeting_amounts, "issue": _issue_amounts, "documents": _document_amounts}


def amounts_of(connection: Connection, units: Iterable[Unit]) -> dict[Unit, Amounts]:
    """Each unit's amounts as the tables hold them now (a unit with none: an empty dict)."""
    out: dict[Unit, Amounts] = {}
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, key in units:
        by_kind[kind].append(key)
        out[(kind, key)] = {}
    for kind, keys in by_kind.items():
        for start in range(0, len(keys), 1000):
            for key, slot, amount in _READERS[kind](connection, sorted(keys[start : start + 1000])):
                amounts = out[(kind, key)]
                amounts[slot] = amounts.get(slot, 0) + amount
    return out


# --- writing the rows ----------------------------------------------------------------------------


def streets_of(connection: Connection, community_ids: Iterable[str]) -> dict[str, str]:
    c = tables.replica.communities.c
    ids = sorted(set(community_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        found.update(
            connection.execute(
                select(c.community_id, c.street_id).where(c.community_id.in_(ids[start : start + 1000]))
            ).all()
        )
    return {cid: found.get(cid) or "" for cid in ids}


def apply(connection: Connection, amounts: Amounts) -> None:
    """Add these amounts to the rows of their communities and of their communities' streets."""
    amounts = {slot: n for slot, n in amounts.items() if n}
    if not amounts:
        return
    if connection.dialect.name == "postgresql":
        # Taken before the streets are read: a community moving street (`move_community`) waits
        # for this transaction, or this one reads the street it moved to.
        connection.exec_driver_sql("LOCK TABLE meeting_counts IN ROW EXCLUSIVE MODE")
    streets = streets_of(connection, {cid for cid, *_ in amounts})
    rows: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for (cid, month, figure, item), n in amounts.items():
        rows[(COMMUNITY, cid, month, figure, item)] += n
        rows[(STREET, streets[cid], month, figure, item)] += n
    # In key order, so two transactions lock the rows they share in the same order; rows back at
    # zero are dropped (a row says something happened).
    _add_rows(connection, rows)


def _difference(old: Amounts, new: Amounts) -> Amounts:
    out = dict(new)
    for slot, n in old.items():
        out[slot] = out.get(slot, 0) - n
    return out


def _upsert_statement(dialect_name: str) -> Any:
    """Add `count` to a row, creating it at need: built once per dialect (fixed text, compiled once
    and cached by SQLAlchemy), run with a list of rows."""
    if dialect_name not in _UPSERTS:
        table = tables.meeting_counts
        statement = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
        _UPSERTS[dialect_name] = statement.on_conflict_do_update(
            index_elements=["level", "key", "month", "figure", "item"],
            set_={"count": table.c.count + statement.excluded["count"]},
        )
    return _UPSERTS[dialect_name]


_UPSERTS: dict[str, Any] = {}
_t = tables.meeting_counts.c
# Rows back at zero of the communities and streets just written (one statement for both levels).
_DROP_ZEROS = delete(tables.meeting_counts).where(
    _t.count == 0,
    or_(
        and_(_t.level == COMMUNITY, _t.key.in_(bindparam("communities", expanding=True))),
        and_(_t.level == STREET, _t.key.in_(bindparam("streets", expanding=True))),
    ),
)


def _add_rows(connection: Connection, rows: dict[tuple[str, str, str, str, str], int]) -> None:
    values = [
        {"level": level, "key": key, "month": month, "figure": figure, "item": item, "count": n}
        for (level, key, month, figure, item), n in sorted(rows.items())
        if n
    ]
    if not values:
        return
    connection.execute(_upsert_statement(connection.dialect.name), values)
    keys = {(v["level"], v["key"]) for v in values}
    connection.execute(
        _DROP_ZEROS,
        {
            "communities": sorted(key for level, key in keys if level == COMMUNITY),
            "streets": sorted(key for level, key in keys if level == STREET),
        },
    )


def move_community(session: Session, community_id: str, write: Callable[[], None]) -> None:
    """Run `write`, a change of the directory replica; if it moved the community to another
    street, move the community's amounts from the old street's rows to the new one's, so a
    street's rows stay those of its communities now. Writers of counts wait meanwhile (PostgreSQL:
    they take the table in ROW EXCLUSIVE mode before reading streets)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE meeting_counts IN SHARE ROW EXCLUSIVE MODE")
    before = streets_of(connection, [community_id])[community_id]
    write()
    after = streets_of(connection, [community_id])[community_id]
    if before == after:
        return
    t = tables.meeting_counts.c
    rows: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for month, figure, item, n in connection.execute(
        select(t.month, t.figure, t.item, t["count"]).where(t.level == COMMUNITY, t.key == community_id)
    ):
        rows[(STREET, before, month, figure, item)] -= n
        rows[(STREET, after, month, figure, item)] += n
    _add_rows(connection, rows)


# --- keeping them in the transaction of the change ------------------------------------------------


# One round trip for the lot, in key order (two writers of the same units cannot deadlock on them).
_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) "
    "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
)


def touch(session: Session, units: Iterable[Unit]) -> None:
    """Note units about to change by a statement outside the ORM (call it before the statement)."""
    units = set(units)
    _unfresh(session, units)
    _note(session, units)


def _note(session: Session, units: Iterable[Unit]) -> None:
    state = session.info.setdefault(_INFO, {})
    new = sorted({unit for unit in units if unit not in state})
    if not new:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Writers of one unit take turns: the second reads its amounts once the first committed.
        connection.execute(_LOCK, {"keys": [f"{kind}:{key}" for kind, key in new]})
    state.update(amounts_of(connection, new))


def _unfresh(session: Session, units: Iterable[Unit]) -> None:
    fresh = session.info.get(_FRESH)
    if fresh:
        for unit in units:
            fresh.pop(unit, None)


# The attributes whose change can change a unit's amounts: a change of any other (a title, the
# minutes, a revision) reads nothing. A meeting's participants: one added or removed.
COUNTED_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    Meeting: ("community_id", "status", "local_date", "meeting_type", "attendees_count", "participants"),
    Participant: ("meeting_id", "checked_in_at", "party_member", "role"),
    Decision: ("meeting_id", "community_id", "status", "outcome", "local_date"),
    ActionItem: ("meeting_id", "community_id", "status", "due_date", "owner_body"),
    CommunityDocument: ("community_id", "kind"),
}


def _counted_change(thing: object) -> bool:
    names = COUNTED_ATTRIBUTES.get(type(thing))
    if names is None:
        return False
    attrs = inspect(thing).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _units_of_flush(session: Session) -> tuple[set[Unit], dict[Unit, Meeting], set[Unit]]:
    """(units the flush changes, of them the meetings it inserts with the inserted meeting, the
    units changed by a decision, an action item or a document)."""
    units: set[Unit] = set()
    inserted: dict[Unit, Meeting] = {}
    by_others: set[Unit] = set()
    for thing in session.new:
        if isinstance(thing, Meeting):
            inserted[("meeting", thing.id)] = thing
    dirty = [thing for thing in session.dirty if _counted_change(thing)]
    for thing in (*session.new, *dirty, *session.deleted):
        if isinstance(thing, Decision) and thing.status != "recorded" and thing in session.new:
            # A motion being opened counts nothing (only recorded decisions do); recording it
            # later changes its status, which notes its meeting then.
            continue
        if isinstance(thing, Meeting):
            units.add(("meeting", thing.id))
        elif isinstance(thing, Participant | Decision | ActionItem):
            # A new participant appended to a meeting has no meeting id yet: its meeting is dirty.
            if thing.meeting_id:
                units.add(("meeting", thing.meeting_id))
                if not isinstance(thing, Participant):
                    by_others.add(("meeting", thing.meeting_id))
        elif isinstance(thing, CommunityDocument):
            units.add(("documents", thing.community_id))
    return units, inserted, by_others


@event.listens_for(Session, "before_flush")
def _note_units(session: Session, _flush_context: Any, _instances: Any) -> None:
    units, inserted, by_others = _units_of_flush(session)
    if inserted:
        # A meeting inserted now had no amounts before: no row can name it yet (the foreign keys
        # of participants, decisions and deliberations), and no other transaction can write one
        # before this one commits. Nothing to read or lock. Until a decision, an action item or a
        # statement outside the ORM changes it, it is "fresh": it counts nothing at commit either
        # unless it is concluded (see _keep_counts), so scheduling a meeting reads no amounts.
        state = session.info.setdefault(_INFO, {})
        fresh = session.info.setdefault(_FRESH, {})
        for unit, meeting in inserted.items():
            if unit not in state:
                state[unit] = {}
                fresh[unit] = meeting
    _unfresh(session, by_others)
    _note(session, units)


@event.listens_for(Session, "before_commit")
def _keep_counts(session: Session) -> None:
    # The last changes, and the units they touch. The session would flush them only after this
    # hook: a change nothing flushed before the commit (no query, no event after it) was not
    # counted. Nothing pending: nothing sent.
    session.flush()
    if not session.info.get(_INFO):
        return
    old: dict[Unit, Amounts] = session.info.pop(_INFO)
    fresh: dict[Unit, Meeting] = session.info.pop(_FRESH, {})
    # A fresh meeting not concluded has none of the amounts of a meeting held, and no
    # deliberations or decisions (they would have made it not fresh): its amounts are still none.
    to_read = [unit for unit in old if unit not in fresh or fresh[unit].status == Status.CONCLUDED.value]
    if not to_read:
        return
    connection = session.connection()
    new = amounts_of(connection, to_read)
    total: Amounts = defaultdict(int)
    for unit in to_read:
        for slot, n in _difference(old[unit], new[unit]).items():
            total[slot] += n
    apply(connection, total)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_INFO, None)
    session.info.pop(_FRESH, None)


# --- from the history --------------------------------------------------------------------------


def rebuild(session: Session) -> int:
    """Build the rows again from the history, in the caller's transaction; returns how many meetings
    were counted. On PostgreSQL writers wait until it commits, so none is missed or counted twice."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "LOCK TABLE meetings, participants, decisions, action_items, deliberations, community_documents, "
            "issue_replica IN SHARE ROW EXCLUSIVE MODE"
        )
    connection.execute(delete(tables.meeting_counts))
    meeting_ids = list(connection.execute(select(tables.meetings.c.id)).scalars())
    issue_ids = list(connection.execute(select(tables.deliberations.c.issue_id).distinct()).scalars())
    community_ids = list(connection.execute(select(tables.documents.c.community_id).distinct()).scalars())
    units = [
        *(("meeting", i) for i in meeting_ids),
        *(("issue", i) for i in issue_ids),
        *(("documents", c) for c in community_ids),
    ]
    total: Amounts = defaultdict(int)
    for amounts in amounts_of(connection, units).values():
        for slot, n in amounts.items():
            total[slot] += n
    apply(connection, total)
    if connection.dialect.name == "postgresql":
        # The table was written anew: the planner's statistics of it, before /stats reads it.
        connection.exec_driver_sql("ANALYZE meeting_counts")
    return len(meeting_ids)
