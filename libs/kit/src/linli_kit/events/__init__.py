"""The event bus: envelope and catalogue, topology, transactional outbox and relay, idempotent consumer."""

from linli_kit.events import contracts  # noqa: F401 - registers every declared event type
from linli_kit.events.catalogue import CATALOGUE, EventSchema, InvalidEvent
from linli_kit.events.consumer import BatchHandler, Handler, batch_handler
from linli_kit.events.envelope import Event, new_event

__all__ = ["CATALOGUE", "BatchHandler", "Event", "EventSchema", "Handler", "InvalidEvent", "batch_handler", "new_event"]
