"""Web Push (RFC 8030) to a browser's push service, signed with VAPID (RFC 8292), the payload
encrypted for the subscription (RFC 8291, `aes128gcm` of RFC 8188).

A device of provider `webpush` is a browser's subscription: its token is the push service's
endpoint URL, its `push_keys` the browser's `p256dh` (P-256 public key) and `auth` secret. Each
message is one `POST` to the endpoint:

- `Authorization: vapid t=<JWT ES256 {aud: the endpoint's origin, exp, sub}>, k=<our public key>`;
- the body: a JSON `{title, body, tag, data}` encrypted with a fresh ECDH key for that browser;
- `TTL` (how long the push service may hold it), `Urgency`, and a `Topic` made from the delivery
  id, so that a message sent again (after a lost answer) replaces the copy still waiting.

201 means the push service has it. 404 and 410 mean the subscription is gone (the person turned
alerts off, or the browser dropped it): the device is pruned and never sent to again. Endpoints are
accepted only on the push services' hosts (`WEBPUSH_ENDPOINT_HOSTS`): a subscription is written by
the browser, and the worker must not be made to post to any address someone registers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from linli_notifications.adapters.providers.base import (
    HttpProvider,
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
)
from linli_notifications.domain.model import Channel

# The push services of the browsers residents use (Chrome, Edge, Firefox, Safari): a host, or
# `.suffix` for any host under it.
DEFAULT_ENDPOINT_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
GONE = {404, 410}
TOKEN_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
MAX_PLAINTEXT = 3800  # one record of 4096 octets, less the header (86), the tag (16) and padding
MAX_ENDPOINT = 1024


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == a or (a.startswith(".") and host.endswith(a)) for a in allowed)


def endpoint_problem(endpoint: str, allowed: tuple[str, ...]) -> str | None:
    """Why this endpoint URL cannot be a push service's, or None."""
    if len(endpoint) > MAX_ENDPOINT:
        return f"longer than {MAX_ENDPOINT} characters"
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        return "not a URL"
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        return "not a push service URL"
    if not host_allowed(host, allowed):
        return f"{host} is not a push service this platform sends to"
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK):
        return "must be an https URL"
    return None


def keys_problems(p256dh: str, auth: str) -> dict[str, str]:
    """What is wrong with a subscription's keys, by key name (empty when they are usable)."""
    problems = {}
    try:
        point = b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError
    except (ValueError, TypeError):
        problems["p256dh"] = "not a P-256 public key (65 octets, base64url)"
    try:
        if len(b64url_decode(auth)) != 16:
            raise ValueError
    except (ValueError, TypeError):
        problems["auth"] = "not an authentication secret (16 octets, base64url)"
    return problems


def origin_of(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


@dataclass(frozen=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey
    subject: str  # mailto: or https: (the push service's operator may write to it)

    @property
    def public_key(self) -> str:
        """The application server key the page subscribes with (base64url, uncompressed point)."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url_encode(point)


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """RFC 8291: aes128gcm for the browser's key and secret, with a key pair made for this message."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    return http_ece.encrypt(
        payload, private_key=ephemeral, dh=b64url_decode(p256dh), auth_secret=b64url_decode(auth), version="aes128gcm"
    )


def payload_of(message: OutboundMessage) -> bytes:
    """What the service worker shows: the title and the text, cut to fit one record."""
    body = message.body
    while True:
        data = {
            "title": message.title,
            "body": body,
            "tag": message.data.get("notification_id") or message.delivery_id,
            "data": message.data,
        }
        raw = json.dumps(data, ensure_ascii=False).encode()
        if len(raw) <= MAX_PLAINTEXT or not body:
            return raw
        body = body[: max(0, len(body) - (len(raw) - MAX_PLAINTEXT) // 3 - 1)] if len(body) > 1 else ""


class WebPush(HttpProvider):
    name = "webpush"
    channel = Channel.PUSH
    max_batch = 1  # one request per subscription; the delivery loop runs several at once

    def __init__(
        self,
        keys: VapidKeys,
        endpoint_hosts: tuple[str, ...] = DEFAULT_ENDPOINT_HOSTS,
        ttl_seconds: int = 86400,
    ) -> None:
        super().__init__()
        self.keys = keys
        self.vapid = Vapid02(keys.private_key)
        self.endpoint_hosts = endpoint_hosts
        self.ttl_seconds = ttl_seconds
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (Authorization, expiry)
        self._lock = threading.Lock()

    def authorization(self, endpoint: str) -> str:
        """`vapid t=..., k=...` for the endpoint's push service, remade an hour before it expires."""
        audience = origin_of(endpoint)
        with self._lock:
            found = self._tokens.get(audience)
            if found and time.time() < found[1] - 3600:
                return found[0]
            expires = int(time.time()) + TOKEN_LIFETIME
            header = self.vapid.sign({"aud": audience, "exp": expires, "sub": self.keys.subject})["Authorization"]
            self._tokens[audience] = (header, expires)
            return header

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [self._send_one(m) for m in messages]

    def _result(self, m: OutboundMessage, outcome: Outcome, **fields: object) -> SendResult:
        return SendResult(m.delivery_id, m.address, outcome, **fields)  # type: ignore[arg-type]

    def _send_one(self, m: OutboundMessage) -> SendResult:
        problem = endpoint_problem(m.address, self.endpoint_hosts)
        if problem:
            return self._result(m, Outcome.PERMANENT, error_code="endpoint", error_message=problem)
        keys = m.push_keys or {}
        if keys_problems(keys.get("p256dh") or "", keys.get("auth") or ""):
            # A subscription without usable keys can never be sent to: drop it.
            return self._result(
                m, Outcome.PERMANENT, error_code="keys", error_message="subscription keys", address_gone=True
            )
        body = encrypt(payload_of(m), keys["p256dh"], keys["auth"])
        headers = {
            "Authorization": self.authorization(m.address),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.ttl_seconds),
            "Urgency": "high" if m.data.get("urgent") == "true" else "normal",
            "Topic": b64url_encode(hashlib.sha256(m.delivery_id.encode()).digest())[:32],
        }
        response, failure, latency = self._call("POST", m.address, data=body, headers=headers)
        if response is None:
            # The Topic replaces a copy still waiting: sending again is safe enough.
            outcome = Outcome.RETRYABLE if failure == Outcome.UNKNOWN else failure
            return self._result(m, outcome or Outcome.RETRYABLE, latency_ms=latency)
        status = response.status_code
        if 200 <= status < 300:
            return self._result(m, Outcome.OK, message_id=response.headers.get("Location"), latency_ms=latency)
        detail = (response.text or "")[:200] or response.reason
        if status in GONE:
            gone = {"error_code": str(status), "error_message": detail, "address_gone": True}
            return self._result(m, Outcome.PERMANENT, latency_ms=latency, **gone)
        outcome = classify_http_status(status) or Outcome.PERMANENT  # 400, 413 (too large): never better
        return self._result(m, outcome, error_code=str(status), error_message=detail, latency_ms=latency)
