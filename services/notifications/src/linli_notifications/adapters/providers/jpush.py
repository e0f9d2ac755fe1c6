"""JPush (极光推送) REST API v3 `POST /v3/push`, HTTP basic auth with the app key and master secret.

One call reaches up to 1,000 registration ids with the same content.

Delivery receipts: JPush calls nobody back; its Report API v3 `GET /v3/received/detail?msg_ids=...`
(up to 100 msg_ids a call, the same basic auth) says how many devices received each message, by
channel. Those are counts per msg_id, not per device: see `received()` and service_layer/receipts.
"""

from __future__ import annotations

from linli_notifications.adapters.providers.base import (
    HttpProvider,
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    json_or_empty,
)
from linli_notifications.domain.model import Channel

DEFAULT_ENDPOINT = "https://api.jpush.cn/v3/push"
DEFAULT_REPORT_ENDPOINT = "https://report.jpush.cn/v3/received/detail"
REPORT_BATCH = 100  # msg_ids per Report API call
# Fields of a /v3/received/detail entry that count devices which received a notification (JPush's
# own channel, Android vendor channels, APNs, quick apps, HarmonyOS). ios_msg_received counts
# in-app custom messages, which we do not send; *_sent fields are hand-overs, not receipts.
RECEIVED_FIELDS = (
    "jpush_received",
    "android_pns_received",
    "ios_apns_received",
    "quickapp_jpush_received",
    "hmos_hmpns_received",
)
# https://docs.jiguang.cn/jpush/server/push/rest_api_v3_push (error codes)
NO_AUDIENCE = 1011  # none of the registration ids is (still) registered
RETRYABLE_ERRORS = {1000, 2002, 2008}  # system error, rate limit, timeout inside JPush
PROVIDER_ERRORS = {1004, 1008, 1009}  # authentication, app key, unsupported


class JPush(HttpProvider):
    name = "jpush"
    channel = Channel.PUSH
    max_batch = 1000

    def __init__(
        self,
        app_key: str,
        master_secret: str,
        endpoint: str = DEFAULT_ENDPOINT,
        apns_production: bool = True,
        report_endpoint: str = DEFAULT_REPORT_ENDPOINT,
    ) -> None:
        super().__init__()
        self.app_key = app_key
        self.master_secret = master_secret
        self.endpoint = endpoint
        self.apns_production = apns_production
        self.report_endpoint = report_endpoint

    def received(self, msg_ids: list[str]) -> dict[str, int]:
        """Devices that received each message so far (msg_id -> count), from the Report API.

        Raises ReportFailed when JPush does not answer with the report (ask again next time)."""
        counts: dict[str, int] = {}
        for start in range(0, len(msg_ids), REPORT_BATCH):
            chunk = msg_ids[start : start + REPORT_BATCH]
            response, failure, _latency = self._call(
                "GET",
                self.report_endpoint,
                params={"msg_ids": ",".join(chunk)},
                auth=(self.app_key, self.master_secret),
            )
            if response is None or response.status_code != 200:
                error = (json_or_empty(response).get("error") or {}) if response is not None else {}
                raise ReportFailed(
                    str(error.get("code") or (response.status_code if response is not None else failure))
                )
            try:
                entries = response.json()
            except ValueError as exc:
                raise ReportFailed("not JSON") from exc
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("msg_id") is not None:
                    counts[str(entry["msg_id"])] = sum(int(entry.get(f) or 0) for f in RECEIVED_FIELDS)
        return counts

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        first = messages[0]
        payload = {
            "platform": "all",
            "audience": {"registration_id": [m.address for m in messages]},
            "notification": {
                "alert": first.body,
                "android": {"alert": first.body, "title": first.title, "extras": first.data},
                "ios": {"alert": {"title": first.title, "body": first.body}, "sound": "default", "extras": first.data},
            },
            "options": {"time_to_live": 86400, "apns_production": self.apns_production},
        }
        response, failure, latency = self._call(
            "POST", self.endpoint, json=payload, auth=(self.app_key, self.master_secret)
        )
        if response is None:
            # A duplicate push is a nuisance, not a second SMS bill: an unknown outcome is retried.
            outcome = Outcome.RETRYABLE if failure == Outcome.UNKNOWN else failure
            return [SendResult(m.delivery_id, m.address, outcome, latency_ms=latency) for m in messages]
        body = json_or_empty(response)
        if response.status_code == 200 and "msg_id" in body:
            msg_id = str(body["msg_id"])
            # The msg_id is also the request's id: attempts with it count the devices it went to.
            return [
                SendResult(
                    m.delivery_id, m.address, Outcome.OK, message_id=msg_id, request_id=msg_id, latency_ms=latency
                )
                for m in messages
            ]
        error = body.get("error") or {}
        code = error.get("code")
        gone = code == NO_AUDIENCE
        if gone:
            outcome = Outcome.PERMANENT
        elif code in RETRYABLE_ERRORS:
            outcome = Outcome.RETRYABLE
        elif code in PROVIDER_ERRORS:
            outcome = Outcome.PROVIDER
        else:
            outcome = classify_http_status(response.status_code) or Outcome.PERMANENT
        return [
            SendResult(
                m.delivery_id,
                m.address,
                outcome,
                request_id=str(body.get("msg_id") or "") or None,
                error_code=str(code or response.status_code),
                error_message=error.get("message"),
                latency_ms=latency,
                # With one id, "no audience" means that token is gone. With many, JPush does not say
                # which: the tokens are kept and retried one by one next time.
                address_gone=gone and len(messages) == 1,
            )
            for m in messages
        ]


class ReportFailed(RuntimeError):
    """The Report API did not answer with the report."""
