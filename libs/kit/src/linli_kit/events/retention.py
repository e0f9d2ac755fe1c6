"""How long a service keeps its outbox and inbox rows, and the pruning that enforces it.

Outbox: a row is kept until published (never pruned before) and then for OUTBOX_RETENTION_HOURS,
for inspection. Rows of events with personal data lose that data when published already (see the
relay); pruning removes what is left.

Inbox: a row (consumer, event id) is what recognises a redelivered event, so it must be kept at
least as long as a redelivery of that event could still arrive, or the redelivery is handled a
second time. A redelivery comes (1) from the broker, for a message whose ack was lost (the worker
died between its commit and its ack): it comes back when a consumer of the service next connects,
which after an outage is as late as the outage is long; (2) from the producer's relay, for a row
the broker confirmed but whose mark failed: sent again when that relay next reaches both its
database and the broker; (3) from an operator replaying dead letters or unrouted events, which
may include events that were handled but whose acks were lost until the delivery limit. So the
inbox keeps its rows for INBOX_RETENTION_DAYS (default 30, at least 1): longer than an outage a
deployment expects to ride out, plus the time an operator takes to replay.

Each pass deletes in bounded chunks, each its own short transaction, with a pause between chunks:
on SQLite a write transaction locks the whole database, and the web processes must get their turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.events.catalogue import CATALOGUE
from linli_kit.events.relay import is_redacted, redact
from linli_kit.tables import MessagingTables

log = logging.getLogger(__name__)

CHUNK_POSTGRESQL = 5000
CHUNK_SQLITE = 1000  # a few milliseconds of write lock
PAUSE_BETWEEN_CHUNKS = 0.05
PRUNE_INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class Pruned:
    outbox: int
    inbox: int


class MessagingRetention:
    def __init__(
        self,
        database: Database,
        tables: MessagingTables,
        *,
        outbox_retention: timedelta,
        inbox_retention: timedelta,
        service: str,
        interval_seconds: float = PRUNE_INTERVAL_SECONDS,
        chunk: int | None = None,
    ) -> None:
        self.database = database
        self.tables = tables
        self.outbox_retention = outbox_retention
        self.inbox_retention = inbox_retention
        self.service = service
        self.interval_seconds = interval_seconds
        self.chunk = chunk or (CHUNK_SQLITE if database.is_sqlite else CHUNK_POSTGRESQL)

    def run(self, stop: threading.Event) -> None:
        """Blank what an older relay left, then prune now and every `interval_seconds` until `stop`."""
        try:
            redacted = self.redact_published(stop)
            if redacted:
                log.info("blanked personal data of published events", extra={"service": self.service, "rows": redacted})
        except SQLAlchemyError as exc:
            log.warning("blanking published personal data failed", extra={"service": self.service, "error": repr(exc)})
        while not stop.is_set():
            try:
                pruned = self.prune(stop)
                if pruned.outbox or pruned.inbox:
                    log.info(
                        "pruned messaging rows",
                        extra={"service": self.service, "outbox": pruned.outbox, "inbox": pruned.inbox},
                    )
            except SQLAlchemyError as exc:
                log.warning("pruning messaging rows failed", extra={"service": self.service, "error": repr(exc)})
            stop.wait(self.interval_seconds)

    def prune(self, stop: threading.Event | None = None, now: datetime | None = None) -> Pruned:
        """Delete every row past its retention, a chunk per transaction; returns how many."""
        now = now or datetime.now(UTC)
        outbox = self._prune_all(self._outbox_chunk, now - self.outbox_retention, stop)
        inbox = self._prune_all(self._inbox_chunk, now - self.inbox_retention, stop)
        return Pruned(outbox, inbox)

    def redact_published(self, stop: threading.Event | None = None) -> int:
        """Blank the data of published events of personal types that still carry it: rows published
        by a relay from before redaction existed (the relay now blanks them as it marks them). Reads
        without a write lock; each chunk's update is its own short transaction. Returns how many."""
        outbox = self.tables.outbox
        personal = sorted(CATALOGUE.personal_types())
        total, after = 0, None
        while personal:
            query = select(outbox.c.id, outbox.c.payload).where(
                outbox.c.published_at.is_not(None), outbox.c.event_type.in_(personal)
            )
            if after is not None:
                query = query.where(outbox.c.id > after)
            with self.database.reading() as conn:
                rows = conn.execute(query.order_by(outbox.c.id).limit(self.chunk)).all()
            exposed = [row for row in rows if not is_redacted(row.payload)]
            if exposed:
                with self.database.transaction() as session:
                    session.execute(
                        update(outbox).where(outbox.c.id == bindparam("row_id")).values(payload=bindparam("blank")),
                        [{"row_id": row.id, "blank": redact(row.payload)} for row in exposed],
                    )
                total += len(exposed)
            if len(rows) < self.chunk or (stop is not None and stop.wait(PAUSE_BETWEEN_CHUNKS)):
                return total
            after = rows[-1].id
        return total

    def _prune_all(
        self, chunk: Callable[[Session, datetime], int], cutoff: datetime, stop: threading.Event | None
    ) -> int:
        total = 0
        while True:
            with self.database.transaction() as session:
                deleted = chunk(session, cutoff)
            total += deleted
            if deleted < self.chunk:
                return total
            # Let the writers waiting for the lock in before the next chunk.
            if stop is not None and stop.wait(PAUSE_BETWEEN_CHUNKS):
                return total

    def _outbox_chunk(self, session: Session, cutoff: datetime) -> int:
        outbox = self.tables.outbox
        # Only published rows: an unpublished row is never pruned, however old.
        doomed = select(outbox.c.id).where(outbox.c.published_at < cutoff).limit(self.chunk)
        return session.execute(delete(outbox).where(outbox.c.id.in_(doomed.scalar_subquery()))).rowcount or 0

    def _inbox_chunk(self, session: Session, cutoff: datetime) -> int:
        inbox = self.tables.inbox
        doomed = select(inbox.c.consumer, inbox.c.event_id).where(inbox.c.handled_at < cutoff).limit(self.chunk)
        return (
            session.execute(delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(doomed))).rowcount or 0
        )
