"""Provider callbacks: delivery receipts and inbound SMS replies. No bearer token here; each
provider is authenticated the way it documents (Twilio: X-Twilio-Signature over the URL and form;
Alibaba Cloud HTTP push carries no signature, so its URL holds a secret token we configure)."""

from __future__ import annotations

import hmac

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint

from linli_kit.errors import Unauthorized
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork
from linli_notifications.adapters.providers.twilio import request_signature
from linli_notifications.adapters.tables import messaging
from linli_notifications.service_layer import receipts

blp = Blueprint("receipts", __name__, url_prefix="/receipts", description="Provider callbacks")

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _config():  # noqa: ANN202
    return current_app.extensions["linli.notifications_config"]


def _now():  # noqa: ANN202
    return current_app.extensions["linli.clock"]()


def _db():  # noqa: ANN202
    return current_app.extensions["linli.database"]


def _check_aliyun() -> None:
    expected = _config().get("ALIYUN_CALLBACK_TOKEN")
    given = request.args.get("token", "")
    if not expected or not hmac.compare_digest(expected, given):
        raise Unauthorized("bad callback token")


def _check_twilio() -> None:
    token = _config().get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    # Twilio signs the URL it called: behind the gateway that is the public one.
    base = _config().get("TWILIO_WEBHOOK_BASE_URL")
    url = (base.rstrip("/") + request.full_path.rstrip("?")) if base else request.url
    expected = request_signature(token or "", url, request.form.to_dict())
    if not token or not hmac.compare_digest(expected, signature):
        raise Unauthorized("bad Twilio signature")


@blp.route("/aliyun/report", methods=["POST"])
def aliyun_report() -> Response:
    """SmsReport push: a JSON array of {phone_number, success, err_code, biz_id, out_id, ...}."""
    _check_aliyun()
    items = request.get_json(silent=True)
    if not isinstance(items, list):
        return jsonify({"code": 1, "msg": "expected a JSON array"}), 400
    for item in items:
        receipts.record_receipt(
            UnitOfWork(_db(), Outbox(messaging.outbox)),
            provider="aliyun",
            dedup_key=f"{item.get('biz_id')}|{item.get('phone_number')}|{item.get('report_time')}",
            message_id=item.get("biz_id"),
            address=item.get("phone_number"),
            delivered=bool(item.get("success")),
            error_code=item.get("err_code"),
            now=_now(),
        )
    return jsonify({"code": 0, "msg": "成功"})


@blp.route("/aliyun/reply", methods=["POST"])
def aliyun_reply() -> Response:
    """SmsUp push: a JSON array of {phone_number, content, send_time, sign_name, ...}."""
    _check_aliyun()
    items = request.get_json(silent=True)
    if not isinstance(items, list):
        return jsonify({"code": 1, "msg": "expected a JSON array"}), 400
    with _db().session() as session:
        for item in items:
            receipts.inbound_reply(
                session,
                provider="aliyun",
                phone=str(item.get("phone_number", "")),
                text=str(item.get("content", "")),
                now=_now(),
            )
    return jsonify({"code": 0, "msg": "成功"})


@blp.route("/twilio/status", methods=["POST"])
def twilio_status() -> Response:
    """StatusCallback: form with MessageSid, MessageStatus, ErrorCode, To."""
    _check_twilio()
    status = request.form.get("MessageStatus", "")
    delivered = {"delivered": True, "undelivered": False, "failed": False}.get(status)
    receipts.record_receipt(
        UnitOfWork(_db(), Outbox(messaging.outbox)),
        provider="twilio",
        dedup_key=f"{request.form.get('MessageSid')}|{status}",
        message_id=request.form.get("MessageSid"),
        address=request.form.get("To"),
        delivered=delivered,
        error_code=request.form.get("ErrorCode"),
        now=_now(),
    )
    return Response(status=204)


@blp.route("/twilio/inbound", methods=["POST"])
def twilio_inbound() -> Response:
    """Incoming message webhook: From, Body. Answers empty TwiML (no auto reply)."""
    _check_twilio()
    with _db().session() as session:
        receipts.inbound_reply(
            session,
            provider="twilio",
            phone=request.form.get("From", ""),
            text=request.form.get("Body", ""),
            now=_now(),
        )
    return Response(TWIML_EMPTY, content_type="text/xml")
