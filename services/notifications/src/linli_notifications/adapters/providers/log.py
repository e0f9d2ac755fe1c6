"""The embedded default provider: records that a message would have gone out, and succeeds.

It never writes an address or a text to the log, only the delivery ids and the sizes. One
exception makes the local platform usable: when `log` is the only SMS provider (`make run`, where
no message really leaves the machine), each one-time sign-up or login code is printed on the
worker's standard output, the number masked, so the person running the platform can finish a
sign-up: `SMS to 136****5678: 【邻里】您的验证码是123456，…`. With any real SMS provider configured
(even with `log` as its fallback) nothing is printed: codes never reach the logs of a deployment.
"""

from __future__ import annotations

import logging
import sys
import uuid
from datetime import datetime
from typing import TextIO

from linli_notifications.adapters.providers.base import OutboundMessage, Outcome, SendResult
from linli_notifications.domain.model import Channel

log = logging.getLogger("linli_notifications.log_provider")
CODE_KIND = "account.code"


class LogProvider:
    name = "log"

    def __init__(
        self, channel: Channel, max_batch: int = 1000, *, show_codes: bool = False, output: TextIO | None = None
    ) -> None:
        self.channel = channel
        self.max_batch = max_batch
        self.show_codes = show_codes and channel == Channel.SMS
        self.output = output
        self.sent: dict[str, str] = {}  # delivery id -> message id, for check()

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            message_id = f"log-{uuid.uuid4()}"
            self.sent[message.delivery_id] = message_id
            results.append(SendResult(message.delivery_id, message.address, Outcome.OK, message_id=message_id))
            if self.show_codes and message.data.get("kind") == CODE_KIND:
                print(f"SMS to {mask(message.address)}: {message.sms_text}", file=self.output or sys.stdout, flush=True)
        log.info("log provider sent", extra={"channel": self.channel.value, "messages": len(messages)})
        return results

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        message_id = self.sent.get(message.delivery_id)
        if message_id is None:
            return None
        return SendResult(message.delivery_id, message.address, Outcome.OK, message_id=message_id)


def mask(phone: str) -> str:
    """136****5678: enough to tell whose code it is, not the whole number."""
    digits = phone.removeprefix("+86") if phone.startswith("+86") and len(phone) == 14 else phone
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
