"""A unit of work whose commit stores the state change and the events it raised together."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import CTE
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.events.envelope import Event
from linli_kit.events.outbox import Outbox


class UnitOfWork:
    """Use as `with uow: ...; uow.commit()`. Leaving the block without commit rolls everything back."""

    session: Session

    def __init__(self, database: Database, outbox: Outbox) -> None:
        self._database = database
        self._outbox = outbox
        self._pending: list[Event] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._database.session()
        self._pending = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back whatever was not committed and detaches the loaded objects without
        # expiring them, so what a use case returns stays readable after the block.
        self.session.close()
        self._pending = []

    def publish(self, *events: Event) -> None:
        self._pending.extend(events)

    def commit(self) -> None:
        self._outbox.add(self.session, self._pending)
        self.session.commit()
        self._pending = []

    def commit_with(self, change: CTE) -> None:
        """Commit, writing the pending events in the same statement as `change` (an INSERT or UPDATE
        made a CTE; PostgreSQL only): a hot path spares a round trip while it holds a row lock."""
        self._outbox.add_with(self.session, self._pending, change)
        self.session.commit()
        self._pending = []

    def rollback(self) -> None:
        self.session.rollback()
        self._pending = []
