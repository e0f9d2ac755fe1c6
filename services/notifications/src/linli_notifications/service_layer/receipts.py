"""Delivery receipts (SMS providers' callbacks, JPush's Report API polled by the worker) and inbound
SMS replies. Idempotent: a receipt is stored once per provider and key, and a delivery only moves
forward (sent -> delivered | failed). FCM HTTP v1 has no delivery receipt to ask for."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.uow import UnitOfWork
from linli_notifications import SERVICE
from linli_notifications.adapters import repository
from linli_notifications.adapters.providers.jpush import JPush, ReportFailed
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.adapters.tables import attempts, deliveries, receipts, sms_opt_outs
from linli_notifications.domain.model import DeliveryState

log = logging.getLogger(__name__)
# Replies that mean "stop sending me SMS" (Chinese carriers' 退订/TD, and the English keywords).
STOP_WORDS = {"退订", "TD", "T", "N", "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP", "订阅"}


def record_receipt(
    uow: UnitOfWork,
    *,
    provider: str,
    dedup_key: str,
    message_id: str | None,
    address: str | None,
    delivered: bool | None,
    error_code: str | None,
    now: datetime,
) -> bool:
    """Apply one receipt; False when it was seen before. `delivered` None: an intermediate status."""
    with uow:
        session = uow.session
        status = "delivered" if delivered else ("failed" if delivered is False else "progress")
        fresh = repository.insert_ignore(
            session,
            receipts,
            [
                {
                    "provider": provider,
                    "dedup_key": dedup_key[:200],
                    "provider_message_id": message_id,
                    "status": status,
                    "error_code": error_code,
                    "received_at": now,
                }
            ],
            ["provider", "dedup_key"],
        )
        if not fresh:
            return False
        if delivered is not None and message_id:
            query = select(deliveries).where(
                deliveries.c.provider == provider, deliveries.c.provider_message_id == message_id
            )
            if address:
                query = query.where(deliveries.c.address.in_(_phone_forms(address)))
            for row in session.execute(query).mappings().all():
                if row["state"] not in (DeliveryState.SENT.value, DeliveryState.SENDING.value):
                    continue  # already final: a late or repeated receipt changes nothing
                state = DeliveryState.DELIVERED if delivered else DeliveryState.FAILED
                session.execute(
                    update(deliveries)
                    .where(deliveries.c.id == row["id"])
                    .values(state=state.value, finished_at=now, reason=None if delivered else f"receipt: {error_code}")
                )
                if not delivered:
                    uow.publish(
                        new_event(
                            "notifications.delivery.failed",
                            {
                                "notification_id": row["notification_id"] or row["id"],
                                "delivery_id": row["id"],
                                "recipient_id": row["user_id"] or "00000000-0000-0000-0000-000000000000",
                                "channel": row["channel"],
                                "providers_tried": row["providers_tried"],
                                "reason": f"provider receipt: {error_code or 'undelivered'}",
                                "attempts": row["attempts"],
                                "source_event_type": row["source_type"],
                            },
                            producer=SERVICE,
                            community_id=row["community_id"],
                        )
                    )
        uow.commit()
        return True


def inbound_reply(session: Session, *, provider: str, phone: str, text: str, now: datetime) -> str | None:
    """An SMS reply: STOP/退订 opts the number out at once (and holds back what is queued for it)."""
    word = (text or "").strip().upper()
    forms = _phone_forms(phone)
    if word in STOP_WORDS:
        rows = [{"phone": p, "provider": provider, "opted_out_at": now} for p in forms]
        repository.insert_ignore(session, sms_opt_outs, rows, ["phone"])
        session.execute(
            update(deliveries)
            .where(
                deliveries.c.address.in_(forms),
                deliveries.c.channel == "sms",
                deliveries.c.state == DeliveryState.PENDING.value,
                deliveries.c.urgent.is_(False),
            )
            .values(state=DeliveryState.SUPPRESSED.value, reason="sms opt-out", finished_at=now)
        )
        session.commit()
        return "opted_out"
    if word in START_WORDS:
        session.execute(delete(sms_opt_outs).where(sms_opt_outs.c.phone.in_(forms)))
        session.commit()
        return "opted_in"
    return None


def _phone_forms(phone: str) -> list[str]:
    """The ways one mainland number is written: 13800138000, +8613800138000, 8613800138000."""
    digits = phone.lstrip("+")
    forms = {phone, digits, "+" + digits}
    if digits.startswith("86") and len(digits) == 13:
        forms |= {digits[2:]}
    if len(digits) == 11 and digits.startswith("1"):
        forms |= {"+86" + digits, "86" + digits}
    return sorted(forms)


def poll_jpush_receipts(database: Database, jpush: JPush, now: datetime) -> int:
    """Ask JPush's Report API about the push deliveries it took in the last day; mark delivered the
    deliveries of every message that reached all the devices it was sent to. Returns how many.

    JPush counts receipts per message (msg_id), not per device, and one message can carry up to
    1,000 devices: a message counts as received once its count reaches the number of devices we
    sent it to (our attempts carry the msg_id); before that its deliveries stay `sent`. Idempotent:
    a receipt is stored once per msg_id and only `sent` deliveries move to `delivered`."""
    since = now - timedelta(days=1)
    with ReadSessions(database).reading() as session:
        targeted = dict(
            session.execute(
                select(attempts.c.request_id, func.count())
                .select_from(
                    deliveries.join(
                        attempts,
                        and_(
                            attempts.c.delivery_id == deliveries.c.id,
                            attempts.c.request_id == deliveries.c.provider_message_id,
                        ),
                    )
                )
                .where(
                    deliveries.c.provider == "jpush",
                    deliveries.c.channel == "push",
                    deliveries.c.state == DeliveryState.SENT.value,
                    deliveries.c.sent_at > since,
                    attempts.c.provider == "jpush",
                    attempts.c.outcome == "ok",
                )
                .group_by(attempts.c.request_id)
            ).all()
        )
    if not targeted:
        return 0
    try:
        received = jpush.received(sorted(targeted))
    except ReportFailed as exc:
        log.warning("JPush report unavailable", extra={"error": str(exc)})
        return 0
    done = [msg_id for msg_id, devices in targeted.items() if received.get(msg_id, 0) >= devices]
    if not done:
        return 0
    marked = 0
    with database.transaction() as session:
        repository.insert_ignore(
            session,
            receipts,
            [
                {
                    "provider": "jpush",
                    "dedup_key": f"{msg_id}|received",
                    "provider_message_id": msg_id,
                    "status": "delivered",
                    "error_code": None,
                    "received_at": now,
                }
                for msg_id in done
            ],
            ["provider", "dedup_key"],
        )
        marked = session.execute(
            update(deliveries)
            .where(
                deliveries.c.provider == "jpush",
                repository.among(session, deliveries.c.provider_message_id, done),
                deliveries.c.state == DeliveryState.SENT.value,
            )
            .values(state=DeliveryState.DELIVERED.value, finished_at=now)
        ).rowcount
    return marked
