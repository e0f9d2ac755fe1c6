"""Issues raised on a welfare visit: the activities service's `activities.visit.concern_raised`.

The visitor found a problem at a vulnerable resident's door (a loose stair rail, a leaking pipe)
and raised it there and then. It is reported here as a door-step report taken by the visitor:
for the resident when they have an account (they follow it like their own), else in the visitor's
name; under the id the visit already keeps, so a replayed event reports nothing twice. Runs inside
the consumer's transaction (with the inbox row), like the meetings handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.tables import messaging
from linli_issues.domain.model import Issue, TimelineEntry
from linli_issues.domain.privacy import PRIVATE
from linli_issues.service_layer.events import issue_event
from linli_issues.service_layer.issues import route_to_organisation
from linli_kit.events import Event
from linli_kit.events.outbox import Outbox

log = logging.getLogger(__name__)
# A category the visitor did not name, or one retired meanwhile: the one for vulnerable residents,
# private by default (it is about a person).
FALLBACK_CATEGORY = "elderly_vulnerable_support"


class CommunityNotKnownYet(RuntimeError):
    """The directory replica has not heard of the community yet: the event is retried (and, should
    it never arrive, dead-lettered rather than lost)."""


def on_visit_concern(session: Session, event: Event) -> None:
    data = event.data
    repo = IssueRepository(session)
    issue_id = str(data["issue_id"])
    if repo.get(issue_id) is not None:
        return  # already reported
    community_id = str(data["community_id"])
    if not repo.community_exists(community_id):
        raise CommunityNotKnownYet(f"community {community_id} is not in the directory replica yet")
    category = repo.category(str(data["category"]))
    if category is None or not category.active:
        log.info("concern of visit %s: category %r not taking reports, filed under %s",
                 data["visit_id"], data["category"], FALLBACK_CATEGORY)  # fmt: skip
        category = repo.category(FALLBACK_CATEGORY)
    if category is None:
        raise LookupError(f"the category {FALLBACK_CATEGORY} is missing: run `linli-issues migrate`")
    now = datetime.now(UTC)
    taken_by = str(data["raised_by"])
    reporter_id = str(data.get("resident_id") or taken_by)
    issue = Issue(
        id=issue_id,
        community_id=community_id,
        address=data.get("address"),
        title=data["title"].strip(),
        description=data["description"].strip(),
        category=category.key,
        urgency=data["urgency"],
        tier=category.default_tier,
        reporter_id=reporter_id,
        reported_by=taken_by,
        channel="doorstep",
        publication=repo.publication_of(category.key) or category.publication,
        created_at=now,
        updated_at=now,
        assignee_type=category.responsible_body,
    )
    issue.due_at = category.deadline(issue.urgency, now)
    if issue.visibility != PRIVATE:
        # A vulnerable resident's address is not for the neighbours: only a private issue keeps it.
        issue.address = None
    repo.add(issue)
    repo.add(
        TimelineEntry(
            issue_id=issue.id,
            kind="report",
            created_at=now,
            author_id=reporter_id,
            data={"channel": "doorstep", "tier": issue.tier, "welfare_visit_id": str(data["visit_id"])},
        )
    )
    if category.default_tier == "compound":
        route_to_organisation(repo, issue, now)
    session.flush()
    reported = issue_event(
        "issues.issue.reported",
        issue,
        actor_id=taken_by,
        street_id=repo.street_of(community_id),
        supporter_ids=[],
        anonymous=False,
        channel="doorstep",
    )
    Outbox(messaging.outbox).add(session, [reported])


def doorstep_handlers() -> dict[str, Callable[[Session, Event], None]]:
    return {"activities.visit.concern_raised": on_visit_concern}
