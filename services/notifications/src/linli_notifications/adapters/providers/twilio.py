"""Twilio Programmable Messaging over its REST API (2010-04-01), HTTP basic auth with the account SID
and auth token. Twilio takes free text (no templates) and one recipient per call."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from linli_notifications.adapters.providers.aliyun import ProviderCheckFailed
from linli_notifications.adapters.providers.base import (
    HttpProvider,
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    json_or_empty,
)
from linli_notifications.domain.model import Channel

DEFAULT_BASE_URL = "https://api.twilio.com"
# https://www.twilio.com/docs/api/errors
ADDRESS_ERRORS = {21211, 21214, 21217, 21401, 21407, 21408, 21421, 21604, 21610, 21612, 21614}
RETRYABLE_ERRORS = {20429, 20500, 20503, 30001}


def request_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: Base64(HMAC-SHA1(auth token, URL + each POST key and value, keys sorted))."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


class TwilioSms(HttpProvider):
    name = "twilio"
    channel = Channel.SMS
    max_batch = 1

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = DEFAULT_BASE_URL,
        status_callback_url: str | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.base_url = base_url.rstrip("/")
        self.status_callback_url = status_callback_url

    @property
    def _messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: OutboundMessage) -> SendResult:
        form = {"To": message.address, "From": self.from_number, "Body": message.sms_text}
        if self.status_callback_url:
            form["StatusCallback"] = self.status_callback_url
        response, failure, latency = self._call(
            "POST", self._messages_url, data=form, auth=(self.account_sid, self.auth_token)
        )
        if response is None:
            return SendResult(message.delivery_id, message.address, failure, latency_ms=latency)
        body = json_or_empty(response)
        request_id = response.headers.get("Twilio-Request-Id")
        if response.status_code in (200, 201):
            return SendResult(
                message.delivery_id,
                message.address,
                Outcome.OK,
                message_id=body.get("sid"),
                request_id=request_id,
                latency_ms=latency,
            )
        code = body.get("code")
        if code in ADDRESS_ERRORS:
            outcome = Outcome.PERMANENT
        elif code in RETRYABLE_ERRORS:
            outcome = Outcome.RETRYABLE
        else:
            outcome = classify_http_status(response.status_code) or Outcome.PROVIDER
        return SendResult(
            message.delivery_id,
            message.address,
            outcome,
            request_id=request_id,
            error_code=str(code or response.status_code),
            error_message=body.get("message"),
            latency_ms=latency,
            address_gone=code in ADDRESS_ERRORS and code != 21610,
        )

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        """List the messages sent to the number since the attempt; found when one has our text."""
        response, failure, latency = self._call(
            "GET",
            self._messages_url,
            params={"To": message.address, "DateSent>": sent_after.strftime("%Y-%m-%d")},
            auth=(self.account_sid, self.auth_token),
        )
        if response is None or response.status_code != 200:
            raise ProviderCheckFailed(str(failure or response.status_code))
        for item in json_or_empty(response).get("messages") or []:
            if item.get("body") == message.sms_text and item.get("to") == message.address:
                return SendResult(
                    message.delivery_id, message.address, Outcome.OK, message_id=item.get("sid"), latency_ms=latency
                )
        return None
