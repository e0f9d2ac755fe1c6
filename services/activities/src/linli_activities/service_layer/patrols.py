"""Use cases of patrols: a mutual-aid group's rota of rounds, what members find on them, and a
finding raised as an issue in one step (the issues service reports it from
`activities.patrol.finding_raised`, under the id the finding keeps, credited to the group)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from linli_activities import SERVICE
from linli_activities.domain.care import GroupMember, MutualAidGroup
from linli_activities.domain.patrols import DEFAULT_FINDING_CATEGORY, PatrolFinding, PatrolRound
from linli_activities.service_layer.care import _group, _may_run
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound, Text
from linli_kit.events import Event, new_event


def _members(uow: ActivitiesUnitOfWork, group: MutualAidGroup) -> set[str]:
    """Who may be put on a round: the members and the coordinator."""
    rows = uow.repo.all(GroupMember, [GroupMember.group_id == group.id])
    return {m.user_id for m in rows} | {group.coordinator_id}


def _round(uow: ActivitiesUnitOfWork, principal: Principal, round_id: str) -> tuple[PatrolRound, MutualAidGroup]:
    """A round of a group the caller may see, else 404 as if it did not exist."""
    patrol = uow.repo.get(PatrolRound, round_id)
    if patrol is None:
        raise NotFound("patrol round {round_id} not found", round_id=round_id)
    try:
        group = _group(uow, principal, patrol.group_id)
    except NotFound:
        raise NotFound("patrol round {round_id} not found", round_id=round_id) from None
    return patrol, group


def _may_report(uow: ActivitiesUnitOfWork, principal: Principal, patrol: PatrolRound, group: MutualAidGroup) -> None:
    if principal.user_id not in patrol.member_ids and not _may_run(uow, principal, group):
        raise Forbidden("the members on the round, the coordinator and staff report on it")


def schedule_round(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    group_id: str,
    *,
    starts_at: datetime,
    ends_at: datetime,
    member_ids: list[str],
    route: str = "",
) -> PatrolRound:
    """The coordinator or staff put a round on the group's rota, with the members who walk it."""
    with uow:
        group = _group(uow, principal, group_id)
        if not _may_run(uow, principal, group):
            raise Forbidden("the coordinator or staff make the rota")
        if not group.active:
            raise Conflict("the group is no longer active")
        strangers = sorted(set(member_ids) - _members(uow, group))
        if strangers:
            raise Invalid(
                "not members of the group",
                fields={"member_ids": [Text("not members: {ids}", ids=", ".join(strangers))]},
            )
        patrol = PatrolRound(
            group_id=group.id,
            community_id=group.community_id,
            starts_at=starts_at,
            ends_at=ends_at,
            member_ids=list(member_ids),
            route=route.strip(),
            created_by=principal.user_id,
            created_at=uow.clock(),
        )
        uow.repo.add(patrol)
        uow.commit()
        return patrol


def rota(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    group_id: str,
    *,
    starts_from: datetime | None,
    starts_before: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[PatrolRound], int]:
    with uow:
        group = _group(uow, principal, group_id)
        where = [PatrolRound.group_id == group.id]
        if starts_from is not None:
            where.append(PatrolRound.starts_at >= starts_from)
        if starts_before is not None:
            where.append(PatrolRound.starts_at < starts_before)
        return uow.repo.page(PatrolRound, where, [PatrolRound.starts_at, PatrolRound.id], offset=offset, limit=limit)


def get_round(uow: ActivitiesUnitOfWork, principal: Principal, round_id: str) -> PatrolRound:
    with uow:
        return _round(uow, principal, round_id)[0]


def walk_round(uow: ActivitiesUnitOfWork, principal: Principal, round_id: str, *, report: str = "") -> PatrolRound:
    """A member on the round (or the coordinator, or staff) says it was walked."""
    with uow:
        patrol, group = _round(uow, principal, round_id)
        _may_report(uow, principal, patrol, group)
        patrol.walk(principal.user_id, uow.clock(), report)
        uow.commit()
        return patrol


def record_finding(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    round_id: str,
    *,
    title: str,
    description: str,
    location: str = "",
    category: str | None = None,
    urgency: str = "normal",
    raise_issue: bool = False,
) -> PatrolFinding:
    """What was found on a round (the round counts as walked from then on); with `raise_issue` it
    becomes an issue at once."""
    with uow:
        patrol, group = _round(uow, principal, round_id)
        _may_report(uow, principal, patrol, group)
        now = uow.clock()
        patrol.walk(principal.user_id, now)
        finding = PatrolFinding(
            round_id=patrol.id,
            group_id=group.id,
            community_id=patrol.community_id,
            title=title.strip(),
            description=description.strip(),
            location=location.strip(),
            category=category or DEFAULT_FINDING_CATEGORY,
            urgency=urgency,
            recorded_by=principal.user_id,
            recorded_at=now,
        )
        if raise_issue:
            finding.raise_issue(principal.user_id, now)
            uow.publish(_finding_event(uow, group, finding))
        uow.repo.add(finding)
        uow.commit()
        return finding


def raise_finding(uow: ActivitiesUnitOfWork, principal: Principal, finding_id: str) -> PatrolFinding:
    """A finding becomes an issue of the community, credited to the group: one call, once."""
    with uow:
        finding = uow.repo.get(PatrolFinding, finding_id, lock=True)
        if finding is None:
            raise NotFound("finding {finding_id} not found", finding_id=finding_id)
        patrol, group = _round(uow, principal, finding.round_id)
        _may_report(uow, principal, patrol, group)
        finding.raise_issue(principal.user_id, uow.clock())
        uow.publish(_finding_event(uow, group, finding))
        uow.commit()
        return finding


def list_findings(
    uow: ActivitiesUnitOfWork, principal: Principal, round_id: str, *, offset: int, limit: int
) -> tuple[list[PatrolFinding], int]:
    with uow:
        patrol, _group_of_round = _round(uow, principal, round_id)
        return uow.repo.page(
            PatrolFinding,
            [PatrolFinding.round_id == patrol.id],
            [PatrolFinding.recorded_at, PatrolFinding.id],
            offset=offset,
            limit=limit,
        )


def group_figures(uow: ActivitiesUnitOfWork, principal: Principal, group_id: str) -> dict[str, Any]:
    """The group's patrols so far: rounds on the rota and walked, findings, issues raised."""
    with uow:
        group = _group(uow, principal, group_id)
        return {"group_id": group.id, **uow.repo.patrol_figures(group.id)}


def _finding_event(uow: ActivitiesUnitOfWork, group: MutualAidGroup, finding: PatrolFinding) -> Event:
    return new_event(
        "activities.patrol.finding_raised",
        {
            "finding_id": finding.id,
            "round_id": finding.round_id,
            "issue_id": finding.issue_id,
            "community_id": finding.community_id,
            "group_id": group.id,
            "group_name": group.name,
            "raised_by": finding.raised_by,
            "title": finding.title,
            "description": finding.description,
            "category": finding.category,
            "urgency": finding.urgency,
            # A public place (a lane, a bike shed): the issue keeps it whoever may read it.
            "address": finding.location or None,
        },
        producer=SERVICE,
        community_id=finding.community_id,
        street_id=uow.repo.street_of(finding.community_id),
    )
