"""The community's noticeboard (公示): what was decided and what became of it, for residents to see.

Decisions recorded, with their counts of votes (never who voted how: a roll call's individual
votes are for the chair and the officials), their action items with owner, due date and progress;
the action items still open; the meetings to come; the convention and rules of procedure in force.
Residents see what public meetings decided; what private meetings decided stays private. The
community's staff and the officials over it see the same public board, and with
`include_private` also the private meetings' part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from linli_kit.auth import Principal
from linli_kit.errors import Forbidden
from linli_meetings.domain.decision import ActionItem, CommunityDocument, Decision, DocumentKind, FollowUp
from linli_meetings.domain.meeting import Meeting
from linli_meetings.service_layer import access
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


@dataclass(frozen=True)
class NoticeItem:
    """An action item as the board shows it: with whether it is overdue today."""

    item: ActionItem
    overdue: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.item, name)


@dataclass(frozen=True)
class NoticeDecision:
    decision: Decision
    meeting_title: str
    meeting_type: str
    meeting_date: date
    action_items: list[NoticeItem]
    follow_up: FollowUp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decision, name)

    @property
    def issue_effect(self) -> str:
        return self.decision.effective_issue_effect


@dataclass(frozen=True)
class Noticeboard:
    community_id: str
    generated_at: datetime
    public_only: bool
    decisions: list[NoticeDecision]
    open_action_items: list[NoticeItem]
    upcoming_meetings: list[Meeting]
    convention: CommunityDocument | None
    rules_of_procedure: CommunityDocument | None


def noticeboard(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str, *, limit: int = 20, include_private: bool = False
) -> Noticeboard:
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        if include_private and not access.can_manage_community(principal, uow.meetings, community_id):
            raise Forbidden("only the community's staff and the officials over it see private meetings")
        public_only = not include_private
        today = uow.today()
        rows = uow.meetings.recorded_decisions(community_id, public_only=public_only, limit=limit)
        items = uow.meetings.action_items_of([d.id for d, _ in rows])
        decisions = []
        for decision, meeting in rows:
            own = [i for i in items if i.decision_id == decision.id]
            decisions.append(
                NoticeDecision(
                    decision=decision,
                    action_items=[NoticeItem(i, i.is_overdue(today)) for i in own],
                    follow_up=FollowUp.of(own),
                    **meeting,
                )
            )
        open_items = uow.meetings.open_action_items(community_id, public_only=public_only, limit=100)
        return Noticeboard(
            community_id=community_id,
            generated_at=uow.now(),
            public_only=public_only,
            decisions=decisions,
            open_action_items=[NoticeItem(i, i.is_overdue(today)) for i in open_items],
            upcoming_meetings=uow.meetings.upcoming(community_id, uow.now(), public_only=public_only, limit=limit),
            convention=uow.meetings.current_document(community_id, DocumentKind.CONVENTION),
            rules_of_procedure=uow.meetings.current_document(community_id, DocumentKind.RULES_OF_PROCEDURE),
        )
