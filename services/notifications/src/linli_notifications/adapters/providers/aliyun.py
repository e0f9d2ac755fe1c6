"""Alibaba Cloud SMS (Dysmsapi 2017-05-25) over its RPC API with signature version 1.0.

Every call is an HTTP request whose query carries the common parameters (AccessKeyId, Action,
Format, RegionId, SignatureMethod=HMAC-SHA1, SignatureNonce, SignatureVersion=1.0, Timestamp,
Version) and the action's own; `Signature` is Base64(HMAC-SHA1(secret + "&", StringToSign)) where
StringToSign = METHOD & percent("/") & percent(canonical sorted query). Templates are pre-approved:
we send the template code and its parameters, never free text. The codes and signature names are
the account's own (`AliyunTemplates`, from the configuration); parameters Alibaba Cloud would refuse
(domain/templates.py, `variable_problem`) are not sent: the next provider of the chain may carry
the message as free text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from linli_notifications.adapters.providers.base import (
    HttpProvider,
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    json_or_empty,
)
from linli_notifications.config import AliyunTemplates
from linli_notifications.domain.model import Channel
from linli_notifications.domain.templates import variable_problem

API_VERSION = "2017-05-25"
BATCH_MARK = "linli-batch"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
# Error codes (https://help.aliyun.com/document_detail/101346.html) by what they mean for us.
ADDRESS_ERRORS = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT", "isv.BLACK_KEY_CONTROL_LIMIT"}
RETRYABLE_ERRORS = {"isp.SYSTEM_ERROR", "Throttling.User", "isv.BUSINESS_LIMIT_CONTROL", "isp.RAM_PERMISSION_DENY"}
_CHINA = ZoneInfo("Asia/Shanghai")  # SendDate is a day in Beijing time
# The template, signature or parameters Alibaba Cloud refused: another provider (free text) may send it.
TEMPLATE_ERRORS = {
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.INVALID_JSON_PARAM",
    "isv.PARAM_LENGTH_LIMIT",
}


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ENCODED = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


def percent(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud specifies it: space %20, * %2A, ~ kept (what
    `urllib.parse.quote(value, safe="~")` gives, by a table: a batch's JSON is kilobytes long)."""
    return "".join(map(_ENCODED.__getitem__, value.encode()))


def canonical_query(params: dict[str, str]) -> str:
    """The sorted, percent-encoded query: what is signed, and (with the signature) the request body."""
    return "&".join(f"{k}={v}" for k, v in sorted((percent(k), percent(v)) for k, v in params.items()))


def sign_canonical(method: str, canonical: str, secret: str) -> str:
    # percent() of a canonical query: its only characters outside the unreserved set are % = &.
    encoded = canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    string_to_sign = f"{method}&{percent('/')}&{encoded}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sign(method: str, params: dict[str, str], secret: str) -> str:
    return sign_canonical(method, canonical_query(params), secret)


class AliyunSms(HttpProvider):
    name = "aliyun"
    channel = Channel.SMS
    max_batch = 100  # SendBatchSms takes at most 100 numbers per call

    def __init__(
        self, access_key_id: str, access_key_secret: str, templates: AliyunTemplates, endpoint: str = DEFAULT_ENDPOINT
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = templates
        self.endpoint = endpoint

    def _request(self, action: str, params: dict[str, str]) -> tuple[dict, Outcome | None, int, int]:
        query = {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            **params,
        }
        # Each value is encoded once: the signed canonical query is the form body as well.
        canonical = canonical_query(query)
        signature = percent(sign_canonical("POST", canonical, self.access_key_secret))
        response, failure, latency = self._call(
            "POST",
            self.endpoint,
            data=f"{canonical}&Signature={signature}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if response is None:
            return {}, failure, latency, 0
        return json_or_empty(response), None, latency, response.status_code

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send messages of one kind and language (one template, one signature) in one call."""
        refused = {m.delivery_id: self._refusal(m) for m in messages}
        refused = {k: v for k, v in refused.items() if v is not None}
        sendable = [m for m in messages if m.delivery_id not in refused]
        sent = {r.delivery_id: r for r in self._send(sendable)} if sendable else {}
        return [refused.get(m.delivery_id) or sent[m.delivery_id] for m in messages]

    def _refusal(self, m: OutboundMessage) -> SendResult | None:
        """What Alibaba Cloud would refuse, refused here without a call (and so without a charge)."""
        code = None if self.templates.code(m.kind, m.locale) else "isv.SMS_TEMPLATE_ILLEGAL"
        problems = {name: variable_problem(name, value) for name, value in m.template_params.items()}
        problems = {name: text for name, text in problems.items() if text}
        if code is None and not problems:
            return None
        detail = "; ".join(f"{name}: {text}" for name, text in sorted(problems.items()))
        return SendResult(
            m.delivery_id,
            m.address,
            Outcome.PROVIDER,
            error_code=code or "isv.PARAM_LENGTH_LIMIT",
            error_message=f"no template configured for {m.kind}" if code else f"not sent to Alibaba Cloud: {detail}",
        )

    def _send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        first = messages[0]
        template_code = self.templates.code(first.kind, first.locale)
        sign_name = self.templates.sign_name(first.locale)
        if len(messages) == 1:
            m = messages[0]
            action, params = (
                "SendSms",
                {
                    "PhoneNumbers": _national(m.address),
                    "SignName": sign_name,
                    "TemplateCode": template_code,
                    "TemplateParam": json.dumps(m.template_params, ensure_ascii=False),
                    # OutId comes back in receipts and in QuerySendDetails: how an unknown outcome is checked.
                    "OutId": m.delivery_id,
                },
            )
        else:
            action, params = (
                "SendBatchSms",
                {
                    "PhoneNumberJson": json.dumps([_national(m.address) for m in messages]),
                    "SignNameJson": json.dumps([sign_name] * len(messages), ensure_ascii=False),
                    "TemplateCode": template_code,
                    "TemplateParamJson": json.dumps([m.template_params for m in messages], ensure_ascii=False),
                    # One OutId for the whole batch (a delivery id each would not fit): a check
                    # recognises the batch by this marker, the template and the time (see check()).
                    "OutId": BATCH_MARK,
                },
            )
        body, failure, latency, status = self._request(action, params)
        outcome, code = self._classify(body, failure, status)
        return [
            SendResult(
                m.delivery_id,
                m.address,
                outcome,
                message_id=body.get("BizId") if outcome == Outcome.OK else None,
                request_id=body.get("RequestId"),
                error_code=code,
                error_message=None if outcome == Outcome.OK else (body.get("Message") or str(failure or status)),
                latency_ms=latency,
                address_gone=code in ADDRESS_ERRORS,
            )
            for m in messages
        ]

    @staticmethod
    def _classify(body: dict, failure: Outcome | None, status: int) -> tuple[Outcome, str | None]:
        if failure is not None:
            return failure, None
        code = body.get("Code")
        if code == "OK":
            return Outcome.OK, None
        if code in ADDRESS_ERRORS:
            return Outcome.PERMANENT, code
        if code in RETRYABLE_ERRORS:
            return Outcome.RETRYABLE, code
        if code in TEMPLATE_ERRORS:
            return Outcome.PROVIDER, code
        by_status = classify_http_status(status)
        if by_status is not None and code is None:
            return by_status, str(status)
        # Account, signature, template approval, balance: another provider may still send it.
        return Outcome.PROVIDER, code or str(status)

    def check(self, message: OutboundMessage, sent_after: datetime) -> SendResult | None:
        """QuerySendDetails for the number on the day of sending; found when our OutId is there."""
        body, failure, latency, _status = self._request(
            "QuerySendDetails",
            {
                "PhoneNumber": _national(message.address),
                "SendDate": sent_after.astimezone(_CHINA).strftime("%Y%m%d"),
                "PageSize": "50",
                "CurrentPage": "1",
            },
        )
        if failure is not None or body.get("Code") != "OK":
            raise ProviderCheckFailed(body.get("Code") or str(failure))
        for detail in (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []:
            ours = detail.get("OutId") == message.delivery_id
            template_code = self.templates.code(message.kind, message.locale)
            batch = detail.get("OutId") == BATCH_MARK and detail.get("TemplateCode") == template_code
            if ours or (batch and _sent_since(detail.get("SendDate"), sent_after)):
                return SendResult(
                    message.delivery_id,
                    message.address,
                    Outcome.OK,
                    message_id=detail.get("BizId"),
                    request_id=body.get("RequestId"),
                    latency_ms=latency,
                )
        return None


def _sent_since(send_date: str | None, since: datetime) -> bool:
    """SendDate is "yyyy-MM-dd HH:mm:ss" in Beijing time."""
    if not send_date:
        return False
    try:
        sent = datetime.strptime(send_date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_CHINA)
    except ValueError:
        return False
    return sent >= since.astimezone(_CHINA).replace(microsecond=0)


class ProviderCheckFailed(RuntimeError):
    """The provider could not say whether it has the message; ask again later."""


def _national(phone: str) -> str:
    # Alibaba Cloud takes mainland numbers without the country code, others with 00 and code.
    if phone.startswith("+86"):
        return phone[3:]
    if phone.startswith("+"):
        return "00" + phone[1:]
    return phone
