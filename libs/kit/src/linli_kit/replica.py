"""The local replica of the gateway's directory, kept by every service from `directory.*.upserted`.

Events may arrive out of order or twice: a row is only replaced by a higher revision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from linli_kit.events.consumer import Handler
from linli_kit.events.envelope import Event
from linli_kit.tables import ReplicaTables

ORGANISATION_COLUMNS = [
    "organisation_id",
    "kind",
    "name",
    "street_id",
    "community_id",
    "compound_ids",
    "parent_id",
    "active",
    "revision",
]
_DEFAULTS: dict[str, Any] = {"compound_ids": [], "active": True}


def _upsert_by_revision(table: Table, key: str, columns: list[str]) -> Handler:
    def handle(session: Session, event: Event) -> None:
        row: dict[str, Any] = {c: event.data.get(c, _DEFAULTS.get(c)) for c in columns}
        current = session.scalar(select(table.c.revision).where(table.c[key] == row[key]))
        if current is None:
            session.execute(insert(table).values(**row))
        elif current < row["revision"]:
            # Guarded: a copy of this worker may have stored a newer revision since the read above.
            session.execute(
                update(table).where(table.c[key] == row[key], table.c.revision < row["revision"]).values(**row)
            )

    return handle


def replica_handlers(tables: ReplicaTables) -> dict[str, Handler]:
    handlers = {
        "directory.street.upserted": _upsert_by_revision(
            tables.streets, "street_id", ["street_id", "name", "city", "revision"]
        ),
        "directory.community.upserted": _upsert_by_revision(
            tables.communities, "community_id", ["community_id", "street_id", "name", "revision"]
        ),
        "directory.compound.upserted": _upsert_by_revision(
            tables.compounds,
            "compound_id",
            ["compound_id", "community_id", "name", "latitude", "longitude", "revision"],
        ),
    }
    if tables.organisations is not None:
        handlers["directory.organisation.upserted"] = _upsert_by_revision(
            tables.organisations, "organisation_id", ORGANISATION_COLUMNS
        )
    return handlers


class DirectoryReplica:
    """Read side of the replica, for scoping requests (which street is this community in?)."""

    def __init__(self, tables: ReplicaTables, session_factory: Callable[[], Session]) -> None:
        self.tables = tables
        self._session_factory = session_factory

    def street_of(self, community_id: str) -> str | None:
        with self._session_factory() as session:
            return session.scalar(
                select(self.tables.communities.c.street_id).where(
                    self.tables.communities.c.community_id == community_id
                )
            )

    def communities_of_street(self, street_id: str) -> list[str]:
        with self._session_factory() as session:
            return list(
                session.scalars(
                    select(self.tables.communities.c.community_id).where(
                        self.tables.communities.c.street_id == street_id
                    )
                )
            )

    def organisation(self, organisation_id: str) -> dict[str, Any] | None:
        """The replicated organisation (as `directory.organisation.upserted` has it), or None; needs
        a replica made with `organisations=True`."""
        if self.tables.organisations is None:
            raise LookupError("this replica does not keep organisations")
        with self._session_factory() as session:
            row = session.execute(
                select(self.tables.organisations).where(self.tables.organisations.c.organisation_id == organisation_id)
            ).first()
            return dict(row._mapping) if row else None

    def community_of_compound(self, compound_id: str) -> str | None:
        with self._session_factory() as session:
            return session.scalar(
                select(self.tables.compounds.c.community_id).where(self.tables.compounds.c.compound_id == compound_id)
            )
