"""Use cases of the directory: create and change streets, communities, compounds and organisations,
each change published as `directory.<kind>.upserted` through the outbox; and republishing everything."""

from __future__ import annotations

from typing import Any

from linli_gateway import SERVICE
from linli_gateway.domain.directory import Community, Compound, Organisation, Street, check_organisation_shape
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound, Text
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


def organisation_event(organisation: Organisation, place: tuple[str | None, str | None]) -> Event:
    """`place`: the street and community the organisation lies in, when it lies in one (routing)."""
    return new_event(
        "directory.organisation.upserted",
        {
            "organisation_id": organisation.id,
            "kind": organisation.kind,
            "name": organisation.name,
            "street_id": organisation.street_id,
            "community_id": organisation.community_id,
            "compound_ids": list(organisation.compound_ids),
            "parent_id": organisation.parent_id,
            "active": organisation.active,
            "revision": organisation.revision,
        },
        producer=SERVICE,
        street_id=place[0],
        community_id=place[1],
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
            raise Conflict("a street named {name!r} already exists", fields={"name": ["already exists"]}, name=name)
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
        _check_unique(uow, street, "city", name=changes.get("name"), city=changes.get("city") or street.city)
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
            raise Conflict(
                "street already has a community named {name!r}", fields={"name": ["already exists"]}, name=name
            )
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
            raise Conflict(
                "community already has a compound named {name!r}", fields={"name": ["already exists"]}, name=name
            )
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

    Streets go first, then communities, then compounds, then organisations; revisions are unchanged, so replicas that
    already hold an entry keep it as it is.
    """
    count = 0
    with uow:
        streets_of = {}
        for kind in (Street, Community, Compound, Organisation):
            batch: list[Event] = []
            for entry in uow.directory.iterate(kind, chunk):
                if isinstance(entry, Street):
                    batch.append(street_event(entry))
                elif isinstance(entry, Community):
                    streets_of[entry.id] = entry.street_id
                    batch.append(community_event(entry))
                elif isinstance(entry, Organisation):
                    batch.append(organisation_event(entry, _place(uow, entry)))
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


# --- organisations -------------------------------------------------------------------------------------
# The kinds each role registers: a city admin any (city-wide bureaus only them); a street official
# those of their street; community staff the bodies of their community's compounds and party.
_COMMUNITY_KINDS = frozenset({"property_company", "owners_committee", "party_organisation", "party_branch"})
Place = tuple[str | None, str | None]  # (street, community); community None: the street's own


def places_of(uow: GatewayUnitOfWork, organisation: Organisation, compound_ids: list[str] | None = None) -> list[Place]:
    """Where the organisation (or, given, just these of its compounds) lies; [] for city-wide."""
    places: list[Place] = []
    if compound_ids is None:
        compound_ids = organisation.compound_ids
        if organisation.community_id is not None:
            community = _get(uow, Community, organisation.community_id)
            places.append((community.street_id, community.id))
        elif organisation.street_id is not None:
            places.append((organisation.street_id, None))
    for compound_id in compound_ids:
        compound = uow.directory.get(Compound, compound_id)
        if compound is None:
            raise Invalid(
                "no compound {compound_id}",
                fields={"compound_ids": [Text("no such compound {compound_id}", compound_id=compound_id)]},
                compound_id=compound_id,
            )
        community = _get(uow, Community, compound.community_id)
        places.append((community.street_id, community.id))
    return places


def _place(uow: GatewayUnitOfWork, organisation: Organisation) -> Place:
    """The one street (and community) the organisation lies in, as far as there is one."""
    places = set(places_of(uow, organisation))
    streets = {street for street, _ in places}
    communities = {community for _, community in places}
    street = streets.pop() if len(streets) == 1 else None
    community = communities.pop() if len(communities) == 1 and street is not None else None
    return street, community


def may_manage_organisation(principal: Principal, kind: str, places: list[Place]) -> bool:
    if principal.role == Role.CITY_ADMIN:
        return True
    if not places:
        return False  # city-wide: a city admin's
    if principal.role == Role.STREET_OFFICIAL:
        return principal.street_id is not None and all(street == principal.street_id for street, _ in places)
    if principal.role == Role.COMMUNITY_STAFF:
        return kind in _COMMUNITY_KINDS and all(c is not None and c in principal.community_ids for _, c in places)
    return False


def _forbidden_organisation(kind: str) -> Forbidden:
    return Forbidden(
        "you may not manage this {kind}: a city admin manages city-wide bodies, a street official their "
        "street's, community staff the property companies, owners' committees and party bodies of their community",
        kind=Label("organisation_kind", kind),
    )


def create_organisation(
    uow: GatewayUnitOfWork,
    principal: Principal,
    *,
    kind: str,
    name: str,
    street_id: str | None = None,
    community_id: str | None = None,
    compound_ids: list[str] | None = None,
    parent_id: str | None = None,
) -> Organisation:
    principal.require_role(Role.CITY_ADMIN, Role.STREET_OFFICIAL, Role.COMMUNITY_STAFF)
    compound_ids = [str(c) for c in compound_ids or []]
    problems = check_organisation_shape(
        kind, street_id=street_id, community_id=community_id, compound_ids=compound_ids, parent_id=parent_id
    )
    if problems:
        raise Invalid("invalid organisation: {names}", fields=problems, names=", ".join(sorted(problems)))
    with uow:
        if street_id is not None and uow.directory.get(Street, street_id) is None:
            raise Invalid("unknown street", fields={"street_id": ["no such street"]})
        if community_id is not None and uow.directory.get(Community, community_id) is None:
            raise Invalid("unknown community", fields={"community_id": ["no such community"]})
        if kind == "owners_committee":
            compound = uow.directory.get(Compound, compound_ids[0])
            if compound is None:
                raise Invalid(
                    "unknown compound",
                    fields={"compound_ids": [Text("no such compound {compound_id}", compound_id=compound_ids[0])]},
                )
            community_id = compound.community_id
        if kind == "party_branch":
            street_id, community_id = _branch_place(uow, parent_id or "", street_id, community_id)
        organisation = Organisation(
            kind=kind,
            name=name,
            street_id=street_id,
            community_id=community_id,
            compound_ids=sorted(compound_ids),
            parent_id=parent_id,
        )
        if not may_manage_organisation(principal, kind, places_of(uow, organisation)):
            raise _forbidden_organisation(kind)
        _check_unique_organisation(uow, organisation, organisation.name, organisation.compound_ids)
        uow.directory.add(organisation)
        uow.session.flush()
        uow.directory.bind_compounds(organisation)
        uow.publish(organisation_event(organisation, _place(uow, organisation)))
        uow.commit()
        return organisation


def _branch_place(
    uow: GatewayUnitOfWork, parent_id: str, street_id: str | None, community_id: str | None
) -> tuple[str | None, str | None]:
    """A branch lies within its party organisation: where it says, else where the organisation is."""
    parent = uow.directory.get(Organisation, parent_id)
    if parent is None or parent.kind != "party_organisation":
        raise Invalid("unknown party organisation", fields={"parent_id": ["no such party organisation"]})
    if street_id is None and community_id is None:
        return parent.street_id, parent.community_id
    if community_id is not None:
        community = _get(uow, Community, community_id)
        street_id = None
        within = community.id == parent.community_id or (
            parent.community_id is None and community.street_id == parent.street_id
        )
    else:
        within = parent.community_id is None and street_id == parent.street_id
    if not within:
        raise Invalid(
            "a party branch lies within its party organisation",
            fields={"community_id" if community_id else "street_id": ["outside the parent party organisation"]},
        )
    return street_id, community_id


def update_organisation(
    uow: GatewayUnitOfWork,
    principal: Principal,
    organisation_id: str,
    *,
    name: str | None = None,
    active: bool | None = None,
    compound_ids: list[str] | None = None,
) -> Organisation:
    """Rename, (de)activate, or change the compounds a property company serves. Renaming or
    deactivating needs the whole organisation in your scope; binding or unbinding compounds needs
    only those compounds in it (community staff bind their compounds to a company that already
    serves others)."""
    from linli_gateway.service_layer.accounts import user_event

    with uow:
        organisation = _get(uow, Organisation, organisation_id)
        kind = organisation.kind
        whole = may_manage_organisation(principal, kind, places_of(uow, organisation))
        if compound_ids is not None:
            compound_ids = sorted({str(c) for c in compound_ids})
            if kind != "property_company":
                raise Invalid(
                    "only a property company's compounds change",
                    fields={
                        "compound_ids": [
                            Text("the compounds of a {kind} do not change", kind=Label("organisation_kind", kind))
                        ]
                    },
                )
            changed = sorted(set(compound_ids) ^ set(organisation.compound_ids))
            if not may_manage_organisation(principal, kind, places_of(uow, organisation, changed)) and not whole:
                raise _forbidden_organisation(kind)
            if not compound_ids:
                raise Invalid(
                    "a property company serves at least one compound (deactivate it instead)",
                    fields={"compound_ids": ["at least one compound"]},
                )
        if (name is not None or active is not None or compound_ids is None) and not whole:
            raise _forbidden_organisation(kind)
        _check_unique_organisation(uow, organisation, name or organisation.name, compound_ids or [])
        renamed = name is not None and name != organisation.name
        if organisation.change(name=name, active=active, compound_ids=compound_ids):
            if compound_ids is not None:
                uow.directory.bind_compounds(organisation)
            uow.publish(organisation_event(organisation, _place(uow, organisation)))
        if renamed:
            # Accounts acting for it carry its name: they follow the register.
            for user in uow.accounts.users_of_organisation(organisation.id):
                user.organisation_name = organisation.name
                user.touch()
                uow.publish(user_event("updated", user))
        uow.commit()
        return organisation


def list_organisations(
    uow: GatewayUnitOfWork, *, offset: int, limit: int, **filters: Any
) -> tuple[list[Organisation], int]:
    with uow:
        return uow.directory.list_organisations(offset=offset, limit=limit, **filters)


def _check_unique_organisation(
    uow: GatewayUnitOfWork, organisation: Organisation, name: str, compound_ids: list[str]
) -> None:
    """A property company's name is the city's (one company, serving compounds anywhere); any other
    organisation's name is unique among its kind where it lies. A compound has one property company
    and one owners' committee."""
    kind = organisation.kind
    if kind == "property_company":
        other = uow.directory.find_by_name(Organisation, name, kind=kind)
    else:
        other = uow.directory.find_by_name(
            Organisation, name, kind=kind, street_id=organisation.street_id, community_id=organisation.community_id
        )
    if other is not None and other.id != organisation.id:
        hint = Text(" (id {id}: bind your compounds to it)", id=other.id) if kind == "property_company" else ""
        raise Conflict(
            "a {kind} named {name!r} exists{hint}",
            fields={"name": ["already exists"]},
            kind=Label("organisation_kind", kind),
            name=name,
            hint=hint,
        )
    taken = {
        compound: holder
        for compound, holder in uow.directory.organisations_of_compounds(kind, compound_ids).items()
        if holder != organisation.id
    }
    if taken:
        body = Label("organisation_kind", kind)
        raise Conflict(
            "a compound has its {body} already",
            fields={"compound_ids": [f"{c} already has one ({holder})" for c, holder in sorted(taken.items())]},
            body=body,
        )


def _check_unique(uow: GatewayUnitOfWork, entry: Any, parent_name: str, *, name: str | None, **parent: Any) -> None:
    """A change that would give the entry the name of another under the same parent is a 409 (the
    database would refuse it too, as a 500). Checked before changing, so nothing is flushed early."""
    target = name or entry.name
    if target == entry.name and all(getattr(entry, k) == v for k, v in parent.items()):
        return
    other = uow.directory.find_by_name(type(entry), target, **parent)
    if other is not None and other.id != entry.id:
        kind = type(entry).__name__.lower()
        raise Conflict(
            "the {parent_name} already has a {kind} named {target!r}",
            fields={"name": ["already exists"]},
            parent_name=Label("directory_entry", parent_name),
            kind=Label("directory_entry", kind),
            target=target,
        )


def _get(uow: GatewayUnitOfWork, kind: type, entry_id: str) -> Any:
    entry = uow.directory.get(kind, entry_id)
    if entry is None:
        raise NotFound(
            "{kind} {entry_id} not found", kind=Label("directory_entry", kind.__name__.lower()), entry_id=entry_id
        )
    return entry
