"""The event catalogue: every event type and version, declared once, checked by producer and consumer.

Adding an optional field to a schema is compatible. Removing or renaming one is not: declare the
next version beside the old one, and consumers keep accepting both until producers have moved.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, ValidationError

from linli_kit.events.fastcheck import Check, compile_schema


class InvalidEvent(ValueError):
    """An envelope or its data does not match the catalogue; retrying will not help."""


class EventSchema(Schema):
    # True when the event's data identifies or reaches a person (a phone number, a one-time code):
    # the producer's outbox then keeps the payload only until the broker has confirmed it.
    personal_data: ClassVar[bool] = False

    class Meta:
        # Newer producers may add fields; an older consumer keeps them and reads what it knows.
        unknown = INCLUDE


class Catalogue:
    def __init__(self) -> None:
        self._schemas: dict[tuple[str, int], Schema] = {}
        # Per (type, version), built once: True for data its schema surely loads (see fastcheck).
        self._checks: dict[tuple[str, int], Check] = {}
        self._personal: frozenset[str] = frozenset()
        # Each type's latest version, kept as versions are registered: asked for each new event,
        # and a walk over every (type, version) was a fifth of making one.
        self._latest: dict[str, int] = {}

    def register(self, event_type: str, version: int, schema: type[Schema]) -> None:
        instance = schema()
        self._schemas[(event_type, version)] = instance
        self._checks[(event_type, version)] = compile_schema(instance)
        self._latest[event_type] = max(version, self._latest.get(event_type, version))
        if getattr(schema, "personal_data", False):
            self._personal = self._personal | {event_type}

    def types(self) -> list[str]:
        return sorted({t for t, _ in self._schemas})

    def personal_types(self) -> frozenset[str]:
        """The event types any version of which is declared as carrying personal data."""
        return self._personal

    def latest_version(self, event_type: str) -> int:
        latest = self._latest.get(event_type)
        if latest is None:
            raise InvalidEvent(f"unknown event type {event_type!r}")
        return latest

    def validate(self, event_type: str, version: int, data: Any) -> dict[str, Any]:
        schema = self._schemas.get((event_type, version))
        if schema is None:
            raise InvalidEvent(f"unknown event type {event_type!r} version {version}")
        if not isinstance(data, dict):
            raise InvalidEvent(f"{event_type}: data must be an object")
        if self._checks[(event_type, version)](data):
            # Surely valid: what marshmallow would accept, without its cost. Otherwise marshmallow
            # decides, and words the error.
            return data
        try:
            schema.load(data)
        except ValidationError as exc:
            raise InvalidEvent(f"{event_type} v{version}: {exc.messages}") from exc
        return data


CATALOGUE = Catalogue()
