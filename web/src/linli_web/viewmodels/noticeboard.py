"""The community's noticeboard (公示) as a page: what was decided and what became of it.

Made from the meetings service's noticeboard (decisions with their counts of votes and action items,
the items still open, the meetings to come, the convention and rules in force: private meetings
and the words of private issues already withheld by the API) and the issues the community resolved,
with the residents' ratings. An issue shows on the board only when it is not private: even a
reader allowed to see a private issue (its reporter, say) must not find it posted up for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESOLVED_STATUSES = ("resolved", "closed")
RESOLVED_SHOWN = 8  # the latest few: the board is a summary, each issue links to its story


@dataclass
class BoardDecision:
    id: str
    motion: str
    meeting_id: str
    meeting_title: str
    meeting_type: str
    meeting_date: str | None
    outcome: str
    votes_for: int
    votes_against: int
    abstentions: int
    resolution_plan: str | None
    issue_id: str | None
    action_items: list[dict[str, Any]]
    done: int
    total: int

    @property
    def progress_percent(self) -> int:
        """Share of its action items done (none: nothing to follow, shown as no bar)."""
        return round(100 * self.done / self.total) if self.total else 0


@dataclass
class Board:
    community_id: str
    community_name: str
    decisions: list[BoardDecision] = field(default_factory=list)
    open_action_items: list[dict[str, Any]] = field(default_factory=list)
    overdue_count: int = 0
    upcoming_meetings: list[dict[str, Any]] = field(default_factory=list)
    resolved_issues: list[dict[str, Any]] = field(default_factory=list)
    average_rating: float | None = None
    convention: dict[str, Any] | None = None
    rules_of_procedure: dict[str, Any] | None = None
    includes_private_meetings: bool = False

    @property
    def empty(self) -> bool:
        shown = (self.decisions, self.open_action_items, self.upcoming_meetings, self.resolved_issues, self.convention)
        return not any(shown)


def _decision(raw: dict[str, Any]) -> BoardDecision:
    items = [i for i in raw.get("action_items") or [] if i.get("status") != "cancelled"]
    follow_up = raw.get("follow_up") or {}
    return BoardDecision(
        id=raw["id"],
        motion=raw.get("motion") or "",
        meeting_id=raw.get("meeting_id") or "",
        meeting_title=raw.get("meeting_title") or "",
        meeting_type=raw.get("meeting_type") or "",
        meeting_date=raw.get("meeting_date"),
        outcome=raw.get("outcome") or "",
        votes_for=int(raw.get("votes_for") or 0),
        votes_against=int(raw.get("votes_against") or 0),
        abstentions=int(raw.get("abstentions") or 0),
        resolution_plan=raw.get("resolution_plan"),
        issue_id=raw.get("issue_id"),
        action_items=items,
        # The API's own count (cancelled items left out) when it sent one.
        done=int(follow_up.get("done", sum(1 for i in items if i.get("status") == "done"))),
        total=int(follow_up.get("action_items", len(items))),
    )


def publishable_resolved(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resolved or closed issues fit for the board: not private, latest resolved first."""
    shown = [
        i
        for i in issues
        if isinstance(i, dict) and i.get("status") in RESOLVED_STATUSES and i.get("visibility") != "private"
    ]
    shown.sort(key=lambda i: i.get("resolved_at") or i.get("closed_at") or i.get("updated_at") or "", reverse=True)
    return shown[:RESOLVED_SHOWN]


def build_board(
    board: dict[str, Any], community_name: str, resolved_issues: list[dict[str, Any]] | None = None
) -> Board:
    """The page's model from the noticeboard API's answer and the issues list's summaries of the
    resolved issues (they carry status, visibility, rating, resolution summary and dates)."""
    open_items = list(board.get("open_action_items") or [])
    resolved = publishable_resolved(resolved_issues or [])
    ratings = [int(i["rating"]) for i in resolved if i.get("rating")]
    return Board(
        community_id=str(board.get("community_id") or ""),
        community_name=community_name,
        decisions=[_decision(d) for d in board.get("decisions") or []],
        open_action_items=open_items,
        overdue_count=sum(1 for i in open_items if i.get("overdue")),
        upcoming_meetings=[m for m in board.get("upcoming_meetings") or [] if m.get("status") != "cancelled"],
        resolved_issues=resolved,
        average_rating=round(sum(ratings) / len(ratings), 1) if ratings else None,
        convention=board.get("convention"),
        rules_of_procedure=board.get("rules_of_procedure"),
        includes_private_meetings=board.get("public_only") is False,
    )


def board_community(user: dict[str, Any], asked: str | None) -> str | None:
    """Whose board to show: the one asked for (the API checks the caller may read it), else the
    caller's own community; None when the caller has to choose (a street official)."""
    if asked:
        return asked
    own = user.get("community_ids") or []
    return own[0] if own else None
