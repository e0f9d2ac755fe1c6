"""Candidate agenda items: the community's pending issues, kept from the issues service's events.

Every issues.* event carries a snapshot of the issue with its revision; a snapshot only replaces
an older one, so duplicates and late arrivals change nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal
from linli_kit.events import Event
from linli_kit.events.consumer import Handler
from linli_meetings.adapters.tables import issue_replica
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
        "revision": data["revision"],
        "updated_at": event.occurred_at,
    }
    current = session.scalar(select(issue_replica.c.revision).where(issue_replica.c.issue_id == row["issue_id"]))
    if current is None:
        session.execute(insert(issue_replica).values(**row))
    elif current < row["revision"]:
        # Guarded: another copy of the worker may have stored a newer snapshot since the read above.
        session.execute(
            update(issue_replica)
            .where(issue_replica.c.issue_id == row["issue_id"], issue_replica.c.revision < row["revision"])
            .values(**row)
        )


def issue_handlers() -> dict[str, Handler]:
    return {event_type: keep_issue for event_type in ISSUE_EVENTS}


def candidates(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        return uow.meetings.candidate_issues(community_id, PENDING, offset=offset, limit=limit)
