"""The consumers' DeliveryConnection (linli_kit.events.inbound) does what pika's own path does.

The same bytes are fed to a plain pika connection and to a DeliveryConnection, each with a real
channel and consumer on the local broker: both must hand the consumer the same deliveries (method,
properties, body), count the same bytes and frames, and the fast path must be taken when a whole
message is at hand and left to pika otherwise. Then real deliveries from a quorum queue: properties,
headers, a body over several frames, a redelivery with its x-delivery-count; and heartbeats and a
lost connection, and an EventConsumer reconnecting after one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from pika import frame, spec
from pika.exceptions import AMQPConnectionError, AMQPError, InvalidFieldTypeException, InvalidFrameError
from sqlalchemy import select

from linli_kit.events import new_event
from linli_kit.events.inbound import RECV_BYTES, DeliveryConnection, decode_properties
from linli_kit.events.topology import Brokers
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration

TAG = "ctag-inbound"
CHANNEL = 1


class CountingDeliveryConnection(DeliveryConnection):
    """Records whether each Basic.Deliver took the fast path (True) or was left to pika (False)."""

    def _init_connection_state(self) -> None:
        super()._init_connection_state()
        self.fast_path: list[bool] = []

    def _deliver(self, *args: Any) -> bool:
        taken = super()._deliver(*args)
        self.fast_path.append(taken)
        return taken


class Consumer:
    """A connection consuming from a queue of its own; frames can be fed to it as if they came
    from the broker (no heartbeats, so nothing else arrives meanwhile)."""

    def __init__(self, amqp_url: str, impl_class: type | None) -> None:
        params = pika.URLParameters(amqp_url)
        params.heartbeat = 0
        self.conn = pika.BlockingConnection(params, _impl_class=impl_class)
        self.channel = self.conn.channel()
        queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.basic_consume(queue, self.on_message, consumer_tag=TAG)
        self.got: list[tuple[dict, dict, bytes]] = []
        self.impl = self.conn._impl

    def on_message(self, _ch: Any, method: Any, properties: Any, body: bytes) -> None:
        assert type(method) is spec.Basic.Deliver and type(properties) is spec.BasicProperties
        self.got.append((dict(vars(method)), dict(vars(properties)), body))

    def feed(self, data: bytes, chunk: int) -> tuple[int, int]:
        """Feed `data` in pieces of `chunk` bytes; the bytes and frames counted meanwhile."""
        bytes_before, frames_before = self.impl.bytes_received, self.impl.frames_received
        for i in range(0, len(data), chunk):
            self.impl._on_data_available(data[i : i + chunk])
        self.conn.process_data_events(0)
        return self.impl.bytes_received - bytes_before, self.impl.frames_received - frames_before

    def close(self) -> None:
        if self.conn.is_open:
            try:
                self.conn.close()
            except AMQPError:
                pass  # a test broke the stream on purpose: the broker's replies no longer parse


@pytest.fixture
def pair(amqp_url: str) -> Iterator[tuple[Consumer, Consumer]]:
    plain = Consumer(amqp_url, None)
    fast = Consumer(amqp_url, CountingDeliveryConnection)
    yield plain, fast
    plain.close()
    fast.close()


def message(
    properties: spec.BasicProperties,
    body: bytes,
    *,
    delivery_tag: int = 1,
    redelivered: bool = False,
    consumer_tag: str = TAG,
    body_frame_max: int = 4096,
) -> bytes:
    """A delivery's frames, marshalled by pika."""
    frames = [
        frame.Method(CHANNEL, spec.Basic.Deliver(consumer_tag, delivery_tag, redelivered, "linli.events", "a.b.c")),
        frame.Header(CHANNEL, len(body), properties),
    ]
    frames += [frame.Body(CHANNEL, body[i : i + body_frame_max]) for i in range(0, len(body), body_frame_max)]
    return b"".join(f.marshal() for f in frames)


FULL_PROPERTIES = spec.BasicProperties(
    content_type="application/json",
    content_encoding="utf-8",
    headers={"x-delivery-count": 3, "nested": {"list": [1, "two", None], "flag": True}, "raw": b"\x00\xff"},
    delivery_mode=2,
    priority=4,
    correlation_id="corr-é",
    reply_to="replies",
    expiration="60000",
    message_id="0e4ee7ac-bbf7-4b3e-9b5e-3d0b1c6b2b11",
    timestamp=1_700_000_000,
    type="issues.issue.reported",
    user_id="guest",
    app_id="issues",
    cluster_id="c1",
)


def stream() -> bytes:
    """Deliveries of every shape, with a heartbeat among them."""
    return b"".join(
        [
            message(FULL_PROPERTIES, b'{"x":"' + b"a" * 620 + b'"}', delivery_tag=1),
            message(spec.BasicProperties(), b"", delivery_tag=2),  # no properties, no body
            message(
                spec.BasicProperties(message_id="m3", delivery_mode=1), b"b" * 1000, delivery_tag=3, redelivered=True
            ),
            frame.Heartbeat().marshal(),
            # A body over several frames (as one larger than frame_max arrives).
            message(spec.BasicProperties(headers={}), bytes(range(256)) * 40, delivery_tag=4, body_frame_max=1000),
            # Short strings that are not UTF-8 stay bytes, in pika's decoding.
            message(spec.BasicProperties(message_id=b"\xff\xfeid", type="t"), "é".encode(), delivery_tag=5),
        ]
    )


@pytest.mark.parametrize("chunk", [1, 7, 333, 4096, 1 << 20])
def test_same_deliveries_and_counters_as_pika_however_the_bytes_arrive(pair, chunk):
    plain, fast = pair
    data = stream()
    assert fast.feed(data, chunk) == plain.feed(data, chunk)
    assert fast.got == plain.got
    assert [m["delivery_tag"] for m, _p, _b in fast.got] == [1, 2, 3, 4, 5]
    assert fast.got[2][0]["redelivered"] is True
    assert fast.got[3][2] == bytes(range(256)) * 40
    assert fast.got[4][1]["message_id"] == b"\xff\xfeid"
    assert vars(FULL_PROPERTIES) == fast.got[0][1]
    if chunk == 1 << 20:
        # Every whole message but the last, whose non-UTF-8 strings pika decodes (as bytes).
        assert fast.impl.fast_path == [True, True, True, True, False]
    elif chunk == 1:
        # No message is ever whole on arrival: every one goes through pika's frames.
        assert fast.impl.fast_path == [False] * 5


def test_split_message_is_finished_by_pika_and_the_next_one_is_fast_again(pair):
    plain, fast = pair
    data = message(FULL_PROPERTIES, b"x" * 5000, delivery_tag=1) + message(FULL_PROPERTIES, b"y" * 50, delivery_tag=2)
    cut = len(data) // 3  # inside the first message's body
    for piece in (data[:cut], data[cut:]):
        assert fast.feed(piece, len(piece)) == plain.feed(piece, len(piece))
    assert fast.got == plain.got and len(fast.got) == 2
    assert fast.impl.fast_path == [False, True]


def test_deliveries_pika_would_not_hand_to_the_consumer_are_left_to_pika(pair):
    plain, fast = pair
    unknown = message(spec.BasicProperties(), b"lost", consumer_tag="nobody", delivery_tag=7)
    known = message(spec.BasicProperties(), b"kept", delivery_tag=8)
    for consumer in pair:
        consumer.feed(unknown + known, len(unknown + known))
    assert fast.got == plain.got and [b for _m, _p, b in fast.got] == [b"kept"]
    assert fast.impl.fast_path == [False, True]


def test_a_callback_registered_for_deliveries_gets_them_as_with_pika(pair):
    plain, fast = pair
    taken: dict[str, list] = {"plain": [], "fast": []}
    data = message(spec.BasicProperties(), b"body", delivery_tag=9)
    for name, consumer in (("plain", plain), ("fast", fast)):
        consumer.impl.callbacks.add(CHANNEL, spec.Basic.Deliver, lambda f, name=name: taken[name].append(f.method))
        # The callback takes the method frame; pika's channel then fails on the header and body
        # that follow without it, and so does this connection, on the same path.
        with pytest.raises(AttributeError):
            consumer.feed(data, len(data))
    assert [vars(m) for m in taken["fast"]] == [vars(m) for m in taken["plain"]] and len(taken["fast"]) == 1
    assert fast.got == plain.got
    assert fast.impl.fast_path == [False]


def test_properties_with_a_second_flag_word_are_left_to_pika(pair):
    plain, fast = pair
    body = b"payload"
    properties = spec.BasicProperties(message_id="m1")
    encoded = properties.encode()
    # The same properties, with the continuation bit set and an empty second flag word.
    flags = int.from_bytes(encoded[0], "big") | 1
    payload = (
        (spec.BasicProperties.INDEX).to_bytes(2, "big")
        + b"\x00\x00"
        + len(body).to_bytes(8, "big")
        + flags.to_bytes(2, "big")
        + b"\x00\x00"
        + b"".join(encoded[1:])
    )
    header = bytes([spec.FRAME_HEADER]) + CHANNEL.to_bytes(2, "big") + len(payload).to_bytes(4, "big")
    data = (
        frame.Method(CHANNEL, spec.Basic.Deliver(TAG, 1, False, "", "q")).marshal()
        + header
        + payload
        + bytes([spec.FRAME_END])
        + frame.Body(CHANNEL, body).marshal()
    )
    assert decode_properties(header + payload, 7 + 12, len(header + payload)) is None
    assert fast.feed(data, len(data)) == plain.feed(data, len(data))
    assert fast.got == plain.got and fast.got[0][1]["message_id"] == "m1"
    assert fast.impl.fast_path == [False]


def test_a_bad_frame_end_is_pikas_error_after_the_good_messages(pair):
    plain, fast = pair
    good = message(spec.BasicProperties(), b"fine", delivery_tag=1)
    bad = bytearray(message(spec.BasicProperties(), b"broken", delivery_tag=2))
    bad[-1] = 0  # the body frame's FRAME_END
    for consumer in pair:
        with pytest.raises(InvalidFrameError):
            consumer.impl._on_data_available(good + bytes(bad))
        consumer.conn.process_data_events(0)
    assert fast.got == plain.got and [b for _m, _p, b in fast.got] == [b"fine"]
    assert fast.impl.fast_path == [True, False]


def test_headers_pika_cannot_decode_are_pikas_error(pair):
    plain, fast = pair
    data = bytearray(message(spec.BasicProperties(headers={"k": 1}), b"body", delivery_tag=3))
    at = data.index(b"\x01k") + 2
    data[at : at + 1] = b"Z"  # a field type AMQP does not have
    for consumer in pair:
        with pytest.raises(InvalidFieldTypeException):
            consumer.impl._on_data_available(bytes(data))
    assert fast.impl.fast_path == [False]
    assert (fast.impl.bytes_received, fast.impl.frames_received) == (
        plain.impl.bytes_received,
        plain.impl.frames_received,
    )


def test_properties_decoded_as_pika_decodes_them():
    for properties in (FULL_PROPERTIES, spec.BasicProperties(), spec.BasicProperties(timestamp=0, priority=0)):
        encoded = b"".join(properties.encode())
        mine = decode_properties(encoded, 0, len(encoded))
        assert mine is not None and vars(mine) == vars(spec.BasicProperties().decode(encoded))
    # Fields that do not end where the header does: not sure, pika's path decides.
    encoded = b"".join(FULL_PROPERTIES.encode())
    assert decode_properties(encoded + b"\x00", 0, len(encoded) + 1) is None


# --- real deliveries ------------------------------------------------------------------------------


def _quorum_queue(channel: Any, name: str) -> str:
    channel.queue_delete(name)
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    return name


def test_real_deliveries_with_properties_large_body_and_redelivery(amqp_url, run_id):
    params = pika.URLParameters(amqp_url)
    publisher = pika.BlockingConnection(params)
    setup = publisher.channel()
    queue = _quorum_queue(setup, f"t.{run_id}.inbound")
    large = bytes(range(256)) * 1200  # 300 KiB: over frame_max, and over one read
    sent = [
        (spec.BasicProperties(message_id=f"m{n}", delivery_mode=2, headers={"n": n}, app_id="probe"), body)
        for n, body in enumerate([b'{"n":0}', large, b"", b"z" * 700])
    ]
    for properties, body in sent:
        setup.basic_publish("", queue, body, properties)
    consumer_conn = pika.BlockingConnection(params, _impl_class=CountingDeliveryConnection)
    try:
        assert consumer_conn._impl._transport._MAX_RECV_BYTES == RECV_BYTES
        channel = consumer_conn.channel()
        channel.basic_qos(prefetch_count=10)
        got: list[tuple[Any, Any, bytes]] = []
        channel.basic_consume(queue, lambda _ch, m, p, b: got.append((m, p, b)))
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            consumer_conn.process_data_events(0.2)
        assert [(p.message_id, p.headers, p.app_id, p.delivery_mode, b) for _m, p, b in got] == [
            (p.message_id, p.headers, p.app_id, p.delivery_mode, b) for p, b in sent
        ]
        assert not any(m.redelivered for m, _p, _b in got)
        assert True in consumer_conn._impl.fast_path
        # Send the first back: the quorum queue redelivers it with its delivery count.
        channel.basic_nack(got[0][0].delivery_tag, requeue=True)
        while len(got) < len(sent) + 1 and time.monotonic() < deadline:
            consumer_conn.process_data_events(0.2)
        method, properties, body = got[-1]
        assert method.redelivered is True and body == b'{"n":0}'
        assert properties.headers == {"n": 0, "x-delivery-count": 1}
        channel.basic_ack(method.delivery_tag)
        channel.basic_ack(got[len(sent) - 1][0].delivery_tag, multiple=True)
        channel.close()
    finally:
        consumer_conn.close()
        setup.queue_delete(queue)
        publisher.close()


def test_heartbeats_are_received_and_counted(amqp_url):
    conn, _params = Brokers(amqp_url, heartbeat=1, impl_class=DeliveryConnection).connect()
    try:
        assert type(conn._impl) is DeliveryConnection
        checker = conn._impl._heartbeat_checker
        deadline = time.monotonic() + 10
        while checker._heartbeat_frames_received < 2 and time.monotonic() < deadline:
            conn.process_data_events(0.5)
        assert checker._heartbeat_frames_received >= 2
        assert conn.is_open
    finally:
        conn.close()


def test_a_lost_connection_is_reported_as_with_pika(broker_proxy):
    proxy, proxied_url = broker_proxy
    conn, _params = Brokers(proxied_url, impl_class=DeliveryConnection).connect()
    channel = conn.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_consume(queue, lambda *_args: None)
    proxy.cut()
    deadline = time.monotonic() + 10
    with pytest.raises(AMQPConnectionError):
        while time.monotonic() < deadline:
            conn.process_data_events(0.2)
    assert conn.is_closed


def effect_numbers(database: Any) -> list[int]:
    with database.session() as s:
        return sorted(s.scalars(select(probe.effects.c.n)))


def _publish_probe_events(amqp_url: str, bus: Any, numbers: range) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for n in numbers:
            event = new_event(probe.PROBE_EVENT, {"n": n}, producer="probe")
            properties = pika.BasicProperties(message_id=event.id, type=event.type, delivery_mode=2)
            channel.basic_publish(bus.exchange, event.type, event.to_json().encode(), properties)
    finally:
        conn.close()


def test_the_consumer_reconnects_and_handles_every_event_once(database, bus_names, broker_proxy, amqp_url, threads):
    proxy, proxied_url = broker_proxy
    consumer = probe.make_consumer(database, proxied_url, bus_names)
    consumer.declare()
    _publish_probe_events(amqp_url, bus_names, range(0, 3000))
    threads(consumer.run)
    eventually(lambda: len(effect_numbers(database)) > 0, what="the first events handled")
    proxy.cut()  # most likely mid-stream: deliveries unacked, a frame cut in two
    eventually(lambda: not consumer.ready.is_set(), what="the consumer notices the loss")
    _publish_probe_events(amqp_url, bus_names, range(3000, 3500))
    proxy.restore()
    eventually(lambda: len(effect_numbers(database)) >= 3500, timeout=60, what="every event after reconnecting")
    assert effect_numbers(database) == list(range(3500))  # each once, redeliveries included
