"""Events the notifications service publishes."""

from marshmallow import fields

from linli_kit.events.catalogue import CATALOGUE, EventSchema
from linli_kit.events.contracts._fields import text, uuid


class DeliveryFailed(EventSchema):
    """A notification could not be delivered on any provider of its channel (for monitoring)."""

    notification_id = uuid()
    delivery_id = uuid()
    recipient_id = uuid()
    channel = text(20)
    providers_tried = fields.List(fields.String(), load_default=list)
    reason = text(1000)
    attempts = fields.Integer(required=True)
    source_event_type = text(120, required=False)


CATALOGUE.register("notifications.delivery.failed", 1, DeliveryFailed)
