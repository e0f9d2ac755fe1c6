"""Marshmallow schemas of the issues HTTP API: what comes in is checked here, field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from webargs.fields import DelimitedList

from linli_issues.adapters.repository import SORTS
from linli_issues.domain.model import BODIES, STATUSES, TIERS, URGENCIES
from linli_issues.domain.privacy import PUBLICATIONS
from linli_kit.i18n import label
from linli_kit.labels import LABELS
from linli_kit.schemas import AwareDateTime, DisplayLabel, PeriodQuery

SORT_KEYS = [*SORTS, *(f"-{k}" for k in SORTS)]


def _text(max_length: int, *, required: bool = False, min_length: int = 1) -> fields.String:
    if required:
        # Stored stripped: at least `min_length` characters must be left once blanks are gone.
        return fields.String(
            required=True,
            validate=[validate.Length(min=min_length, max=max_length), _at_least(min_length)],
        )
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length))


def _at_least(length: int) -> validate.Validator:
    def check(value: str) -> None:
        if len(value.strip()) < length:
            raise ValidationError(f"must hold at least {length} non-blank character(s)")

    return check  # type: ignore[return-value]


class Instant(fields.AwareDateTime):
    """An instant as the API answers it: ISO 8601 in UTC with its offset (`+00:00`), never naive."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else utc_isoformat(value)


def utc_isoformat(value: datetime) -> str:
    # Stored instants are UTC; a naive one (SQLite hands them back so from plain columns) is UTC too.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _get(thing: Any, name: str) -> Any:
    return thing.get(name) if isinstance(thing, dict) else getattr(thing, name, None)


def _when(**kwargs: Any) -> fields.AwareDateTime:
    return Instant(**kwargs)


class IssueCreateSchema(Schema):
    community_id = fields.UUID(required=True)
    compound_id = fields.UUID(load_default=None, allow_none=True)
    building = _text(100)
    address = _text(300)
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    title = _text(200, required=True, min_length=3)
    description = _text(4000, required=True)
    category = _text(80, required=True)
    urgency = fields.String(load_default="normal", validate=validate.OneOf(URGENCIES))
    anonymous = fields.Boolean(load_default=False)
    on_behalf_of = fields.UUID(load_default=None, allow_none=True, metadata={"description": "staff only: the resident"})
    channel = fields.String(load_default="app", validate=validate.OneOf(("app", "phone", "doorstep")))


class FollowUpSchema(Schema):
    action_items = fields.Integer(metadata={"description": "action items of the decisions taken on the issue"})
    done = fields.Integer(metadata={"description": "how many of them are done"})


class IssueSchema(Schema):
    id = fields.String()
    community_id = fields.String()
    compound_id = fields.String(allow_none=True)
    building = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    title = fields.String()
    description = fields.String()
    category = fields.String()
    urgency = fields.String()
    status = fields.String()
    status_label = DisplayLabel("issue_status", "status")
    tier = fields.String()
    reporter_id = fields.String(allow_none=True, metadata={"description": "null when anonymous to you"})
    reported_by = fields.String(allow_none=True)
    channel = fields.String()
    credited_group_id = fields.String(
        allow_none=True, metadata={"description": "the mutual-aid group whose patrol found it (activities service)"}
    )
    credited_group_name = fields.String(allow_none=True)
    anonymous = fields.Boolean()
    visibility = fields.String(
        metadata={
            "description": "public (also in Open311) | community (its residents) | private (the reporter, "
            "supporters, staff in scope and the assignee): the category's publication, private when "
            "anonymous or marked private"
        }
    )
    marked_private = fields.Boolean(metadata={"description": "staff marked it private (PUT /<id>/privacy)"})
    assignee_type = fields.String(allow_none=True)
    assignee_id = fields.String(allow_none=True)
    supporter_count = fields.Integer()
    consultation_count = fields.Integer()
    follow_up = fields.Nested(
        FollowUpSchema,
        metadata={
            "description": "how far the action items of its meetings' decisions are; once a decision's are "
            "all done the issue moves on as the decision said"
        },
    )
    duplicate_of = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    resolution_plan = fields.String(allow_none=True)
    resolution_summary = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    created_at = _when()
    updated_at = _when(allow_none=True)
    due_at = _when(allow_none=True)
    accepted_at = _when(allow_none=True)
    resolved_at = _when(allow_none=True)
    closed_at = _when(allow_none=True)
    overdue = fields.Boolean()
    revision = fields.Integer()
    supported_by_me = fields.Boolean()


class IssueSummarySchema(Schema):
    """An issue in a list: what a list row shows; GET /<id> gives the rest."""

    id = fields.String()
    community_id = fields.String()
    compound_id = fields.String(allow_none=True)
    title = fields.String()
    category = fields.String()
    urgency = fields.String()
    status = fields.String()
    status_label = DisplayLabel("issue_status", "status")
    tier = fields.String()
    reporter_id = fields.String(allow_none=True, metadata={"description": "null when anonymous to you"})
    assignee_type = fields.String(allow_none=True)
    assignee_id = fields.String(allow_none=True)
    supporter_count = fields.Integer()
    consultation_count = fields.Integer()
    follow_up = fields.Nested(
        FollowUpSchema, metadata={"description": "its decisions' action items and how many are done"}
    )
    # For boards of resolved issues (the noticeboard): no need to fetch each issue. The rating is
    # no personal data; its comment (free text about the reporter's experience) stays in GET /<id>.
    visibility = fields.String(metadata={"description": "public | community | private: as in GET /<id>"})
    resolution_summary = fields.String(
        allow_none=True, metadata={"description": "what was done (masked as in GET /<id>)"}
    )
    rating = fields.Integer(allow_none=True, metadata={"description": "the reporter's satisfaction rating, 1-5"})
    created_at = _when()
    updated_at = _when(allow_none=True)
    due_at = _when(allow_none=True)
    resolved_at = _when(allow_none=True)
    overdue = fields.Boolean()


class IssueFilterSchema(Schema):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    status = DelimitedList(fields.String(validate=validate.OneOf(STATUSES)))
    tier = DelimitedList(fields.String(validate=validate.OneOf(TIERS)))
    category = DelimitedList(fields.String(validate=validate.Length(min=1, max=80)))
    urgency = DelimitedList(fields.String(validate=validate.OneOf(URGENCIES)))
    assignee_type = fields.String(load_default=None, validate=validate.OneOf(BODIES))
    assignee_id = fields.UUID(load_default=None)
    overdue = fields.Boolean(load_default=None)
    mine = fields.Boolean(load_default=False, metadata={"description": "only the issues I reported"})
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    created_from = AwareDateTime(load_default=None, metadata={"description": "reported at or after (with offset)"})
    created_to = AwareDateTime(load_default=None, metadata={"description": "reported before (with offset)"})
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORT_KEYS))


class StatusChangeSchema(Schema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(("accepted", "rejected", "duplicate", "deliberating", "resolving", "resolved")),
    )
    reason = _text(2000)
    duplicate_of = fields.UUID(load_default=None, allow_none=True)
    summary = _text(4000)
    plan = _text(4000)


class ReasonSchema(Schema):
    reason = _text(2000, required=True)


class AssignmentSchema(Schema):
    assignee_type = fields.String(required=True, validate=validate.OneOf(BODIES))
    assignee_id = fields.UUID(load_default=None, allow_none=True)
    note = _text(2000)


class AssignmentAcceptanceSchema(Schema):
    note = _text(2000)


class PrivacySchema(Schema):
    private = fields.Boolean(required=True, metadata={"description": "true: mark private; false: lift the mark"})
    reason = _text(2000)


class RatingSchema(Schema):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = _text(2000)


class UpdateCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("reply", "note", "inspection")))
    body = _text(4000, required=True)
    attendees = fields.List(fields.String(validate=validate.Length(min=1, max=200)))
    findings = _text(4000)


class TimelineEntrySchema(Schema):
    id = fields.String()
    kind = fields.String()
    body = fields.String(allow_none=True)
    internal = fields.Boolean()
    author_id = fields.String(allow_none=True)
    data = fields.Dict()
    created_at = _when()


class MeetingLinkSchema(Schema):
    meeting_id = fields.String()
    meeting_type = fields.String()
    title = fields.String()
    starts_at = _when()
    status = fields.String()
    concluded_at = _when(allow_none=True)


class PhotoSchema(Schema):
    id = fields.String()
    content_type = fields.String(metadata={"description": "as stored: image/jpeg (JPEG, HEIC) or image/png"})
    size = fields.Integer(metadata={"description": "bytes as stored (re-encoded, metadata removed)"})
    width = fields.Integer(allow_none=True, metadata={"description": "px; null for photos stored before 0011"})
    height = fields.Integer(allow_none=True)
    uploaded_by = fields.String(allow_none=True, metadata={"description": "null: the anonymous reporter, to you"})
    created_at = _when()
    url = fields.String()
    thumbnail_url = fields.String(metadata={"description": "a JPEG at most 320 px on its longer side"})


class SimilarQuerySchema(Schema):
    community_id = fields.UUID(required=True)
    title = _text(200, required=True)
    description = _text(4000)
    category = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    latitude = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, validate=validate.Range(-180, 180))


class SimilarSchema(Schema):
    score = fields.Float()
    issue = fields.Nested(IssueSchema)


class DeadlineHoursSchema(Schema):
    low = fields.Integer(required=True, strict=True, validate=validate.Range(1, 24 * 366))
    normal = fields.Integer(required=True, strict=True, validate=validate.Range(1, 24 * 366))
    high = fields.Integer(required=True, strict=True, validate=validate.Range(1, 24 * 366))
    urgent = fields.Integer(required=True, strict=True, validate=validate.Range(1, 24 * 366))


class CategorySchema(Schema):
    key = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    label = fields.Method(
        "_label",
        dump_only=True,
        metadata={
            "type": "string",
            "description": "the name in the language of the answer (a name the city gave is shown as given)",
        },
    )
    default_tier = fields.String(required=True, validate=validate.OneOf(TIERS))
    responsible_body = fields.String(required=True, validate=validate.OneOf(BODIES))
    deadline_hours = fields.Nested(DeadlineHoursSchema, required=True)
    active = fields.Boolean(load_default=True)
    position = fields.Integer(load_default=0, validate=validate.Range(0, 100_000))
    publication = fields.String(
        load_default=None,
        validate=validate.OneOf(PUBLICATIONS),
        metadata={
            "description": "who reads its issues: public (published, Open311 included), community (the "
            "residents of the issue's community) or private (reporter, supporters, staff, assignee). "
            "Omitted: unchanged, or community for a new category. Narrowing applies to existing issues "
            "at once, widening only to issues reported from then on."
        },
    )

    def _label(self, category: Any) -> str:
        key, name = _get(category, "key"), _get(category, "name")
        # A category the platform started with, still under its first name, reads in the reader's language.
        if LABELS["issue_category"].get(key) == name:
            return label("issue_category", key)
        return name


class CategoryFilterSchema(Schema):
    include_inactive = fields.Boolean(load_default=False)


class StatsQuerySchema(PeriodQuery):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    by = fields.String(
        load_default="community",
        validate=validate.OneOf(("community", "street")),
        metadata={
            "description": "the rows beside the totals and months: `community` (default, `by_community`) or "
            "`street` (`by_street`, without hours to resolve: a city's hundred rows instead of ten thousand)"
        },
    )


class StatsScopeSchema(Schema):
    level = fields.String(required=True, validate=validate.OneOf(("community", "street", "city")))
    community_id = fields.String(required=True, allow_none=True)
    street_id = fields.String(required=True, allow_none=True)


class StatsPeriodSchema(Schema):
    from_ = fields.Date(required=True, data_key="from", attribute="from", metadata={"description": "first local day"})
    to = fields.Date(required=True, metadata={"description": "last local day, included"})
    timezone = fields.String(required=True)


class EscalationsByTierSchema(Schema):
    compound_to_community = fields.Integer(required=True)
    community_to_street = fields.Integer(required=True)
    street_to_city = fields.Integer(required=True)


class StatsFiguresSchema(Schema):
    raised = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    resolution_rate = fields.Float(
        required=True, allow_none=True, metadata={"description": "share of the issues raised resolved by now"}
    )
    median_hours_to_resolve = fields.Float(
        required=True, allow_none=True, metadata={"description": "of the whole hours from report to resolution"}
    )
    p90_hours_to_resolve = fields.Float(
        required=True, allow_none=True, metadata={"description": "of the whole hours from report to resolution"}
    )
    overdue = fields.Integer(required=True)
    average_satisfaction = fields.Float(required=True, allow_none=True)
    ratings = fields.Integer(required=True)
    consultations_held = fields.Integer(required=True)
    escalated = fields.Integer(
        required=True,
        metadata={"description": "moves of an issue up a tier in the period (deadline or by hand), counted when made"},
    )
    escalated_by_tier = fields.Nested(
        EscalationsByTierSchema, required=True, metadata={"description": "the same, by from-tier and to-tier"}
    )


class StatsTotalsSchema(StatsFiguresSchema):
    by_category = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_tier = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class StatsCommunitySchema(StatsFiguresSchema):
    community_id = fields.String(required=True)


class StatsStreetSchema(StatsFiguresSchema):
    street_id = fields.String(
        required=True, allow_none=True, metadata={"description": "none: communities the directory does not know yet"}
    )


class StatsMonthSchema(StatsFiguresSchema):
    month = fields.String(required=True, metadata={"description": "YYYY-MM, in the city's time zone"})


class StatsSchema(Schema):
    scope = fields.Nested(StatsScopeSchema, required=True)
    period = fields.Nested(StatsPeriodSchema, required=True)
    totals = fields.Nested(StatsTotalsSchema, required=True)
    by_community = fields.List(fields.Nested(StatsCommunitySchema), required=True)
    by_street = fields.List(
        fields.Nested(StatsStreetSchema),
        required=True,
        metadata={"description": "asked for with `by=street` (then `by_community` is empty)"},
    )
    monthly = fields.List(fields.Nested(StatsMonthSchema), required=True)
