"""The embedded default provider: records that a message would have gone out, and succeeds.

It never writes the address or the text to the log, only the delivery id and the sizes.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from linli_notifications.adapters.providers.base import OutboundMessage, Outcome, SendResult
from linli_notifications.domain.model import Channel

log = logging.getLogger("linli_notifications.log_provider")


class LogProvider:
    name = "log"

    def __init__(self, channel: Channel, max_batch: int = 1000) -> None:
        self.channel = channel
        self.max_batch = max_batch
        self.sent: dict[str, str] = {}  # delivery id -> message id, for check()

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            message_id = f"log-{uuid.uuid4()}"
            self.sent[message.delivery_id] = message_id
            results.append(SendResult(message.delivery_id, message.address, Outcome.OK, message_id=message_id))
        log.info("log provider sent", extra={"channel": self.channel.value, "messages": len(messages)})
        return results

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        message_id = self.sent.get(message.delivery_id)
        if message_id is None:
            return None
        return SendResult(message.delivery_id, message.address, Outcome.OK, message_id=message_id)
