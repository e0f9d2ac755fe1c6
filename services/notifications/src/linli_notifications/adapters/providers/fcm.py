"""Firebase Cloud Messaging HTTP v1: `POST /v1/projects/{project}/messages:send` with an OAuth2
access token obtained from a service account (a JWT assertion, RS256, exchanged at the token URI)."""

from __future__ import annotations

import threading
import time

import jwt

from linli_notifications.adapters.providers.base import (
    HttpProvider,
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    json_or_empty,
)
from linli_notifications.domain.model import Channel

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
# https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
GONE = {"UNREGISTERED"}
PERMANENT = {"INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}
RETRYABLE = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}
PROVIDER = {"THIRD_PARTY_AUTH_ERROR", "PERMISSION_DENIED", "UNAUTHENTICATED"}


class FirebaseMessaging(HttpProvider):
    name = "fcm"
    channel = Channel.PUSH
    max_batch = 1  # HTTP v1 sends one message per request (the batch endpoint is retired)

    def __init__(
        self,
        project_id: str,
        client_email: str,
        private_key: str,
        token_uri: str = DEFAULT_TOKEN_URI,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = client_email
        self.private_key = private_key
        self.token_uri = token_uri
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    def access_token(self, *, refresh: bool = False) -> str | None:
        with self._lock:
            if not refresh and self._token and time.time() < self._token_expires - 60:
                return self._token
            now = int(time.time())
            assertion = jwt.encode(
                {"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600},
                self.private_key,
                algorithm="RS256",
            )
            response, _failure, _latency = self._call(
                "POST",
                self.token_uri,
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
            )
            if response is None or response.status_code != 200:
                return None
            body = json_or_empty(response)
            self._token = body.get("access_token")
            self._token_expires = time.time() + float(body.get("expires_in", 3600))
            return self._token

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: OutboundMessage, retried_auth: bool = False) -> SendResult:
        token = self.access_token(refresh=retried_auth)
        if token is None:
            return SendResult(message.delivery_id, message.address, Outcome.RETRYABLE, error_code="oauth_token")
        payload = {
            "message": {
                "token": message.address,
                "notification": {"title": message.title, "body": message.body},
                "data": message.data,
                "android": {"priority": "high"},
            }
        }
        response, failure, latency = self._call(
            "POST",
            f"{self.base_url}/v1/projects/{self.project_id}/messages:send",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response is None:
            outcome = Outcome.RETRYABLE if failure == Outcome.UNKNOWN else failure
            return SendResult(message.delivery_id, message.address, outcome, latency_ms=latency)
        body = json_or_empty(response)
        if response.status_code == 200:
            return SendResult(
                message.delivery_id, message.address, Outcome.OK, message_id=body.get("name"), latency_ms=latency
            )
        if response.status_code == 401 and not retried_auth:
            return self._send_one(message, retried_auth=True)
        error = body.get("error") or {}
        code = next((d.get("errorCode") for d in error.get("details") or [] if d.get("errorCode")), error.get("status"))
        if code in GONE:
            outcome = Outcome.PERMANENT
        elif code in PERMANENT:
            outcome = Outcome.PERMANENT
        elif code in RETRYABLE:
            outcome = Outcome.RETRYABLE
        elif code in PROVIDER:
            outcome = Outcome.PROVIDER
        else:
            outcome = classify_http_status(response.status_code) or Outcome.PERMANENT
        return SendResult(
            message.delivery_id,
            message.address,
            outcome,
            error_code=code,
            error_message=error.get("message"),
            latency_ms=latency,
            address_gone=code in GONE,
        )
