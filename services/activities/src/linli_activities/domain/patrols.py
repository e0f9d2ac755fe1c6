"""Patrols of a mutual-aid group (the article's "woodpecker patrol"): a rota of rounds, each walked
by some of the group's members, who write down what they found; a finding becomes an issue of the
community in one step, credited to the group."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from linli_activities.domain.common import new_id, utc
from linli_kit.errors import Conflict, Invalid, Text

MAX_ROUND_HOURS = 12
MAX_ROUND_MEMBERS = 20
URGENCIES = ("low", "normal", "high", "urgent")
# What a finding is filed under when the member names no category: the issues service's category
# for hazards (a patrol looks for loose covers, blocked fire lanes, broken lamps).
DEFAULT_FINDING_CATEGORY = "safety_hazard"


@dataclass
class PatrolRound:
    """One round of the rota: when, where, and which members walk it. It is walked once a member
    says so (or records a finding on it)."""

    group_id: str
    community_id: str
    starts_at: datetime
    ends_at: datetime
    member_ids: list[str]
    created_by: str
    created_at: datetime
    route: str = ""
    walked_at: datetime | None = None
    walked_by: str | None = None
    report: str = ""
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if utc(self.ends_at) <= utc(self.starts_at):
            problems["ends_at"] = ["must be after starts_at"]
        elif utc(self.ends_at) - utc(self.starts_at) > timedelta(hours=MAX_ROUND_HOURS):
            problems["ends_at"] = [Text("a round lasts at most {hours} hours", hours=MAX_ROUND_HOURS)]
        if not self.member_ids:
            problems["member_ids"] = ["at least one member walks the round"]
        elif len(set(self.member_ids)) != len(self.member_ids):
            problems["member_ids"] = ["a member is named twice"]
        elif len(self.member_ids) > MAX_ROUND_MEMBERS:
            problems["member_ids"] = [Text("at most {limit}", limit=MAX_ROUND_MEMBERS)]
        if problems:
            raise Invalid("invalid patrol round: {names}", fields=problems, names=", ".join(sorted(problems)))

    def walk(self, by: str, now: datetime, report: str = "") -> None:
        """The round was walked (the first time counts; a later report adds to it)."""
        if utc(self.starts_at) > utc(now):
            raise Conflict("the round has not started yet", fields={"starts_at": ["in the future"]})
        if self.walked_at is None:
            self.walked_at, self.walked_by = now, by
        if report.strip():
            self.report = report.strip()


@dataclass
class PatrolFinding:
    """Something found on a round: a loose manhole cover, a blocked fire lane."""

    round_id: str
    group_id: str
    community_id: str
    title: str
    description: str
    recorded_by: str
    recorded_at: datetime
    location: str = ""
    category: str = DEFAULT_FINDING_CATEGORY
    urgency: str = "normal"
    issue_id: str | None = None  # the issue it became (made by the issues service from the event)
    raised_by: str | None = None
    raised_at: datetime | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        problems: dict[str, list[str]] = {}
        if len(self.title.strip()) < 3:
            problems["title"] = ["at least 3 characters besides blanks"]
        if not self.description.strip():
            problems["description"] = ["say what was found"]
        if self.urgency not in URGENCIES:
            problems["urgency"] = [Text("one of {choices}", choices=", ".join(URGENCIES))]
        if problems:
            raise Invalid("invalid finding: {names}", fields=problems, names=", ".join(sorted(problems)))

    def raise_issue(self, by: str, now: datetime) -> str:
        """The id of the issue it becomes; once only (a second time is a conflict naming the issue)."""
        if self.issue_id is not None:
            raise Conflict(
                "this finding is already issue {issue_id}", fields={"issue_id": [self.issue_id]}, issue_id=self.issue_id
            )
        self.issue_id, self.raised_by, self.raised_at = new_id(), by, now
        return self.issue_id
