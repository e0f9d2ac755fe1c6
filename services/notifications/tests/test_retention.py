"""Retention of the service's own personal data (issue 12), on PostgreSQL and on SQLite: phone
numbers of old deliveries masked, their provider messages wiped, old receipts and old read notices
deleted, in short batches; nothing younger, nothing still to be sent."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from linli_notifications.adapters.tables import attempts, deliveries, notifications, receipts, recipients
from linli_notifications.config import Retention, load_config
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.planning import plan
from linli_notifications.service_layer.retention import prune

TZ = "Asia/Shanghai"


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request):
    return request.getfixturevalue("database" if request.param == "postgresql" else "sqlite_database")


def told(db, clock, n, *, days_ago, state="sent", read_days_ago=None):
    """n people told something `days_ago`, by SMS (with an attempt quoting the number)."""
    people = [str(uuid.uuid4()) for _ in range(n)]
    source = str(uuid.uuid4())
    then = clock() - timedelta(days=days_ago)
    with db.transaction() as s:
        s.execute(
            insert(recipients),
            [
                {
                    "user_id": p,
                    "role": "resident",
                    "display_name": "x",
                    "phone": f"+86138{i:08d}",
                    "locale": "zh-CN",
                    "active": True,
                    "revision": 1,
                    "updated_at": then,
                }
                for i, p in enumerate(people)
            ],
        )
        intent = Intent(
            source_key=source,
            source_type="test",
            kind="registration.promoted",
            category=Category.REGISTRATION,
            user_ids=tuple(people),
            params={"title": "亲子运动会", "when_at": "2026-11-30T01:00:00Z"},
            channels=frozenset({Channel.SMS}),
        )
        plan(s, intent, then, TZ)
        s.execute(update(deliveries).where(deliveries.c.batch_key == source).values(state=state))
        read_at = None if read_days_ago is None else clock() - timedelta(days=read_days_ago)
        s.execute(update(notifications).where(notifications.c.source_key == source).values(read_at=read_at))
        ids = list(s.scalars(select(deliveries.c.id).where(deliveries.c.batch_key == source)))
        s.execute(
            insert(attempts),
            [
                {
                    "delivery_id": d,
                    "provider": "twilio",
                    "started_at": then,
                    "latency_ms": 5,
                    "outcome": "permanent",
                    "error_code": "21211",
                    "error_message": "The 'To' number +8613800000000 is not a valid phone number.",
                }
                for d in ids
            ],
        )
    return source


def rows(db, source):
    with db.session() as s:
        return (
            s.execute(
                select(deliveries.c.address, deliveries.c.address_hint, attempts.c.error_message)
                .join(attempts, attempts.c.delivery_id == deliveries.c.id)
                .where(deliveries.c.batch_key == source)
            )
            .mappings()
            .all()
        )


def inbox_count(db, source):
    with db.session() as s:
        return len(s.scalars(select(notifications.c.id).where(notifications.c.source_key == source)).all())


def test_personal_data_is_pruned_after_its_retention_in_short_batches(db, clock):
    old = told(db, clock, 5, days_ago=31, read_days_ago=200)
    still_pending = told(db, clock, 1, days_ago=31, state="pending", read_days_ago=10)
    young = told(db, clock, 2, days_ago=29)
    with db.transaction() as s:
        s.execute(
            insert(receipts),
            [
                {
                    "provider": "aliyun",
                    "dedup_key": f"biz{i}|1380013800{i}|2026-10-01 10:00:05",
                    "status": "delivered",
                    "received_at": clock() - timedelta(days=days),
                }
                for i, days in enumerate((40, 35, 31, 2))
            ],
        )
    retention = Retention(sms_address_days=30, receipts_days=30, read_notifications_days=180, batch=2)

    pruned = prune(db, retention, clock())
    assert (pruned.addresses, pruned.receipts, pruned.notifications) == (5, 3, 5)
    masked = rows(db, old)
    assert {r["address"] for r in masked} == {None}
    assert {r["address_hint"] for r in masked} == {f"138****{i:04d}" for i in range(5)}
    assert {r["error_message"] for r in masked} == {None}
    for kept in (still_pending, young):
        assert all(r["address"] and r["error_message"] for r in rows(db, kept))
    assert inbox_count(db, old) == 0 and inbox_count(db, still_pending) == 1 and inbox_count(db, young) == 2
    with db.session() as s:
        assert [r.dedup_key[:4] for r in s.execute(select(receipts.c.dedup_key))] == ["biz3"]
    # Pruning again finds nothing: the pruned rows left the indexes it reads.
    again = prune(db, retention, clock())
    assert (again.addresses, again.receipts, again.notifications) == (0, 0, 0)


def test_retention_is_configured_and_cannot_be_set_below_what_the_service_needs():
    retention = load_config(
        {"RETENTION_SMS_ADDRESS_DAYS": "7", "RETENTION_READ_NOTIFICATIONS_DAYS": "90", "RETENTION_RECEIPTS_DAYS": "3"}
    ).retention
    assert (retention.sms_address_days, retention.read_notifications_days, retention.receipts_days) == (7, 90, 3)
    assert load_config({}).retention == Retention()
    from linli_kit.config import ConfigError

    with pytest.raises(ConfigError, match="RETENTION_SMS_ADDRESS_DAYS: at least 2"):
        load_config({"RETENTION_SMS_ADDRESS_DAYS": "1"})
