"""The relay reads an outbox row's correlation id and producer from the part of the payload before
its data when it can, and gives the same answer as parsing the whole payload."""

from __future__ import annotations

import json

import pytest

from linli_kit.events import Event
from linli_kit.events.relay import _envelope_fields


def whole(payload: str) -> dict:
    try:
        envelope = json.loads(payload)
    except ValueError:
        return {}
    return envelope if isinstance(envelope, dict) else {}


def fields(envelope: dict) -> tuple:
    return envelope.get("correlation_id"), envelope.get("producer")


tricky = Event(
    type="issues.issue.reported",
    data={"title": 'a ,"data": inside \\" a string', "data": {"data": 1}, "issue_id": "x"},
    producer="issues",
    correlation_id='req ,"data":"x"',
)
PAYLOADS = [
    Event(type="issues.issue.reported", data={"issue_id": "x"}, producer="issues", correlation_id="req-1").to_json(),
    Event(type="issues.issue.reported", data={"issue_id": "x"}, producer="issues").to_json(),  # no correlation id
    tricky.to_json(),
    # Another writer's layouts: the fields after the data, a nested "data" first, spaces, not JSON.
    '{"id":"1","data":{"a":1},"producer":"issues","correlation_id":"late"}',
    '{"id":"1","extra":{"x":1,"data":2},"producer":"p","correlation_id":"c","data":{}}',
    '{"id": "1", "producer": "p", "correlation_id": "c", "data": {}}',
    '{"id":"1","producer":"p","data":{}}',  # no correlation id at all
    '["a","data":1]',
    "not json",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_same_fields_as_the_whole_payload(payload):
    assert fields(_envelope_fields(payload)) == fields(whole(payload))


def test_a_payload_of_to_json_is_read_up_to_its_data(monkeypatch):
    parsed: list[str] = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda text, *a, **k: parsed.append(text) or real(text, *a, **k))
    payload = tricky.to_json()

    assert fields(_envelope_fields(payload)) == ('req ,"data":"x"', "issues")
    assert len(parsed) == 1 and "inside" not in parsed[0]


def test_a_payload_broken_in_its_data_still_carries_its_head():
    # Not parsed to the end, so not found broken: sent with its correlation id, and the consumers
    # dead-letter it as before (the relay never refused such a row, only sent it without one).
    assert fields(_envelope_fields('{"id":"1","producer":"p","correlation_id":"c","data":{')) == ("c", "p")
