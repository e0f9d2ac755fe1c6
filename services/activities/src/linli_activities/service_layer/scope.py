"""Who may see and change what (DESIGN section 4), decided on a Principal and the directory replica."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, select

from linli_activities.adapters.tables import replica
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden

STAFF = (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)


def visible_communities(principal: Principal, column: ColumnElement) -> ColumnElement[bool] | None:
    """A condition on a community id column limiting rows to the principal's scope; None: no limit."""
    if principal.role == Role.CITY_ADMIN:
        return None
    if principal.role == Role.STREET_OFFICIAL:
        if principal.street_id is None:
            return false()
        communities = replica.communities.c
        return column.in_(select(communities.community_id).where(communities.street_id == principal.street_id))
    if not principal.community_ids:
        return false()
    return column.in_(list(principal.community_ids))


def can_see(uow: ActivitiesUnitOfWork, principal: Principal, community_id: str) -> bool:
    return principal.can_access_community(community_id, uow.repo.street_of)


def is_staff_of(uow: ActivitiesUnitOfWork, principal: Principal, community_id: str) -> bool:
    return principal.role in STAFF and can_see(uow, principal, community_id)


def require_staff_of(uow: ActivitiesUnitOfWork, principal: Principal, community_id: str) -> None:
    if not is_staff_of(uow, principal, community_id):
        raise Forbidden("only staff of this community may do this")


def require_visible(uow: ActivitiesUnitOfWork, principal: Principal, community_id: str) -> None:
    if not can_see(uow, principal, community_id):
        raise Forbidden("outside your community scope")
