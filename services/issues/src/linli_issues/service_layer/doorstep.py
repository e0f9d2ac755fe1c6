"""Issues raised on the spot by the activities service, reported here as door-step reports:

- `activities.visit.concern_raised`: the visitor found a problem at a vulnerable resident's door
  (a loose stair rail, a leaking pipe). Reported for the resident when they have an account (they
  follow it like their own), else in the visitor's name; the address kept only on a private issue.
- `activities.patrol.finding_raised`: a mutual-aid group's patrol found something (a loose manhole
  cover, a blocked fire lane). Reported in the name of the member who raised it, the group
  credited on the issue; the place is public and kept.

Either way the issue is made under the id the activities service already keeps, so a replayed
event reports nothing twice. Runs inside the consumer's transaction (with the inbox row), like the
meetings handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
# A patrol finding's category retired meanwhile: filed under "other" (a public place, no person).
PATROL_FALLBACK_CATEGORY = "other"


class CommunityNotKnownYet(RuntimeError):
    """The directory replica has not heard of the community yet: the event is retried (and, should
    it never arrive, dead-lettered rather than lost)."""


def on_visit_concern(session: Session, event: Event) -> None:
    data = event.data
    _report_on_the_spot(
        session,
        data,
        reporter_id=str(data.get("resident_id") or data["raised_by"]),
        fallback_category=FALLBACK_CATEGORY,
        # A vulnerable resident's address is not for the neighbours: only a private issue keeps it.
        address_only_if_private=True,
        found_on={"welfare_visit_id": str(data["visit_id"])},
    )


def on_patrol_finding(session: Session, event: Event) -> None:
    data = event.data
    _report_on_the_spot(
        session,
        data,
        reporter_id=str(data["raised_by"]),
        fallback_category=PATROL_FALLBACK_CATEGORY,
        address_only_if_private=False,
        found_on={
            "patrol_finding_id": str(data["finding_id"]),
            "patrol_round_id": str(data["round_id"]),
            "mutual_aid_group_id": str(data["group_id"]),
        },
        credited_group=(str(data["group_id"]), str(data["group_name"])),
    )


def _report_on_the_spot(
    session: Session,
    data: dict[str, Any],
    *,
    reporter_id: str,
    fallback_category: str,
    address_only_if_private: bool,
    found_on: dict[str, str],
    credited_group: tuple[str, str] | None = None,
) -> None:
    repo = IssueRepository(session)
    issue_id = str(data["issue_id"])
    if repo.get(issue_id) is not None:
        return  # already reported
    community_id = str(data["community_id"])
    if not repo.community_exists(community_id):
        raise CommunityNotKnownYet(f"community {community_id} is not in the directory replica yet")
    category = repo.category(str(data["category"]))
    if category is None or not category.active:
        log.info("issue %s raised on the spot: category %r not taking reports, filed under %s",
                 issue_id, data["category"], fallback_category)  # fmt: skip
        category = repo.category(fallback_category)
    if category is None:
        raise LookupError(f"the category {fallback_category} is missing: run `linli-issues migrate`")
    now = datetime.now(UTC)
    taken_by = str(data["raised_by"])
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
    if credited_group is not None:
        issue.credited_group_id, issue.credited_group_name = credited_group
    issue.due_at = category.deadline(issue.urgency, now)
    if address_only_if_private and issue.visibility != PRIVATE:
        issue.address = None
    repo.add(issue)
    repo.add(
        TimelineEntry(
            issue_id=issue.id,
            kind="report",
            created_at=now,
            author_id=reporter_id,
            data={"channel": "doorstep", "tier": issue.tier, **found_on},
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
    return {"activities.visit.concern_raised": on_visit_concern, "activities.patrol.finding_raised": on_patrol_finding}
