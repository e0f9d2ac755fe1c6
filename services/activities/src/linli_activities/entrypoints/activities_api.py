"""HTTP API of activities, registrations and check-ins. The gateway forwards /api/v1/activities/<rest>
here as /<rest>, so the collection of activities is "/"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from linli_activities.adapters.repository import LISTED_COLUMNS
from linli_activities.domain.activities import AUDIENCES, KINDS, ORGANISER_TYPES, RegistrationStatus
from linli_activities.entrypoints.common import Instant, Redacted, Text, Url, plain, uow
from linli_activities.entrypoints.loading import BodyParser
from linli_activities.service_layer import activities
from linli_kit import i18n
from linli_kit.errors import Invalid
from linli_kit.schemas import DisplayLabel
from linli_kit.web import require_principal

blp = Blueprint("activities", __name__, url_prefix="/", description="Activities, registrations, check-ins")
# Its JSON bodies loaded without marshmallow's walk when surely valid, Text and Instant fields too.
blp.ARGUMENTS_PARSER = BodyParser()

STATUSES = ("draft", "published", "cancelled")
REGISTRATION_STATUSES = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.WAITLISTED,
    RegistrationStatus.CANCELLED,
    RegistrationStatus.CHECKED_IN,
)
CHECKIN_METHODS = ("list", "code", "walk_in")
CALENDAR_LOOKBACK = timedelta(days=90)


class ActivitySchema(Schema):
    id = Text(dump_only=True)
    community_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=200))
    kind = Text(required=True, validate=validate.OneOf(KINDS))
    title = Text(required=True, validate=validate.Length(min=1, max=300))
    description = Text(load_default="", validate=validate.Length(max=10_000))
    place = Text(load_default=None, allow_none=True, validate=validate.Length(max=300))
    post_id = fields.UUID(load_default=None, allow_none=True)
    organiser_type = Text(load_default="staff", validate=validate.OneOf(ORGANISER_TYPES))
    organiser_id = fields.UUID(load_default=None, allow_none=True)
    audience = fields.List(Text(validate=validate.OneOf(AUDIENCES)), load_default=list)
    photos = fields.List(Url(), load_default=list, validate=validate.Length(max=20))
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000))
    max_party_size = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=20),
        metadata={"description": "default 4, or the capacity"},
    )
    registration_opens_at = Instant(load_default=None, allow_none=True)
    registration_closes_at = Instant(load_default=None, allow_none=True)
    publish = fields.Boolean(load_default=False, load_only=True)
    status = Text(dump_only=True, validate=validate.OneOf(STATUSES))
    status_label = DisplayLabel("activity_status", "status")
    cancel_reason = Text(dump_only=True, allow_none=True, metadata={"description": "null unless cancelled"})
    free_places = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "null when the capacity is unlimited"}
    )
    confirmed_places = fields.Integer(dump_only=True)
    waiting_parties = fields.Integer(dump_only=True)
    checkin_code = Text(
        dump_only=True,
        allow_none=True,
        metadata={"description": "shown to the activity's staff only; null for everyone else"},
    )
    revision = fields.Integer(dump_only=True)
    created_at = Instant(dump_only=True)
    festival_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "the festival this activity is part of"}
    )
    series_id = Text(dump_only=True, allow_none=True, metadata={"description": "null unless an occurrence"})
    occurrence_date = fields.Date(
        dump_only=True, allow_none=True, metadata={"description": "its local date in the series' rule"}
    )
    series_exception = Text(
        dump_only=True,
        allow_none=True,
        validate=validate.OneOf(("skipped", "moved")),
        metadata={"description": "skipped or moved: this occurrence was changed alone"},
    )


class ActivityPatchSchema(Schema):
    kind = Text(validate=validate.OneOf(KINDS))
    title = Text(validate=validate.Length(min=1, max=300))
    description = Text(validate=validate.Length(max=10_000))
    place = Text(allow_none=True, validate=validate.Length(max=300))
    post_id = fields.UUID(allow_none=True)
    audience = fields.List(Text(validate=validate.OneOf(AUDIENCES)))
    photos = fields.List(Url(), validate=validate.Length(max=20))
    starts_at = Instant()
    ends_at = Instant()
    capacity = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=100_000))
    max_party_size = fields.Integer(validate=validate.Range(min=1, max=20))
    registration_opens_at = Instant(allow_none=True)
    registration_closes_at = Instant(allow_none=True)
    festival_id = fields.UUID(allow_none=True)


class ActivityFilter(Schema):
    community_id = fields.UUID(load_default=None)
    kind = Text(load_default=None, validate=validate.OneOf(KINDS))
    status = Text(load_default=None, validate=validate.OneOf(STATUSES))
    starts_from = Instant(load_default=None, data_key="from")
    starts_before = Instant(load_default=None, data_key="to")
    series_id = fields.UUID(load_default=None, metadata={"description": "the occurrences of one series"})
    festival_id = fields.UUID(load_default=None, metadata={"description": "the activities of one festival"})


class CancelSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class RegistrationInSchema(Schema):
    party_size = fields.Integer(load_default=1, validate=validate.Range(min=1, max=20))
    user_id = fields.UUID(load_default=None, metadata={"description": "staff registering a resident"})
    community_id = fields.UUID(load_default=None)


class RegistrationSchema(Schema):
    id = Text()
    activity_id = Text()
    user_id = Text()
    community_id = Text()
    party_size = fields.Integer()
    status = Text(validate=validate.OneOf(REGISTRATION_STATUSES))
    status_label = DisplayLabel("registration_status", "status")
    waitlist_position = fields.Integer(allow_none=True, metadata={"description": "null unless waitlisted"})
    registered_by = Text()
    created_at = Instant()
    updated_at = Instant(allow_none=True)


class RegistrationFilter(Schema):
    status = Text(load_default=None, validate=validate.OneOf(REGISTRATION_STATUSES))


class CheckinInSchema(Schema):
    registration_id = fields.UUID(load_default=None, metadata={"description": "staff ticking the list"})
    code = Text(load_default=None, validate=validate.Length(min=1, max=12))
    participants = fields.Integer(load_default=None, validate=validate.Range(min=1, max=20))


class WalkInSchema(Schema):
    community_id = fields.UUID(required=True)
    participants = fields.Integer(load_default=1, validate=validate.Range(min=1, max=500))
    user_id = fields.UUID(load_default=None)


class CheckinSchema(Schema):
    id = Text()
    activity_id = Text()
    registration_id = Text(allow_none=True)
    user_id = Text(allow_none=True)
    community_id = Text()
    participants = fields.Integer()
    method = Text(validate=validate.OneOf(CHECKIN_METHODS))
    recorded_by = Text()
    checked_in_at = Instant()


def _as_seen(activity: Any, manages: bool) -> Any:
    return activity if manages else Redacted(activity, "checkin_code")


# Named once: making a schema per answer costs more than the rest of the dump.
# (`status_label` is worded by the schema from `status`.)
_REGISTRATION_ATTRIBUTES = tuple(
    k for k in RegistrationSchema().fields if k not in ("waitlist_position", "status_label")
)


def _registration_out(view: activities.RegistrationView) -> dict[str, Any]:
    r = view.registration
    return {**{k: getattr(r, k) for k in _REGISTRATION_ATTRIBUTES}, "waitlist_position": view.waitlist_position}


_REGISTRATION_KEYS = tuple(RegistrationSchema().dump_fields)


def _registration_answer(view: activities.RegistrationView, status: int) -> Response:
    """What RegistrationSchema (which documents it) dumps of a registration, written by orjson:
    its values are strings, integers and instants in UTC already (orjson writes those as
    `isoformat` does), its status label worded here. A sign-up is the hottest write, and the
    schema's walk and the json module cost it more than its checks."""
    values = _registration_out(view)
    values["status_label"] = i18n.label("registration_status", values["status"])
    return Response(
        orjson.dumps({key: values[key] for key in _REGISTRATION_KEYS}), status=status, content_type="application/json"
    )


def _listing_plan() -> tuple[tuple[str, str, str], ...]:
    """(key, column, how) for each field ActivitySchema dumps, in its order: `how` says what its
    dump does to the column's value (a list's values are strings already, as are an id's)."""
    plan = []
    for name, field in ActivitySchema().dump_fields.items():
        key, source = field.data_key or name, field.attribute or name
        if name in ("status_label", "free_places", "checkin_code"):
            how = name
        elif isinstance(field, fields.DateTime | fields.Date):
            assert field.format in (None, "iso"), name
            how = "iso"
        elif isinstance(field, fields.List):
            how = "list"
        elif isinstance(field, fields.String | fields.UUID | fields.Integer):  # ids are stored as text
            how = "as_is"
        else:  # pragma: no cover - a new kind of field is to be added above (the tests dump each)
            raise TypeError(f"no listing of {name} ({type(field).__name__})")
        plan.append((key, source, how))
    return tuple(plan)


def _compile_dump(
    values_of: Callable[[tuple[str, ...]], Callable[[Any], tuple[Any, ...]]], *, code_shown: bool
) -> Callable[[Any, Any], dict[str, Any]]:
    """A function of (an activity, a status labeller) giving what ActivitySchema dumps of it, for
    orjson to write: `values_of(columns)` gives the function reading those columns of an activity
    as a tuple in one call (`attrgetter`, `itemgetter`); `code_shown`: its check-in code is shown
    (else null). Each answer is a dict made at once from the keys and the values read, the fields
    worked out of others (status_label, free_places, a hidden code) put in their places after:
    a page of twenty is the hottest answer, and a function per field of each row cost as much as
    reading the page. Instants and dates stay objects: orjson writes them as `isoformat` does
    (those read are in UTC), lists as they are."""
    plan = _listing_plan()
    keys = tuple(key for key, _source, _how in plan)
    position = {key: index for index, key in enumerate(keys)}
    hidden = "id"  # read in place of a code that is not shown (then null): every activity has one
    sources = tuple(
        "capacity" if how == "free_places" else hidden if how == "checkin_code" and not code_shown else source
        for _key, source, how in plan
    )
    values = values_of(sources)
    (label_key,) = [key for key, _source, how in plan if how == "status_label"]
    (free_key,) = [key for key, _source, how in plan if how == "free_places"]
    (code_key,) = [key for key, _source, how in plan if how == "checkin_code"]
    label_at = position[label_key]
    capacity_at = position[free_key]
    confirmed_at = sources.index("confirmed_places")

    def dump(a: Any, label: Any) -> dict[str, Any]:
        read = values(a)
        item = dict(zip(keys, read, strict=True))
        item[label_key] = label(read[label_at])
        capacity = read[capacity_at]
        item[free_key] = None if capacity is None else max(capacity - read[confirmed_at], 0)
        if not code_shown:
            item[code_key] = None
        return item

    return dump


_LISTED_POSITION = {name: index for index, name in enumerate(LISTED_COLUMNS)}
# A row of a page (LISTED_COLUMNS in order, maybe more after) as seen by someone who does not
# manage it: no code.
_DUMP_LISTED = _compile_dump(lambda columns: itemgetter(*(_LISTED_POSITION[c] for c in columns)), code_shown=False)
# An activity object as its organisers see it.
_DUMP_SHOWN = _compile_dump(lambda columns: attrgetter(*columns), code_shown=True)


def _labeller() -> Callable[[str], str]:
    """The status labels in the request's language, each worded once."""
    labels: dict[str, str] = {}

    def label(status: str) -> str:
        if status not in labels:
            labels[status] = i18n.label("activity_status", status)
        return labels[status]

    return label


def listed(rows: list[Any]) -> list[dict[str, Any]]:
    """What ActivitySchema dumps of each activity (rows of LISTED_COLUMNS in order) as seen by
    someone who does not manage it (no check-in code), without a schema's walk."""
    label = _labeller()
    return [_DUMP_LISTED(row, label) for row in rows]


def shown_to_organiser(activity: Any) -> dict[str, Any]:
    """What ActivitySchema dumps of an activity seen by one who manages it (its check-in code
    too), read from the object's attributes without a schema's walk."""
    return _DUMP_SHOWN(activity, _labeller())


@blp.route("/")
class Activities(MethodView):
    @blp.arguments(ActivityFilter(), location="query")
    @blp.response(200, ActivitySchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> Response:
        principal = require_principal()
        items, total = activities.list_activities(
            uow().reading(),  # on PostgreSQL without the round trips of a transaction
            principal,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            **plain(filters),
        )
        pagination_parameters.item_count = total
        # Serialised here as the schema (which documents it) would dump each as residents see it:
        # a page is the hottest read, and its rows are plain values already.
        # orjson: the same JSON in a fraction of the json module's time (keys in the schema's order).
        return Response(orjson.dumps(listed(items)), content_type="application/json")

    @blp.arguments(ActivitySchema())
    @blp.response(201, ActivitySchema)
    def post(self, body: dict) -> Response:
        activity = activities.create_activity(uow(), require_principal(), **plain(body))
        # Its creator manages it (staff of every community it is for): they see its check-in code.
        # Serialised here as the schema (which documents it) would dump it, like a page.
        return Response(orjson.dumps(shown_to_organiser(activity)), status=201, content_type="application/json")


@blp.route("/<uuid:activity_id>")
class ActivityById(MethodView):
    @blp.response(200, ActivitySchema)
    def get(self, activity_id: Any) -> Any:
        activity, manages = activities.get_activity(uow(), require_principal(), str(activity_id))
        return _as_seen(activity, manages)

    @blp.arguments(ActivityPatchSchema)
    @blp.response(200, ActivitySchema)
    def patch(self, body: dict, activity_id: Any) -> Any:
        return activities.update_activity(uow(), require_principal(), str(activity_id), **plain(body))


@blp.route("/<uuid:activity_id>/publish", methods=["POST"])
@blp.response(200, ActivitySchema)
def publish(activity_id: Any) -> Any:
    return activities.publish_activity(uow(), require_principal(), str(activity_id))


@blp.route("/<uuid:activity_id>/cancel", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, ActivitySchema)
def cancel(body: dict, activity_id: Any) -> Any:
    return activities.cancel_activity(uow(), require_principal(), str(activity_id), body["reason"])


ICS = {"type": "string", "description": "iCalendar (RFC 5545)"}


@blp.route("/<uuid:activity_id>/calendar.ics", methods=["GET"])
@blp.doc(security=[], description="Public: an .ics file for a published activity")
@blp.response(200, ICS, content_type="text/calendar")
def activity_ics(activity_id: Any) -> Response:
    body = activities.activity_calendar(uow(), str(activity_id))
    return Response(body, mimetype="text/calendar", headers={"Content-Disposition": "inline; filename=activity.ics"})


@blp.route("/calendar/<uuid:community_id>.ics", methods=["GET"])
@blp.doc(security=[], description="Public: a subscribable calendar of a community's activities")
@blp.response(200, ICS, content_type="text/calendar")
def community_ics(community_id: Any) -> Response:
    clock = uow().clock
    body = activities.community_calendar(uow(), str(community_id), since=clock() - CALENDAR_LOOKBACK)
    return Response(body, mimetype="text/calendar", headers={"Content-Disposition": "inline; filename=community.ics"})


@blp.route("/<uuid:activity_id>/registrations")
class Registrations(MethodView):
    @blp.arguments(RegistrationFilter, location="query")
    @blp.response(200, RegistrationSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, activity_id: Any, pagination_parameters: Any) -> list:
        items, total = activities.list_registrations(
            uow(),
            require_principal(),
            str(activity_id),
            status=filters["status"],
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return [_registration_out(v) for v in items]

    @blp.arguments(RegistrationInSchema)
    @blp.response(201, RegistrationSchema)
    def post(self, body: dict, activity_id: Any) -> Response:
        view = activities.register(uow(), require_principal(), str(activity_id), **plain(body))
        return _registration_answer(view, 201)


@blp.route("/registrations/mine", methods=["GET"])
@blp.arguments(RegistrationFilter, location="query")
@blp.response(200, RegistrationSchema(many=True))
@blp.paginate()
def my_registrations(filters: dict, pagination_parameters: Any) -> list:
    """The caller's own registrations, newest first."""
    items, total = activities.my_registrations(
        uow(),
        require_principal(),
        status=filters["status"],
        offset=pagination_parameters.first_item,
        limit=pagination_parameters.page_size,
    )
    pagination_parameters.item_count = total
    return [_registration_out(v) for v in items]


@blp.route("/<uuid:activity_id>/registrations/<uuid:registration_id>/cancel", methods=["POST"])
@blp.response(200, RegistrationSchema)
def cancel_registration(activity_id: Any, registration_id: Any) -> dict:
    registration = activities.cancel_registration(uow(), require_principal(), str(activity_id), str(registration_id))
    return _registration_out(activities.RegistrationView(registration, None))


@blp.route("/<uuid:activity_id>/checkins")
class Checkins(MethodView):
    @blp.response(200, CheckinSchema(many=True))
    @blp.paginate()
    def get(self, activity_id: Any, pagination_parameters: Any) -> list:
        items, total = activities.list_checkins(
            uow(),
            require_principal(),
            str(activity_id),
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(CheckinInSchema)
    @blp.response(201, CheckinSchema)
    def post(self, body: dict, activity_id: Any) -> Any:
        values = plain(body)
        if (values["registration_id"] is None) == (values["code"] is None):
            raise Invalid(
                "give registration_id (staff list) or code", fields={"registration_id": ["or code, one of them"]}
            )
        return activities.check_in(uow(), require_principal(), str(activity_id), **values)


@blp.route("/<uuid:activity_id>/walk-ins", methods=["POST"])
@blp.arguments(WalkInSchema)
@blp.response(201, CheckinSchema)
def walk_in(body: dict, activity_id: Any) -> Any:
    return activities.walk_in(uow(), require_principal(), str(activity_id), **plain(body))
