"""A consumer's connection that reads deliveries in fewer Python steps than pika's own path.

pika turns every inbound frame into objects one at a time: it reads the socket 4 KiB at a time,
re-slices its whole frame buffer after each frame (`_trim_frame_buffer`), decodes each frame into a
`frame.Method`/`Header`/`Body`, asks the callback manager about it and has the channel's content
assembler put the three frames of a message back together. For a consumer taking thousands of
small messages a second that is most of its connection thread, which the batch thread is waiting
on for the GIL.

`DeliveryConnection` is pika's `SelectConnection` (pass it to `pika.BlockingConnection` as
`_impl_class`) with two changes:

- its transport reads up to `RECV_BYTES` at a time;
- `_on_data_available` walks the received bytes by offset, and when a complete message is at hand
  (a Basic.Deliver frame, its header frame and every body frame, all in the buffer) decodes it
  directly into the objects pika's channel would build (`spec.Basic.Deliver`,
  `spec.BasicProperties`, the body bytes) and calls the channel's consumer callback with them, as
  `Channel._on_deliver` does.

Every other frame, and any delivery the fast path is not sure about, goes through pika's own
`frame.decode_frame` and `Connection._process_frame`, one frame at a time: heartbeats, methods
(acks, flow, cancel, channel and connection close), a message whose frames are not all in the
buffer yet, a delivery for a consumer pika does not know or has cancelled, for a channel that is
not a plain `pika.channel.Channel`, a header with more than one flag word, a short string that
is not UTF-8 (pika keeps its bytes), anything malformed (whose error is then pika's). The
counters pika's heartbeat checker reads (`bytes_received`, `frames_received`) advance as pika
advances them. libs/kit/tests/test_inbound_deliveries.py checks the fast path against pika's own
decoding, frame by frame.
"""

from __future__ import annotations

import struct
from typing import Any

from pika import data, frame, spec
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel

# Large reads: a burst of deliveries arrives in a few dozen system calls and Python steps per
# read instead of one per 4 KiB. pika still stops after `_MAX_CONSUME_BYTES` per readable event,
# so timers (heartbeats) keep their turn.
RECV_BYTES = 64 * 1024

_FRAME_HEADER = struct.Struct(">BHI").unpack_from
_DELIVER_TAG = struct.Struct(">Q").unpack_from
_CONTENT_HEADER = struct.Struct(">HHQ").unpack_from
_FLAGS = struct.Struct(">H").unpack_from
_TIMESTAMP = struct.Struct(">Q").unpack_from
_METHOD_ID = struct.Struct(">I").unpack_from

_DELIVER = spec.Basic.Deliver.INDEX
_DELIVER_NAME = spec.Basic.Deliver.NAME
_BASIC_CLASS = spec.BasicProperties.INDEX
_FRAME_END = spec.FRAME_END
_FRAME_TYPE_METHOD = spec.FRAME_METHOD
_FRAME_TYPE_HEADER = spec.FRAME_HEADER
_FRAME_TYPE_BODY = spec.FRAME_BODY
_KNOWN_FRAME_TYPES = frozenset((spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_HEARTBEAT))
_FLAG_CONTENT_TYPE = spec.BasicProperties.FLAG_CONTENT_TYPE
_FLAG_CONTENT_ENCODING = spec.BasicProperties.FLAG_CONTENT_ENCODING
_FLAG_HEADERS = spec.BasicProperties.FLAG_HEADERS
_FLAG_DELIVERY_MODE = spec.BasicProperties.FLAG_DELIVERY_MODE
_FLAG_PRIORITY = spec.BasicProperties.FLAG_PRIORITY
_FLAG_CORRELATION_ID = spec.BasicProperties.FLAG_CORRELATION_ID
_FLAG_REPLY_TO = spec.BasicProperties.FLAG_REPLY_TO
_FLAG_EXPIRATION = spec.BasicProperties.FLAG_EXPIRATION
_FLAG_MESSAGE_ID = spec.BasicProperties.FLAG_MESSAGE_ID
_FLAG_TIMESTAMP = spec.BasicProperties.FLAG_TIMESTAMP
_FLAG_TYPE = spec.BasicProperties.FLAG_TYPE
_FLAG_USER_ID = spec.BasicProperties.FLAG_USER_ID
_FLAG_APP_ID = spec.BasicProperties.FLAG_APP_ID
_FLAG_CLUSTER_ID = spec.BasicProperties.FLAG_CLUSTER_ID


def decode_properties(buf: bytes, pos: int, end: int) -> spec.BasicProperties | None:
    """The BasicProperties a content header encodes from `pos` (its property flags) to `end`, as
    `spec.BasicProperties.decode` makes them; None when not sure (several flag words, a short
    string that is not UTF-8 (pika keeps its bytes), fields that do not end where the frame does):
    pika's path then decodes the frame."""
    flags = _FLAGS(buf, pos)[0]
    if flags & 1:
        return None
    pos += 2
    # Short strings inline (length byte, UTF-8 bytes): the Python steps of a call each are a good
    # part of the cost.
    content_type = content_encoding = headers = delivery_mode = priority = None
    correlation_id = reply_to = expiration = message_id = timestamp = kind = None
    user_id = app_id = cluster_id = None
    try:
        if flags & _FLAG_CONTENT_TYPE:
            stop = pos + 1 + buf[pos]
            content_type = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_CONTENT_ENCODING:
            stop = pos + 1 + buf[pos]
            content_encoding = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_HEADERS:
            headers, pos = data.decode_table(buf, pos)
        if flags & _FLAG_DELIVERY_MODE:
            delivery_mode = buf[pos]
            pos += 1
        if flags & _FLAG_PRIORITY:
            priority = buf[pos]
            pos += 1
        if flags & _FLAG_CORRELATION_ID:
            stop = pos + 1 + buf[pos]
            correlation_id = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_REPLY_TO:
            stop = pos + 1 + buf[pos]
            reply_to = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_EXPIRATION:
            stop = pos + 1 + buf[pos]
            expiration = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_MESSAGE_ID:
            stop = pos + 1 + buf[pos]
            message_id = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_TIMESTAMP:
            timestamp = _TIMESTAMP(buf, pos)[0]
            pos += 8
        if flags & _FLAG_TYPE:
            stop = pos + 1 + buf[pos]
            kind = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_USER_ID:
            stop = pos + 1 + buf[pos]
            user_id = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_APP_ID:
            stop = pos + 1 + buf[pos]
            app_id = buf[pos + 1 : stop].decode()
            pos = stop
        if flags & _FLAG_CLUSTER_ID:
            stop = pos + 1 + buf[pos]
            cluster_id = buf[pos + 1 : stop].decode()
            pos = stop
    except UnicodeDecodeError:
        return None
    if pos != end:
        return None
    # The attributes `spec.BasicProperties.__init__` sets, in its order, without its call.
    properties = _new_properties(spec.BasicProperties)
    properties.__dict__.update(
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        delivery_mode=delivery_mode,
        priority=priority,
        correlation_id=correlation_id,
        reply_to=reply_to,
        expiration=expiration,
        message_id=message_id,
        timestamp=timestamp,
        type=kind,
        user_id=user_id,
        app_id=app_id,
        cluster_id=cluster_id,
    )
    return properties


_new_properties = object.__new__


class DeliveryConnection(SelectConnection):
    """pika's SelectConnection with large reads and a direct path for complete deliveries (see the
    module's doc). Use as `pika.BlockingConnection(params, _impl_class=DeliveryConnection)`."""

    # The received bytes not yet made into frames start at `_rx_offset` in `_rx_buffer` (pika's
    # `_frame_buffer` stays empty). Both are replaced, never changed in place, so a nested call or
    # a reset of the connection's state while a frame is processed is seen by the loop.
    _rx_buffer: bytes = b""
    _rx_offset: int = 0

    def _init_connection_state(self) -> None:
        super()._init_connection_state()
        self._rx_buffer = b""
        self._rx_offset = 0

    def _proto_connection_made(self, transport: Any) -> None:
        if isinstance(getattr(transport, "_MAX_RECV_BYTES", None), int):
            transport._MAX_RECV_BYTES = RECV_BYTES  # this transport only; pika's class keeps 4 KiB
        super()._proto_connection_made(transport)

    def _on_data_available(self, data_in: bytes) -> None:
        if self._rx_offset < len(self._rx_buffer):
            buf = self._rx_buffer[self._rx_offset :] + data_in
        else:
            buf = data_in
        self._rx_buffer = buf
        self._rx_offset = off = 0
        end = len(buf)
        while off < end:
            if end - off >= 7 and buf[off] in _KNOWN_FRAME_TYPES:
                frame_type, channel_number, size = _FRAME_HEADER(buf, off)
                frame_end = off + size + 8
                if frame_end > end:
                    break  # the rest of the frame is still on its way
                if (
                    frame_type == _FRAME_TYPE_METHOD
                    and size >= 4
                    and _METHOD_ID(buf, off + 7)[0] == _DELIVER
                    and self._deliver(buf, off, frame_end, end, channel_number)
                ):
                    if self._rx_buffer is not buf:
                        return
                    off = self._rx_offset
                    continue
                consumed, frame_value = frame.decode_frame(buf[off:frame_end])
            else:
                # A protocol header (a version mismatch), a frame type pika refuses, or too few
                # bytes to tell: pika's decoder sees all that is there, as in its own loop.
                consumed, frame_value = frame.decode_frame(buf[off:])
            if not frame_value:
                break
            off += consumed
            self._rx_offset = off
            self.bytes_received += consumed
            self._process_frame(frame_value)
            if self._rx_buffer is not buf:
                return  # the connection's state was reset, or a nested call took the rest
        if off >= end:
            self._rx_buffer = b""
            self._rx_offset = 0

    def _deliver(self, buf: bytes, off: int, method_end: int, end: int, channel_number: int) -> bool:
        """Hand the message starting with the Basic.Deliver frame at `off` to its consumer, as
        pika's channel would, if all of it is in `buf` and nothing about it needs pika's path.
        Returns False, having done nothing, otherwise."""
        try:
            # pika's internals this relies on are looked at in here too: were they to change, the
            # error below sends every delivery pika's way (and the tests' fast-path counts fail).
            channel = self._channels.get(channel_number)
            if type(channel) is not Channel or channel._content_assembler._method_frame is not None:
                return False
            # pika lets a callback registered for this channel's Basic.Deliver take the frame.
            pending = self.callbacks._stack.get(str(channel_number))
            if pending is not None and _DELIVER_NAME in pending:
                return False
            # Basic.Deliver: consumer tag, delivery tag, redelivered bit, exchange, routing key.
            pos = off + 11
            stop = pos + 1 + buf[pos]
            consumer_tag = buf[pos + 1 : stop].decode()
            delivery_tag = _DELIVER_TAG(buf, stop)[0]
            redelivered = (buf[stop + 8] & 1) != 0
            pos = stop + 9
            stop = pos + 1 + buf[pos]
            exchange = buf[pos + 1 : stop].decode()
            pos = stop + 1 + buf[stop]
            routing_key = buf[stop + 1 : pos].decode()
            if pos != method_end - 1 or buf[pos] != _FRAME_END:
                return False
            consumer = channel._consumers.get(consumer_tag)
            if consumer is None or consumer_tag in channel._cancelled:
                return False  # pika logs it, or rejects it for a consumer being cancelled
            # The content header frame.
            head = method_end
            if end - head < 7:
                return False
            frame_type, number, size = _FRAME_HEADER(buf, head)
            head_end = head + size + 8
            if frame_type != _FRAME_TYPE_HEADER or number != channel_number or head_end > end or size < 14:
                return False
            if buf[head_end - 1] != _FRAME_END:
                return False
            class_id, _weight, body_size = _CONTENT_HEADER(buf, head + 7)
            if class_id != _BASIC_CLASS:
                return False
            properties = decode_properties(buf, head + 19, head_end - 1)
            if properties is None:
                return False
            # The body frames, up to the size the header announced.
            pos = head_end
            frames = 2
            remaining = body_size
            pieces = []
            while remaining > 0:
                if end - pos < 7:
                    return False
                frame_type, number, size = _FRAME_HEADER(buf, pos)
                piece_end = pos + size + 7
                if frame_type != _FRAME_TYPE_BODY or number != channel_number or size > remaining:
                    return False
                if piece_end >= end or buf[piece_end] != _FRAME_END:
                    return False
                pieces.append((pos + 7, piece_end))
                remaining -= size
                pos = piece_end + 1
                frames += 1
        except Exception:  # noqa: BLE001 - pika's path decodes it again, and raises its own error
            # Cut short or malformed (a bad field type in the headers...), a short string that is
            # not UTF-8 (pika keeps its bytes), pika's internals not as expected: pika's path decides.
            return False
        if len(pieces) == 1:
            start, stop = pieces[0]
            body = buf[start:stop]
        else:
            body = b"".join([buf[start:stop] for start, stop in pieces])
        method = spec.Basic.Deliver(consumer_tag, delivery_tag, redelivered, exchange, routing_key)
        self._rx_offset = pos
        self.frames_received += frames
        self.bytes_received += pos - off
        consumer(channel, method, properties, body)
        return True
