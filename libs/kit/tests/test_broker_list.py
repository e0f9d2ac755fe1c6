"""AMQP_URL may name several brokers (the nodes of one cluster): every process reaches a live one by
itself, and moves to the next when its own goes away."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from linli_kit.config import ConfigError, load_settings
from linli_kit.events.topology import Brokers, broker_urls, describe_brokers
from linli_kit.testing import probe
from linli_kit.testing.proxy import TcpProxy
from linli_kit.testing.waiting import eventually
from linli_kit.web import broker_check

NODE_A = "amqp://linli:secret@10.0.0.1:5672/linli"
NODE_B = "amqps://linli:secret@10.0.0.2:5671/linli"


def test_one_url_stays_one_broker_and_several_are_split_at_commas(monkeypatch, tmp_path):
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AMQP_URL", NODE_A)
    assert load_settings("probe").amqp_urls == [NODE_A]

    monkeypatch.setenv("AMQP_URL", f" {NODE_A} , {NODE_B},")
    settings = load_settings("probe")
    assert settings.amqp_urls == [NODE_A, NODE_B]
    assert describe_brokers(settings.amqp_url) == "10.0.0.1:5672/linli, 10.0.0.2:5671/linli"
    candidates = Brokers(settings.amqp_url).candidates()
    assert [(p.host, p.port) for p in candidates] == [("10.0.0.1", 5672), ("10.0.0.2", 5671)]

    # A comma inside a password is not a separator: only one before another URL's scheme is.
    with_comma = "amqp://linli:se,cret@10.0.0.1:5672/linli"
    assert broker_urls(f"{with_comma},{NODE_B}") == [with_comma, NODE_B]


def test_a_bad_broker_in_the_list_stops_the_process_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AMQP_URL", f"{NODE_A},http://10.0.0.2:15672/")
    with pytest.raises(ConfigError, match="AMQP_URL"):
        load_settings("probe")
    monkeypatch.setenv("AMQP_URL", " ")
    with pytest.raises(ConfigError, match="AMQP_URL"):
        load_settings("probe")


def test_after_a_lost_connection_the_next_broker_is_tried_first():
    brokers = Brokers(f"{NODE_A},{NODE_B}")
    first, second = brokers.parameters
    brokers.connected(first)
    brokers.lost()
    assert brokers.candidates() == [second, first]
    brokers.connected(second)
    brokers.lost()
    assert brokers.candidates() == [first, second]


def _through(proxy: TcpProxy, amqp_url: str) -> str:
    target = urlparse(amqp_url)
    credentials = target.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return target._replace(netloc=netloc).geturl()


def _effects(database) -> Counter:
    with database.session() as s:
        return Counter(s.scalars(select(probe.effects.c.n)))


@pytest.mark.integration
def test_relay_and_consumer_move_to_the_next_broker_when_theirs_goes_away(database, amqp_url, bus_names, threads):
    """Two addresses of one broker stand for two nodes: the first is cut off (its connections
    dropped, new ones refused) while events flow; both move to the second by themselves."""
    host = urlparse(amqp_url)
    node_a = TcpProxy(host.hostname or "127.0.0.1", host.port or 5672)
    node_b = TcpProxy(host.hostname or "127.0.0.1", host.port or 5672)
    try:
        brokers = f"{_through(node_a, amqp_url)},{_through(node_b, amqp_url)}"
        consumer = probe.make_consumer(database, brokers, bus_names)
        relay = probe.relay_for(database, brokers, bus_names, standby_seconds=0.2)
        threads(consumer.run)
        eventually(consumer.ready.is_set, what="consumer connected")
        threads(relay.run)
        probe.write_events(database, range(100))
        eventually(lambda: len(_effects(database)) == 100, what="the first events handled through node A")

        node_a.cut()
        probe.write_events(database, range(100, 200))
        effects = eventually(lambda: len(_effects(database)) == 200 and _effects(database), what="events through B")
        assert set(effects) == set(range(200)) and set(effects.values()) == {1}
        assert consumer.ready.is_set() and relay.connected.is_set()
        broker_check(brokers)()  # ready: one broker of the list answers
        node_b.cut()
        with pytest.raises(Exception):  # noqa: B017 - pika's connection error: none answers now
            broker_check(brokers)()
    finally:
        node_a.close()
        node_b.close()
