"""The relay's hand-marshalled publish frames are byte for byte what pika's basic_publish sends, and
what pika alone should send (it refuses a string over 255 bytes) is left to pika."""

from __future__ import annotations

import pika
import pytest
from pika import frame, spec

from linli_kit.events.relay import _publish_frames


def pikas(channel, exchange, event_type, body, body_max, *, message_id, timestamp, correlation_id, app_id):
    properties = pika.BasicProperties(
        message_id=message_id,
        type=event_type,
        timestamp=timestamp,
        content_type="application/json",
        delivery_mode=2,
        correlation_id=correlation_id,
        app_id=app_id,
    )
    frames = [
        frame.Method(channel, spec.Basic.Publish(exchange=exchange, routing_key=event_type, mandatory=True)).marshal(),
        frame.Header(channel, len(body), properties).marshal(),
    ]
    for start in range(0, len(body), body_max):
        frames.append(frame.Body(channel, body[start : start + body_max]).marshal())
    return frames


CASES = [
    (1, "linli.events", "issues.issue.reported", b'{"a":1}', 131064, "id-1", 1_764_806_400, "req-1", "issues"),
    (7, "linli.events", "issues.issue.reported", "路灯".encode() * 300, 100, "id-2", 0, None, None),  # 18 frames
    (1, "linli.unrouted", "meetings.meeting.scheduled", b"", 4096, None, 2**40, "", "meetings"),
    (65535, "", "x" * 255, b"{}", 131064, "é" * 127, 5, "c" * 255, "p"),
]


@pytest.mark.parametrize("case", CASES)
def test_the_same_bytes_as_pika(case):
    channel, exchange, event_type, body, body_max, message_id, timestamp, correlation_id, app_id = case
    kwargs = {"message_id": message_id, "timestamp": timestamp, "correlation_id": correlation_id, "app_id": app_id}
    ours = _publish_frames(channel, exchange, event_type, body, body_max, **kwargs)
    assert ours == pikas(channel, exchange, event_type, body, body_max, **kwargs)


@pytest.mark.parametrize(
    "changes",
    [
        {"correlation_id": "c" * 256},  # pika refuses it: its own path raises, as before
        {"app_id": "é" * 128},
        {"message_id": 5},  # not a string
        {"correlation_id": ["a"]},
        {"timestamp": -1},
        {"event_type": "t" * 256},
    ],
)
def test_left_to_pika(changes):
    kwargs = {"message_id": "id", "timestamp": 1, "correlation_id": "c", "app_id": "p", **changes}
    event_type = kwargs.pop("event_type", "issues.issue.reported")
    assert _publish_frames(1, "linli.events", event_type, b"{}", 4096, **kwargs) is None
