"""Candidate agenda items: the community's pending issues, kept from the issues service's events.

Every issues.* event carries a snapshot of the issue with its revision; a snapshot only replaces
an older one, so duplicates and late arrivals change nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal
from linli_kit.events import Event
from linli_kit.events.catalogue import CATALOGUE
from linli_kit.events.consumer import BatchHandler, Handler, batch_handler
from linli_meetings.adapters import counts
from linli_meetings.adapters.tables import issue_replica, issue_supporters
from linli_meetings.service_layer import access
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

# Issues still waiting for a decision: not resolved, closed, rejected or a duplicate.
PENDING = ("reported", "accepted", "deliberating", "resolving")
ISSUE_EVENTS = (
    "issues.issue.reported",
    "issues.issue.accepted",
    "issues.issue.assigned",
    "issues.issue.status_changed",
    "issues.issue.escalated",
    "issues.issue.resolved",
    "issues.issue.closed",
    "issues.issue.reopened",
    "issues.issue.overdue",
    "issues.issue.supported",
)
# Staff mark an issue private (or public again): its snapshot says who may now read it. Bound once
# the contracts declare it; until then the snapshot of the issue's next event carries the change.
VISIBILITY_CHANGED = "issues.issue.visibility_changed"


def _replica_row(event: Event) -> dict[str, Any]:
    data = event.data
    return {
        "issue_id": data["issue_id"],
        "community_id": data["community_id"],
        "title": data["title"],
        "category": data["category"],
        "urgency": data["urgency"],
        "status": data["status"],
        "tier": data["tier"],
        "supporter_count": data.get("supporter_count") or 0,
        "visibility": data.get("visibility") or "community",
        "reporter_id": data.get("reporter_id"),
        "revision": data["revision"],
        "updated_at": event.occurred_at,
    }


def _supporters(event: Event) -> list[str]:
    return sorted({str(s) for s in event.data.get("supporter_ids") or []})


def keep_issue(session: Session, event: Event) -> None:
    row = _replica_row(event)
    # An issue's status counts in the statistics (consultations per resolved issue).
    counts.touch(session, [("issue", row["issue_id"])])
    current = session.scalar(select(issue_replica.c.revision).where(issue_replica.c.issue_id == row["issue_id"]))
    if current is None:
        session.execute(insert(issue_replica).values(**row))
    elif current < row["revision"]:
        # Guarded: another copy of the worker may have stored a newer snapshot since the read above.
        updated = session.execute(
            update(issue_replica)
            .where(issue_replica.c.issue_id == row["issue_id"], issue_replica.c.revision < row["revision"])
            .values(**row)
        )
        if not updated.rowcount:
            return
        session.execute(delete(issue_supporters).where(issue_supporters.c.issue_id == row["issue_id"]))
    else:
        return
    supporters = _supporters(event)
    if supporters:
        session.execute(insert(issue_supporters), [{"issue_id": row["issue_id"], "user_id": s} for s in supporters])


def keep_issues(session: Session, events: list[Event]) -> None:
    """`keep_issue` for a run of snapshots, with the same result as one by one in their order: of
    the snapshots of one issue, the first with the highest revision is kept if it is newer than the
    stored one (a later one of equal revision would not have replaced it)."""
    if session.get_bind().dialect.name == "postgresql":
        _keep_issues_in_one_statement(session, events)
    else:
        _keep_issues_in_a_few_statements(session, events)


# The whole run in one statement of fixed text, whatever its size: the snapshots go as one JSON
# document (serialised in C; arrays of a dozen columns cost psycopg a Python step per element), the
# newest of each issue is picked in the database (DISTINCT ON: highest revision, then first come),
# and the upsert replaces a stored snapshot only if older (guarded in the statement itself, so a
# newer one stored meanwhile by another copy of the worker stays). Its rows are locked in the order
# of their ids, like any other copy's: no deadlock between copies. The supporters of the issues
# written are brought to the snapshot's set by deleting those no longer in it and adding the new
# ones (disjoint rows: the order in which PostgreSQL runs the two parts does not matter).
_KEEP_ISSUES = text(
    """
WITH incoming AS (
    SELECT doc -> 0 AS data, (doc ->> 1)::timestamptz AS occurred_at, ord
    FROM jsonb_array_elements(CAST(:snapshots AS jsonb)) WITH ORDINALITY AS e(doc, ord)
),
kept AS (
    SELECT DISTINCT ON (d.issue_id) d.*, i.occurred_at
    FROM incoming AS i,
        jsonb_to_record(i.data) AS d(
            issue_id text, community_id text, title text, category text, urgency text, status text,
            tier text, supporter_count integer, supporter_ids text[], visibility text,
            reporter_id text, revision integer
        )
    ORDER BY d.issue_id, d.revision DESC, i.ord
),
written AS (
    INSERT INTO issue_replica AS r (
        issue_id, community_id, title, category, urgency, status, tier, supporter_count,
        visibility, reporter_id, revision, updated_at
    )
    SELECT issue_id, community_id, title, category, urgency, status, tier,
        COALESCE(supporter_count, 0), COALESCE(NULLIF(visibility, ''), 'community'), reporter_id,
        revision, occurred_at
    FROM kept
    ORDER BY issue_id
    ON CONFLICT (issue_id) DO UPDATE SET
        community_id = excluded.community_id, title = excluded.title,
        category = excluded.category, urgency = excluded.urgency, status = excluded.status,
        tier = excluded.tier, supporter_count = excluded.supporter_count,
        visibility = excluded.visibility, reporter_id = excluded.reporter_id,
        revision = excluded.revision, updated_at = excluded.updated_at
    WHERE r.revision < excluded.revision
    RETURNING r.issue_id
),
supporters AS (
    SELECT DISTINCT k.issue_id, s.user_id
    FROM kept AS k JOIN written AS w ON w.issue_id = k.issue_id, unnest(k.supporter_ids) AS s(user_id)
),
dropped AS (
    DELETE FROM issue_replica_supporters AS old
    USING written AS w
    WHERE old.issue_id = w.issue_id
        AND NOT EXISTS (SELECT 1 FROM supporters AS s WHERE s.issue_id = old.issue_id AND s.user_id = old.user_id)
)
INSERT INTO issue_replica_supporters (issue_id, user_id)
SELECT issue_id, user_id FROM supporters
ON CONFLICT DO NOTHING
"""
)


def _keep_issues_in_one_statement(session: Session, events: list[Event]) -> None:
    if any(e.occurred_at.tzinfo is None for e in events):
        # As the column's type refuses them: an instant without its offset is not one.
        raise ValueError("naive datetime: times are stored as instants with an offset")
    snapshots = json.dumps(
        [(e.data, e.occurred_at.isoformat()) for e in events], ensure_ascii=False, separators=(",", ":"), default=str
    )
    session.execute(_KEEP_ISSUES, {"snapshots": snapshots})


def _keep_issues_in_a_few_statements(session: Session, events: list[Event]) -> None:
    """SQLite's way: the stored revisions read first, the newest snapshots chosen here."""
    kept: dict[str, Event] = {}
    issue_ids = {e.data["issue_id"]: None for e in events}  # in order, once each
    counts.touch(session, [("issue", issue_id) for issue_id in issue_ids])
    stored = dict(
        session.execute(
            select(issue_replica.c.issue_id, issue_replica.c.revision).where(
                issue_replica.c.issue_id.in_(sorted(issue_ids))
            )
        ).all()
    )
    for event in events:
        issue_id = event.data["issue_id"]
        best = kept[issue_id].data["revision"] if issue_id in kept else stored.get(issue_id)
        if best is None or best < event.data["revision"]:
            kept[issue_id] = event
    new = [_replica_row(e) for issue_id, e in kept.items() if issue_id not in stored]
    newer = [_replica_row(e) for issue_id, e in kept.items() if issue_id in stored]
    if new:
        session.execute(insert(issue_replica), new)
    replaced = _replace_newer(session, newer) if newer else set()
    if replaced:
        session.execute(delete(issue_supporters).where(issue_supporters.c.issue_id.in_(sorted(replaced))))
    written = {row["issue_id"] for row in new} | replaced
    supporters = [
        {"issue_id": issue_id, "user_id": s} for issue_id in sorted(written) for s in _supporters(kept[issue_id])
    ]
    if supporters:
        session.execute(insert(issue_supporters), supporters)


def _replace_newer(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Update the stored snapshots that are older than these (guarded, as in keep_issue: another
    copy of the worker may have stored a newer one meanwhile); the ids of those replaced."""
    replaced = set()
    for row in rows:
        updated = session.execute(
            update(issue_replica)
            .where(issue_replica.c.issue_id == row["issue_id"], issue_replica.c.revision < row["revision"])
            .values(**row)
        )
        if updated.rowcount:
            replaced.add(row["issue_id"])
    return replaced


def issue_handlers() -> dict[str, Handler | BatchHandler]:
    """Every issue event, one batch handler: a consumer's run of them is kept in a few statements."""
    declared = set(CATALOGUE.types())
    keep = batch_handler(keep_issues)
    return {event_type: keep for event_type in (*ISSUE_EVENTS, VISIBILITY_CHANGED) if event_type in declared}


def candidates(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        # Private issues: the staff and officials in scope see them all; anyone else only those
        # they reported or support (the list is filtered in the query, so its total is right).
        return uow.meetings.candidate_issues(
            community_id,
            PENDING,
            offset=offset,
            limit=limit,
            private_for=principal.user_id,
            include_private=access.can_manage_community(principal, uow.meetings, community_id),
        )
