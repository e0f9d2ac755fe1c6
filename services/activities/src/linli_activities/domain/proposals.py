"""Residents start things: a resident proposes an activity for their community (what, why, and
when they would like it); the community's staff accept it, making the activity from it, or decline
it with a reason; the proposer may withdraw it while nobody has answered. No framework here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from linli_activities.domain.activities import KINDS
from linli_activities.domain.common import new_id, utc
from linli_kit.errors import Conflict, Invalid, Label, Text


class ProposalStatus:
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


PROPOSAL_STATUSES = (ProposalStatus.PENDING, ProposalStatus.ACCEPTED, ProposalStatus.DECLINED, ProposalStatus.WITHDRAWN)


@dataclass
class ActivityProposal:
    community_id: str
    proposer_id: str
    kind: str
    title: str
    created_at: datetime
    description: str = ""
    reason: str = ""  # why it is worth doing, in the proposer's words
    # When and where the proposer would like it: a wish, the staff fix the real time on accepting.
    preferred_starts_at: datetime | None = None
    place: str | None = None
    status: str = ProposalStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    activity_id: str | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise Invalid("unknown kind", fields={"kind": [Text("must be one of {choices}", choices=", ".join(KINDS))]})
        if self.preferred_starts_at is not None:
            self.preferred_starts_at = utc(self.preferred_starts_at)

    def _answer(self, status: str, by: str, reason: str | None, now: datetime) -> None:
        if self.status != ProposalStatus.PENDING:
            raise Conflict("the proposal is already {status}", status=Label("proposal_status", self.status))
        self.status, self.decided_by, self.decided_at, self.decision_reason = status, by, now, reason

    def accept(self, activity_id: str, by: str, note: str | None, now: datetime) -> None:
        self._answer(ProposalStatus.ACCEPTED, by, note, now)
        self.activity_id = activity_id

    def decline(self, by: str, reason: str, now: datetime) -> None:
        if not reason.strip():
            raise Invalid("say why", fields={"reason": ["a reason for the proposer"]})
        self._answer(ProposalStatus.DECLINED, by, reason, now)

    def withdraw(self, by: str, now: datetime) -> None:
        self._answer(ProposalStatus.WITHDRAWN, by, None, now)
