"""The worker as deployed (definition.build_worker): an event on the bus ends as a recorded
delivery, and a delivery that gives up is announced on the bus as notifications.delivery.failed."""

import json
from datetime import UTC, datetime, timedelta

import pika
import pytest
from sqlalchemy import select

from linli_kit.events import new_event
from linli_kit.events.topology import declare_exchanges
from linli_kit.testing.waiting import eventually
from linli_notifications.adapters.tables import attempts, deliveries
from linli_notifications.definition import definition

pytestmark = pytest.mark.integration


def test_worker_sends_codes_and_announces_failures(env, settings, database, amqp_url, bus_names, fakes):
    for key, value in fakes.env().items():
        env.setenv(key, value)
    env.setenv("SMS_PROVIDERS", "twilio")
    env.setenv("DELIVERY_INTERVAL_SECONDS", "0.05")
    worker = definition.build_worker(settings, database)
    worker.consumer.declare()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_exchanges(channel, bus_names)
    tap = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(tap, bus_names.exchange, "notifications.delivery.failed")
    worker.start()
    try:
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        good = new_event(
            "accounts.code.requested",
            {"phone": "+8613800138000", "code": "123456", "purpose": "signup", "expires_at": expires},
            producer="gateway",
        )
        bad = new_event(
            "accounts.code.requested",
            {"phone": "861380013", "code": "654321", "purpose": "login", "expires_at": expires},
            producer="gateway",
        )
        for event in (good, bad):
            channel.basic_publish(
                bus_names.exchange,
                event.type,
                event.to_json().encode(),
                pika.BasicProperties(message_id=event.id, delivery_mode=2),
            )

        def finished():
            with database.session() as s:
                rows = s.execute(select(deliveries.c.address, deliveries.c.state, deliveries.c.params)).all()
            return len(rows) == 2 and all(r.state in ("sent", "failed") for r in rows) and rows

        rows = {r.address: r for r in eventually(finished, timeout=30, what="both codes handled")}
        assert rows["+8613800138000"].state == "sent" and rows["861380013"].state == "failed"
        assert all(r.params == {} for r in rows.values())  # the codes do not stay in the database
        [sent] = [m for m in fakes.requests["twilio"] if m["To"] == "+8613800138000"]
        assert "123456" in sent["Body"]

        def announced():
            method, _props, body = channel.basic_get(tap, auto_ack=True)
            return body

        failure = json.loads(eventually(announced, timeout=30, what="delivery.failed on the bus"))
        assert failure["type"] == "notifications.delivery.failed"
        assert failure["data"]["providers_tried"] == ["twilio"] and "21211" in failure["data"]["reason"]
        with database.session() as s:
            codes = s.scalars(select(attempts.c.error_code)).all()
        assert sorted(c or "" for c in codes) == ["", "21211"]
    finally:
        worker.shutdown(10)
        connection.close()


def test_worker_polls_jpush_receipts_only_when_jpush_sends(env, settings, database, fakes, clock):
    from linli_notifications.definition import timers

    for key, value in fakes.env().items():
        env.setenv(key, value)
    env.setenv("PUSH_RECEIPT_INTERVAL_SECONDS", "60")
    env.setenv("PUSH_PROVIDERS", "fcm")
    assert "push-receipts" not in [t.name for t in timers(settings, database, clock)]
    env.setenv("PUSH_PROVIDERS", "jpush,fcm")
    [poll] = [t for t in timers(settings, database, clock) if t.name == "push-receipts"]
    assert poll.interval == 60
    poll.run()  # nothing sent through JPush yet: JPush is not asked
    assert fakes.count("jpush_report") == 0


def test_providers_command_explains_itself_and_names_what_is_missing(monkeypatch, tmp_path, capsys):
    from linli_kit.service import service_main

    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        service_main(definition, ["providers", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "usage: linli-notifications providers" in shown and "SMS_PROVIDERS" in shown
    monkeypatch.setenv("SMS_PROVIDERS", "aliyun")
    assert service_main(definition, ["providers"]) == 2
    assert "ALIYUN_ACCESS_KEY_ID must be set" in capsys.readouterr().err
    monkeypatch.setenv("SMS_PROVIDERS", "log")
    assert service_main(definition, ["providers"]) == 0
    assert "sms via log" in capsys.readouterr().out
