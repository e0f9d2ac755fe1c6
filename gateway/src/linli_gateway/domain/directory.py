"""The city's directory: streets, their communities, the compounds of each community, and the
organisations that take part in governing them (property companies, owners' committees, bureaus and
agencies, party organisations and their branches).

Every change raises the entry's revision, so replicas in other services can tell a newer version
from an older one that arrives late.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Street:
    name: str
    city: str | None = None
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, city: str | None = None) -> bool:
        changed = _apply(self, name=name, city=city)
        if changed:
            self.revision += 1
        return changed


@dataclass
class Community:
    street_id: str
    name: str
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, street_id: str | None = None) -> bool:
        changed = _apply(self, name=name, street_id=street_id)
        if changed:
            self.revision += 1
        return changed


@dataclass
class Compound:
    community_id: str
    name: str
    latitude: float | None = None
    longitude: float | None = None
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, latitude: float | None = None, longitude: float | None = None) -> bool:
        changed = _apply(self, name=name, latitude=latitude, longitude=longitude)
        if changed:
            self.revision += 1
        return changed


# Where each kind of organisation belongs (the same kinds as the `directory.organisation.upserted`
# contract): property companies serve compounds; an owners' committee is one compound's; bureaus
# and agencies are city-wide (no street) or a street's; a party organisation is a street's or a
# community's, and its branches lie within it.
ORGANISATION_KINDS = (
    "property_company",
    "owners_committee",
    "bureau",
    "agency",
    "party_organisation",
    "party_branch",
)
# Which organisations an account of a role may act for.
ORGANISATION_KINDS_OF_ROLE = {
    "property_manager": ("property_company",),
    "agency": ("bureau", "agency"),
}


@dataclass
class Organisation:
    kind: str
    name: str
    street_id: str | None = None
    community_id: str | None = None
    compound_ids: list[str] = field(default_factory=list)
    parent_id: str | None = None
    active: bool = True
    id: str = field(default_factory=new_id)
    revision: int = 1

    @property
    def city_wide(self) -> bool:
        return self.street_id is None and self.community_id is None and not self.compound_ids

    def change(
        self, *, name: str | None = None, active: bool | None = None, compound_ids: list[str] | None = None
    ) -> bool:
        changed = _apply(self, name=name, active=active)
        if compound_ids is not None and sorted(compound_ids) != sorted(self.compound_ids):
            self.compound_ids = sorted(set(compound_ids))
            changed = True
        if changed:
            self.revision += 1
        return changed


def check_organisation_shape(
    kind: str,
    *,
    street_id: str | None,
    community_id: str | None,
    compound_ids: list[str],
    parent_id: str | None,
) -> dict[str, list[str]]:
    """What is wrong with where an organisation of `kind` is placed (field -> messages); empty if fine."""
    problems: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if kind not in ORGANISATION_KINDS:
        refuse("kind", f"must be one of {', '.join(ORGANISATION_KINDS)}")
        return problems
    if len(set(compound_ids)) != len(compound_ids):
        refuse("compound_ids", "a compound is named twice")
    if kind == "property_company":
        if not compound_ids:
            refuse("compound_ids", "a property company serves at least one compound")
        for name, value in (("street_id", street_id), ("community_id", community_id)):
            if value is not None:
                refuse(name, "a property company is placed by the compounds it serves")
    elif kind == "owners_committee":
        if len(compound_ids) != 1:
            refuse("compound_ids", "an owners' committee belongs to exactly one compound")
        for name, value in (("street_id", street_id), ("community_id", community_id)):
            if value is not None:
                refuse(name, "an owners' committee is placed by its compound")
    else:
        if compound_ids:
            refuse("compound_ids", f"a {kind} is not bound to compounds")
        if kind in {"bureau", "agency"} and community_id is not None:
            refuse("community_id", f"a {kind} is city-wide or a street's, not a community's")
        if kind == "party_organisation" and (street_id is None) == (community_id is None):
            refuse("street_id", "a party organisation belongs to a street or to a community (one of them)")
        if kind == "party_branch" and parent_id is None:
            refuse("parent_id", "a party branch belongs to a party organisation")
    if kind != "party_branch" and parent_id is not None:
        refuse("parent_id", "only a party branch has a parent organisation")
    return problems


def _apply(entry: object, **changes: object) -> bool:
    changed = False
    for attribute, value in changes.items():
        if value is not None and getattr(entry, attribute) != value:
            setattr(entry, attribute, value)
            changed = True
    return changed
