"""Retention of this service's own personal data, pruned by the worker (timer `retention`).

- A delivery keeps its phone number (`address`) for `RETENTION_SMS_ADDRESS_DAYS`; then the number
  is cleared, its mask kept (`address_hint`, 138****8000), and its attempts' provider messages
  (which may quote the number) wiped. The delivery itself stays: states and counts feed the
  statistics. One-time codes' parameters are wiped as soon as their delivery ends (delivery.py).
- Provider receipts (Alibaba Cloud's key carries the number) are deleted after
  `RETENTION_RECEIPTS_DAYS`: they only keep a repeated callback from counting twice.
- Inbox entries the person has read are deleted after `RETENTION_READ_NOTIFICATIONS_DAYS`.

Each step reads a batch of ids without a write lock, then writes it in a short transaction of its
own (SQLite has one write lock; nothing waits long behind a prune), until nothing is left or
`max_batches` were done (the rest waits for the next tick).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from linli_kit.db import Database
from linli_notifications.adapters import repository
from linli_notifications.adapters.providers.log import mask
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.adapters.tables import attempts, deliveries, notifications, receipts
from linli_notifications.config import Retention
from linli_notifications.domain.model import DeliveryState

IN_FLIGHT = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)


@dataclass
class Pruned:
    addresses: int = 0
    receipts: int = 0
    notifications: int = 0


def prune(database: Database, retention: Retention, now: datetime, max_batches: int = 20) -> Pruned:
    """One pass of every retention rule; returns how many rows each touched."""
    reads = ReadSessions(database)
    done = Pruned()
    address_cutoff = now - timedelta(days=retention.sms_address_days)
    receipt_cutoff = now - timedelta(days=retention.receipts_days)
    read_cutoff = now - timedelta(days=retention.read_notifications_days)
    for _ in range(max_batches):
        with reads.reading() as session:
            rows = session.execute(
                select(deliveries.c.id, deliveries.c.address)
                .where(
                    deliveries.c.address.isnot(None),  # the partial index's own condition
                    deliveries.c.created_at < address_cutoff,
                    deliveries.c.state.notin_(IN_FLIGHT),  # a number still to be used is kept
                )
                .order_by(deliveries.c.created_at)
                .limit(retention.batch)
            ).all()
        if rows:
            masked = [{"id": r.id, "address": None, "address_hint": mask(r.address)} for r in rows]
            with database.transaction() as session:
                repository.bulk_update(session, deliveries, masked, "id")
                session.execute(
                    update(attempts)
                    .where(repository.among(session, attempts.c.delivery_id, [r.id for r in rows]))
                    .values(error_message=None)
                )
            done.addresses += len(rows)
        if len(rows) < retention.batch:
            break
    for _ in range(max_batches):
        with reads.reading() as session:
            # Among the oldest ids only (receipts come in time order): no scan of the whole table
            # when nothing is old enough, and no index kept for this alone.
            oldest = select(receipts.c.id).order_by(receipts.c.id).limit(retention.batch).scalar_subquery()
            ids = list(
                session.scalars(
                    select(receipts.c.id).where(receipts.c.id.in_(oldest), receipts.c.received_at < receipt_cutoff)
                )
            )
        if ids:
            with database.transaction() as session:
                session.execute(delete(receipts).where(repository.among(session, receipts.c.id, ids)))
            done.receipts += len(ids)
        if len(ids) < retention.batch:
            break
    for _ in range(max_batches):
        with reads.reading() as session:
            ids = list(
                session.scalars(
                    select(notifications.c.id)
                    .where(notifications.c.read_at.isnot(None), notifications.c.read_at < read_cutoff)
                    .order_by(notifications.c.read_at)
                    .limit(retention.batch)
                )
            )
        if ids:
            with database.transaction() as session:
                session.execute(delete(notifications).where(repository.among(session, notifications.c.id, ids)))
            done.notifications += len(ids)
        if len(ids) < retention.batch:
            break
    return done
