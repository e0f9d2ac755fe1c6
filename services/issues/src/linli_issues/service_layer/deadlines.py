"""Work the clock drives: escalating overdue issues, closing resolved ones nobody rated.

Both run in the worker as timers; the clock is a parameter so tests move time instead of waiting.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from linli_issues.domain import wording
from linli_issues.service_layer.issues import change_status, escalate_issue, publish_change
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.errors import Text

log = logging.getLogger(__name__)


def escalate_overdue(uow: IssuesUnitOfWork, now: datetime, batch: int = 200) -> int:
    """Every open issue past its deadline is reported overdue and goes one tier up.

    At the city tier there is nowhere higher: the issue is reported overdue once and stays.
    Returns how many issues were handled.
    """
    handled = 0
    while True:
        with uow:
            issues = uow.issues.overdue(now, limit=batch)
            for issue in issues:
                issue.overdue_at = now  # the last time it was found overdue
                issue.touch(now)
                publish_change(uow, "issues.issue.overdue", issue, None)
                if issue.next_tier() is not None:
                    escalate_issue(
                        uow,
                        issue,
                        now,
                        actor_id=None,
                        reason=Text(wording.DEADLINE_PASSED, at=issue.due_at.isoformat() if issue.due_at else "?"),
                        automatic=True,
                    )
            uow.commit()
        handled += len(issues)
        if len(issues) < batch:
            return handled


def close_unrated(uow: IssuesUnitOfWork, now: datetime, after: timedelta, batch: int = 200) -> int:
    """Resolved issues whose reporter did not rate them within `after` are closed."""
    closed = 0
    while True:
        with uow:
            issues = uow.issues.resolved_before(now - after, limit=batch)
            for issue in issues:
                change_status(uow, issue, "closed", now, actor_id=None, reason=Text(wording.CLOSED_UNRATED))
            uow.commit()
        closed += len(issues)
        if len(issues) < batch:
            return closed
