"""The transactional outbox: events are rows written in the same transaction as the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import CTE, Table, insert
from sqlalchemy.orm import Session

from linli_kit.events.envelope import Event


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table

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
        if rows:
            session.execute(insert(self.table), rows)

    def add_with(self, session: Session, events: Iterable[Event], change: CTE) -> None:
        """Write `events` and `change` (an INSERT or UPDATE made a CTE: PostgreSQL only) in one
        statement, so one round trip to the database does both."""
        rows = self.rows(events)
        if not rows:
            raise ValueError("add_with needs at least one event")
        session.execute(insert(self.table).values(rows).add_cte(change))
