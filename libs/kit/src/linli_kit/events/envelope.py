"""The envelope every event travels in (DESIGN section 3)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from linli_kit import context, jsonvalues
from linli_kit.events.catalogue import CATALOGUE, InvalidEvent


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    producer: str
    version: int = 1
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    street_id: str | None = None
    community_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "producer": self.producer,
            "correlation_id": self.correlation_id,
            "street_id": self.street_id,
            "community_id": self.community_id,
            "data": self.data,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, body: bytes | str) -> Event:
        """Parse and validate an envelope and its data; raise InvalidEvent when either is wrong."""
        try:
            raw = jsonvalues.loads(body)  # msgspec, else json.loads: its errors and their wording
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEvent(f"body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise InvalidEvent("envelope must be a JSON object")
        if not raw.keys() >= _ENVELOPE_KEYS:
            missing = [k for k in _ENVELOPE_KEYS_IN_ORDER if k not in raw]
            raise InvalidEvent(f"envelope lacks {', '.join(missing)}")
        event_id = str(raw["id"])
        try:
            if _CANONICAL_UUID(event_id) is None:
                uuid.UUID(event_id)
            occurred_at = datetime.fromisoformat(str(raw["occurred_at"]).replace("Z", "+00:00"))
            version = int(raw["version"])
        except (ValueError, TypeError) as exc:
            raise InvalidEvent(f"envelope field has a bad value: {exc}") from exc
        if occurred_at.tzinfo is None:
            raise InvalidEvent("occurred_at must carry a UTC offset")
        event_type = str(raw["type"])
        data = CATALOGUE.validate(event_type, version, raw["data"])
        # What `cls(...)` makes, without the frozen dataclass's __init__ (an object.__setattr__ per
        # field, a sixth of this method's time): a consumer parses every event it receives here.
        # test_fastcheck.py checks the result equals the constructor's.
        event = object.__new__(cls)
        event.__dict__.update(
            type=event_type,
            data=data,
            producer=str(raw["producer"]),
            version=version,
            id=event_id,
            occurred_at=occurred_at,
            correlation_id=raw.get("correlation_id"),
            street_id=raw.get("street_id"),
            community_id=raw.get("community_id"),
        )
        return event


_ENVELOPE_KEYS_IN_ORDER = ("id", "type", "version", "occurred_at", "producer", "data")
_ENVELOPE_KEYS = frozenset(_ENVELOPE_KEYS_IN_ORDER)
# An id in the canonical form needs no uuid.UUID to be known valid; any other form is put to it.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidEvent("datetimes in events must carry a UTC offset")
        return value.isoformat()
    if isinstance(value, date | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def new_event(
    type: str,
    data: dict[str, Any],
    *,
    producer: str,
    street_id: str | None = None,
    community_id: str | None = None,
    correlation_id: str | None = None,
    version: int | None = None,
) -> Event:
    """An event checked against the catalogue, carrying the current request id as correlation id."""
    version = version or CATALOGUE.latest_version(type)
    # Datetimes, dates and UUIDs become their JSON forms first, so the check sees what travels.
    plain = json.loads(json.dumps(data, default=_json_default))
    checked = CATALOGUE.validate(type, version, plain)
    return Event(
        type=type,
        version=version,
        data=checked,
        producer=producer,
        street_id=street_id,
        community_id=community_id,
        correlation_id=correlation_id or context.request_id.get(),
    )
