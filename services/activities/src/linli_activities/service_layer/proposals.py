"""Residents start things: a resident proposes an activity for their community; the community's
staff accept it (the activity is made from it, published unless they say otherwise) or decline it
with a reason; the proposer may withdraw it while it waits. A proposal is seen by its proposer and
by the staff over its community, nobody else (a neighbour's wish is not a public notice).

The staff are told through `activities.proposal.submitted`; the proposer through
`activities.proposal.accepted` / `declined`."""

from __future__ import annotations

from typing import Any

from linli_activities import SERVICE
from linli_activities.adapters.tables import activity_proposals as table
from linli_activities.domain.activities import Activity
from linli_activities.domain.proposals import ActivityProposal, ProposalStatus
from linli_activities.service_layer import scope
from linli_activities.service_layer.activities import _check_post, add_published, prepare_template
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Label, NotFound
from linli_kit.events import new_event


def _event(uow: ActivitiesUnitOfWork, verb: str, proposal: ActivityProposal, starts_at: Any = None) -> None:
    uow.publish(
        new_event(
            f"activities.proposal.{verb}",
            {
                "proposal_id": proposal.id,
                "community_id": proposal.community_id,
                "proposer_id": proposal.proposer_id,
                "kind": proposal.kind,
                "title": proposal.title,
                "reason": proposal.reason or None,
                "status": proposal.status,
                "decided_by": proposal.decided_by,
                "decision_reason": proposal.decision_reason,
                "activity_id": proposal.activity_id,
                "starts_at": starts_at,
            },
            producer=SERVICE,
            community_id=proposal.community_id,
            street_id=uow.repo.street_of(proposal.community_id),
        )
    )


def _may_read(uow: ActivitiesUnitOfWork, principal: Principal, proposal: ActivityProposal) -> bool:
    return proposal.proposer_id == principal.user_id or scope.is_staff_of(uow, principal, proposal.community_id)


def _load(uow: ActivitiesUnitOfWork, principal: Principal, proposal_id: str, *, lock: bool = False) -> ActivityProposal:
    """The proposal as the caller may read it; 404 before anything about its state is said."""
    if lock:
        proposal = uow.repo.session.get(ActivityProposal, proposal_id, with_for_update=True)
    else:
        proposal = uow.repo.get(ActivityProposal, proposal_id)
    if proposal is None or not _may_read(uow, principal, proposal):
        raise NotFound("proposal {proposal_id} not found", proposal_id=proposal_id)
    return proposal


def submit(uow: ActivitiesUnitOfWork, principal: Principal, **values: Any) -> ActivityProposal:
    with uow:
        community_id = values["community_id"]
        if principal.role != Role.RESIDENT or community_id not in principal.community_ids:
            raise Forbidden("residents propose activities in their own community")
        proposal = ActivityProposal(proposer_id=principal.user_id, created_at=uow.clock(), **values)
        uow.repo.add(proposal)
        _event(uow, "submitted", proposal)
        uow.commit()
        return proposal


def get(uow: ActivitiesUnitOfWork, principal: Principal, proposal_id: str) -> ActivityProposal:
    with uow:
        return _load(uow, principal, proposal_id)


def list_proposals(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    *,
    community_id: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[ActivityProposal], int]:
    """Staff: the proposals of the communities in their scope (one, if named); anyone else: their own."""
    with uow:
        where = []
        if principal.role in scope.STAFF:
            if community_id is not None:
                scope.require_staff_of(uow, principal, community_id)
            limit_to = scope.visible_communities(principal, table.c.community_id)
            if limit_to is not None:
                where.append(limit_to)
        else:
            where.append(table.c.proposer_id == principal.user_id)
        if community_id is not None:
            where.append(table.c.community_id == community_id)
        if status is not None:
            where.append(table.c.status == status)
        return uow.repo.page(
            ActivityProposal, where, [table.c.created_at.desc(), table.c.id], offset=offset, limit=limit
        )


def accept(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    proposal_id: str,
    *,
    note: str | None = None,
    publish: bool = True,
    **activity_values: Any,
) -> tuple[ActivityProposal, Activity]:
    """The staff make the activity from the proposal (its title, kind, description and place unless
    they give others; the times they fix) and the proposer is told when it is."""
    with uow:
        proposal = _load(uow, principal, proposal_id, lock=True)
        scope.require_staff_of(uow, principal, proposal.community_id)
        if proposal.status != ProposalStatus.PENDING:
            raise Conflict("the proposal is already {status}", status=Label("proposal_status", proposal.status))
        values = {
            "kind": proposal.kind,
            "title": proposal.title,
            "description": proposal.description,
            "place": proposal.place,
            **{k: v for k, v in activity_values.items() if v is not None},
        }
        community_ids = [proposal.community_id]
        _check_post(uow, values.get("post_id"))
        prepare_template(uow, principal, values, community_ids)
        activity = Activity(community_ids=community_ids, created_by=principal.user_id, created_at=uow.clock(), **values)
        add_published(uow, activity, publish)
        proposal.accept(activity.id, principal.user_id, note, uow.clock())
        _event(uow, "accepted", proposal, starts_at=activity.starts_at)
        uow.commit()
        return proposal, activity


def decline(uow: ActivitiesUnitOfWork, principal: Principal, proposal_id: str, reason: str) -> ActivityProposal:
    with uow:
        proposal = _load(uow, principal, proposal_id, lock=True)
        scope.require_staff_of(uow, principal, proposal.community_id)
        proposal.decline(principal.user_id, reason, uow.clock())
        _event(uow, "declined", proposal)
        uow.commit()
        return proposal


def withdraw(uow: ActivitiesUnitOfWork, principal: Principal, proposal_id: str) -> ActivityProposal:
    with uow:
        proposal = _load(uow, principal, proposal_id, lock=True)
        if proposal.proposer_id != principal.user_id:
            raise Forbidden("only the proposer withdraws a proposal")
        proposal.withdraw(principal.user_id, uow.clock())
        uow.commit()
        return proposal
