"""The transactional outbox: events are rows written in the same transaction as the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from linli_kit.events.envelope import Event


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table

    def add(self, session: Session, events: Iterable[Event]) -> None:
        rows = [
            {
                "event_id": e.id,
                "event_type": e.type,
                "payload": e.to_json(),
                "created_at": datetime.now(UTC),
                "published_at": None,
            }
            for e in events
        ]
        if rows:
            session.execute(insert(self.table), rows)
