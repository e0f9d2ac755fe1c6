"""The one small interface every channel provider implements, and how call failures are classified.

Outcomes of one message on one provider:
- ok: accepted by the provider (state `sent`; a receipt may later say `delivered` or `failed`);
- retryable: timeout before sending, 429, 5xx, provider throttling: try again later with back-off;
- permanent: the address or content can never succeed (invalid number, unregistered token): give up;
- provider: this provider cannot send it (account, template not approved, balance): try the next one;
- unknown: the request may have been processed (read timeout): check with the provider, never resend blindly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import requests
import requests.adapters

from linli_notifications.domain.model import Channel


class Outcome(StrEnum):
    OK = "ok"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    PROVIDER = "provider"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OutboundMessage:
    delivery_id: str
    channel: Channel
    address: str  # E.164-ish phone number, a device token, or a Web Push endpoint URL
    locale: str
    title: str
    body: str
    sms_text: str
    kind: str  # the kind of message: a provider of pre-approved templates finds its template by it
    template_params: dict[str, str]
    data: dict[str, str] = field(default_factory=dict)
    push_keys: dict[str, str] | None = None  # Web Push: the subscription's {p256dh, auth}


@dataclass
class SendResult:
    delivery_id: str
    address: str
    outcome: Outcome
    message_id: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    latency_ms: int = 0
    address_gone: bool = False  # the token or number no longer exists: prune it


class Provider(Protocol):
    name: str
    channel: Channel
    max_batch: int  # messages one call may carry (same content)

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]: ...

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        """For an unknown outcome: the result if the provider has the message, None if it has not."""
        ...


class HttpProvider:
    """Shared plumbing of the HTTP providers: one pooled session, timeouts, error classification."""

    name = "http"
    connect_timeout = 3.0
    read_timeout = 10.0

    def __init__(self) -> None:
        self.http = requests.Session()
        # As many pooled connections as the delivery loop has calls in flight.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)

    def _call(self, method: str, url: str, **kwargs: Any) -> tuple[requests.Response | None, Outcome | None, int]:
        """The response, or the outcome of a transport failure, and the latency in ms."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, timeout=(self.connect_timeout, self.read_timeout), **kwargs)
        except requests.ConnectTimeout:
            return None, Outcome.RETRYABLE, _ms(started)
        except requests.ReadTimeout:
            # The request was written; the provider may have processed it.
            return None, Outcome.UNKNOWN, _ms(started)
        except requests.ConnectionError as exc:
            # Refused before the request was written: nothing was sent. Dropped after writing it:
            # it may have been processed.
            text = str(exc)
            if "Connection aborted" in text or "RemoteDisconnected" in text:
                return None, Outcome.UNKNOWN, _ms(started)
            return None, Outcome.RETRYABLE, _ms(started)
        return response, None, _ms(started)

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        return None


def classify_http_status(status: int) -> Outcome | None:
    if status == 429 or status >= 500:
        return Outcome.RETRYABLE
    if status in (401, 403):
        return Outcome.PROVIDER
    return None


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
