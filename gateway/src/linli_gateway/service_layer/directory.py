"""Use cases of the directory: create and change streets, communities and compounds, each change
published as `directory.<kind>.upserted` through the outbox; and republishing everything."""

from __future__ import annotations

from typing import Any

from linli_gateway import SERVICE
from linli_gateway.domain.directory import Community, Compound, Street
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound
from linli_kit.events import Event, new_event


def street_event(street: Street) -> Event:
    return new_event(
        "directory.street.upserted",
        {"street_id": street.id, "name": street.name, "city": street.city, "revision": street.revision},
        producer=SERVICE,
        street_id=street.id,
    )


def community_event(community: Community) -> Event:
    return new_event(
        "directory.community.upserted",
        {
            "community_id": community.id,
            "street_id": community.street_id,
            "name": community.name,
            "revision": community.revision,
        },
        producer=SERVICE,
        street_id=community.street_id,
        community_id=community.id,
    )


def compound_event(compound: Compound, street_id: str | None) -> Event:
    return new_event(
        "directory.compound.upserted",
        {
            "compound_id": compound.id,
            "community_id": compound.community_id,
            "name": compound.name,
            "latitude": compound.latitude,
            "longitude": compound.longitude,
            "revision": compound.revision,
        },
        producer=SERVICE,
        street_id=street_id,
        community_id=compound.community_id,
    )


def _may_manage_street(principal: Principal, street_id: str) -> None:
    if principal.role == Role.CITY_ADMIN:
        return
    if principal.role == Role.STREET_OFFICIAL and principal.street_id == street_id:
        return
    raise Forbidden("only a city admin, or an official of this street, may change it")


# --- streets --------------------------------------------------------------------------------------
def create_street(uow: GatewayUnitOfWork, principal: Principal, *, name: str, city: str | None) -> Street:
    principal.require_role(Role.CITY_ADMIN)
    with uow:
        if uow.directory.find_by_name(Street, name, city=city):
            raise Conflict(f"a street named {name!r} already exists", fields={"name": ["already exists"]})
        street = Street(name=name, city=city)
        uow.directory.add(street)
        uow.session.flush()
        uow.publish(street_event(street))
        uow.commit()
        return street


def update_street(uow: GatewayUnitOfWork, principal: Principal, street_id: str, **changes: Any) -> Street:
    principal.require_role(Role.CITY_ADMIN)
    with uow:
        street = _get(uow, Street, street_id)
        _check_unique(uow, street, "street", name=changes.get("name"), city=changes.get("city") or street.city)
        if street.change(**changes):
            uow.publish(street_event(street))
        uow.commit()
        return street


# --- communities ------------------------------------------------------------------------------------
def create_community(uow: GatewayUnitOfWork, principal: Principal, *, street_id: str, name: str) -> Community:
    with uow:
        if uow.directory.get(Street, street_id) is None:
            raise Invalid("unknown street", fields={"street_id": ["no such street"]})
        _may_manage_street(principal, street_id)
        if uow.directory.find_by_name(Community, name, street_id=street_id):
            raise Conflict(f"street already has a community named {name!r}", fields={"name": ["already exists"]})
        community = Community(street_id=street_id, name=name)
        uow.directory.add(community)
        uow.session.flush()
        uow.publish(community_event(community))
        uow.commit()
        return community


def update_community(uow: GatewayUnitOfWork, principal: Principal, community_id: str, **changes: Any) -> Community:
    with uow:
        community = _get(uow, Community, community_id)
        _may_manage_street(principal, community.street_id)
        new_street = changes.get("street_id")
        if new_street and new_street != community.street_id:
            # Moving a community between streets changes who governs it: city admins only.
            principal.require_role(Role.CITY_ADMIN)
            if uow.directory.get(Street, new_street) is None:
                raise Invalid("unknown street", fields={"street_id": ["no such street"]})
        _check_unique(uow, community, "street", name=changes.get("name"), street_id=new_street or community.street_id)
        if community.change(**changes):
            uow.publish(community_event(community))
        uow.commit()
        return community


# --- compounds ----------------------------------------------------------------------------------------
def create_compound(
    uow: GatewayUnitOfWork,
    principal: Principal,
    *,
    community_id: str,
    name: str,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Compound:
    with uow:
        community = uow.directory.get(Community, community_id)
        if community is None:
            raise Invalid("unknown community", fields={"community_id": ["no such community"]})
        _may_manage_street(principal, community.street_id)
        if uow.directory.find_by_name(Compound, name, community_id=community_id):
            raise Conflict(f"community already has a compound named {name!r}", fields={"name": ["already exists"]})
        compound = Compound(community_id=community_id, name=name, latitude=latitude, longitude=longitude)
        uow.directory.add(compound)
        uow.session.flush()
        uow.publish(compound_event(compound, community.street_id))
        uow.commit()
        return compound


def update_compound(uow: GatewayUnitOfWork, principal: Principal, compound_id: str, **changes: Any) -> Compound:
    with uow:
        compound = _get(uow, Compound, compound_id)
        community = _get(uow, Community, compound.community_id)
        _may_manage_street(principal, community.street_id)
        _check_unique(uow, compound, "community", name=changes.get("name"), community_id=compound.community_id)
        if compound.change(**changes):
            uow.publish(compound_event(compound, community.street_id))
        uow.commit()
        return compound


# --- reads and republishing --------------------------------------------------------------------------------
def get_entry(uow: GatewayUnitOfWork, kind: type, entry_id: str) -> Any:
    with uow:
        return _get(uow, kind, entry_id)


def list_entries(uow: GatewayUnitOfWork, kind: type, *, offset: int, limit: int, **filters: Any) -> tuple[list, int]:
    with uow:
        return uow.directory.list(kind, offset=offset, limit=limit, **filters)


def republish_directory(uow: GatewayUnitOfWork, chunk: int = 1000) -> int:
    """Write an upserted event for every entry to the outbox, so a new service builds its replica.

    Streets go first, then communities, then compounds; revisions are unchanged, so replicas that
    already hold an entry keep it as it is.
    """
    count = 0
    with uow:
        streets_of = {}
        for kind in (Street, Community, Compound):
            batch: list[Event] = []
            for entry in uow.directory.iterate(kind, chunk):
                if isinstance(entry, Street):
                    batch.append(street_event(entry))
                elif isinstance(entry, Community):
                    streets_of[entry.id] = entry.street_id
                    batch.append(community_event(entry))
                else:
                    batch.append(compound_event(entry, streets_of.get(entry.community_id)))
                if len(batch) >= chunk:
                    uow.publish(*batch)
                    count += len(batch)
                    batch = []
            uow.publish(*batch)
            count += len(batch)
        uow.commit()
    return count


def _check_unique(uow: GatewayUnitOfWork, entry: Any, parent_name: str, *, name: str | None, **parent: Any) -> None:
    """A change that would give the entry the name of another under the same parent is a 409 (the
    database would refuse it too, as a 500). Checked before changing, so nothing is flushed early."""
    target = name or entry.name
    if target == entry.name and all(getattr(entry, k) == v for k, v in parent.items()):
        return
    other = uow.directory.find_by_name(type(entry), target, **parent)
    if other is not None and other.id != entry.id:
        kind = type(entry).__name__.lower()
        raise Conflict(f"the {parent_name} already has a {kind} named {target!r}", fields={"name": ["already exists"]})


def _get(uow: GatewayUnitOfWork, kind: type, entry_id: str) -> Any:
    entry = uow.directory.get(kind, entry_id)
    if entry is None:
        raise NotFound(f"{kind.__name__.lower()} {entry_id} not found")
    return entry
