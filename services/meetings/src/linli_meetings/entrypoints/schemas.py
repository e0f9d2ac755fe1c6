"""Marshmallow schemas of the meetings HTTP API: what comes in (validated, 422 naming each bad
field) and what goes out (documented in /openapi.json)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_kit.errors import Invalid
from linli_kit.i18n import label, translate
from linli_kit.schemas import AwareDateTime, BoundedDate, DisplayLabel, PeriodQuery
from linli_meetings.domain.decision import OWNER_BODIES, ActionStatus, Choice, DocumentKind, IssueEffect, Method
from linli_meetings.domain.meeting import Enrolment, Meeting, Response, Status
from linli_meetings.domain.procedure import Outcome, ParticipantRole, Threshold, rule_words
from linli_meetings.domain.proposal import ProposalStatus
from linli_meetings.domain.recurrence import MAX_OCCURRENCES, WEEKDAYS, Frequency

TYPE_KEY = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$", error="lower-case letters, digits and _, 2-40 long")


def text(max_length: int, required: bool = False, **kw: object) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length), **kw)
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length), **kw)


def choice(enum: type, **kw: object) -> fields.String:
    return fields.String(validate=validate.OneOf([e.value for e in enum]), **kw)


def instant(**kw: Any) -> AwareDateTime:
    """A meeting's time: with its UTC offset (a bare wall-clock time would be ambiguous: the
    city's or UTC?), within the platform's range of dates."""
    kw.setdefault("metadata", {"description": "ISO 8601 with a UTC offset, e.g. 2026-11-28T19:00:00+08:00"})
    return AwareDateTime(default_timezone=None, **kw)


class Rule(fields.String):
    """A decision's rule, stored in English, in the language of the answer (a text the domain did
    not word, as it is)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return translate(rule_words(value) or value)


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
    organisation_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the body taken part for; required for the role party_organisation: a registered, "
            "active party organisation or branch of the meeting's community or street"
        },
    )
    organisation_name = text(
        200, metadata={"description": "the body's name; default for a party organisation: the register's"}
    )
    party_member = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={"description": "a party member (亮身份); always true for the role party_member"},
    )

    @validates_schema
    def _someone(self, data: dict, **_kw: object) -> None:
        try:
            Meeting.check_person(data)
        except Invalid as exc:
            raise ValidationError(exc.fields) from exc


class ParticipantPatch(Schema):
    party_member = fields.Boolean(required=True)


class MeetingIn(Schema):
    community_id = fields.UUID(required=True)
    meeting_type = fields.String(required=True, validate=TYPE_KEY)
    title = text(300, required=True)
    description = text(10_000)
    place = text(300)
    online_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=500))
    starts_at = instant(required=True)
    ends_at = instant(required=True)
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
    first_date = BoundedDate(required=True, metadata={"description": "date of the first occurrence, local"})
    start_time = fields.Time(required=True, metadata={"description": "local wall-clock time in the city"})
    duration_minutes = fields.Integer(required=True, validate=validate.Range(1, 24 * 60))
    count = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, MAX_OCCURRENCES))
    until = BoundedDate(load_default=None, allow_none=True)
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
    starts_after = AwareDateTime(load_default=None, metadata={"description": "starts at or after (UTC without offset)"})
    starts_before = AwareDateTime(load_default=None, metadata={"description": "starts before (UTC without offset)"})
    mine = fields.Boolean(load_default=False, metadata={"description": "only meetings I take part in"})


class RescheduleIn(Schema):
    starts_at = instant(required=True)
    ends_at = instant(required=True)
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
    owner_user_id = fields.UUID(load_default=None, allow_none=True, metadata={"description": "the person who owns it"})
    owner_organisation_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the organisation; required for party_organisation: a registered, active party "
            "organisation or branch of the meeting's community or street"
        },
    )
    owner_organisation_name = text(200, metadata={"description": "its name; default: the register's"})
    due_date = BoundedDate(load_default=None, allow_none=True)


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
    """The owner reports status, progress and a note; the staff may also reassign and reschedule."""

    status = choice(ActionStatus)
    progress = fields.Integer(
        validate=validate.Range(0, 100),
        metadata={"description": "percent; 100 completes the item, progress on an open item starts it"},
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    title = fields.String(validate=validate.Length(min=1, max=300))
    owner_body = fields.String(validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.UUID(allow_none=True)
    owner_organisation_id = fields.UUID(allow_none=True)
    owner_organisation_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    due_date = BoundedDate(allow_none=True)


class ActionItemFilter(Schema):
    community_id = fields.UUID(load_default=None)
    meeting_id = fields.UUID(load_default=None)
    decision_id = fields.UUID(load_default=None)
    issue_id = fields.UUID(load_default=None)
    status = choice(ActionStatus, load_default=None)
    owner_body = fields.String(load_default=None, validate=validate.OneOf(OWNER_BODIES))
    owner_organisation_id = fields.UUID(load_default=None)
    overdue = fields.Boolean(load_default=None)


class ProposalIn(Schema):
    community_id = fields.UUID(required=True)
    issue_id = fields.UUID(required=True, metadata={"description": "a pending issue of the community"})
    reason = text(2000, required=True)
    meeting_type = fields.String(
        load_default="bench", validate=TYPE_KEY, metadata={"description": "bench (default) or another type"}
    )


class ProposalFilter(Schema):
    community_id = fields.UUID(load_default=None)
    issue_id = fields.UUID(load_default=None)
    status = choice(ProposalStatus, load_default=None)


class AcceptProposalIn(Schema):
    """The meeting the staff schedule for a proposal (the issue is put on its agenda and the
    proposer invited)."""

    starts_at = instant(required=True)
    ends_at = instant(required=True)
    place = text(300)
    online_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=500))
    title = text(300, metadata={"description": "default: the meeting type and the issue's title"})
    meeting_type = fields.String(
        load_default=None, allow_none=True, validate=TYPE_KEY, metadata={"description": "default: the proposal's"}
    )
    description = text(10_000)
    public = fields.Boolean(load_default=True)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 100_000))
    participants = fields.List(fields.Nested(InviteIn), load_default=list, validate=validate.Length(max=2000))
    note = text(2000, metadata={"description": "a word to the proposer"})


class DeclineProposalIn(Schema):
    reason = text(2000, required=True)


class NoticeboardQuery(Schema):
    community_id = fields.UUID(required=True)
    limit = fields.Integer(
        load_default=20, validate=validate.Range(1, 100), metadata={"description": "decisions and meetings shown"}
    )
    include_private = fields.Boolean(
        load_default=False,
        metadata={"description": "the community's staff and officials: private meetings too (403 for others)"},
    )


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


class StatsQuery(PeriodQuery):
    """A scope (default: the caller's own) and a period (the platform's rule, `linli_kit.periods`)."""

    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    by = fields.String(
        load_default="community",
        validate=validate.OneOf(("community", "street")),
        metadata={"description": "rows per community (`by_community`, default) or per street (`by_street`)"},
    )


# --- out ------------------------------------------------------------------------------------------
# Times go out in UTC with their offset (`+00:00`); dates are local dates of the city.
def always_present(schema: type[Schema]) -> type[Schema]:
    """Every field of this response schema is in every answer (null where nullable): mark each
    required, so the OpenAPI document says so and clients need not guard against absence."""
    for field in schema._declared_fields.values():
        field.required = True
    return schema


@always_present
class AgendaItemOut(Schema):
    id = fields.String()
    position = fields.Integer()
    title = fields.String()
    duration_minutes = fields.Integer(allow_none=True)
    issue_id = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)


@always_present
class ParticipantOut(Schema):
    id = fields.String()
    user_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    organisation_id = fields.String(allow_none=True)
    organisation_name = fields.String(allow_none=True)
    party_member = fields.Boolean()
    role = choice(ParticipantRole)
    enrolment = choice(Enrolment)
    response = choice(Response)
    enrolled_at = fields.DateTime()
    checked_in_at = fields.DateTime(allow_none=True)
    check_in_method = fields.String(allow_none=True, validate=validate.OneOf(["staff", "code"]))


@always_present
class PeopleCountsOut(Schema):
    invited = fields.Integer(metadata={"description": "invited and not declined"})
    confirmed = fields.Integer()
    registered = fields.Integer()
    waitlisted = fields.Integer()
    checked_in = fields.Integer()


@always_present
class MeetingOut(Schema):
    id = fields.String()
    community_id = fields.String()
    series_id = fields.String(allow_none=True)
    meeting_type = fields.String()
    meeting_type_label = DisplayLabel("meeting_type", "meeting_type")
    title = fields.String()
    description = fields.String(allow_none=True)
    place = fields.String(allow_none=True)
    online_url = fields.String(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    local_date = fields.Date(metadata={"description": "the start's date in the city's time zone"})
    convener_id = fields.String()
    public = fields.Boolean()
    capacity = fields.Integer(allow_none=True)
    status = choice(Status)
    status_label = DisplayLabel("meeting_status", "status")
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
    agenda = fields.List(fields.Nested(AgendaItemOut), metadata={"description": "in order of position"})
    counts = fields.Nested(PeopleCountsOut)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "agenda":
            return obj.ordered_agenda()
        return super().get_attribute(obj, attr, default)


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def listed_meetings(rows: list[Any], agenda: dict[str, list[Any]], counts: dict[str, Any]) -> list[dict[str, Any]]:
    """What `MeetingOut(many=True)` dumps of a list page, built directly from the stored rows or
    the meetings (the fields are plain values: dumping a page of 20 meetings with 400 agenda items
    through marshmallow was a third of the list's work). `agenda`: each meeting's items in order,
    as the caller sees them, each a sequence (id, position, title, duration_minutes, issue_id,
    notes, ...): unpacked, not read by name (by name, 400 items took a millisecond).
    tests/test_issue_privacy.py compares the two."""
    type_labels: dict[str, str] = {}
    status_labels: dict[str, str] = {}
    out = []
    for m in rows:
        if m.meeting_type not in type_labels:
            type_labels[m.meeting_type] = label("meeting_type", m.meeting_type)
        if m.status not in status_labels:
            status_labels[m.status] = label("meeting_status", m.status)
        c = counts[m.id]
        out.append(
            {
                "id": m.id,
                "community_id": m.community_id,
                "series_id": m.series_id,
                "meeting_type": m.meeting_type,
                "meeting_type_label": type_labels[m.meeting_type],
                "title": m.title,
                "description": m.description,
                "place": m.place,
                "online_url": m.online_url,
                "starts_at": m.starts_at.isoformat(),
                "ends_at": m.ends_at.isoformat(),
                "local_date": m.local_date.isoformat(),
                "convener_id": m.convener_id,
                "public": m.public,
                "capacity": m.capacity,
                "status": m.status,
                "status_label": status_labels[m.status],
                "status_reason": m.status_reason,
                "previous_starts_at": _when(m.previous_starts_at),
                "rescheduled_count": m.rescheduled_count,
                "minutes": m.minutes,
                "closing_report": m.closing_report,
                "attendees_count": m.attendees_count,
                "photo_urls": [str(url) for url in m.photo_urls or ()],
                "started_at": _when(m.started_at),
                "concluded_at": _when(m.concluded_at),
                "revision": m.revision,
                "agenda": [
                    {
                        "id": item_id,
                        "position": position,
                        "title": title,
                        "duration_minutes": duration,
                        "issue_id": issue_id,
                        "notes": notes,
                    }
                    for item_id, position, title, duration, issue_id, notes, *_ in agenda[m.id]
                ],
                "counts": {
                    "invited": c.invited,
                    "confirmed": c.confirmed,
                    "registered": c.registered,
                    "waitlisted": c.waitlisted,
                    "checked_in": c.checked_in,
                },
            }
        )
    return out


@always_present
class ActionItemOut(Schema):
    id = fields.String()
    decision_id = fields.String()
    meeting_id = fields.String()
    community_id = fields.String()
    issue_id = fields.String(allow_none=True)
    title = fields.String()
    owner_body = fields.String(validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.String(allow_none=True)
    owner_organisation_id = fields.String(allow_none=True)
    owner_organisation_name = fields.String(allow_none=True)
    due_date = fields.Date(allow_none=True)
    status = choice(ActionStatus)
    status_label = DisplayLabel("action_item_status", "status")
    progress = fields.Integer(metadata={"description": "percent, as the owner reports it; 100 when done"})
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


@always_present
class VoteOut(Schema):
    voter_id = fields.String()
    choice = choice(Choice)
    cast_at = fields.DateTime()


@always_present
class ProposedActionOut(Schema):
    """An action item the motion creates if adopted."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # Motions stored before a field existed have no key for it: it is null.
        return obj.get(attr) if isinstance(obj, dict) else super().get_attribute(obj, attr, default)

    title = fields.String()
    owner_body = fields.String(validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.String(allow_none=True)
    owner_organisation_id = fields.String(allow_none=True)
    owner_organisation_name = fields.String(allow_none=True)
    due_date = fields.String(allow_none=True, metadata={"format": "date"})


@always_present
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
    proposed_actions = fields.List(fields.Nested(ProposedActionOut))
    document_kind = choice(DocumentKind, allow_none=True)
    document_title = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(["open", "recorded"]))
    outcome = choice(Outcome, allow_none=True, metadata={"description": "null while open"})
    rule = Rule(
        allow_none=True,
        metadata={"description": "how the outcome follows from the rules, in the language of the answer"},
    )
    votes_for = fields.Integer(
        metadata={"description": "roll call: the votes cast so far while open, the votes counted once recorded"}
    )
    votes_against = fields.Integer()
    abstentions = fields.Integer()
    voting_members = fields.Integer(allow_none=True)
    present_voting_members = fields.Integer(allow_none=True)
    opened_at = fields.DateTime()
    recorded_at = fields.DateTime(allow_none=True)
    action_items = fields.List(fields.Nested(ActionItemOut))
    votes = fields.List(
        fields.Nested(VoteOut),
        metadata={
            "description": "who voted what in a roll call (a named vote; there is no secret ballot). "
            "The community's staff and the officials over it see every vote, as many as votes_for + "
            "votes_against + abstentions; anyone else sees only their own. Empty for a show of hands."
        },
    )


@always_present
class DocumentOut(Schema):
    id = fields.String()
    community_id = fields.String()
    kind = choice(DocumentKind)
    version = fields.Integer()
    title = fields.String()
    body = fields.String()
    rules = fields.Dict(allow_none=True, metadata={"description": "the structured rules, for rules of procedure"})
    decision_id = fields.String(allow_none=True)
    meeting_id = fields.String(allow_none=True)
    adopted_at = fields.DateTime()


@always_present
class DocumentsOut(Schema):
    current = fields.Nested(DocumentOut, allow_none=True, metadata={"description": "null: none adopted"})
    history = fields.List(fields.Nested(DocumentOut), metadata={"description": "newest first"})


@always_present
class PolicyOut(Schema):
    voting_roles = fields.List(choice(ParticipantRole))
    quorum = fields.String(metadata={"description": "fraction of voting members present, e.g. 2/3"})
    threshold = choice(Threshold)
    may_override_to = fields.List(choice(Threshold))


@always_present
class ProcedureOut(Schema):
    default = fields.Nested(PolicyOut)
    meeting_types = fields.Dict(keys=fields.String(), values=fields.Nested(PolicyOut))
    abstention_blocks_unanimity = fields.Boolean()


@always_present
class RulesOut(Schema):
    community_id = fields.String()
    version = fields.Integer(allow_none=True, metadata={"description": "null: the platform's defaults"})
    rules = fields.Nested(ProcedureOut)


@always_present
class MeetingTypeOut(Schema):
    key = fields.String()
    name = fields.String()
    label = fields.Method(
        "_label",
        dump_only=True,
        metadata={"type": "string", "description": "the type in words, in the language of the answer"},
    )
    description = fields.String(allow_none=True)
    built_in = fields.Boolean()

    def _label(self, meeting_type: dict) -> str:
        # Built-in types read in the reader's language (板凳会, Bench meeting); a community's own by its name.
        return label("meeting_type", meeting_type["key"]) if meeting_type.get("built_in") else meeting_type["name"]


@always_present
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


@always_present
class ProposalOut(Schema):
    id = fields.String()
    community_id = fields.String()
    issue_id = fields.String()
    issue_title = fields.String(
        allow_none=True,
        metadata={
            "description": "the issue's title; 一项不公开的议题 for a private issue the caller may not read; "
            "null while the issue is not known here"
        },
    )
    proposer_id = fields.String()
    meeting_type = fields.String()
    reason = fields.String()
    status = choice(ProposalStatus)
    status_label = DisplayLabel("proposal_status", "status")
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(
        allow_none=True, metadata={"description": "why it was declined, or the staff's note on accepting"}
    )
    meeting_id = fields.String(allow_none=True, metadata={"description": "the meeting scheduled, once accepted"})
    created_at = fields.DateTime()


@always_present
class NoticeActionItemOut(Schema):
    id = fields.String()
    decision_id = fields.String()
    meeting_id = fields.String()
    issue_id = fields.String(allow_none=True)
    title = fields.String()
    owner_body = fields.String(validate=validate.OneOf(OWNER_BODIES))
    owner_user_id = fields.String(allow_none=True)
    owner_organisation_id = fields.String(allow_none=True)
    owner_organisation_name = fields.String(allow_none=True)
    due_date = fields.Date(allow_none=True)
    status = choice(ActionStatus)
    progress = fields.Integer(metadata={"description": "percent"})
    overdue = fields.Boolean(metadata={"description": "past its due date and not done, today in the city"})
    note = fields.String(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)


@always_present
class FollowUpOut(Schema):
    action_items = fields.Integer(metadata={"description": "not cancelled"})
    done = fields.Integer()
    complete = fields.Boolean(metadata={"description": "every action item done"})


@always_present
class NoticeDecisionOut(Schema):
    id = fields.String()
    meeting_id = fields.String()
    meeting_title = fields.String()
    meeting_type = fields.String()
    meeting_date = fields.Date(metadata={"description": "local date"})
    issue_id = fields.String(allow_none=True)
    motion = fields.String()
    outcome = choice(Outcome)
    rule = Rule(metadata={"description": "how the outcome follows from the rules, in the language of the answer"})
    threshold = choice(Threshold)
    votes_for = fields.Integer()
    votes_against = fields.Integer()
    abstentions = fields.Integer()
    issue_effect = choice(IssueEffect, metadata={"description": "none unless adopted"})
    resolution_plan = fields.String(allow_none=True)
    recorded_at = fields.DateTime()
    follow_up = fields.Nested(FollowUpOut)
    action_items = fields.List(fields.Nested(NoticeActionItemOut))


@always_present
class NoticeMeetingOut(Schema):
    id = fields.String()
    meeting_type = fields.String()
    title = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    local_date = fields.Date()
    place = fields.String(allow_none=True)
    online_url = fields.String(allow_none=True)
    status = choice(Status)
    public = fields.Boolean()
    agenda = fields.List(fields.Nested(AgendaItemOut), metadata={"description": "in order of position"})

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "agenda":
            return obj.ordered_agenda()
        return super().get_attribute(obj, attr, default)


@always_present
class NoticeboardOut(Schema):
    community_id = fields.String()
    generated_at = fields.DateTime()
    public_only = fields.Boolean(metadata={"description": "false: private meetings included (staff asked)"})
    decisions = fields.List(fields.Nested(NoticeDecisionOut), metadata={"description": "newest first"})
    open_action_items = fields.List(
        fields.Nested(NoticeActionItemOut), metadata={"description": "open or in progress, soonest due first"}
    )
    upcoming_meetings = fields.List(fields.Nested(NoticeMeetingOut), metadata={"description": "soonest first"})
    convention = fields.Nested(DocumentOut, allow_none=True, metadata={"description": "in force; null: none"})
    rules_of_procedure = fields.Nested(DocumentOut, allow_none=True, metadata={"description": "in force"})


@always_present
class CodeOut(Schema):
    code = fields.String()


class StatsScopeOut(Schema):
    level = fields.String(required=True, validate=validate.OneOf(["community", "street", "city", "communities"]))
    community_id = fields.String(metadata={"description": "level community"})
    street_id = fields.String(metadata={"description": "level street"})
    community_ids = fields.List(fields.String(), metadata={"description": "level communities: the caller's own"})


@always_present
class StatsPeriodOut(Schema):
    start = fields.Date(data_key="from", metadata={"description": "first local day"})
    end = fields.Date(data_key="to", metadata={"description": "last local day, included"})


def _figures() -> dict[str, fields.Field]:
    """The figures of a period every row of the statistics has."""
    return {
        "meetings_held": fields.Integer(metadata={"description": "concluded meetings"}),
        "meetings_by_type": fields.Dict(
            keys=fields.String(),
            values=fields.Integer(),
            metadata={"description": "meetings held by type: bench, pavilion, round_table, a community's own"},
        ),
        "attendance_sum": fields.Integer(),
        "issues_deliberated": fields.Integer(metadata={"description": "distinct issues on their agendas"}),
        "consultations": fields.Integer(
            metadata={"description": "issues taken up by the meetings held, each meeting counting once per issue"}
        ),
        "decisions_adopted": fields.Integer(),
        "decisions_rejected": fields.Integer(),
        "decisions_no_quorum": fields.Integer(),
        "party_member_participations": fields.Integer(
            metadata={"description": "party members checked in at the meetings held (participant-times)"}
        ),
        "party_organisation_participations": fields.Integer(
            metadata={"description": "party organisations (bodies) checked in at the meetings held"}
        ),
    }


def _follow_up() -> dict[str, fields.Field]:
    return {
        "action_items_open": fields.Integer(metadata={"description": "open or in progress, now"}),
        "action_items_done": fields.Integer(),
        "action_items_overdue": fields.Integer(),
        "party_organisation_action_items": fields.Integer(
            metadata={"description": "action items of those decisions owned by a party organisation"}
        ),
    }


StatsTotalsOut = always_present(
    Schema.from_dict(
        {
            **_figures(),
            **_follow_up(),
            "attendance_mean": fields.Float(allow_none=True, metadata={"description": "null: no meeting held"}),
            "resolved_issues_deliberated": fields.Integer(),
            "consultations_per_resolved_issue": fields.Float(allow_none=True),
            "communities_with_convention": fields.Integer(),
            "communities_with_rules_of_procedure": fields.Integer(),
        },
        name="StatsTotalsOut",
    )
)
StatsCommunityOut = always_present(
    Schema.from_dict(
        {
            "community_id": fields.String(),
            **_figures(),
            **_follow_up(),
            "has_convention": fields.Boolean(),
            "has_rules_of_procedure": fields.Boolean(),
        },
        name="StatsCommunityOut",
    )
)
StatsStreetOut = always_present(
    Schema.from_dict(
        {
            "street_id": fields.String(allow_none=True, metadata={"description": "null: communities not yet known"}),
            **_figures(),
            **_follow_up(),
            "communities_with_convention": fields.Integer(),
            "communities_with_rules_of_procedure": fields.Integer(),
        },
        name="StatsStreetOut",
    )
)
StatsMonthOut = always_present(
    Schema.from_dict(
        {"month": fields.String(metadata={"description": "YYYY-MM, local"}), **_figures()}, name="StatsMonthOut"
    )
)


@always_present
class StatsOut(Schema):
    scope = fields.Nested(StatsScopeOut)
    period = fields.Nested(StatsPeriodOut)
    totals = fields.Nested(StatsTotalsOut)
    by_community = fields.List(fields.Nested(StatsCommunityOut), metadata={"description": "communities with figures"})
    by_street = fields.List(
        fields.Nested(StatsStreetOut), metadata={"description": "with `by=street`: streets with figures"}
    )
    monthly = fields.List(fields.Nested(StatsMonthOut), metadata={"description": "months with figures"})
