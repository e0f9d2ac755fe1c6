"""The transactional outbox: events are rows written in the same transaction as the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CTE, Insert, Table, bindparam, insert
from sqlalchemy.orm import Session

from linli_kit.events.envelope import Event
from linli_kit.tables import NOTIFY_CHANNEL, drop_notify_trigger_ddl, notify_trigger_ddl

__all__ = ["NOTIFY_CHANNEL", "Outbox", "drop_notify_trigger_ddl", "notify_trigger_ddl"]


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._insert = insert(table)

    def rows(self, events: Iterable[Event]) -> list[dict]:
        return [
            {
                "event_id": e.id,
                "event_type": e.type,
                "payload": e.to_json(),
                "created_at": datetime.now(UTC),
                "published_at": None,
            }
            for e in events
        ]

    def add(self, session: Session, events: Iterable[Event]) -> None:
        rows = self.rows(events)
        # On the session's connection, in its transaction: a plain table needs none of the ORM's
        # execution, and the session's pending objects are flushed by the commit that follows
        # (in any order: no constraint ties the outbox to them). One event, one plain INSERT.
        if len(rows) == 1:
            session.connection().execute(self._insert, rows[0])
        elif rows:
            session.connection().execute(self._insert, rows)

    def insert_one_with(self, change: CTE) -> Insert:
        """A statement writing one event and `change` (an INSERT or UPDATE made a CTE: PostgreSQL
        only) together, so one round trip does both. Built once and run many times with the
        parameters of `change` and those of `one_row_parameters` (named `outbox_...`)."""
        return (
            insert(self.table)
            .values(
                event_id=bindparam("outbox_event_id"),
                event_type=bindparam("outbox_event_type"),
                payload=bindparam("outbox_payload"),
                created_at=bindparam("outbox_created_at"),
                published_at=None,
            )
            .add_cte(change)
        )

    def one_row_parameters(self, event: Event) -> dict[str, Any]:
        return {f"outbox_{k}": v for k, v in self.rows([event])[0].items() if k != "published_at"}
