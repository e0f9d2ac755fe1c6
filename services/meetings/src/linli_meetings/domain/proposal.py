"""A resident's proposal of a meeting on an issue (most often a bench meeting, 板凳会), and the staff's
answer: accepted (a meeting is scheduled with the issue on its agenda) or declined with a reason.
No framework here.

Status: pending -> accepted | declined | withdrawn (by the proposer); each answer is final (409
for a second one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from linli_kit.errors import N_, Conflict, Label, Text
from linli_meetings.domain.meeting import new_id, utcnow


class ProposalStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


@dataclass(eq=False)
class MeetingProposal:
    community_id: str
    issue_id: str
    proposer_id: str
    reason: str
    meeting_type: str = "bench"
    status: str = ProposalStatus.PENDING.value
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    meeting_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)

    _ACTIONS = (N_("accept"), N_("decline"), N_("withdraw"))  # what `_require_pending` names, to translate

    def _require_pending(self, action: str) -> None:
        if self.status != ProposalStatus.PENDING:
            raise Conflict(
                "cannot {action} a proposal that is {status}",
                fields={"status": [self.status]},
                action=Text(action),
                status=Label("proposal_status", self.status),
            )

    def accept(self, staff_id: str, meeting_id: str, now: datetime, note: str | None = None) -> None:
        self._require_pending("accept")
        self.status = ProposalStatus.ACCEPTED.value
        self.decided_by = staff_id
        self.decided_at = now
        self.meeting_id = meeting_id
        self.decision_reason = note

    def decline(self, staff_id: str, reason: str, now: datetime) -> None:
        self._require_pending("decline")
        self.status = ProposalStatus.DECLINED.value
        self.decided_by = staff_id
        self.decided_at = now
        self.decision_reason = reason

    def withdraw(self, now: datetime) -> None:
        self._require_pending("withdraw")
        self.status = ProposalStatus.WITHDRAWN.value
        self.decided_at = now
