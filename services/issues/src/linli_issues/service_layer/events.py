"""The `issues.*` events: every one carries the snapshot of the issue after the change."""

from __future__ import annotations

from typing import Any

from linli_issues import SERVICE
from linli_issues.domain.model import Issue
from linli_kit.events import Event, new_event


def snapshot(issue: Issue, actor_id: str | None, supporter_ids: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "issue_id": issue.id,
        "community_id": issue.community_id,
        "compound_id": issue.compound_id,
        "title": issue.title,
        "category": issue.category,
        "urgency": issue.urgency,
        "status": issue.status,
        "tier": issue.tier,
        "reporter_id": issue.reporter_id,
        "assignee_type": issue.assignee_type,
        "assignee_id": issue.assignee_id,
        "supporter_count": issue.supporter_count,
        "consultation_count": issue.consultation_count,
        "due_at": issue.due_at,
        "actor_id": actor_id,
        "revision": issue.revision,
    }
    if supporter_ids is not None:
        data["supporter_ids"] = supporter_ids
    return data


def issue_event(
    event_type: str,
    issue: Issue,
    *,
    actor_id: str | None,
    street_id: str | None,
    supporter_ids: list[str] | None = None,
    **extra: Any,
) -> Event:
    return new_event(
        event_type,
        {**snapshot(issue, actor_id, supporter_ids), **extra},
        producer=SERVICE,
        community_id=issue.community_id,
        street_id=street_id,
    )
