"""Directory entries stored with SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linli_gateway.domain.directory import Community, Compound, Street

Entry = TypeVar("Entry", Street, Community, Compound)


class DirectoryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: Street | Community | Compound) -> None:
        self.session.add(entry)

    def get(self, kind: type[Entry], entry_id: str) -> Entry | None:
        return self.session.get(kind, entry_id)

    def find_by_name(self, kind: type[Entry], name: str, **parent: str | None) -> Entry | None:
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

    def iterate(self, kind: type[Entry], chunk: int = 1000) -> Iterator[Entry]:
        yield from self.session.scalars(select(kind).order_by(kind.id).execution_options(yield_per=chunk))
