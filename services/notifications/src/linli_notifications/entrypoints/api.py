"""HTTP API of notifications (the gateway forwards /api/v1/notifications/<rest> here as /<rest>).

/                      the caller's in-app inbox (GET list; /<id> read; /<id>/read mark; /read-all)
/unread-count          how many are unread
/devices               the caller's device tokens and Web Push subscriptions (register, list, remove)
/push/vapid-public-key the key a page subscribes to Web Push with (public)
/preferences           per category x channel, quiet hours, time zone
/follows               communities, issues and meetings the caller follows
/broadcasts            community-wide notices (staff, street officials, city admins)
/deliveries            delivery states of the caller's communities (staff)
/stats                 delivery figures per community and month (staff)
/receipts/...          provider callbacks (authenticated as each provider documents; no bearer token)
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.errors import NotFound, Text
from linli_kit.periods import resolve_period, today_in
from linli_kit.schemas import PeriodQuery
from linli_kit.web import require_principal
from linli_notifications.adapters import repository
from linli_notifications.adapters.providers import webpush
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.config import load_vapid
from linli_notifications.domain.model import Category, Channel
from linli_notifications.service_layer import broadcasts as broadcast_cases
from linli_notifications.service_layer import recipient as cases

blp = Blueprint("notifications", __name__, url_prefix="/", description="Inbox, devices, preferences, broadcasts")


def _db() -> Database:
    return current_app.extensions["linli.database"]


def _reads() -> ReadSessions:
    """Sessions for requests that only read: on SQLite they take no write lock (adapters/reading.py)."""
    return ReadSessions(_db())


def _now():  # noqa: ANN202
    return current_app.extensions["linli.clock"]()


def _tz() -> str:
    return current_app.extensions["linli.settings"].timezone


def _street_of(session: Session) -> cases.StreetOf:
    # In the request's own session: on SQLite a second session would wait for the write lock the
    # first one holds, i.e. for itself (a street official's look-ups hung, then answered 503).
    return repository.street_lookup(session)


# --- schemas ------------------------------------------------------------------------------------
class NotificationSchema(Schema):
    id = fields.String()
    kind = fields.String()
    category = fields.String()
    urgent = fields.Boolean()
    title = fields.String()
    body = fields.String()
    community_id = fields.String(allow_none=True)
    subject_type = fields.String(allow_none=True)
    subject_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    read_at = fields.AwareDateTime(allow_none=True)


class InboxFilter(Schema):
    unread = fields.Boolean(load_default=None)
    category = fields.String(load_default=None, validate=validate.OneOf([c.value for c in Category]))


class CountSchema(Schema):
    count = fields.Integer()


class PushKeysIn(Schema):
    p256dh = fields.String(required=True, validate=validate.Length(min=80, max=100))
    auth = fields.String(required=True, validate=validate.Length(min=16, max=30))


class SubscriptionIn(Schema):
    """A browser's `PushSubscription.toJSON()`."""

    endpoint = fields.String(required=True, validate=validate.Length(min=12, max=1024))
    expirationTime = fields.Raw(load_default=None, allow_none=True)  # noqa: N815 - the browser's name
    keys = fields.Nested(PushKeysIn, required=True)


class DeviceIn(Schema):
    """An app's push token (`jpush`, `fcm`), or a browser's Web Push subscription (`webpush`)."""

    platform = fields.String(load_default=None, validate=validate.OneOf(["ios", "android", "web"]))
    provider = fields.String(required=True, validate=validate.OneOf(["jpush", "fcm", "webpush"]))
    token = fields.String(load_default=None, validate=validate.Length(min=8, max=512))
    subscription = fields.Nested(SubscriptionIn, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _kind(self, data: dict, **_kwargs: Any) -> None:
        # Run beside the fields' own checks, so that every problem is named at once.
        provider = data.get("provider")
        problems: dict[str, list[str]] = {}
        if provider == "webpush":
            if data.get("token") is not None:
                problems["token"] = ["a Web Push device is registered with its subscription, not a token"]
            if data.get("platform") not in (None, "web"):
                problems["platform"] = ["a Web Push device is on platform web"]
            subscription = data.get("subscription")
            if subscription is None and "subscription" in data:
                problems["subscription"] = ["required for provider webpush: {endpoint, keys: {p256dh, auth}}"]
            elif subscription is not None:
                # A subscription whose own fields were refused arrives here part-loaded: check only
                # what it holds (its field errors are reported beside these).
                hosts = current_app.extensions["linli.notifications_config"].webpush_endpoint_hosts
                endpoint = subscription.get("endpoint")
                found = webpush.endpoint_problem(endpoint, hosts) if endpoint is not None else None
                if found:
                    problems.setdefault("subscription", []).append(f"endpoint: {found}")
                keys = subscription.get("keys") or {}
                if "p256dh" in keys and "auth" in keys:
                    for name, text in webpush.keys_problems(keys["p256dh"], keys["auth"]).items():
                        problems.setdefault("subscription", []).append(f"keys.{name}: {text}")
        elif provider is not None:
            if data.get("token") is None and "token" in data:
                problems["token"] = [Text("required for provider {provider}", provider=provider)]
            if data.get("platform") not in ("ios", "android") and "platform" in data:
                problems["platform"] = ["ios or android for an app's token"]
            if data.get("subscription") is not None:
                problems["subscription"] = ["only for provider webpush"]
        if problems:
            raise ValidationError(problems)


class DeviceOut(Schema):
    id = fields.String()
    platform = fields.String()
    provider = fields.String()
    token = fields.String()
    created_at = fields.AwareDateTime()
    last_seen_at = fields.AwareDateTime()
    pruned_at = fields.AwareDateTime(allow_none=True)
    pruned_reason = fields.String(allow_none=True)


class PreferenceItem(Schema):
    category = fields.String(required=True, validate=validate.OneOf([c.value for c in Category]))
    channel = fields.String(required=True, validate=validate.OneOf([c.value for c in Channel]))
    enabled = fields.Boolean(required=True)
    default = fields.Boolean(dump_only=True)
    mandatory = fields.Boolean(dump_only=True)


class QuietHours(Schema):
    start = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))
    end = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))


class PreferencesSchema(Schema):
    quiet_hours = fields.Nested(QuietHours, load_default=None)
    timezone = fields.String(load_default=None, validate=validate.Length(max=64))
    items = fields.List(fields.Nested(PreferenceItem), load_default=list)


class FollowSchema(Schema):
    target_type = fields.String(required=True, validate=validate.OneOf(cases.FOLLOWABLE))
    target_id = fields.UUID(required=True)
    reason = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class BroadcastIn(Schema):
    community_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=30))
    body = fields.String(required=True, validate=validate.Length(min=1, max=500))
    urgent = fields.Boolean(load_default=False)
    channels = fields.List(
        fields.String(validate=validate.OneOf([c.value for c in Channel])),
        load_default=lambda: ["push", "sms"],
        validate=validate.Length(min=1),
    )


class BroadcastOut(Schema):
    id = fields.String()
    community_id = fields.String()
    author_id = fields.String()
    title = fields.String()
    body = fields.String()
    urgent = fields.Boolean()
    channels = fields.List(fields.String())
    state = fields.String()
    planned_count = fields.Integer()
    created_at = fields.AwareDateTime()
    planned_at = fields.AwareDateTime(allow_none=True)
    deliveries = fields.Dict(keys=fields.String(), values=fields.Integer())


class DeliveryFilter(Schema):
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(["pending", "sending", "sent", "delivered", "failed", "suppressed", "expired"]),
    )
    channel = fields.String(load_default=None, validate=validate.OneOf([c.value for c in Channel]))
    community_id = fields.UUID(load_default=None)
    notification_id = fields.UUID(load_default=None)
    user_id = fields.UUID(load_default=None)


class AttemptSchema(Schema):
    provider = fields.String()
    started_at = fields.AwareDateTime()
    latency_ms = fields.Integer()
    outcome = fields.String()
    request_id = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)


class DeliverySchema(Schema):
    id = fields.String()
    notification_id = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    channel = fields.String()
    kind = fields.String()
    state = fields.String()
    reason = fields.String(allow_none=True)
    provider = fields.String(allow_none=True)
    providers_tried = fields.List(fields.String())
    attempts = fields.Integer()
    segments = fields.Integer(allow_none=True)
    urgent = fields.Boolean()
    next_attempt_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(AttemptSchema))


class StatsQuery(PeriodQuery):
    community_id = fields.UUID(load_default=None, metadata={"description": "one community (staff: required)"})
    street_id = fields.UUID(load_default=None, metadata={"description": "the communities of one street"})
    by = fields.String(
        load_default="community",
        validate=validate.OneOf(("community", "street")),
        metadata={"description": "rows per community (`by_community`, default) or per street (`by_street`)"},
    )


class StatsFigures(Schema):
    planned = fields.Integer(required=True, metadata={"description": "deliveries planned (every state)"})
    sent = fields.Integer(required=True, metadata={"description": "handed to a provider (sent or delivered)"})
    delivered = fields.Integer(required=True, metadata={"description": "confirmed by a receipt"})
    failed = fields.Integer(required=True)
    suppressed = fields.Integer(required=True, metadata={"description": "not sent: opt-out, no phone or device"})
    sms = fields.Integer(required=True, metadata={"description": "planned by SMS"})
    push = fields.Integer(required=True, metadata={"description": "planned by app push"})


class CommunityFigures(StatsFigures):
    community_id = fields.String(required=True)


class MonthFigures(StatsFigures):
    month = fields.String(required=True, metadata={"description": "YYYY-MM, in the city's time zone"})


class StatsScope(Schema):
    community_id = fields.String(required=True, allow_none=True)
    street_id = fields.String(required=True, allow_none=True)


class StatsPeriod(Schema):
    from_ = fields.String(
        required=True, data_key="from", attribute="from", metadata={"description": "first day (local date)"}
    )
    to = fields.String(required=True, metadata={"description": "last day, included (local date)"})


class StreetFigures(StatsFigures):
    street_id = fields.String(
        required=True, allow_none=True, metadata={"description": "null: communities the directory does not know yet"}
    )


class StatsOut(Schema):
    scope = fields.Nested(StatsScope, required=True)
    period = fields.Nested(StatsPeriod, required=True)
    totals = fields.Nested(StatsFigures, required=True)
    by_community = fields.List(fields.Nested(CommunityFigures), required=True)
    by_street = fields.List(
        fields.Nested(StreetFigures), required=True, metadata={"description": "with `by=street` (else empty)"}
    )
    monthly = fields.List(fields.Nested(MonthFigures), required=True)


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


# --- inbox --------------------------------------------------------------------------------------
@blp.route("/")
class Inbox(MethodView):
    @blp.arguments(InboxFilter, location="query")
    @blp.response(200, NotificationSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        principal = require_principal()
        with _reads().reading() as session:
            items, total = cases.list_inbox(
                session,
                principal,
                unread=filters["unread"],
                category=filters["category"],
                offset=pagination_parameters.first_item,
                limit=pagination_parameters.page_size,
            )
        pagination_parameters.item_count = total
        # Written here rather than by the schema (which documents it): the inbox is a resident's
        # most read page, and its rows are already plain values in the schema's order and types
        # (times in UTC: orjson writes them as isoformat() does). A test holds it to the schema.
        return Response(orjson.dumps(items), content_type="application/json")


@blp.route("/<uuid:notification_id>")
class InboxItem(MethodView):
    @blp.response(200, NotificationSchema)
    def get(self, notification_id: Any) -> dict:
        principal = require_principal()
        with _reads().reading() as session:
            return cases.get_notification(session, principal, str(notification_id))


@blp.route("/<uuid:notification_id>/read")
class InboxRead(MethodView):
    @blp.response(200, NotificationSchema)
    def post(self, notification_id: Any) -> dict:
        principal = require_principal()
        with _db().session() as session:
            return cases.mark_read(session, principal, str(notification_id), _now())


@blp.route("/read-all")
class InboxReadAll(MethodView):
    @blp.response(200, CountSchema)
    def post(self) -> dict:
        principal = require_principal()
        with _db().session() as session:
            return {"count": cases.mark_all_read(session, principal, _now())}


@blp.route("/unread-count")
class UnreadCount(MethodView):
    @blp.response(200, CountSchema)
    def get(self) -> dict:
        principal = require_principal()
        with _reads().reading() as session:
            return {"count": cases.unread_count(session, principal)}


# --- devices ------------------------------------------------------------------------------------
@blp.route("/devices")
class Devices(MethodView):
    @blp.response(200, DeviceOut(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list:
        principal = require_principal()
        with _reads().reading() as session:
            items, total = cases.list_devices(
                session, principal, offset=pagination_parameters.first_item, limit=pagination_parameters.page_size
            )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(DeviceIn)
    @blp.response(201, DeviceOut)
    def post(self, body: dict) -> dict:
        principal = require_principal()
        subscription = body["subscription"]
        if subscription is not None:
            # The endpoint URL is the subscription's identity; its keys travel beside it.
            token, keys = subscription["endpoint"], dict(subscription["keys"])
        else:
            token, keys = body["token"], None
        platform = body["platform"] or "web"
        with _db().session() as session:
            return cases.register_device(
                session,
                principal,
                platform=platform,
                provider=body["provider"],
                token=token,
                push_keys=keys,
                now=_now(),
            )


class VapidKeyOut(Schema):
    public_key = fields.String(
        metadata={"description": "the application server key for PushManager.subscribe (base64url)"}
    )


@blp.route("/push/vapid-public-key")
class VapidPublicKey(MethodView):
    @blp.response(200, VapidKeyOut)
    def get(self) -> dict:
        """The VAPID public key a page subscribes with (public: it is in every subscription).
        404 when the platform does not send Web Push (`webpush` not in PUSH_PROVIDERS)."""
        config = current_app.extensions["linli.notifications_config"]
        if "webpush" not in config.push_providers:
            raise NotFound("Web Push is not enabled on this platform (PUSH_PROVIDERS has no webpush)")
        return {"public_key": load_vapid(config).public_key}


@blp.route("/devices/<uuid:device_id>")
class DeviceById(MethodView):
    @blp.response(204)
    def delete(self, device_id: Any) -> None:
        principal = require_principal()
        with _db().session() as session:
            cases.delete_device(session, principal, str(device_id))


# --- preferences --------------------------------------------------------------------------------
@blp.route("/preferences")
class Preferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self) -> dict:
        principal = require_principal()
        with _reads().reading() as session:
            return cases.get_preferences(session, principal, _tz())

    @blp.arguments(PreferencesSchema)
    @blp.response(200, PreferencesSchema)
    def put(self, body: dict) -> dict:
        principal = require_principal()
        with _db().session() as session:
            cases.set_preferences(session, principal, body)
        with _reads().reading() as session:
            return cases.get_preferences(session, principal, _tz())


# --- follows ------------------------------------------------------------------------------------
@blp.route("/follows")
class Follows(MethodView):
    @blp.response(200, FollowSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list:
        principal = require_principal()
        with _reads().reading() as session:
            items, total = cases.list_follows(
                session, principal, offset=pagination_parameters.first_item, limit=pagination_parameters.page_size
            )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(FollowSchema)
    @blp.response(201, FollowSchema)
    def post(self, body: dict) -> dict:
        principal = require_principal()
        with _db().session() as session:
            return cases.follow(
                session,
                principal,
                _street_of(session),
                target_type=body["target_type"],
                target_id=str(body["target_id"]),
                now=_now(),
            )


@blp.route("/follows/<string:target_type>/<uuid:target_id>")
class FollowById(MethodView):
    @blp.response(204)
    def delete(self, target_type: str, target_id: Any) -> None:
        principal = require_principal()
        with _db().session() as session:
            cases.unfollow(session, principal, target_type=target_type, target_id=str(target_id))


# --- broadcasts ---------------------------------------------------------------------------------
@blp.route("/broadcasts")
class Broadcasts(MethodView):
    @blp.arguments(BroadcastIn)
    @blp.response(202, BroadcastOut)
    def post(self, body: dict) -> dict:
        """A notice to every member of a community, planned by the worker. When Alibaba Cloud is
        among the SMS providers, an SMS carries the body in one template variable of at most 35
        characters: a longer body with the `sms` channel is refused (422 naming `body`); send it
        by push only, or as short notices."""
        principal = require_principal()
        with _db().session() as session:
            row = broadcast_cases.create_broadcast(
                session,
                principal,
                _street_of(session),
                community_id=str(body["community_id"]),
                title=body["title"],
                body=body["body"],
                urgent=body["urgent"],
                channels=body["channels"],
                now=_now(),
                sms_body_limit=current_app.extensions["linli.notifications_config"].sms_body_limit,
            )
        return {**row, "deliveries": {}}


@blp.route("/broadcasts/<uuid:broadcast_id>")
class BroadcastById(MethodView):
    @blp.response(200, BroadcastOut)
    def get(self, broadcast_id: Any) -> dict:
        principal = require_principal()
        with _reads().reading() as session:
            return cases.get_broadcast(session, principal, _street_of(session), str(broadcast_id))


# --- deliveries and stats -----------------------------------------------------------------------
@blp.route("/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryFilter, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        principal = require_principal()
        with _reads().reading() as session:
            items, total = cases.list_deliveries(
                session,
                principal,
                filters={k: _s(v) for k, v in filters.items()},
                offset=pagination_parameters.first_item,
                limit=pagination_parameters.page_size,
            )
        pagination_parameters.item_count = total
        return items


@blp.route("/deliveries/<uuid:delivery_id>")
class DeliveryById(MethodView):
    @blp.response(200, DeliverySchema)
    def get(self, delivery_id: Any) -> dict:
        principal = require_principal()
        with _reads().reading() as session:
            return cases.get_delivery(session, principal, _street_of(session), str(delivery_id))


@blp.route("/stats")
class Stats(MethodView):
    @blp.arguments(StatsQuery, location="query")
    @blp.response(200, StatsOut)
    def get(self, query: dict) -> dict:
        """Deliveries by state and channel of a community, a street or the city: totals, per
        community and per month. The period is the platform's: by default the twelve calendar
        months ending with the current one (local dates in the city's time zone)."""
        principal = require_principal()
        period = resolve_period(today_in(_tz(), _now()), query["period_from"], query["period_to"])
        with _reads().reading() as session:
            return cases.stats(
                session,
                principal,
                _street_of(session),
                community_id=_s(query["community_id"]),
                street_id=_s(query["street_id"]),
                period=period,
                city_timezone=_tz(),
                by=query["by"],
            )
