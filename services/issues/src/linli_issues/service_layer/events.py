"""The `issues.*` events: every one carries the snapshot of the issue after the change."""

from __future__ import annotations

from typing import Any

from linli_issues import SERVICE
from linli_issues.domain import privacy
from linli_issues.domain.model import Issue
from linli_kit.events import Event, new_event


def snapshot(issue: Issue, actor_id: str | None, supporter_ids: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "issue_id": issue.id,
        "community_id": issue.community_id,
        "compound_id": issue.compound_id,
        # Told to others (followers, supporters, a meeting's agenda): masked as others read it.
        "title": privacy.mask_personal_numbers(issue.title),
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
        "visibility": issue.visibility,
        "revision": issue.revision,
    }
    if supporter_ids is not None:
        data["supporter_ids"] = supporter_ids
    return data


# The contract's longest texts. A reason can be longer here (a resolution plan of 4,000 characters
# is the reason of the move to resolving; a meeting's motion can be long): the event carries its
# beginning, the timeline keeps it whole.
TEXT_LIMITS = {"reason": 2000, "summary": 4000, "note": 2000}


def _clipped(name: str, value: Any) -> Any:
    limit = TEXT_LIMITS.get(name)
    if limit is None or not isinstance(value, str):
        return value
    value = privacy.mask_personal_numbers(value)
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


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
        {**snapshot(issue, actor_id, supporter_ids), **{k: _clipped(k, v) for k, v in extra.items()}},
        producer=SERVICE,
        community_id=issue.community_id,
        street_id=street_id,
    )
