"""Who may see and change what (DESIGN section 4), decided on a Principal and the directory replica."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam, false, select
from sqlalchemy.dialects.postgresql import ARRAY

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


def visibility(principal: Principal) -> tuple[str, dict[str, Any]]:
    """`visible_communities` as a form and its values, for a statement built once per form
    (`visible_in`): "everything", "nothing", "street" (`scope_street`) or "communities"
    (`scope_communities`)."""
    if principal.role == Role.CITY_ADMIN:
        return "everything", {}
    if principal.role == Role.STREET_OFFICIAL:
        if principal.street_id is None:
            return "nothing", {}
        return "street", {"scope_street": principal.street_id}
    if not principal.community_ids:
        return "nothing", {}
    return "communities", {"scope_communities": list(principal.community_ids)}


def visible_in(form: str, column: ColumnElement, *, array: bool = False) -> ColumnElement[bool] | None:
    """The condition of `visible_communities` for a `visibility` form, its values bind parameters;
    `array` (PostgreSQL): the communities one array parameter (`= ANY`) instead of an expanding
    one (`IN`, its text made again for each number of values)."""
    if form == "everything":
        return None
    if form == "nothing":
        return false()
    if form == "street":
        communities = replica.communities.c
        return column.in_(select(communities.community_id).where(communities.street_id == bindparam("scope_street")))
    if array:
        return column == any_(bindparam("scope_communities", type_=ARRAY(String)))
    return column.in_(bindparam("scope_communities", expanding=True))
