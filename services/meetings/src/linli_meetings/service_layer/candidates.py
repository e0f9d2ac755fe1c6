"""Candidate agenda items: the community's pending issues, kept from the issues service's events.

Every issues.* event carries a snapshot of the issue with its revision; a snapshot only replaces
an older one, so duplicates and late arrivals change nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql
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
    """`keep_issue` for a run of snapshots, in a few statements whatever their number, with the
    same result as one by one in their order: of the snapshots of one issue, the first with the
    highest revision is kept if it is newer than the stored one (a later one of equal revision
    would not have replaced it)."""
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
    if session.get_bind().dialect.name != "postgresql":
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
    # One UPDATE for them all, of fixed text whatever their number: each column goes as an array.
    names = list(rows[0])
    return set(session.scalars(_update_newer_statement(), {f"new_{n}": [row[n] for row in rows] for n in names}))


@functools.cache
def _update_newer_statement() -> Any:
    names = [c.name for c in issue_replica.columns]
    incoming = (
        func.unnest(*(bindparam(f"new_{n}", type_=postgresql.ARRAY(issue_replica.c[n].type)) for n in names))
        .table_valued(*names)
        .render_derived()
    )
    return (
        update(issue_replica)
        .where(issue_replica.c.issue_id == incoming.c.issue_id, issue_replica.c.revision < incoming.c.revision)
        .values({n: incoming.c[n] for n in names if n != "issue_id"})
        .returning(issue_replica.c.issue_id)
    )


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
