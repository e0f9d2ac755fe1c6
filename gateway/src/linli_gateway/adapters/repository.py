"""Directory entries stored with SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from linli_gateway.adapters.tables import compounds, organisation_compounds
from linli_gateway.domain.directory import Community, Compound, Organisation, Street

Entry = TypeVar("Entry", Street, Community, Compound, Organisation)


class DirectoryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: Street | Community | Compound | Organisation) -> None:
        self.session.add(entry)

    def get(self, kind: type[Entry], entry_id: str) -> Entry | None:
        return self.session.get(kind, entry_id)

    def find_by_name(self, kind: type[Entry], name: str, /, **parent: str | None) -> Entry | None:
        query = select(kind).where(kind.name == name)
        for attribute, value in parent.items():
            query = query.where(getattr(kind, attribute) == value)
        return self.session.scalars(query).first()

    def list(self, kind: type[Entry], *, offset: int, limit: int, **filters: str | None) -> tuple[list[Entry], int]:
        query = select(kind)
        for attribute, value in filters.items():
            if value is not None:
                query = query.where(getattr(kind, attribute) == value)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(kind.name, kind.id).offset(offset).limit(limit)).all()
        return list(rows), total

    def names(self, kind: type[Entry], **filters: str | None) -> dict[str, str]:
        """id -> name of the entries that match, without loading them (an overview names 100)."""
        query = select(kind.id, kind.name)
        for attribute, value in filters.items():
            if value is not None:
                query = query.where(getattr(kind, attribute) == value)
        return {entry_id: name for entry_id, name in self.session.execute(query)}

    def iterate(self, kind: type[Entry], chunk: int = 1000) -> Iterator[Entry]:
        yield from self.session.scalars(select(kind).order_by(kind.id).execution_options(yield_per=chunk))

    # --- organisations ---------------------------------------------------------------------------
    def bind_compounds(self, organisation: Organisation) -> None:
        """Make the compound index say what `organisation.compound_ids` says."""
        table = organisation_compounds
        self.session.execute(delete(table).where(table.c.organisation_id == organisation.id))
        if organisation.compound_ids:
            self.session.execute(
                insert(table),
                [
                    {"organisation_id": organisation.id, "compound_id": c, "kind": organisation.kind}
                    for c in organisation.compound_ids
                ],
            )

    def organisations_of_compounds(self, kind: str, compound_ids: list[str]) -> dict[str, str]:
        """compound -> the organisation of `kind` bound to it, for those of `compound_ids` that have one."""
        table = organisation_compounds
        rows = self.session.execute(
            select(table.c.compound_id, table.c.organisation_id).where(
                table.c.kind == kind, table.c.compound_id.in_(compound_ids)
            )
        )
        return {compound: organisation for compound, organisation in rows}

    def list_organisations(
        self,
        *,
        offset: int,
        limit: int,
        kind: str | None = None,
        street_id: str | None = None,
        community_id: str | None = None,
        compound_id: str | None = None,
        name: str | None = None,
        active: bool | None = None,
    ) -> tuple[list[Organisation], int]:
        """Organisations by kind, by where they are (a community's: its own and those serving its
        compounds; a street's: the same for each of its communities, and the street's own), by a
        part of their name."""
        o, bound = Organisation, organisation_compounds
        query = select(o)
        if kind is not None:
            query = query.where(o.kind == kind)
        if active is not None:
            query = query.where(o.active == active)
        if name:
            query = query.where(func.lower(o.name).contains(name.lower(), autoescape=True))
        if compound_id is not None:
            query = query.where(o.id.in_(select(bound.c.organisation_id).where(bound.c.compound_id == compound_id)))
        if community_id is not None:
            serving = (
                select(bound.c.organisation_id)
                .join(compounds, compounds.c.id == bound.c.compound_id)
                .where(compounds.c.community_id == community_id)
            )
            query = query.where(or_(o.community_id == community_id, o.id.in_(serving)))
        if street_id is not None:
            of_street = select(Community.id).where(Community.street_id == street_id)
            serving = (
                select(bound.c.organisation_id)
                .join(compounds, compounds.c.id == bound.c.compound_id)
                .where(compounds.c.community_id.in_(of_street))
            )
            query = query.where(or_(o.street_id == street_id, o.community_id.in_(of_street), o.id.in_(serving)))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(o.name, o.id).offset(offset).limit(limit)).all()
        return list(rows), total
