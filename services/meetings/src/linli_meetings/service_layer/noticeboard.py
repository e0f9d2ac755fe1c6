"""The community's noticeboard (公示): what was decided and what became of it, for residents to see.

Decisions recorded, with their counts of votes (never who voted how: a roll call's individual
votes are for the chair and the officials), their action items with owner, due date and progress;
the action items still open; the meetings to come; the convention and rules of procedure in force.
Residents see what public meetings decided; what private meetings decided stays private. The
community's staff and the officials over it see the same public board, and with
`include_private` also the private meetings' part. On a private issue (service_layer.issue_privacy)
a caller who may not read it sees a placeholder for the agenda item, the motion and the action
items' titles (their notes and the resolution plan left out), with the counts and the follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from linli_kit.auth import Principal
from linli_kit.errors import Forbidden, NotFound, Unauthorized
from linli_meetings.domain.decision import ActionItem, CommunityDocument, Decision, DocumentKind, FollowUp
from linli_meetings.service_layer import access
from linli_meetings.service_layer.issue_privacy import PRIVATE_ISSUE_TITLE, hidden_issues, item_hidden
from linli_meetings.service_layer.meetings import MeetingView
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


@dataclass(frozen=True)
class NoticeItem:
    """An action item as the board shows it: with whether it is overdue today."""

    item: ActionItem
    overdue: bool
    hidden: bool = False  # on a private issue the caller may not read: no title, no note

    def __getattr__(self, name: str) -> Any:
        return getattr(self.item, name)

    @property
    def title(self) -> str:
        return PRIVATE_ISSUE_TITLE if self.hidden else self.item.title

    @property
    def note(self) -> str | None:
        return None if self.hidden else self.item.note


@dataclass(frozen=True)
class NoticeDecision:
    decision: Decision
    meeting_title: str
    meeting_type: str
    meeting_date: date
    action_items: list[NoticeItem]
    follow_up: FollowUp
    hidden: bool = False  # on a private issue the caller may not read: the motion's words withheld

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decision, name)

    @property
    def motion(self) -> str:
        return PRIVATE_ISSUE_TITLE if self.hidden else self.decision.motion

    @property
    def resolution_plan(self) -> str | None:
        return None if self.hidden else self.decision.resolution_plan

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
    upcoming_meetings: list[MeetingView]
    convention: CommunityDocument | None
    rules_of_procedure: CommunityDocument | None


def noticeboard(
    uow: MeetingsUnitOfWork,
    principal: Principal | None,
    community_id: str,
    *,
    limit: int = 20,
    include_private: bool = False,
) -> Noticeboard:
    """`principal` None: an anonymous reader, who sees the public board as the community's public
    calendar shows its meetings (public meetings only; a private issue's words withheld). A signed-in
    caller whose scope does not cover the community (a resident of the next community, an agency)
    reads that same public board: signing in never shows less than signing out."""
    with uow:
        if principal is not None and not access.is_community_member(principal, uow.meetings, community_id):
            if include_private:
                raise Forbidden("outside your community scope")
            principal = None
        if principal is None:
            if include_private:
                raise Unauthorized("sign in as the community's staff to see private meetings")
            if uow.meetings.street_of(community_id) is None:
                raise NotFound("community {community_id} not found", community_id=community_id)
        if include_private and not access.can_manage_community(principal, uow.meetings, community_id):
            raise Forbidden("only the community's staff and the officials over it see private meetings")
        public_only = not include_private
        today = uow.today()
        rows = uow.meetings.recorded_decisions(community_id, public_only=public_only, limit=limit)
        items = uow.meetings.action_items_of([d.id for d, _ in rows])
        open_items = uow.meetings.open_action_items(community_id, public_only=public_only, limit=100)
        # A visitor who has not signed in is not shown the meetings to come: their agendas name the
        # community's issues by id (public meetings are in the community's .ics calendar instead).
        upcoming = (
            []
            if principal is None
            else uow.meetings.upcoming(community_id, uow.now(), public_only=public_only, limit=limit)
        )
        # What is on a private issue the caller may not read shows a placeholder, never its words.
        hidden = hidden_issues(
            uow,
            principal,
            [d.issue_id for d, _ in rows]
            + [i.issue_id for i in [*items, *open_items]]
            + [i for m in upcoming for i in m.issue_ids],
        )
        decisions = []
        for decision, meeting in rows:
            own = [i for i in items if i.decision_id == decision.id]
            decisions.append(
                NoticeDecision(
                    decision=decision,
                    action_items=[NoticeItem(i, i.is_overdue(today), item_hidden(principal, i, hidden)) for i in own],
                    follow_up=FollowUp.of(own),
                    hidden=decision.issue_id in hidden,
                    **meeting,
                )
            )
        return Noticeboard(
            community_id=community_id,
            generated_at=uow.now(),
            public_only=public_only,
            decisions=decisions,
            open_action_items=[
                NoticeItem(i, i.is_overdue(today), item_hidden(principal, i, hidden)) for i in open_items
            ],
            upcoming_meetings=[MeetingView(m, hidden) for m in upcoming],
            convention=uow.meetings.current_document(community_id, DocumentKind.CONVENTION),
            rules_of_procedure=uow.meetings.current_document(community_id, DocumentKind.RULES_OF_PROCEDURE),
        )
