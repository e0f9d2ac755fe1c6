"""Marshmallow schemas of the meetings HTTP API: what comes in (validated, 422 naming each bad
field) and what goes out (documented in /openapi.json)."""

from __future__ import annotations

import dataclasses

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_meetings.domain.decision import OWNER_BODIES, ActionStatus, Choice, DocumentKind, IssueEffect, Method
from linli_meetings.domain.meeting import Enrolment, Response, Status
from linli_meetings.domain.procedure import ParticipantRole, Threshold
from linli_meetings.domain.recurrence import MAX_OCCURRENCES, WEEKDAYS, Frequency

TYPE_KEY = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$", error="lower-case letters, digits and _, 2-40 long")


def text(max_length: int, required: bool = False, **kw: object) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length), **kw)
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length), **kw)


def choice(enum: type, **kw: object) -> fields.String:
    return fields.String(validate=validate.OneOf([e.value for e in enum]), **kw)


# --- in -------------------------------------------------------------------------------------------
class AgendaItemIn(Schema):
    title = text(300, required=True)
    duration_minutes = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 600))
    issue_id = fields.UUID(load_default=None, allow_none=True)
    notes = text(2000)
    position = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1), load_only=True)


class AgendaItemPatch(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    duration_minutes = fields.Integer(allow_none=True, validate=validate.Range(1, 600))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))
    position = fields.Integer(validate=validate.Range(min=1))


class InviteIn(Schema):
    role = choice(ParticipantRole, required=True)
    user_id = fields.UUID(load_default=None, allow_none=True)
    name = text(200)
    organisation_id = fields.UUID(load_default=None, allow_none=True)

    @validates_schema
    def _someone(self, data: dict, **_kw: object) -> None:
        if not data.get("user_id") and not data.get("name"):
            raise ValidationError("give a user_id or a name", field_name="user_id")


class MeetingIn(Schema):
    community_id = fields.UUID(required=True)
    meeting_type = fields.String(required=True, validate=TYPE_KEY)
    title = text(300, required=True)
    description = text(10_000)
    place = text(300)
    online_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=500))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    convener_id = fields.UUID(load_default=None, allow_none=True)
    public = fields.Boolean(load_default=True)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 100_000))
    agenda = fields.List(fields.Nested(AgendaItemIn), load_default=list, validate=validate.Length(max=100))
    participants = fields.List(fields.Nested(InviteIn), load_default=list, validate=validate.Length(max=2000))


class SeriesIn(Schema):
    community_id = fields.UUID(required=True)
    meeting_type = fields.String(required=True, validate=TYPE_KEY)
    title = text(300, required=True)
    description = text(10_000)
    place = text(300)
    online_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=500))
    public = fields.Boolean(load_default=True)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 100_000))
    frequency = choice(Frequency, required=True)
    interval = fields.Integer(load_default=1, validate=validate.Range(1, 52))
    weekdays = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)), load_default=list)
    first_date = fields.Date(required=True, metadata={"description": "date of the first occurrence, local"})
    start_time = fields.Time(required=True, metadata={"description": "local wall-clock time in the city"})
    duration_minutes = fields.Integer(required=True, validate=validate.Range(1, 24 * 60))
    count = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, MAX_OCCURRENCES))
    until = fields.Date(load_default=None, allow_none=True)
    agenda = fields.List(fields.Nested(AgendaItemIn), load_default=list, validate=validate.Length(max=100))
    participants = fields.List(fields.Nested(InviteIn), load_default=list, validate=validate.Length(max=2000))


class MeetingPatch(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    description = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    place = fields.String(allow_none=True, validate=validate.Length(max=300))
    online_url = fields.Url(allow_none=True, validate=validate.Length(max=500))
    public = fields.Boolean()
    capacity = fields.Integer(allow_none=True, validate=validate.Range(1, 100_000))
    meeting_type = fields.String(validate=TYPE_KEY)


class MeetingFilter(Schema):
    community_id = fields.UUID(load_default=None)
    meeting_type = fields.String(load_default=None)
    status = choice(Status, load_default=None)
    series_id = fields.UUID(load_default=None)
    issue_id = fields.UUID(load_default=None)
    public = fields.Boolean(load_default=None)
    starts_after = fields.AwareDateTime(load_default=None)
    starts_before = fields.AwareDateTime(load_default=None)
    mine = fields.Boolean(load_default=False, metadata={"description": "only meetings I take part in"})


class RescheduleIn(Schema):
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    reason = text(2000)


class CancelIn(Schema):
    reason = text(2000, required=True)


class ConcludeIn(Schema):
    minutes = text(100_000)
    closing_report = text(100_000)
    attendees_count = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 1_000_000))
    photo_urls = fields.List(fields.Url(), load_default=list, validate=validate.Length(max=50))


class MinutesIn(Schema):
    minutes = fields.String(validate=validate.Length(max=100_000))
    closing_report = fields.String(validate=validate.Length(max=100_000))
    attendees_count = fields.Integer(validate=validate.Range(0, 1_000_000))
    photo_urls = fields.List(fields.Url(), validate=validate.Length(max=50))


class InvitationAnswer(Schema):
    response = fields.String(required=True, validate=validate.OneOf(["confirmed", "declined"]))


class RegistrationIn(Schema):
    name = text(200)


class CodeIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$", error="six digits"))


class ActionItemIn(Schema):
    title = text(300, required=True)
    owner_body = fields.String(required=True, validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.UUID(load_default=None, allow_none=True)
    owner_organisation_id = fields.UUID(load_default=None, allow_none=True)
    due_date = fields.Date(load_default=None, allow_none=True)


class DocumentIn(Schema):
    kind = choice(DocumentKind, required=True)
    title = text(300, required=True)
    body = text(200_000, required=True)
    rules = fields.Dict(load_default=None, allow_none=True, metadata={"description": "structured rules of procedure"})


class MotionIn(Schema):
    motion = text(2000, required=True)
    agenda_item_id = fields.UUID(load_default=None, allow_none=True)
    method = choice(Method, load_default=Method.ROLL_CALL.value)
    threshold = choice(Threshold, load_default=None, allow_none=True)
    issue_effect = choice(IssueEffect, load_default=IssueEffect.NONE.value)
    resolution_plan = text(4000)
    action_items = fields.List(fields.Nested(ActionItemIn), load_default=list, validate=validate.Length(max=50))
    document = fields.Nested(DocumentIn, load_default=None, allow_none=True)


class VoteIn(Schema):
    choice = choice(Choice, required=True)


class TallyIn(Schema):
    votes_for = fields.Integer(required=True, validate=validate.Range(min=0))
    votes_against = fields.Integer(required=True, validate=validate.Range(min=0))
    abstentions = fields.Integer(required=True, validate=validate.Range(min=0))


class ActionItemPatch(Schema):
    status = choice(ActionStatus)
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    title = fields.String(validate=validate.Length(min=1, max=300))
    owner_body = fields.String(validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.UUID(allow_none=True)
    owner_organisation_id = fields.UUID(allow_none=True)
    due_date = fields.Date(allow_none=True)


class ActionItemFilter(Schema):
    community_id = fields.UUID(load_default=None)
    meeting_id = fields.UUID(load_default=None)
    decision_id = fields.UUID(load_default=None)
    issue_id = fields.UUID(load_default=None)
    status = choice(ActionStatus, load_default=None)
    owner_body = fields.String(load_default=None, validate=validate.OneOf(OWNER_BODIES))
    owner_organisation_id = fields.UUID(load_default=None)
    overdue = fields.Boolean(load_default=None)


class CommunityQuery(Schema):
    community_id = fields.UUID(required=True)


class DocumentQuery(Schema):
    community_id = fields.UUID(required=True)
    kind = choice(DocumentKind, required=True)


class MeetingTypeIn(Schema):
    community_id = fields.UUID(required=True)
    key = fields.String(required=True, validate=TYPE_KEY)
    name = text(120, required=True)
    description = text(2000)


class StatsQuery(Schema):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    start = fields.Date(load_default=None, data_key="from")
    end = fields.Date(load_default=None, data_key="to")


# --- out ------------------------------------------------------------------------------------------
class AgendaItemOut(Schema):
    id = fields.String()
    position = fields.Integer()
    title = fields.String()
    duration_minutes = fields.Integer(allow_none=True)
    issue_id = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)


class ParticipantOut(Schema):
    id = fields.String()
    user_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    organisation_id = fields.String(allow_none=True)
    role = choice(ParticipantRole)
    enrolment = choice(Enrolment)
    response = choice(Response)
    enrolled_at = fields.DateTime()
    checked_in_at = fields.DateTime(allow_none=True)
    check_in_method = fields.String(allow_none=True)


class MeetingOut(Schema):
    id = fields.String()
    community_id = fields.String()
    series_id = fields.String(allow_none=True)
    meeting_type = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    place = fields.String(allow_none=True)
    online_url = fields.String(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    local_date = fields.Date()
    convener_id = fields.String()
    public = fields.Boolean()
    capacity = fields.Integer(allow_none=True)
    status = choice(Status)
    status_reason = fields.String(allow_none=True)
    previous_starts_at = fields.DateTime(allow_none=True)
    rescheduled_count = fields.Integer()
    minutes = fields.String(allow_none=True)
    closing_report = fields.String(allow_none=True)
    attendees_count = fields.Integer(allow_none=True)
    photo_urls = fields.List(fields.String())
    started_at = fields.DateTime(allow_none=True)
    concluded_at = fields.DateTime(allow_none=True)
    revision = fields.Integer()
    agenda = fields.Method("_agenda")
    counts = fields.Method("_counts")

    def _agenda(self, meeting: object) -> list:
        return AgendaItemOut(many=True).dump(meeting.ordered_agenda())

    def _counts(self, meeting: object) -> dict:
        return dataclasses.asdict(meeting.counts)


class ActionItemOut(Schema):
    id = fields.String()
    decision_id = fields.String()
    meeting_id = fields.String()
    community_id = fields.String()
    issue_id = fields.String(allow_none=True)
    title = fields.String()
    owner_body = fields.String()
    owner_user_id = fields.String(allow_none=True)
    owner_organisation_id = fields.String(allow_none=True)
    due_date = fields.Date(allow_none=True)
    status = choice(ActionStatus)
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class VoteOut(Schema):
    voter_id = fields.String()
    choice = choice(Choice)
    cast_at = fields.DateTime()


class DecisionOut(Schema):
    id = fields.String()
    meeting_id = fields.String()
    community_id = fields.String()
    agenda_item_id = fields.String(allow_none=True)
    issue_id = fields.String(allow_none=True)
    motion = fields.String()
    method = choice(Method)
    threshold = choice(Threshold)
    issue_effect = choice(IssueEffect)
    resolution_plan = fields.String(allow_none=True)
    proposed_actions = fields.List(fields.Dict())
    document_kind = fields.String(allow_none=True)
    document_title = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "open | recorded"})
    outcome = fields.String(allow_none=True)
    rule = fields.String(allow_none=True)
    votes_for = fields.Integer()
    votes_against = fields.Integer()
    abstentions = fields.Integer()
    voting_members = fields.Integer(allow_none=True)
    present_voting_members = fields.Integer(allow_none=True)
    opened_at = fields.DateTime()
    recorded_at = fields.DateTime(allow_none=True)
    action_items = fields.List(fields.Nested(ActionItemOut))
    votes = fields.List(fields.Nested(VoteOut))


class DocumentOut(Schema):
    id = fields.String()
    community_id = fields.String()
    kind = fields.String()
    version = fields.Integer()
    title = fields.String()
    body = fields.String()
    rules = fields.Dict(allow_none=True)
    decision_id = fields.String(allow_none=True)
    meeting_id = fields.String(allow_none=True)
    adopted_at = fields.DateTime()


class DocumentsOut(Schema):
    current = fields.Nested(DocumentOut, allow_none=True)
    history = fields.List(fields.Nested(DocumentOut))


class RulesOut(Schema):
    community_id = fields.String()
    version = fields.Integer(allow_none=True, metadata={"description": "null: the platform's defaults"})
    rules = fields.Dict()


class MeetingTypeOut(Schema):
    key = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    built_in = fields.Boolean()


class CandidateOut(Schema):
    issue_id = fields.String()
    community_id = fields.String()
    title = fields.String()
    category = fields.String()
    urgency = fields.String()
    status = fields.String()
    tier = fields.String()
    supporter_count = fields.Integer()
    consultations = fields.Integer(metadata={"description": "meetings held with it on the agenda"})
    updated_at = fields.DateTime()


class CodeOut(Schema):
    code = fields.String()


class StatsOut(Schema):
    scope = fields.Dict()
    period = fields.Dict()
    totals = fields.Dict()
    by_community = fields.List(fields.Dict())
    monthly = fields.List(fields.Dict())
