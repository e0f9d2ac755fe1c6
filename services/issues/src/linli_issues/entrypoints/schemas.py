"""Marshmallow schemas of the issues HTTP API: what comes in is checked here, field by field."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from webargs.fields import DelimitedList

from linli_issues.adapters.repository import SORTS
from linli_issues.domain.model import BODIES, STATUSES, TIERS, URGENCIES

SORT_KEYS = [*SORTS, *(f"-{k}" for k in SORTS)]


def _text(max_length: int, *, required: bool = False, min_length: int = 1) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.Length(min=min_length, max=max_length))
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length))


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
    tier = fields.String()
    reporter_id = fields.String(allow_none=True, metadata={"description": "null when anonymous to you"})
    reported_by = fields.String(allow_none=True)
    channel = fields.String()
    anonymous = fields.Boolean()
    assignee_type = fields.String(allow_none=True)
    assignee_id = fields.String(allow_none=True)
    supporter_count = fields.Integer()
    consultation_count = fields.Integer()
    duplicate_of = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    resolution_plan = fields.String(allow_none=True)
    resolution_summary = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
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
    tier = fields.String()
    reporter_id = fields.String(allow_none=True, metadata={"description": "null when anonymous to you"})
    assignee_type = fields.String(allow_none=True)
    assignee_id = fields.String(allow_none=True)
    supporter_count = fields.Integer()
    consultation_count = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
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
    created_from = fields.AwareDateTime(load_default=None)
    created_to = fields.AwareDateTime(load_default=None)
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
    created_at = fields.DateTime()


class MeetingLinkSchema(Schema):
    meeting_id = fields.String()
    meeting_type = fields.String()
    title = fields.String()
    starts_at = fields.DateTime()
    status = fields.String()
    concluded_at = fields.DateTime(allow_none=True)


class PhotoSchema(Schema):
    id = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    uploaded_by = fields.String()
    created_at = fields.DateTime()
    url = fields.String()


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
    default_tier = fields.String(required=True, validate=validate.OneOf(TIERS))
    responsible_body = fields.String(required=True, validate=validate.OneOf(BODIES))
    deadline_hours = fields.Nested(DeadlineHoursSchema, required=True)
    active = fields.Boolean(load_default=True)
    position = fields.Integer(load_default=0)


class CategoryFilterSchema(Schema):
    include_inactive = fields.Boolean(load_default=False)


class StatsQuerySchema(Schema):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    from_ = fields.Date(load_default=None, data_key="from")
    to = fields.Date(load_default=None)
