"""Residents start things: a resident proposes a meeting (a bench meeting by default) on a pending
issue of their community, with a reason; the community's staff accept it, scheduling the meeting
with the issue on its agenda and the proposer invited, or decline it with a reason. The proposer
is told through the events (meetings.proposal.accepted / declined); the staff, through
meetings.proposal.submitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound, Text
from linli_meetings.domain.meeting import BUILT_IN_TYPES
from linli_meetings.domain.procedure import ParticipantRole
from linli_meetings.domain.proposal import MeetingProposal
from linli_meetings.service_layer import access, events
from linli_meetings.service_layer.candidates import PENDING
from linli_meetings.service_layer.issue_privacy import PRIVATE_ISSUE_TITLE, hidden_issues
from linli_meetings.service_layer.meetings import _check_type, _new_meeting, commit_or_conflict
from linli_meetings.service_layer.organisations import named_participants
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


@dataclass(frozen=True)
class ProposalView:
    """A proposal with its issue's title, as the caller may read it (a placeholder for a private
    issue they may not read; None while the replica does not know the issue)."""

    proposal: MeetingProposal
    issue_title: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proposal, name)


def _views(uow: MeetingsUnitOfWork, principal: Principal, items: list[MeetingProposal]) -> list[ProposalView]:
    ids = {p.issue_id for p in items}
    titles = uow.meetings.issue_titles(ids) if ids else {}
    hidden = hidden_issues(uow, principal, ids)
    return [ProposalView(p, PRIVATE_ISSUE_TITLE if p.issue_id in hidden else titles.get(p.issue_id)) for p in items]


def _view(uow: MeetingsUnitOfWork, principal: Principal, item: MeetingProposal) -> ProposalView:
    return _views(uow, principal, [item])[0]


def submit(uow: MeetingsUnitOfWork, principal: Principal, data: dict[str, Any]) -> ProposalView:
    community_id, issue_id = data["community_id"], data["issue_id"]
    with uow:
        if principal.role != Role.RESIDENT or community_id not in principal.community_ids:
            raise Forbidden("residents propose meetings in their own community")
        _check_type(uow, community_id, data["meeting_type"])
        issue = uow.meetings.issue(issue_id)
        # A private issue the resident may not read is as unknown to them as an absent one.
        if issue is None or issue["community_id"] != community_id or hidden_issues(uow, principal, [issue_id]):
            raise Invalid("unknown issue", fields={"issue_id": ["not an issue of this community"]})
        if issue["status"] not in PENDING:
            raise Invalid(
                "nothing left to deliberate",
                fields={"issue_id": [Text("the issue is {status}, not pending", status=issue["status"])]},
            )
        proposal = MeetingProposal(
            community_id=community_id,
            issue_id=issue_id,
            proposer_id=principal.user_id,
            reason=data["reason"],
            meeting_type=data["meeting_type"],
            created_at=uow.now(),
        )
        uow.meetings.add(proposal)
        street_id = uow.meetings.street_for_event(community_id)
        uow.publish(events.proposal("submitted", proposal, street_id, issue_title=issue["title"]))
        try:
            uow.commit()
        except IntegrityError as exc:
            uow.rollback()
            raise Conflict(
                "you have already proposed a meeting on this issue",
                fields={"issue_id": ["a proposal of yours on it is pending"]},
            ) from exc
        return _view(uow, principal, proposal)


def _proposal(
    uow: MeetingsUnitOfWork, principal: Principal, proposal_id: str, *, lock: bool = False
) -> MeetingProposal:
    proposal = uow.meetings.proposal(proposal_id, lock=lock)
    if proposal is None or not access.can_see_proposal(principal, uow.meetings, proposal):
        raise NotFound("proposal {proposal_id} not found", proposal_id=proposal_id)
    return proposal


def get(uow: MeetingsUnitOfWork, principal: Principal, proposal_id: str) -> ProposalView:
    with uow:
        return _view(uow, principal, _proposal(uow, principal, proposal_id))


def list_proposals(
    uow: MeetingsUnitOfWork, principal: Principal, *, offset: int, limit: int, **filters: Any
) -> tuple[list[ProposalView], int]:
    with uow:
        items, total = uow.meetings.list_proposals(
            access.visible_proposals(principal), offset=offset, limit=limit, **filters
        )
        return _views(uow, principal, items), total


def accept(uow: MeetingsUnitOfWork, principal: Principal, proposal_id: str, data: dict[str, Any]) -> ProposalView:
    """Schedule the proposed meeting: the issue on its agenda (the proposer's reason as its notes),
    the proposer invited as a resident, and whoever else the staff invite."""
    with uow:
        proposal = _proposal(uow, principal, proposal_id, lock=True)
        access.require_manager(principal, uow.meetings, proposal.community_id)
        meeting_type = data.get("meeting_type") or proposal.meeting_type
        _check_type(uow, proposal.community_id, meeting_type)
        issue = uow.meetings.issue(proposal.issue_id)
        issue_title = issue["title"] if issue else "Proposed by a resident"
        # The meeting's title is read by everyone who sees the meeting: a private issue's title
        # stays on its agenda item (shown to those who may read it), out of the meeting's title.
        shown_title = PRIVATE_ISSUE_TITLE if issue and issue["visibility"] == "private" else issue_title
        others = named_participants(uow, proposal.community_id, data.get("participants") or [])
        proposer = (
            []
            if any(p.get("user_id") == proposal.proposer_id for p in others)
            else [{"role": ParticipantRole.RESIDENT.value, "user_id": proposal.proposer_id}]
        )
        meeting = _new_meeting(
            uow,
            principal,
            {
                "community_id": proposal.community_id,
                "meeting_type": meeting_type,
                "title": data.get("title") or f"{BUILT_IN_TYPES.get(meeting_type, meeting_type)}: {shown_title}"[:300],
                "description": data.get("description"),
                "place": data.get("place"),
                "online_url": data.get("online_url"),
                "starts_at": data["starts_at"],
                "ends_at": data["ends_at"],
                "public": data.get("public", True),
                "capacity": data.get("capacity"),
                "agenda": [{"title": issue_title, "issue_id": proposal.issue_id, "notes": proposal.reason}],
                "participants": proposer + others,
            },
        )
        proposal.accept(principal.user_id, meeting.id, uow.now(), data.get("note"))
        meeting.announce(uow.now())
        uow.meetings.add(meeting)
        street_id = uow.meetings.street_for_event(proposal.community_id)
        uow.publish(events.scheduled(meeting, street_id))
        uow.publish(
            events.proposal(
                "accepted",
                proposal,
                street_id,
                issue_title=issue["title"] if issue else None,
                title=meeting.title,
                starts_at=meeting.starts_at,
                ends_at=meeting.ends_at,
                place=meeting.place,
            )
        )
        commit_or_conflict(uow)
        return _view(uow, principal, proposal)


def decline(uow: MeetingsUnitOfWork, principal: Principal, proposal_id: str, reason: str) -> ProposalView:
    with uow:
        proposal = _proposal(uow, principal, proposal_id, lock=True)
        access.require_manager(principal, uow.meetings, proposal.community_id)
        proposal.decline(principal.user_id, reason, uow.now())
        issue = uow.meetings.issue(proposal.issue_id)
        street_id = uow.meetings.street_for_event(proposal.community_id)
        uow.publish(events.proposal("declined", proposal, street_id, issue_title=issue["title"] if issue else None))
        commit_or_conflict(uow)
        return _view(uow, principal, proposal)


def withdraw(uow: MeetingsUnitOfWork, principal: Principal, proposal_id: str) -> ProposalView:
    """The proposer takes the proposal back while it waits for an answer."""
    with uow:
        proposal = _proposal(uow, principal, proposal_id, lock=True)
        if proposal.proposer_id != principal.user_id:
            raise Forbidden("only the proposer may withdraw a proposal; the staff decline it")
        proposal.withdraw(uow.now())
        commit_or_conflict(uow)
        return _view(uow, principal, proposal)
