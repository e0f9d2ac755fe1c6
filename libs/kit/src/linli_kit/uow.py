"""A unit of work whose commit stores the state change and the events it raised together."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import Executable, event
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.events.envelope import Event
from linli_kit.events.outbox import Outbox


class ReadingOnly(RuntimeError):
    """A change was attempted in a unit of work opened for reading: a programming error."""


# A reading unit of work marks its session so (in its `info`); one listener on every session
# refuses the flushes of marked ones. Registering a listener on each reading session instead cost
# a read more than its own statement's set-up.
_READING = "linli.reading"


def _refuse_writing(session: Session, _flush_context: Any, _instances: Any) -> None:
    if session.info.get(_READING):
        raise ReadingOnly("a reading unit of work writes nothing")


event.listen(Session, "before_flush", _refuse_writing)


class UnitOfWork:
    """Use as `with uow: ...; uow.commit()`. Leaving the block without commit rolls everything back."""

    session: Session

    def __init__(self, database: Database, outbox: Outbox) -> None:
        self._database = database
        self._outbox = outbox
        self._pending: list[Event] = []
        self._reading = False

    def reading(self) -> Self:
        """This unit of work only reads (`Database.reading_session`: on PostgreSQL no transaction
        round trips): committing, publishing or flushing a change in it is refused."""
        self._reading = True
        return self

    def __enter__(self) -> Self:
        if self._reading:
            self.session = self._database.reading_session()
            self.session.info[_READING] = True
        else:
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
        if self._reading:
            raise ReadingOnly("a reading unit of work publishes no event")
        self._pending.extend(events)

    def commit(self) -> None:
        if self._reading:
            raise ReadingOnly("a reading unit of work commits nothing")
        self._outbox.add(self.session, self._pending)
        self.session.commit()
        self._pending = []

    def commit_with(self, statement: Executable, parameters: dict[str, Any]) -> None:
        """Commit, writing the one pending event in `statement`, made by `Outbox.insert_one_with`
        with a change of the caller's (PostgreSQL only): a hot path spares a round trip while it
        holds a row lock. `parameters` are the change's."""
        if len(self._pending) != 1:
            raise ValueError("commit_with writes exactly one event")
        self.session.execute(statement, {**parameters, **self._outbox.one_row_parameters(self._pending[0])})
        self.session.commit()
        self._pending = []

    def take_pending(self) -> list[Event]:
        """The events published so far, handed to the caller to write in its own statement of
        this transaction (e.g. with the change they describe: one round trip for both); the
        commit no longer writes them."""
        if self._reading:
            raise ReadingOnly("a reading unit of work publishes no event")
        taken, self._pending = self._pending, []
        return taken

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def rollback(self) -> None:
        self.session.rollback()
        self._pending = []
