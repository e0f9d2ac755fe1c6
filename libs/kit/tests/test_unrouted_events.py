"""An event no queue is bound for is kept in the unrouted queue, never lost, never holding the outbox
back, and can be listed and replayed once a consumer binds its queue."""

from __future__ import annotations

import json
import logging

import pika
import pytest
from sqlalchemy import func, select

from linli_kit.events.cli import main as events_cli
from linli_kit.events.deadletters import list_unrouted, replay_unrouted
from linli_kit.events.topology import declare_service_queue
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def unpublished(database) -> int:
    outbox = probe.messaging.outbox
    with database.reading() as conn:
        return conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


def effect_numbers(database) -> list[int]:
    with database.reading() as conn:
        return sorted(conn.scalars(select(probe.effects.c.n)))


def test_unrouted_event_is_kept_and_replayed_once_a_queue_is_bound(database, amqp_url, bus_names, threads):
    relay = probe.relay_for(database, amqp_url, bus_names)
    threads(relay.run)
    [event_id] = probe.write_events(database, [1])  # nobody consumes probe events yet
    eventually(lambda: unpublished(database) == 0, what="the unroutable event confirmed and marked")

    unrouted = eventually(lambda: list_unrouted(amqp_url, bus_names), what="the event in the unrouted queue")
    assert [(u.event_id, u.event_type, u.routing_key, u.reason) for u in unrouted] == [
        (event_id, probe.PROBE_EVENT, probe.PROBE_EVENT, "unrouted")
    ]
    assert json.loads(unrouted[0].body)["data"] == {"n": 1}

    # The outbox was not held back: a later event goes out (and is kept) too.
    [later_id] = probe.write_events(database, [2])
    eventually(lambda: unpublished(database) == 0, what="the later event published")

    consumer = probe.make_consumer(database, amqp_url, bus_names)
    consumer.declare()  # the queue is bound from now on
    threads(consumer.run)
    assert replay_unrouted(amqp_url, bus_names, event_id=event_id) == 1
    eventually(lambda: effect_numbers(database) == [1], what="the replayed event handled")
    assert [u.event_id for u in list_unrouted(amqp_url, bus_names)] == [later_id]


def test_the_cli_lists_and_replays_unrouted_events(
    database, amqp_url, bus_names, threads, monkeypatch, capsys, tmp_path
):
    for name, value in {
        "AMQP_URL": amqp_url,
        "EVENTS_EXCHANGE": bus_names.exchange,
        "DEAD_LETTER_EXCHANGE": bus_names.dead_letter_exchange,
        "QUEUE_PREFIX": bus_names.queue_prefix,
        "LINLI_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    relay = probe.relay_for(database, amqp_url, bus_names)
    threads(relay.run)
    [event_id] = probe.write_events(database, [5])
    eventually(lambda: list_unrouted(amqp_url, bus_names), what="the event in the unrouted queue")

    assert events_cli(["dead-letters", "list", "--unrouted"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(letter["event_id"], letter["reason"]) for letter in listed] == [(event_id, "unrouted")]

    probe.make_consumer(database, amqp_url, bus_names).declare()
    assert events_cli(["dead-letters", "replay", "--unrouted", "--event-type", probe.PROBE_EVENT]) == 0
    assert "replayed 1 unrouted event(s)" in capsys.readouterr().out
    assert list_unrouted(amqp_url, bus_names) == []
    with pytest.raises(SystemExit):
        events_cli(["dead-letters", "list"])  # neither a service nor --unrouted


def test_replaying_an_event_still_without_a_queue_leaves_it_parked(database, amqp_url, bus_names, threads):
    relay = probe.relay_for(database, amqp_url, bus_names)
    threads(relay.run)
    [event_id] = probe.write_events(database, [3])
    eventually(lambda: list_unrouted(amqp_url, bus_names), what="the event in the unrouted queue")
    replay_unrouted(amqp_url, bus_names)  # goes round once, and back through the alternate exchange
    assert [u.event_id for u in eventually(lambda: list_unrouted(amqp_url, bus_names))] == [event_id]


def test_an_exchange_declared_without_alternate_exchange_still_loses_nothing(
    database, amqp_url, bus_names, threads, caplog
):
    # The exchange as an older version of the kit declared it: no alternate exchange.
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().exchange_declare(bus_names.exchange, exchange_type="topic", durable=True)
    finally:
        conn.close()
    caplog.set_level(logging.WARNING, logger="linli_kit.events.topology")

    # Consumers and relays still start (no PRECONDITION_FAILED crash loop) and say what to do.
    consumer = probe.make_consumer(database, amqp_url, bus_names)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        declare_service_queue(conn.channel(), bus_names, "issues", ["issues.thing.done"], delivery_limit=2)
    finally:
        conn.close()
    relay = probe.relay_for(database, amqp_url, bus_names)
    threads(relay.run)
    [event_id] = probe.write_events(database, [4])
    eventually(lambda: unpublished(database) == 0, what="the unroutable event parked and marked")
    assert [u.event_id for u in list_unrouted(amqp_url, bus_names)] == [event_id]
    assert any("without an alternate exchange" in r.getMessage() for r in caplog.records)
    assert any("delete_exchange" in r.getMessage() for r in caplog.records)

    consumer.declare()
    threads(consumer.run)
    assert replay_unrouted(amqp_url, bus_names) == 1
    eventually(lambda: effect_numbers(database) == [4], what="the replayed event handled")
