"""An issue as its reporter and neighbours follow it: status, the timeline in words, the meetings
that took it up, the decisions and their action items; what the person may do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from linli_web.i18n import ISSUE_STATUS, OUTCOME, TIER, bracketed, label, parse_instant

OPEN = ("reported", "accepted", "deliberating", "resolving")


@dataclass
class TimelineEntry:
    at: datetime | None
    kind: str
    text: str
    detail: str = ""
    meeting_id: str | None = None


@dataclass
class IssueDetail:
    issue: dict[str, Any]
    timeline: list[TimelineEntry] = field(default_factory=list)
    meetings: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    following: bool = False
    mine: bool = False

    @property
    def can_support(self) -> bool:
        return not self.mine and not self.issue.get("supported_by_me") and self.issue.get("status") in OPEN

    @property
    def can_rate(self) -> bool:
        return self.mine and self.issue.get("status") == "resolved"

    @property
    def can_reopen(self) -> bool:
        return self.mine and self.issue.get("status") in ("resolved", "closed")

    @property
    def steps(self) -> list[tuple[str, bool]]:
        """The road an issue travels, and how far this one has come (for the progress bar)."""
        road = ["reported", "accepted", "deliberating", "resolving", "resolved"]
        status = self.issue.get("status")
        reached = road.index(status) if status in road else (len(road) if status == "closed" else 0)
        return [(label(ISSUE_STATUS, s), i <= reached) for i, s in enumerate(road)]


def timeline_entry(entry: dict[str, Any]) -> TimelineEntry | None:
    """One update in words; internal notes never reach a resident (the API hides them already)."""
    if entry.get("internal"):
        return None
    kind = entry.get("kind") or ""
    data = entry.get("data") or {}
    at = parse_instant(entry.get("created_at"))
    body = entry.get("body") or ""
    if kind == "report":
        return TimelineEntry(at, kind, _("Reported"))
    if kind == "status":
        text = _("Now: %(status)s", status=label(ISSUE_STATUS, data.get("to")))
        return TimelineEntry(at, kind, text, body)
    if kind == "meeting":
        return TimelineEntry(at, kind, _("Put on a meeting's agenda"), body, data.get("meeting_id"))
    if kind == "decision":
        votes = _(
            "%(for)s for, %(against)s against",
            **{"for": data.get("votes_for", 0), "against": data.get("votes_against", 0)},
        )
        text = _("Decision: %(outcome)s", outcome=label(OUTCOME, data.get("outcome")))
        return TimelineEntry(at, kind, text, f"{body}{bracketed(votes)}", data.get("meeting_id"))
    if kind == "escalation":
        return TimelineEntry(at, kind, _("Passed up to: %(tier)s", tier=label(TIER, data.get("to"))), body)
    if kind == "assignment":
        return TimelineEntry(at, kind, _("Given to the body responsible"), body)
    if kind == "reply":
        return TimelineEntry(at, kind, _("Reply from the community"), body)
    if kind == "inspection":
        attendees = ", ".join(data.get("attendees") or [])
        detail = " — ".join(x for x in (body, attendees, data.get("findings") or "") if x)
        return TimelineEntry(at, kind, _("On-site inspection"), detail)
    if kind == "action_item":
        if data.get("status") == "done":
            return TimelineEntry(at, kind, _("Task done"), body)
        return TimelineEntry(at, kind, _("Task agreed"), body)
    if kind == "support":
        return TimelineEntry(at, kind, _("A neighbour pressed “me too”"))
    if kind == "rating":
        return TimelineEntry(at, kind, _("Rated %(n)s of 5", n=data.get("rating", "?")), body)
    return TimelineEntry(at, kind, kind.replace("_", " ").capitalize(), body)


def build_detail(
    issue: dict[str, Any],
    *,
    user_id: str,
    updates: list[dict[str, Any]],
    meetings: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    photos: list[dict[str, Any]],
    follows: list[dict[str, Any]],
) -> IssueDetail:
    timeline = [t for t in (timeline_entry(u) for u in updates) if t is not None]
    decisions = [
        {
            "motion": u.get("body") or "",
            "outcome": (u.get("data") or {}).get("outcome"),
            "rule": (u.get("data") or {}).get("rule"),
            "meeting_id": (u.get("data") or {}).get("meeting_id"),
            "at": parse_instant(u.get("created_at")),
        }
        for u in updates
        if u.get("kind") == "decision"
    ]
    following = any(f.get("target_type") == "issue" and f.get("target_id") == issue["id"] for f in follows)
    return IssueDetail(
        issue=issue,
        timeline=timeline,
        meetings=sorted(meetings, key=lambda m: m.get("starts_at") or ""),
        decisions=decisions,
        actions=actions,
        photos=photos,
        following=following,
        mine=issue.get("reporter_id") == user_id,
    )


def split_lists(mine: list[dict[str, Any]], followed: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """My issues: still open first, then done; followed ones not mine, apart."""
    mine_ids = {i["id"] for i in mine}
    return {
        "open": [i for i in mine if i.get("status") in OPEN],
        "done": [i for i in mine if i.get("status") not in OPEN],
        "followed": [i for i in followed if i["id"] not in mine_ids],
    }
