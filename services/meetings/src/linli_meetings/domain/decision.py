"""Motions put to a meeting, their votes, the decision they become, and the action items it creates.

A motion is opened on an agenda item of a meeting in progress and voted either by roll call (each
attending voting member casts one vote) or by show of hands (the chair records the tallies). On
recording, the rules of procedure give the outcome; an adopted motion creates its action items,
may adopt a new version of a community document, and carries its effect on the linked issue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from fractions import Fraction
from typing import Any

from linli_kit.errors import Conflict, Invalid, Label, Text
from linli_meetings.domain.meeting import Meeting, Participant, Status, new_id, utcnow
from linli_meetings.domain.procedure import Count, MeetingPolicy, Outcome, Threshold, decide


class Method(StrEnum):
    ROLL_CALL = "roll_call"
    SHOW_OF_HANDS = "show_of_hands"


class Choice(StrEnum):
    FOR = "for"
    AGAINST = "against"
    ABSTAIN = "abstain"


class IssueEffect(StrEnum):
    NONE = "none"
    RESOLUTION_PLAN = "resolution_plan"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    RECONSULT = "reconsult"


class DocumentKind(StrEnum):
    RULES_OF_PROCEDURE = "rules_of_procedure"
    CONVENTION = "convention"


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


OWNER_BODIES = (
    "property_company",
    "owners_committee",
    "community",
    "bureau",
    "party_members",
    "residents",
    # A party organisation or branch of the register (owner_organisation_id; its name kept with it).
    "party_organisation",
)


@dataclass(eq=False)
class Vote:
    decision_id: str
    voter_id: str
    choice: str
    cast_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False)
class ActionItem:
    decision_id: str
    meeting_id: str
    community_id: str
    title: str
    owner_body: str
    issue_id: str | None = None
    owner_user_id: str | None = None
    owner_organisation_id: str | None = None
    owner_organisation_name: str | None = None
    due_date: date | None = None
    status: str = ActionStatus.OPEN.value
    progress: int = 0  # percent, as the owner reports it; 100 when done
    note: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    completed_at: datetime | None = None
    id: str = field(default_factory=new_id)

    _NEXT = {
        ActionStatus.OPEN: {ActionStatus.IN_PROGRESS, ActionStatus.DONE, ActionStatus.CANCELLED},
        ActionStatus.IN_PROGRESS: {ActionStatus.DONE, ActionStatus.CANCELLED, ActionStatus.OPEN},
        ActionStatus.DONE: {ActionStatus.IN_PROGRESS},  # reopened when the work was not finished
        ActionStatus.CANCELLED: set(),
    }

    def change_status(self, status: ActionStatus, note: str | None, now: datetime) -> None:
        if status == self.status:
            return
        if status not in self._NEXT[ActionStatus(self.status)]:
            raise Conflict(
                "an action item that is {status} cannot become {target}",
                fields={"status": [self.status]},
                status=Label("action_item_status", self.status),
                target=Label("action_item_status", status),
            )
        reopened = self.status == ActionStatus.DONE
        self.status = status.value
        self.note = note if note is not None else self.note
        self.completed_at = now if status == ActionStatus.DONE else None
        if status == ActionStatus.DONE:
            self.progress = 100
        elif reopened:
            self.progress = 0  # the work is to be looked at again; the owner reports anew

    def report(self, *, status: ActionStatus | None, progress: int | None, note: str | None, now: datetime) -> None:
        """The owner's (or the staff's) report: a status, a progress in percent, a note.

        Done is 100 %: reporting 100 % completes an item, a done item cannot be below 100 %, and
        progress on an open item means it is in progress. A cancelled item takes no report (409).
        """
        if progress is not None and not 0 <= progress <= 100:
            raise Invalid("progress is a percentage", fields={"progress": ["between 0 and 100"]})
        if status is None and progress is not None:
            if self.status == ActionStatus.CANCELLED:
                raise Conflict("a cancelled action item takes no progress", fields={"status": [self.status]})
            if progress == 100:
                status = ActionStatus.DONE
            elif self.status == ActionStatus.DONE:
                raise Invalid(
                    "done is 100 %", fields={"progress": ["the item is done: reopen it (status in_progress) first"]}
                )
            elif self.status == ActionStatus.OPEN and progress > 0:
                status = ActionStatus.IN_PROGRESS
        if progress is not None and (
            (status == ActionStatus.DONE and progress < 100)
            or (status not in (None, ActionStatus.DONE) and progress == 100)
        ):
            raise Invalid("done is 100 %", fields={"progress": ["100 exactly when the item is done"]})
        if status is not None:
            self.change_status(status, note, now)
        if note is not None:
            self.note = note
        if progress is not None and self.status != ActionStatus.CANCELLED:
            self.progress = progress

    def is_overdue(self, today: date) -> bool:
        return self.due_date is not None and self.due_date < today and self.status in ("open", "in_progress")


@dataclass(frozen=True)
class FollowUp:
    """How far the action items of one decision are: what the issue's progress is made of."""

    action_items: int  # not cancelled
    done: int

    @classmethod
    def of(cls, items: Iterable[ActionItem]) -> FollowUp:
        live = [i for i in items if i.status != ActionStatus.CANCELLED]
        return cls(action_items=len(live), done=sum(1 for i in live if i.status == ActionStatus.DONE))

    @property
    def complete(self) -> bool:
        """Every action item done (cancelled ones aside), and at least one."""
        return self.action_items > 0 and self.done == self.action_items


@dataclass(eq=False)
class Decision:
    """A motion, and once recorded, the decision with its outcome and the rule that produced it."""

    meeting_id: str
    community_id: str
    motion: str
    method: str
    threshold: str
    issue_effect: str = IssueEffect.NONE.value
    agenda_item_id: str | None = None
    issue_id: str | None = None
    resolution_plan: str | None = None
    proposed_actions: list[dict[str, Any]] = field(default_factory=list)
    document_kind: str | None = None
    document_title: str | None = None
    document_body: str | None = None
    document_rules: dict[str, Any] | None = None
    status: str = "open"  # open | recorded
    outcome: str | None = None
    rule: str | None = None
    votes_for: int = 0
    votes_against: int = 0
    abstentions: int = 0
    voting_members: int | None = None
    present_voting_members: int | None = None
    opened_at: datetime = field(default_factory=utcnow)
    recorded_at: datetime | None = None
    local_date: date | None = None
    id: str = field(default_factory=new_id)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def _require_open(self) -> None:
        if not self.is_open:
            raise Conflict("motion already recorded: its vote is closed", fields={"status": [self.status]})

    def cast(
        self,
        meeting: Meeting,
        policy: MeetingPolicy,
        voter: Participant | None,
        choice: Choice,
        already_voted: bool,
    ) -> Vote:
        """One vote by an attending voting member; anyone else, or a second vote, is refused (409).

        `voter` is the caller's participation in the meeting (None when they have none); the
        meeting's own participant list is not needed, so a vote does not load it.
        """
        self._require_open()
        if self.method != Method.ROLL_CALL:
            raise Conflict("this motion is voted by show of hands", fields={"method": [self.method]})
        if meeting.status != Status.IN_PROGRESS:
            raise Conflict(
                "voting needs the meeting in progress; it is {status}",
                fields={"status": [meeting.status]},
                status=Label("meeting_status", meeting.status),
            )
        if voter is None or not voter.present:
            raise Conflict("only members present at the meeting may vote", fields={"voter": ["not checked in"]})
        if voter.role not in {r.value for r in policy.voting_roles}:
            raise Conflict(
                "a {role} does not vote at {meeting_type} meetings under the rules",
                fields={"voter": ["not a voting member"]},
                role=voter.role,
                meeting_type=Label("meeting_type", meeting.meeting_type),
            )
        if already_voted:
            raise Conflict("you have already voted on this motion", fields={"voter": ["already voted"]})
        # The counts are taken from the stored votes when the motion is recorded, so concurrent
        # voters never overwrite each other's count.
        # A body invited as such (an owners' committee) votes once, under its own id, whichever
        # member casts it.
        return Vote(decision_id=self.id, voter_id=str(voter.user_id or voter.organisation_id), choice=choice.value)

    def record_tally(self, votes_for: int, votes_against: int, abstentions: int) -> None:
        self._require_open()
        if self.method != Method.SHOW_OF_HANDS:
            raise Conflict(
                "this motion is voted by roll call; votes are cast one by one", fields={"method": [self.method]}
            )
        Count(votes_for, votes_against, abstentions)  # refuses negatives
        self.votes_for, self.votes_against, self.abstentions = votes_for, votes_against, abstentions

    def record(
        self,
        meeting: Meeting,
        policy: MeetingPolicy,
        *,
        quorum: Fraction,
        abstention_blocks_unanimity: bool,
        now: datetime,
        roll_call: Count | None = None,
    ) -> list[ActionItem]:
        """Close the vote: the outcome under the rules; the action items when adopted.

        `roll_call` is the count of the stored votes, for a roll-call motion.
        """
        self._require_open()
        if self.method == Method.ROLL_CALL:
            count = roll_call or Count(0, 0, 0)
            self.votes_for, self.votes_against, self.abstentions = (
                count.votes_for,
                count.votes_against,
                count.abstentions,
            )
        if meeting.status != Status.IN_PROGRESS:
            raise Conflict(
                "decisions are recorded during the meeting; it is {status}",
                fields={"status": [meeting.status]},
                status=Label("meeting_status", meeting.status),
            )
        members = meeting.voting_members(policy)
        present = meeting.present_voting_members(policy)
        result = decide(
            Count(self.votes_for, self.votes_against, self.abstentions),
            voting_members=len(members),
            present_voting_members=len(present),
            quorum=quorum,
            threshold=Threshold(self.threshold),
            abstention_blocks_unanimity=abstention_blocks_unanimity,
        )
        self.status = "recorded"
        self.outcome = result.outcome.value
        self.rule = result.rule
        self.voting_members = len(members)
        self.present_voting_members = len(present)
        self.recorded_at = now
        self.local_date = meeting.local_date
        if result.outcome != Outcome.ADOPTED:
            return []
        return [
            ActionItem(
                decision_id=self.id,
                meeting_id=self.meeting_id,
                community_id=self.community_id,
                issue_id=self.issue_id,
                title=a["title"],
                owner_body=a["owner_body"],
                owner_user_id=a.get("owner_user_id"),
                owner_organisation_id=a.get("owner_organisation_id"),
                owner_organisation_name=a.get("owner_organisation_name"),
                due_date=date.fromisoformat(a["due_date"]) if a.get("due_date") else None,
            )
            for a in self.proposed_actions
        ]

    @property
    def adopted(self) -> bool:
        return self.outcome == Outcome.ADOPTED

    @property
    def effective_issue_effect(self) -> str:
        """What happens to the linked issue: the proposed effect if adopted, else nothing."""
        return self.issue_effect if self.adopted else IssueEffect.NONE.value


@dataclass(eq=False)
class CommunityDocument:
    """A version of a community's rules of procedure or residents' convention, adopted by a decision."""

    community_id: str
    kind: str
    version: int
    title: str
    body: str
    rules: dict[str, Any] | None = None
    decision_id: str | None = None
    meeting_id: str | None = None
    adopted_at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)


def owner_problems(action: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """What is wrong with an action item's owner: its body must be known, and a party organisation
    is named by its id (its name comes from the register unless given)."""
    problems: dict[str, list[str]] = {}
    if action.get("owner_body") not in OWNER_BODIES:
        problems[prefix + "owner_body"] = [Text("must be one of {choices}", choices=", ".join(OWNER_BODIES))]
    elif action["owner_body"] == "party_organisation" and not action.get("owner_organisation_id"):
        problems[prefix + "owner_organisation_id"] = ["required when a party organisation owns the item"]
    return problems


def check_proposed_actions(actions: list[dict[str, Any]]) -> None:
    problems = {}
    for n, action in enumerate(actions):
        problems.update(owner_problems(action, f"action_items.{n}."))
        if not action.get("title"):
            problems[f"action_items.{n}.title"] = ["required"]
    if problems:
        raise Invalid("invalid action items", fields=problems)
