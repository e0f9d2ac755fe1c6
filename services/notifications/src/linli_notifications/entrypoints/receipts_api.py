"""Provider callbacks: delivery receipts and inbound SMS replies. No bearer token here; each
provider is authenticated the way it documents (Twilio: X-Twilio-Signature over the URL and form;
Alibaba Cloud HTTP push carries no signature, so its URL holds a secret token we configure)."""

from __future__ import annotations

import hmac

from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from linli_kit.errors import Unauthorized
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork
from linli_notifications.adapters.providers.twilio import request_signature
from linli_notifications.adapters.tables import messaging
from linli_notifications.service_layer import receipts

blp = Blueprint("receipts", __name__, url_prefix="/receipts", description="Provider callbacks")

# A phone number as the providers send it: 13800138000, 8613800138000, +8613800138000.
PHONE = validate.Regexp(r"^\+?[0-9]{3,16}$", error="expected a phone number")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# No bearer token on these: each provider authenticates its calls its own way (see above).
NO_BEARER: dict = {"security": []}


class CallbackToken(Schema):
    token = fields.String(load_default="", metadata={"description": "the secret ALIYUN_CALLBACK_TOKEN"})


class AliyunReportItem(Schema):
    """One SmsReport entry (Alibaba Cloud sends more fields; they are ignored)."""

    class Meta:
        unknown = EXCLUDE

    phone_number = fields.String(required=True, validate=PHONE)
    success = fields.Boolean(required=True)
    biz_id = fields.String(required=True, validate=validate.Length(min=1, max=120))
    report_time = fields.String(load_default="", validate=validate.Length(max=40))
    err_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=80))
    out_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=120))


class AliyunReplyItem(Schema):
    """One SmsUp entry: a reply a resident sent."""

    class Meta:
        unknown = EXCLUDE

    phone_number = fields.String(required=True, validate=PHONE)
    content = fields.String(required=True, validate=validate.Length(max=2000))


class AliyunAnswer(Schema):
    code = fields.Integer(required=True, metadata={"description": "0: received (Alibaba Cloud stops retrying)"})
    msg = fields.String(required=True)


class TwilioStatusForm(Schema):
    class Meta:
        unknown = EXCLUDE

    MessageSid = fields.String(required=True, validate=validate.Length(min=1, max=120))
    MessageStatus = fields.String(required=True, validate=validate.Length(min=1, max=30))
    To = fields.String(load_default="", validate=validate.Length(max=20))
    ErrorCode = fields.String(load_default="", validate=validate.Length(max=80))


class TwilioInboundForm(Schema):
    class Meta:
        unknown = EXCLUDE

    From = fields.String(required=True, validate=PHONE)
    Body = fields.String(load_default="", validate=validate.Length(max=2000))


def _config():  # noqa: ANN202
    return current_app.extensions["linli.notifications_config"]


def _now():  # noqa: ANN202
    return current_app.extensions["linli.clock"]()


def _db():  # noqa: ANN202
    return current_app.extensions["linli.database"]


def _check_aliyun(given: str) -> None:
    expected = _config().get("ALIYUN_CALLBACK_TOKEN")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("bad callback token")


def _check_twilio() -> None:
    token = _config().get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    # Twilio signs the URL it called: behind the gateway that is the public one.
    base = _config().get("TWILIO_WEBHOOK_BASE_URL")
    url = (base.rstrip("/") + request.full_path.rstrip("?")) if base else request.url
    expected = request_signature(token or "", url, request.form.to_dict())
    if not token or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unauthorized("bad Twilio signature")


@blp.route("/aliyun/report", methods=["POST"])
@blp.doc(**NO_BEARER)
@blp.arguments(CallbackToken, location="query")
@blp.arguments(AliyunReportItem(many=True), location="json")
@blp.response(200, AliyunAnswer)
def aliyun_report(query: dict, items: list[dict]) -> dict:
    """SmsReport push: delivery receipts of the SMS sent, a JSON array."""
    _check_aliyun(query["token"])
    for item in items:
        receipts.record_receipt(
            UnitOfWork(_db(), Outbox(messaging.outbox)),
            provider="aliyun",
            dedup_key=f"{item['biz_id']}|{item['phone_number']}|{item['report_time']}",
            message_id=item["biz_id"],
            address=item["phone_number"],
            delivered=item["success"],
            error_code=item["err_code"],
            now=_now(),
        )
    return {"code": 0, "msg": "成功"}


@blp.route("/aliyun/reply", methods=["POST"])
@blp.doc(**NO_BEARER)
@blp.arguments(CallbackToken, location="query")
@blp.arguments(AliyunReplyItem(many=True), location="json")
@blp.response(200, AliyunAnswer)
def aliyun_reply(query: dict, items: list[dict]) -> dict:
    """SmsUp push: replies residents sent (退订/TD/STOP opts the number out), a JSON array."""
    _check_aliyun(query["token"])
    with _db().session() as session:
        for item in items:
            receipts.inbound_reply(
                session, provider="aliyun", phone=item["phone_number"], text=item["content"], now=_now()
            )
    return {"code": 0, "msg": "成功"}


@blp.route("/twilio/status", methods=["POST"])
@blp.doc(**NO_BEARER)
@blp.arguments(TwilioStatusForm, location="form")
@blp.response(204)
def twilio_status(form: dict) -> None:
    """StatusCallback: MessageSid, MessageStatus, ErrorCode, To (signed with X-Twilio-Signature)."""
    _check_twilio()
    status = form["MessageStatus"]
    delivered = {"delivered": True, "undelivered": False, "failed": False}.get(status)
    receipts.record_receipt(
        UnitOfWork(_db(), Outbox(messaging.outbox)),
        provider="twilio",
        dedup_key=f"{form['MessageSid']}|{status}",
        message_id=form["MessageSid"],
        address=form["To"] or None,
        delivered=delivered,
        error_code=form["ErrorCode"] or None,
        now=_now(),
    )


@blp.route("/twilio/inbound", methods=["POST"])
@blp.doc(**NO_BEARER)
@blp.arguments(TwilioInboundForm, location="form")
@blp.response(200, description="empty TwiML: no automatic reply", content_type="text/xml")
def twilio_inbound(form: dict) -> Response:
    """Incoming message webhook: From, Body (signed with X-Twilio-Signature)."""
    _check_twilio()
    with _db().session() as session:
        receipts.inbound_reply(session, provider="twilio", phone=form["From"], text=form["Body"], now=_now())
    return Response(TWIML_EMPTY, content_type="text/xml")
