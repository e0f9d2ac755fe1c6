"""What the outbox and inbox keep, and for how long: retention settings, pruning in chunks, personal
data blanked once published, and times that stay instants on SQLite as on PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from linli_kit.config import ConfigError, load_settings
from linli_kit.events import new_event
from linli_kit.events.outbox import Outbox
from linli_kit.events.retention import MessagingRetention
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually
from linli_kit.uow import UnitOfWork

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def test_retention_settings_default_and_are_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    settings = load_settings("probe")
    assert (settings.outbox_retention_hours, settings.inbox_retention_days) == (168, 30)
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", "2")
    monkeypatch.setenv("INBOX_RETENTION_DAYS", "90")
    settings = load_settings("probe")
    assert (settings.outbox_retention_hours, settings.inbox_retention_days) == (2, 90)
    for name, bad in (
        ("INBOX_RETENTION_DAYS", "0"),
        ("OUTBOX_RETENTION_HOURS", "soon"),
        ("OUTBOX_RETENTION_HOURS", "0"),
        ("EVENTS_DELIVERY_LIMIT", "0"),  # every bound is enforced, not only the new ones
        ("LOG_LEVEL", "loud"),
    ):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ConfigError, match=name):
            load_settings("probe")
        monkeypatch.delenv(name)


def outbox_row(n: int, *, created: datetime, published: datetime | None) -> dict:
    event = new_event(probe.PROBE_EVENT, {"n": n}, producer="probe")
    return {
        "event_id": event.id,
        "event_type": event.type,
        "payload": event.to_json(),
        "created_at": created,
        "published_at": published,
    }


def inbox_row(handled: datetime) -> dict:
    return {"consumer": "probe", "event_id": str(uuid.uuid4()), "event_type": probe.PROBE_EVENT, "handled_at": handled}


@pytest.mark.integration
def test_pruning_keeps_what_is_within_retention_and_everything_unpublished(any_database):
    outbox, inbox = probe.messaging.outbox, probe.messaging.inbox
    old = NOW - timedelta(days=8)
    with any_database.transaction() as s:
        s.execute(insert(outbox), [outbox_row(n, created=old, published=old) for n in range(7)])
        s.execute(insert(outbox), [outbox_row(10, created=old, published=NOW - timedelta(hours=2))])
        # Never published, however old: kept until it is.
        s.execute(insert(outbox), [outbox_row(11, created=NOW - timedelta(days=60), published=None)])
        s.execute(insert(inbox), [inbox_row(NOW - timedelta(days=31)) for _ in range(5)])
        s.execute(insert(inbox), [inbox_row(NOW - timedelta(days=29))])
    retention = MessagingRetention(
        any_database,
        probe.messaging,
        outbox_retention=timedelta(hours=168),
        inbox_retention=timedelta(days=30),
        service="probe",
        chunk=2,  # several chunks, each its own transaction
    )
    pruned = retention.prune(now=NOW)
    assert (pruned.outbox, pruned.inbox) == (7, 5)
    with any_database.reading() as conn:
        kept = conn.execute(select(outbox.c.payload, outbox.c.published_at)).all()
        handled = conn.scalars(select(inbox.c.handled_at)).all()
    assert sorted(json.loads(p)["data"]["n"] for p, _ in kept) == [10, 11]
    assert handled == [NOW - timedelta(days=29)]
    assert all(at is None or at.tzinfo is not None for _, at in kept)
    assert retention.prune(now=NOW) == type(pruned)(0, 0)


def write(database, *events) -> None:
    uow = UnitOfWork(database, Outbox(probe.messaging.outbox))
    with uow:
        uow.publish(*events)
        uow.commit()


@pytest.mark.integration
def test_personal_data_leaves_the_outbox_once_published(any_database, amqp_url, bus_names, tap, threads):
    code = new_event(
        "accounts.code.requested",
        {
            "phone": "+8613800138000",
            "code": "482913",
            "purpose": "login",
            "expires_at": datetime.now(UTC) + timedelta(minutes=5),
        },
        producer="gateway",
    )
    plain = new_event(probe.PROBE_EVENT, {"n": 1}, producer="probe")
    write(any_database, code, plain)
    relay = probe.relay_for(any_database, amqp_url, bus_names)
    threads(relay.run)
    outbox = probe.messaging.outbox

    def published() -> dict[str, tuple[str, datetime | None]]:
        with any_database.reading() as conn:
            rows = conn.execute(select(outbox.c.event_id, outbox.c.payload, outbox.c.published_at)).all()
        return {r.event_id: (r.payload, r.published_at) for r in rows if r.published_at is not None}

    rows = eventually(lambda: len(published()) == 2 and published(), what="both events published")
    kept = json.loads(rows[code.id][0])
    assert kept["data"] is None and kept["redacted"] is True
    assert (kept["id"], kept["type"], kept["producer"]) == (code.id, "accounts.code.requested", "gateway")
    assert "13800138000" not in rows[code.id][0] and "482913" not in rows[code.id][0]
    assert json.loads(rows[plain.id][0]) == plain.to_dict()  # nothing personal: kept as it was

    # The broker got the whole event: the consumer needs the phone number and the code.
    received = eventually(tap.drain, what="the events on the broker")
    assert {p.message_id for p in received} == {code.id, plain.id}


@pytest.mark.integration
def test_times_written_on_sqlite_read_back_as_instants(sqlite_database, amqp_url, bus_names, tap, threads, monkeypatch):
    # A machine whose local time is not UTC: a naive UTC time read back as local would be off by 8 h.
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        [event_id] = probe.write_events(sqlite_database, [1])
        relay = probe.relay_for(sqlite_database, amqp_url, bus_names)
        consumer = probe.make_consumer(sqlite_database, amqp_url, bus_names)
        consumer.declare()
        threads(relay.run)
        threads(consumer.run)
        outbox, inbox = probe.messaging.outbox, probe.messaging.inbox

        def times() -> tuple | None:
            with sqlite_database.reading() as conn:
                created, published = conn.execute(select(outbox.c.created_at, outbox.c.published_at)).one()
                handled = conn.scalar(select(inbox.c.handled_at))
            return (created, published, handled) if published and handled else None

        created, published, handled = eventually(times, what="the event published and handled")
        assert created.tzinfo is not None and published.tzinfo is not None and handled.tzinfo is not None
        # The consumer handles the event before the relay marks its row: both come after its creation.
        assert created <= handled <= datetime.now(UTC) and created <= published <= datetime.now(UTC)
        [props] = [p for p in eventually(tap.drain, what="the event on the broker") if p.message_id == event_id]
        assert props.timestamp == int(created.timestamp())
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.integration
def test_personal_data_an_older_relay_left_published_is_blanked(any_database):
    outbox = probe.messaging.outbox
    expires = datetime.now(UTC) + timedelta(minutes=5)

    def code_row(published: datetime | None) -> dict:
        event = new_event(
            "accounts.code.requested",
            {"phone": "+8613800138000", "code": "482913", "purpose": "login", "expires_at": expires},
            producer="gateway",
        )
        return {
            "event_id": event.id,
            "event_type": event.type,
            "payload": event.to_json(),
            "created_at": NOW,
            "published_at": published,
        }

    rows = [code_row(NOW), code_row(NOW), code_row(None), outbox_row(1, created=NOW, published=NOW)]
    with any_database.transaction() as s:
        s.execute(insert(outbox), rows)
    retention = MessagingRetention(
        any_database,
        probe.messaging,
        outbox_retention=timedelta(hours=168),
        inbox_retention=timedelta(days=30),
        service="probe",
        chunk=1,
    )
    assert retention.redact_published() == 2
    with any_database.reading() as conn:
        payloads = dict(conn.execute(select(outbox.c.event_id, outbox.c.payload)).all())
    assert [json.loads(payloads[r["event_id"]])["data"] for r in rows[:2]] == [None, None]
    assert payloads[rows[2]["event_id"]] == rows[2]["payload"]  # not published yet: the consumer needs it
    assert payloads[rows[3]["event_id"]] == rows[3]["payload"]  # nothing personal
    assert retention.redact_published() == 0
