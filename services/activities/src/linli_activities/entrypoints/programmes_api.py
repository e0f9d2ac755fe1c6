"""HTTP API of recurring series (/series) and festivals (/festivals)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_activities.domain.activities import AUDIENCES, KINDS, ORGANISER_TYPES
from linli_activities.domain.programmes import FREQUENCIES, MAX_OCCURRENCES, WEEKDAYS
from linli_activities.entrypoints.common import Instant, Text, page_of, paged, plain, uow
from linli_activities.service_layer import programmes
from linli_kit.schemas import BoundedDate, DisplayLabel
from linli_kit.web import require_principal

blp = Blueprint("programmes", __name__, url_prefix="/", description="Recurring series and festivals")

SERIES_STATUSES = ("draft", "active", "cancelled")


class SeriesSchema(Schema):
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
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000))
    max_party_size = fields.Integer(load_default=None, validate=validate.Range(min=1, max=20))
    festival_id = fields.UUID(load_default=None, allow_none=True)
    frequency = Text(required=True, validate=validate.OneOf(FREQUENCIES))
    interval = fields.Integer(load_default=1, validate=validate.Range(min=1, max=52))
    weekdays = fields.List(
        Text(validate=validate.OneOf(WEEKDAYS)), load_default=list, metadata={"description": "weekly: which days"}
    )
    first_date = BoundedDate(required=True, metadata={"description": "local date of the first occurrence"})
    start_time = fields.Time(required=True, metadata={"description": "local wall-clock time, HH:MM"})
    duration_minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=24 * 60))
    count = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_OCCURRENCES))
    until = BoundedDate(load_default=None, allow_none=True, metadata={"description": "last local date, included"})
    publish = fields.Boolean(load_default=False, load_only=True)
    timezone = Text(dump_only=True)
    status = Text(dump_only=True, validate=validate.OneOf(SERIES_STATUSES))
    status_label = DisplayLabel("series_status", "status")
    cancel_reason = Text(dump_only=True, allow_none=True)
    occurrences = fields.Integer(dump_only=True, metadata={"description": "how many occurrences it has"})
    created_at = Instant(dump_only=True)

    @validates_schema
    def count_or_until(self, data: dict, **_kwargs: Any) -> None:
        if (data.get("count") is None) == (data.get("until") is None):
            raise ValidationError("give count or until, one of them", field_name="count")


class SeriesFilter(Schema):
    community_id = fields.UUID(load_default=None)


class ExceptionSchema(Schema):
    occurrence_date = BoundedDate(required=True, metadata={"description": "the occurrence's date in the rule"})
    action = Text(required=True, validate=validate.OneOf(("skip", "move")))
    reason = Text(load_default=None, validate=validate.Length(min=1, max=2000), metadata={"description": "skip"})
    starts_at = Instant(load_default=None, metadata={"description": "move: the new start"})
    ends_at = Instant(load_default=None, metadata={"description": "move: the new end"})


class SeriesCancelSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class OccurrenceSchema(Schema):
    id = Text()
    series_id = Text()
    occurrence_date = fields.Date()
    series_exception = Text(allow_none=True, validate=validate.OneOf(("skipped", "moved")))
    status = Text()
    starts_at = Instant()
    ends_at = Instant()
    cancel_reason = Text(allow_none=True)


class FestivalSchema(Schema):
    id = Text(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    description = Text(load_default="", validate=validate.Length(max=10_000))
    starts_on = BoundedDate(required=True)
    ends_on = BoundedDate(required=True)
    street_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "null: city-wide (city admins only)"}
    )
    created_at = Instant(dump_only=True)


def _count(description: str) -> fields.Integer:
    return fields.Integer(required=True, metadata={"description": description})


class FestivalFiguresSchema(Schema):
    activities = _count("published activities of the festival")
    activities_held = _count("of those, the ones that have started")
    registrations = _count("registrations holding places")
    registered_places = _count("places they hold (party sizes summed)")
    participant_times = _count("people checked in, walk-ins included")


class FestivalTotalsSchema(FestivalFiguresSchema):
    communities = _count("communities with an activity in the festival")


class FestivalCommunitySchema(FestivalFiguresSchema):
    community_id = fields.String(required=True)


class FestivalStatsSchema(Schema):
    festival = fields.Nested(FestivalSchema, required=True)
    totals = fields.Nested(FestivalTotalsSchema, required=True)
    by_community = fields.List(
        fields.Nested(FestivalCommunitySchema),
        required=True,
        metadata={"description": "the communities of the caller's scope taking part"},
    )


def _series_out(result: tuple[Any, int]) -> dict[str, Any]:
    series, count = result
    out = {
        name: getattr(series, name)
        for name in SeriesSchema().dump_fields
        if name not in ("occurrences", "status_label")  # the label is worded by the schema from `status`
    }
    return {**out, "occurrences": count}


@blp.route("/series")
class Series(MethodView):
    @blp.arguments(SeriesFilter, location="query")
    @blp.response(200, SeriesSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        items = paged(
            pagination_parameters,
            programmes.list_series(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
        )
        return [_series_out(item) for item in items]

    @blp.arguments(SeriesSchema)
    @blp.response(201, SeriesSchema)
    def post(self, body: dict) -> dict:
        """A recurring programme: every occurrence is an activity one registers for (list them with
        `GET /?series_id=`). Published occurrences are announced as they come within two weeks."""
        return _series_out(programmes.create_series(uow(), require_principal(), **plain(body)))


@blp.route("/series/<uuid:series_id>", methods=["GET"])
@blp.response(200, SeriesSchema)
def series_by_id(series_id: Any) -> dict:
    return _series_out(programmes.get_series(uow(), require_principal(), str(series_id)))


@blp.route("/series/<uuid:series_id>/publish", methods=["POST"])
@blp.response(200, SeriesSchema)
def publish_series(series_id: Any) -> dict:
    return _series_out(programmes.publish_series(uow(), require_principal(), str(series_id)))


@blp.route("/series/<uuid:series_id>/exceptions", methods=["POST"])
@blp.arguments(ExceptionSchema)
@blp.response(200, OccurrenceSchema)
def series_exception(body: dict, series_id: Any) -> Any:
    """Skip one occurrence (`reason` required: its registrants are told) or move it (`starts_at`,
    `ends_at`)."""
    return programmes.add_exception(uow(), require_principal(), str(series_id), **plain(body))


@blp.route("/series/<uuid:series_id>/cancel", methods=["POST"])
@blp.arguments(SeriesCancelSchema)
@blp.response(200, SeriesSchema)
def cancel_series(body: dict, series_id: Any) -> dict:
    """End the series: every occurrence not yet started is cancelled."""
    return _series_out(programmes.cancel_series(uow(), require_principal(), str(series_id), body["reason"]))


@blp.route("/festivals")
class Festivals(MethodView):
    @blp.response(200, FestivalSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            programmes.list_festivals(uow(), require_principal(), **page_of(pagination_parameters)),
        )

    @blp.arguments(FestivalSchema)
    @blp.response(201, FestivalSchema)
    def post(self, body: dict) -> Any:
        """City admins create city-wide festivals; street officials, their street's."""
        return programmes.create_festival(uow(), require_principal(), **plain(body))


@blp.route("/festivals/<uuid:festival_id>", methods=["GET"])
@blp.response(200, FestivalSchema)
def festival_by_id(festival_id: Any) -> Any:
    return programmes.get_festival(uow(), require_principal(), str(festival_id))


@blp.route("/festivals/<uuid:festival_id>/stats", methods=["GET"])
@blp.response(200, FestivalStatsSchema)
def festival_stats(festival_id: Any) -> dict:
    """The festival's figures (all time): totals over every community, and per community for the
    communities of the caller's scope. Staff only."""
    return programmes.festival_statistics(uow(), require_principal(), str(festival_id))
