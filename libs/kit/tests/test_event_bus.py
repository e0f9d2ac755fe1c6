"""The event bus on the real PostgreSQL and RabbitMQ: outbox, relay, consumer, dead letters."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, insert, select

from linli_kit.config import BusNames
from linli_kit.events import new_event
from linli_kit.events.deadletters import list_dead_letters, replay_dead_letters
from linli_kit.events.outbox import Outbox
from linli_kit.testing import probe
from linli_kit.testing.proxy import TcpProxy
from linli_kit.testing.waiting import eventually
from linli_kit.uow import UnitOfWork

pytestmark = pytest.mark.integration


def effect_numbers(database) -> list[int]:
    with database.session() as s:
        return sorted(s.scalars(select(probe.effects.c.n)))


def unpublished(database) -> int:
    outbox = probe.messaging.outbox
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


def test_rolled_back_change_leaves_no_event_and_committed_one_is_published_once(
    database, amqp_url, bus_names, tap, threads
):
    uow = UnitOfWork(database, Outbox(probe.messaging.outbox))
    with pytest.raises(RuntimeError), uow:
        uow.session.execute(insert(probe.poison).values(n=99))
        uow.publish(new_event(probe.PROBE_EVENT, {"n": 1}, producer="probe"))
        raise RuntimeError("the change fails after the event was raised")
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(probe.messaging.outbox)) == 0
        assert s.scalar(select(func.count()).select_from(probe.poison)) == 0

    [event_id] = probe.write_events(database, [2])
    relay = probe.relay_for(database, amqp_url, bus_names)
    stop = threads(relay.run)
    eventually(lambda: unpublished(database) == 0, what="outbox row marked published")
    stop.set()
    received = eventually(tap.drain, what="the event on the broker")
    assert [p.message_id for p in received] == [event_id]
    props = received[0]
    assert props.type == probe.PROBE_EVENT and props.delivery_mode == 2
    assert props.content_type == "application/json"
    # Another relay pass finds nothing left to send.
    relay2 = probe.relay_for(database, amqp_url, bus_names)
    threads(relay2.run)
    eventually(relay2.connected.is_set, what="second relay connected")
    eventually(lambda: relay2.pending_count() == 0)
    assert tap.drain() == []


def test_broker_outage_loses_nothing(database, amqp_url, bus_names, threads):
    proxy = TcpProxy("127.0.0.1", 5672 if "5672" in amqp_url else int(amqp_url.rsplit(":", 1)[1].split("/")[0]))
    proxied = amqp_url.replace(":5672", f":{proxy.port}")
    consumer = probe.make_consumer(database, amqp_url, bus_names)
    consumer.declare()
    relay = probe.relay_for(database, proxied, bus_names)
    threads(consumer.run)
    threads(relay.run)
    try:
        probe.write_events(database, range(0, 50))
        eventually(lambda: len(effect_numbers(database)) == 50, what="first 50 events before the outage")

        proxy.cut()
        eventually(lambda: not relay.connected.is_set(), what="relay notices the outage")
        for start in range(50, 250, 20):  # writes keep succeeding while the broker is away
            probe.write_events(database, range(start, start + 20))
        assert unpublished(database) == 200

        proxy.restore()
        eventually(lambda: len(effect_numbers(database)) >= 250, timeout=60, what="all events after the outage")
        assert effect_numbers(database) == list(range(250))
        assert unpublished(database) == 0
    finally:
        proxy.close()


def test_duplicate_delivery_has_one_effect(database, amqp_url, bus_names, threads):
    consumer = probe.make_consumer(database, amqp_url, bus_names)
    consumer.declare()
    body = new_event(probe.PROBE_EVENT, {"n": 7}, producer="probe").to_json().encode()
    probe.publish_raw(amqp_url, bus_names, body)
    probe.publish_raw(amqp_url, bus_names, body)
    sentinel = new_event(probe.PROBE_EVENT, {"n": 8}, producer="probe").to_json().encode()
    probe.publish_raw(amqp_url, bus_names, sentinel)
    threads(consumer.run)
    # The queue is FIFO with one consumer: once the sentinel is handled, both copies were.
    eventually(lambda: 8 in effect_numbers(database), what="sentinel handled")
    assert effect_numbers(database) == [7, 8]


def test_crash_between_commit_and_ack_redelivers_with_one_effect(database, amqp_url, bus_names, threads):
    consumer = probe.make_consumer(database, amqp_url, bus_names)
    consumer.declare()
    body = new_event(probe.PROBE_EVENT, {"n": 5}, producer="probe").to_json().encode()
    probe.publish_raw(amqp_url, bus_names, body)

    crashing = subprocess.run(
        [
            sys.executable,
            "-m",
            "linli_kit.testing.probe",
            database.url,
            amqp_url,
            bus_names.exchange,
            bus_names.dead_letter_exchange,
            bus_names.queue_prefix,
        ],
        capture_output=True,
        timeout=60,
    )
    assert crashing.returncode == 17, crashing.stderr.decode()[-2000:]
    assert effect_numbers(database) == [5]  # committed before the crash, never acked

    threads(consumer.run)
    sentinel = new_event(probe.PROBE_EVENT, {"n": 6}, producer="probe").to_json().encode()
    probe.publish_raw(amqp_url, bus_names, sentinel)
    eventually(lambda: 6 in effect_numbers(database), what="sentinel after the redelivery")
    assert effect_numbers(database) == [5, 6]


def test_poison_message_is_dead_lettered_and_replayed(database, amqp_url, bus_names, threads):
    with database.transaction() as s:
        s.execute(insert(probe.poison).values(n=13))
    consumer = probe.make_consumer(database, amqp_url, bus_names, delivery_limit=2)
    consumer.declare()
    poisoned = new_event(probe.PROBE_EVENT, {"n": 13}, producer="probe")
    probe.publish_raw(amqp_url, bus_names, poisoned.to_json().encode())
    for n in (14, 15, 16):
        probe.publish_raw(
            amqp_url, bus_names, new_event(probe.PROBE_EVENT, {"n": n}, producer="probe").to_json().encode()
        )
    threads(consumer.run)

    eventually(lambda: effect_numbers(database) == [14, 15, 16], what="later messages flow past the poison")
    dead = eventually(lambda: list_dead_letters(amqp_url, bus_names, "probe"), what="poison in the dead letters")
    assert [d.event_id for d in dead] == [poisoned.id]
    assert dead[0].event_type == probe.PROBE_EVENT and dead[0].reason == "delivery_limit"

    # Malformed messages go straight to the dead letters: retrying cannot fix them.
    probe.publish_raw(amqp_url, bus_names, b'{"not": "an envelope"')
    eventually(lambda: len(list_dead_letters(amqp_url, bus_names, "probe")) == 2, what="malformed dead-lettered")

    with database.transaction() as s:  # the bug behind the poison is fixed
        s.execute(probe.poison.delete())
    assert replay_dead_letters(amqp_url, bus_names, "probe", event_id=poisoned.id) == 1
    eventually(lambda: 13 in effect_numbers(database), what="replayed event handled")
    assert effect_numbers(database) == [13, 14, 15, 16]
    remaining = list_dead_letters(amqp_url, bus_names, "probe")
    assert len(remaining) == 1 and remaining[0].event_id is None


def test_each_run_has_its_own_exchange_and_queues(database, amqp_url, bus_names, run_id, threads):
    other_run = BusNames(
        exchange=f"{bus_names.exchange}.other",
        dead_letter_exchange=f"{bus_names.dead_letter_exchange}.other",
        queue_prefix=f"{bus_names.queue_prefix}other.",
    )
    assert run_id in bus_names.exchange and run_id in bus_names.queue("probe")
    assert bus_names.exchange != "linli.events" and bus_names.queue("probe") != "probe.events"
    assert run_id in database.url
    consumer = probe.make_consumer(database, amqp_url, bus_names)
    consumer.declare()
    stranger = probe.make_consumer(database, amqp_url, other_run)
    stranger.declare()
    try:
        probe.publish_raw(
            amqp_url, other_run, new_event(probe.PROBE_EVENT, {"n": 1}, producer="probe").to_json().encode()
        )
        probe.publish_raw(
            amqp_url, bus_names, new_event(probe.PROBE_EVENT, {"n": 2}, producer="probe").to_json().encode()
        )
        threads(consumer.run)
        eventually(lambda: effect_numbers(database) == [2], what="own run's event")
    finally:
        from linli_kit.testing.infra import delete_bus

        delete_bus(
            amqp_url,
            other_run.exchange,
            other_run.dead_letter_exchange,
            [other_run.queue("probe"), other_run.dead_letter_queue("probe")],
        )
