"""The community's home page: what is coming, what was decided and what became of it, notices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from linli_web.i18n import parse_instant


@dataclass
class Decision:
    meeting_id: str
    meeting_title: str
    held_at: datetime | None
    motion: str
    outcome: str | None
    actions_done: int
    actions_total: int
    issue_id: str | None

    @property
    def followed_through(self) -> bool:
        return self.actions_total > 0 and self.actions_done == self.actions_total


@dataclass
class HomePage:
    meetings: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # parts the platform could not give just now
    invitation: bool = False  # ask the person to follow their community (they do not yet)


def upcoming(items: list[dict[str, Any]], now: datetime, limit: int = 3) -> list[dict[str, Any]]:
    """Not cancelled, not over, soonest first."""
    kept = []
    for item in items:
        if item.get("status") in ("cancelled", "concluded", "draft"):
            continue
        ends = parse_instant(item.get("ends_at")) or parse_instant(item.get("starts_at"))
        if ends is not None and ends < now:
            continue
        kept.append(item)
    kept.sort(key=lambda i: parse_instant(i.get("starts_at")) or now)
    return kept[:limit]


def recent_concluded(meetings: list[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    held = [m for m in meetings if m.get("status") == "concluded"]
    held.sort(key=lambda m: parse_instant(m.get("starts_at")) or datetime.min, reverse=True)
    return held[:limit]


def decisions_of(meeting: dict[str, Any], motions: list[dict[str, Any]]) -> list[Decision]:
    out = []
    for motion in motions:
        if motion.get("status") != "recorded":
            continue
        actions = motion.get("action_items") or []
        out.append(
            Decision(
                meeting_id=meeting["id"],
                meeting_title=meeting.get("title") or "",
                held_at=parse_instant(meeting.get("starts_at")),
                motion=motion.get("motion") or "",
                outcome=motion.get("outcome"),
                actions_done=sum(1 for a in actions if a.get("status") == "done"),
                actions_total=sum(1 for a in actions if a.get("status") != "cancelled"),
                issue_id=motion.get("issue_id"),
            )
        )
    return out
