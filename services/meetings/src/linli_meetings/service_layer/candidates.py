"""Candidate agenda items: the community's pending issues, kept from the issues service's events.

Every issues.* event carries a snapshot of the issue with its revision; a snapshot only replaces
an older one, so duplicates and late arrivals change nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal
from linli_kit.events import Event
from linli_kit.events.catalogue import CATALOGUE
from linli_kit.events.consumer import Handler
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


def keep_issue(session: Session, event: Event) -> None:
    data = event.data
    row: dict[str, Any] = {
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
    supporters = sorted({str(s) for s in data.get("supporter_ids") or []})
    if supporters:
        session.execute(insert(issue_supporters), [{"issue_id": row["issue_id"], "user_id": s} for s in supporters])


def issue_handlers() -> dict[str, Handler]:
    declared = set(CATALOGUE.types())
    return {event_type: keep_issue for event_type in (*ISSUE_EVENTS, VISIBILITY_CHANGED) if event_type in declared}


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
