"""HTTP API of mutual-aid groups (/groups), the talent pool (/talents), services for vulnerable
residents (/offerings, /bookings) and residents needing support (/support)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_activities.domain.care import (
    MAX_CONCURRENT_SLOTS,
    MAX_VISIT_INTERVAL_DAYS,
    PROVIDER_TYPES,
    SERVICE_KINDS,
    SKILLS,
    SUPPORT_NEEDS,
    VISIT_CONDITIONS,
    BookingStatus,
    MatchStatus,
    Vetting,
)
from linli_activities.entrypoints.common import Instant, Redacted, Text, config, page_of, paged, plain, uow
from linli_activities.service_layer import care
from linli_kit.schemas import BoundedDate, DisplayLabel
from linli_kit.web import require_principal

blp = Blueprint("care", __name__, url_prefix="/", description="Mutual aid, talents, services, support")

VETTING = (Vetting.PENDING, Vetting.APPROVED, Vetting.DECLINED)
MATCH_STATUSES = (MatchStatus.PROPOSED, MatchStatus.ACCEPTED, MatchStatus.DECLINED)
BOOKING_STATUSES = (BookingStatus.REQUESTED, BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.CANCELLED)


# --- schemas ----------------------------------------------------------------------------------------
class GroupSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(required=True)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    purpose = Text(load_default="", validate=validate.Length(max=5000))
    coordinator_id = fields.UUID(required=True)
    active = fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)


class CommunityFilter(Schema):
    community_id = fields.UUID(load_default=None)


class MemberSchema(Schema):
    id = Text(dump_only=True)
    group_id = Text(dump_only=True)
    user_id = fields.UUID(load_default=None)
    display_name = Text(required=True, validate=validate.Length(min=1, max=200))
    joined_at = Instant(dump_only=True)


class HelpSchema(Schema):
    id = Text(dump_only=True)
    group_id = Text(dump_only=True)
    helper_id = fields.UUID(load_default=None)
    helped_id = fields.UUID(load_default=None)
    helped_description = Text(load_default="", validate=validate.Length(max=300))
    helped_on = BoundedDate(required=True)
    hours = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False, max=24))
    note = Text(load_default="", validate=validate.Length(max=2000))
    recorded_by = Text(dump_only=True)
    recorded_at = Instant(dump_only=True)


class TalentSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(load_default=None)
    user_id = fields.UUID(load_default=None)
    display_name = Text(required=True, validate=validate.Length(min=1, max=200))
    skills = fields.List(Text(validate=validate.OneOf(SKILLS)), required=True, validate=validate.Length(min=1))
    availability = Text(load_default="", validate=validate.Length(max=500))
    description = Text(load_default="", validate=validate.Length(max=2000))
    contact_note = Text(
        load_default="", allow_none=True, validate=validate.Length(max=500), metadata={"description": "staff only"}
    )
    compound_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "where they live: the walk to a need"}
    )
    active = fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)
    vetting_status = Text(
        dump_only=True,
        validate=validate.OneOf(VETTING),
        metadata={"description": "residents see an entry once approved"},
    )
    vetting_note = Text(dump_only=True, allow_none=True, metadata={"description": "staff and the talent only"})
    vetted_by = Text(dump_only=True, allow_none=True, metadata={"description": "staff and the talent only"})
    vetted_at = Instant(dump_only=True, allow_none=True)


class TalentPatchSchema(Schema):
    display_name = Text(validate=validate.Length(min=1, max=200))
    skills = fields.List(Text(validate=validate.OneOf(SKILLS)), validate=validate.Length(min=1))
    availability = Text(validate=validate.Length(max=500))
    description = Text(validate=validate.Length(max=2000))
    contact_note = Text(validate=validate.Length(max=500))
    compound_id = fields.UUID(allow_none=True)
    active = fields.Boolean()


class TalentFilter(Schema):
    community_id = fields.UUID(load_default=None)
    skill = Text(load_default=None, validate=validate.OneOf(SKILLS))
    vetting = Text(load_default=None, validate=validate.OneOf(VETTING), metadata={"description": "staff"})


class VetSchema(Schema):
    decision = Text(required=True, validate=validate.OneOf(("approve", "decline")))
    note = Text(required=True, validate=validate.Length(min=1, max=2000), metadata={"description": "why"})


class SuggestionQuery(Schema):
    skill = Text(load_default=None, validate=validate.OneOf(SKILLS), metadata={"description": "or booking_id"})
    booking_id = fields.UUID(load_default=None, metadata={"description": "its service's skill, its time"})
    compound_id = fields.UUID(load_default=None, metadata={"description": "where the need is"})
    latitude = fields.Float(load_default=None, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(load_default=None, validate=validate.Range(min=-180, max=180))
    minutes = fields.Float(load_default=15.0, validate=validate.Range(min=1, max=60))

    @validates_schema
    def a_need(self, data: dict, **_kwargs: Any) -> None:
        if data.get("skill") is None and data.get("booking_id") is None:
            raise ValidationError("give skill or booking_id", field_name="skill")
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            raise ValidationError("give latitude and longitude together", field_name="latitude")


class SuggestionSchema(Schema):
    talent = fields.Nested(TalentSchema, required=True)
    walking_minutes = fields.Float(
        required=True, allow_none=True, metadata={"description": "null: the talent's whereabouts are unknown"}
    )
    walking_m = fields.Float(required=True, allow_none=True)


class DeclineSchema(Schema):
    reason = Text(load_default=None, validate=validate.Length(max=2000))


class MatchFilter(Schema):
    status = Text(load_default=None, validate=validate.OneOf(MATCH_STATUSES))


class MatchSchema(Schema):
    id = Text(dump_only=True)
    talent_id = Text(dump_only=True)
    issue_id = fields.UUID(load_default=None)
    booking_id = fields.UUID(load_default=None)
    note = Text(load_default="", validate=validate.Length(max=2000))
    matched_by = Text(dump_only=True)
    matched_at = Instant(dump_only=True)
    status = Text(dump_only=True, validate=validate.OneOf(MATCH_STATUSES))
    status_label = DisplayLabel("match_status", "status")
    responded_at = Instant(dump_only=True, allow_none=True)
    decline_reason = Text(dump_only=True, allow_none=True)

    @validates_schema
    def one_need(self, data: dict, **_kwargs: Any) -> None:
        if (data.get("issue_id") is None) == (data.get("booking_id") is None):
            raise ValidationError("give issue_id or booking_id", field_name="issue_id")


class OfferingSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(required=True)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = Text(required=True, validate=validate.OneOf(SERVICE_KINDS))
    description = Text(load_default="", validate=validate.Length(max=2000))
    post_id = fields.UUID(load_default=None, allow_none=True)
    provider_type = Text(required=True, validate=validate.OneOf(PROVIDER_TYPES))
    provider_id = fields.UUID(load_default=None, allow_none=True)
    provider_name = Text(required=True, validate=validate.Length(min=1, max=200))
    at_post = fields.Boolean(load_default=True)
    door_to_door = fields.Boolean(load_default=False)
    concurrent_slots = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_CONCURRENT_SLOTS),
        metadata={"description": "bookings served at the same time (a talent: 1); one more is a 409"},
    )
    active = fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)


class OfferingFilter(Schema):
    community_id = fields.UUID(load_default=None)
    kind = Text(load_default=None, validate=validate.OneOf(SERVICE_KINDS))
    door_to_door = fields.Boolean(load_default=None)


class BookingSchema(Schema):
    id = Text(dump_only=True)
    offering_id = fields.UUID(required=True)
    community_id = Text(dump_only=True)
    resident_id = fields.UUID(load_default=None, metadata={"description": "staff booking for a resident"})
    booked_by = Text(dump_only=True)
    slot_start = Instant(required=True)
    slot_end = Instant(required=True)
    door_to_door = fields.Boolean(load_default=False)
    address = Text(load_default=None, allow_none=True, validate=validate.Length(max=500))
    note = Text(load_default="", validate=validate.Length(max=2000))
    status = Text(dump_only=True, validate=validate.OneOf(BOOKING_STATUSES))
    status_label = DisplayLabel("booking_status", "status")
    provider_talent_id = Text(dump_only=True, allow_none=True)
    person_times = fields.Integer(dump_only=True)
    completed_at = Instant(dump_only=True, allow_none=True)
    feedback_rating = fields.Integer(dump_only=True, allow_none=True)
    feedback_comment = Text(dump_only=True, allow_none=True)
    created_at = Instant(dump_only=True)


class BookingFilter(Schema):
    community_id = fields.UUID(load_default=None)
    status = Text(load_default=None, validate=validate.OneOf(BOOKING_STATUSES))


class ConfirmSchema(Schema):
    provider_talent_id = fields.UUID(load_default=None)


class CompleteSchema(Schema):
    person_times = fields.Integer(load_default=1, validate=validate.Range(min=1, max=500))


class FeedbackSchema(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = Text(load_default=None, validate=validate.Length(max=2000))


class SupportSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(required=True)
    resident_id = fields.UUID(load_default=None)
    display_name = Text(load_default="", validate=validate.Length(max=200))
    needs = fields.List(Text(validate=validate.OneOf(SUPPORT_NEEDS)), required=True, validate=validate.Length(min=1))
    address = Text(load_default="", validate=validate.Length(max=500))
    note = Text(load_default="", validate=validate.Length(max=2000))
    active = fields.Boolean(dump_only=True)
    recorded_by = Text(dump_only=True)
    created_at = Instant(dump_only=True)


class SupportPatchSchema(Schema):
    display_name = Text(validate=validate.Length(max=200))
    needs = fields.List(Text(validate=validate.OneOf(SUPPORT_NEEDS)), validate=validate.Length(min=1))
    address = Text(validate=validate.Length(max=500))
    note = Text(validate=validate.Length(max=2000))
    active = fields.Boolean()


class SupportFilter(Schema):
    community_id = fields.UUID(required=True)
    need = Text(load_default=None, validate=validate.OneOf(SUPPORT_NEEDS))


class VisitPlanSchema(Schema):
    id = Text(dump_only=True)
    flag_id = Text(dump_only=True)
    community_id = Text(dump_only=True)
    every_days = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_VISIT_INTERVAL_DAYS))
    visitor_id = fields.UUID(required=True, metadata={"description": "who visits (staff or a volunteer)"})
    visitor_name = Text(load_default="", validate=validate.Length(max=200))
    starts_on = BoundedDate(load_default=None, metadata={"description": "first visit due; default today"})
    next_due_on = fields.Date(dump_only=True)
    last_visited_on = fields.Date(dump_only=True, allow_none=True)
    active = fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)


class OnTheSpotBookingSchema(Schema):
    offering_id = fields.UUID(required=True)
    slot_start = Instant(required=True)
    slot_end = Instant(required=True)
    note = Text(load_default="", validate=validate.Length(max=2000))


def _filled(value: str, least: int) -> None:
    if len(value.strip()) < least:
        raise ValidationError(f"at least {least} characters besides blanks")


class OnTheSpotConcernSchema(Schema):
    """A problem the visitor found, raised as an issue of the resident's community."""

    # Checked as the issues service checks a report (stripped), so the issue it becomes is valid.
    title = Text(required=True, validate=[validate.Length(min=3, max=200), lambda v: _filled(v, 3)])
    description = Text(required=True, validate=[validate.Length(min=1, max=4000), lambda v: _filled(v, 1)])
    category = Text(
        load_default=None,
        validate=validate.Length(min=1, max=80),
        metadata={"description": "an issue category key; default elderly_vulnerable_support"},
    )
    urgency = Text(load_default="normal", validate=validate.OneOf(("low", "normal", "high", "urgent")))


class VisitSchema(Schema):
    id = Text(dump_only=True)
    flag_id = Text(dump_only=True)
    plan_id = Text(dump_only=True)
    visitor_id = fields.UUID(load_default=None, metadata={"description": "default: the caller"})
    visited_on = BoundedDate(required=True)
    condition = Text(required=True, validate=validate.OneOf(VISIT_CONDITIONS))
    note = Text(load_default="", validate=validate.Length(max=2000))
    booking = fields.Nested(
        OnTheSpotBookingSchema,
        load_only=True,
        load_default=None,
        allow_none=True,
        metadata={"description": "book a service for the resident on the spot"},
    )
    booking_id = Text(dump_only=True, allow_none=True)
    concern = fields.Nested(
        OnTheSpotConcernSchema,
        load_only=True,
        load_default=None,
        allow_none=True,
        metadata={"description": "raise an issue for the resident on the spot (the issues service reports it)"},
    )
    issue_id = Text(
        dump_only=True, allow_none=True, metadata={"description": "the issue raised on the spot, once reported"}
    )
    recorded_by = Text(dump_only=True)
    recorded_at = Instant(dump_only=True)


class QueueFilter(Schema):
    community_id = fields.UUID(load_default=None)
    within_days = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=60), metadata={"description": "also due this soon"}
    )


class QueuedVisitSchema(Schema):
    plan = fields.Nested(VisitPlanSchema, required=True)
    flag_id = fields.String(required=True)
    display_name = fields.String(required=True)
    address = fields.String(required=True)
    needs = fields.List(fields.String(), required=True)
    overdue_days = fields.Integer(required=True, metadata={"description": "0: due, not yet overdue"})


# --- mutual-aid groups ------------------------------------------------------------------------------
@blp.route("/groups")
class Groups(MethodView):
    @blp.arguments(CommunityFilter, location="query")
    @blp.response(200, GroupSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_groups(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
        )

    @blp.arguments(GroupSchema)
    @blp.response(201, GroupSchema)
    def post(self, body: dict) -> Any:
        return care.create_group(uow(), require_principal(), **plain(body))


@blp.route("/groups/<uuid:group_id>", methods=["GET"])
@blp.response(200, GroupSchema)
def group_by_id(group_id: Any) -> Any:
    return care.get_group(uow(), require_principal(), str(group_id))


@blp.route("/groups/<uuid:group_id>/members")
class Members(MethodView):
    @blp.response(200, MemberSchema(many=True))
    @blp.paginate()
    def get(self, group_id: Any, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_members(uow(), require_principal(), str(group_id), **page_of(pagination_parameters)),
        )

    @blp.arguments(MemberSchema)
    @blp.response(201, MemberSchema)
    def post(self, body: dict, group_id: Any) -> Any:
        return care.add_member(uow(), require_principal(), str(group_id), **plain(body))


@blp.route("/groups/<uuid:group_id>/members/<uuid:user_id>", methods=["DELETE"])
@blp.response(204)
def remove_member(group_id: Any, user_id: Any) -> None:
    care.remove_member(uow(), require_principal(), str(group_id), str(user_id))


@blp.route("/groups/<uuid:group_id>/help")
class Help(MethodView):
    @blp.response(200, HelpSchema(many=True))
    @blp.paginate()
    def get(self, group_id: Any, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_help(uow(), require_principal(), str(group_id), **page_of(pagination_parameters)),
        )

    @blp.arguments(HelpSchema)
    @blp.response(201, HelpSchema)
    def post(self, body: dict, group_id: Any) -> Any:
        return care.log_help(uow(), require_principal(), str(group_id), **plain(body))


# --- talents ------------------------------------------------------------------------------------------
def _talent_as_seen(talent: Any, staff: bool) -> Any:
    return talent if staff else Redacted(talent, "contact_note", "vetting_note", "vetted_by")


@blp.route("/talents")
class Talents(MethodView):
    @blp.arguments(TalentFilter, location="query")
    @blp.response(200, TalentSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        principal = require_principal()
        items = paged(
            pagination_parameters,
            care.list_talents(uow(), principal, **plain(filters), **page_of(pagination_parameters)),
        )
        staff = care.sees_contacts(principal)
        return [_talent_as_seen(t, staff or t.user_id == principal.user_id) for t in items]

    @blp.arguments(TalentSchema)
    @blp.response(201, TalentSchema)
    def post(self, body: dict) -> Any:
        values = plain(body)
        values["contact_note"] = values.get("contact_note") or ""
        return care.add_talent(uow(), require_principal(), **values)


@blp.route("/talents/<uuid:talent_id>", methods=["PATCH"])
@blp.arguments(TalentPatchSchema)
@blp.response(200, TalentSchema)
def update_talent(body: dict, talent_id: Any) -> Any:
    """The talent or staff change the entry; a talent changing their skills or description goes back
    to vetting."""
    return care.update_talent(uow(), require_principal(), str(talent_id), **plain(body))


@blp.route("/talents/<uuid:talent_id>/vetting", methods=["POST"])
@blp.arguments(VetSchema)
@blp.response(200, TalentSchema)
def vet_talent(body: dict, talent_id: Any) -> Any:
    """Staff of the talent's community approve or decline the entry, with a note; the talent is told."""
    return care.vet_talent(
        uow(), require_principal(), str(talent_id), approve=body["decision"] == "approve", note=body["note"]
    )


@blp.route("/talents/suggestions", methods=["GET"])
@blp.arguments(SuggestionQuery, location="query")
@blp.response(200, SuggestionSchema(many=True))
def suggest_talents(query: dict) -> list[dict]:
    """Vetted talents with the skill a need takes, within `minutes` on foot of it (the 15-minute
    circle by default), nearest first, then those whose whereabouts are unknown; for a booking,
    only those free at its time. Staff only."""
    found = care.suggest_talents(uow(), require_principal(), config().walking, **plain(query))
    return [
        {
            "talent": s.talent,
            "walking_minutes": round(s.walk.minutes, 1) if s.walk else None,
            "walking_m": round(s.walk.walking_m) if s.walk else None,
        }
        for s in found
    ]


@blp.route("/talents/matches", methods=["GET"])
@blp.arguments(MatchFilter, location="query")
@blp.response(200, MatchSchema(many=True))
@blp.paginate()
def list_matches(filters: dict, pagination_parameters: Any) -> list:
    """Staff: the matches of their scope. A talent: what they were asked to help with."""
    return paged(
        pagination_parameters,
        care.list_matches(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
    )


@blp.route("/talents/matches/<uuid:match_id>/accept", methods=["POST"])
@blp.response(200, MatchSchema)
def accept_match(match_id: Any) -> Any:
    return care.respond_to_match(uow(), require_principal(), str(match_id), accept=True)


@blp.route("/talents/matches/<uuid:match_id>/decline", methods=["POST"])
@blp.arguments(DeclineSchema)
@blp.response(200, MatchSchema)
def decline_match(body: dict, match_id: Any) -> Any:
    return care.respond_to_match(uow(), require_principal(), str(match_id), accept=False, reason=body["reason"])


@blp.route("/talents/<uuid:talent_id>/matches", methods=["POST"])
@blp.arguments(MatchSchema)
@blp.response(201, MatchSchema)
def match_talent(body: dict, talent_id: Any) -> Any:
    return care.match_talent(uow(), require_principal(), str(talent_id), **plain(body))


# --- offerings and bookings ----------------------------------------------------------------------------------
@blp.route("/offerings")
class Offerings(MethodView):
    @blp.arguments(OfferingFilter, location="query")
    @blp.response(200, OfferingSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_offerings(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
        )

    @blp.arguments(OfferingSchema)
    @blp.response(201, OfferingSchema)
    def post(self, body: dict) -> Any:
        return care.create_offering(uow(), require_principal(), **plain(body))


@blp.route("/bookings")
class Bookings(MethodView):
    @blp.arguments(BookingFilter, location="query")
    @blp.response(200, BookingSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_bookings(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
        )

    @blp.arguments(BookingSchema)
    @blp.response(201, BookingSchema)
    def post(self, body: dict) -> Any:
        return care.book(uow(), require_principal(), **plain(body))


@blp.route("/bookings/<uuid:booking_id>", methods=["GET"])
@blp.response(200, BookingSchema)
def booking_by_id(booking_id: Any) -> Any:
    return care.get_booking(uow(), require_principal(), str(booking_id))


@blp.route("/bookings/<uuid:booking_id>/confirm", methods=["POST"])
@blp.arguments(ConfirmSchema)
@blp.response(200, BookingSchema)
def confirm_booking(body: dict, booking_id: Any) -> Any:
    return care.change_booking(uow(), require_principal(), str(booking_id), "confirm", **plain(body))


@blp.route("/bookings/<uuid:booking_id>/complete", methods=["POST"])
@blp.arguments(CompleteSchema)
@blp.response(200, BookingSchema)
def complete_booking(body: dict, booking_id: Any) -> Any:
    return care.change_booking(uow(), require_principal(), str(booking_id), "complete", **body)


@blp.route("/bookings/<uuid:booking_id>/cancel", methods=["POST"])
@blp.response(200, BookingSchema)
def cancel_booking(booking_id: Any) -> Any:
    return care.change_booking(uow(), require_principal(), str(booking_id), "cancel")


@blp.route("/bookings/<uuid:booking_id>/feedback", methods=["POST"])
@blp.arguments(FeedbackSchema)
@blp.response(200, BookingSchema)
def booking_feedback(body: dict, booking_id: Any) -> Any:
    return care.change_booking(uow(), require_principal(), str(booking_id), "feedback", **body)


# --- residents needing support ---------------------------------------------------------------------------------
@blp.route("/support")
class Support(MethodView):
    @blp.arguments(SupportFilter, location="query")
    @blp.response(200, SupportSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_support(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
        )

    @blp.arguments(SupportSchema)
    @blp.response(201, SupportSchema)
    def post(self, body: dict) -> Any:
        return care.flag_support(uow(), require_principal(), **plain(body))


@blp.route("/support/<uuid:flag_id>", methods=["PATCH"])
@blp.arguments(SupportPatchSchema)
@blp.response(200, SupportSchema)
def update_support(body: dict, flag_id: Any) -> Any:
    return care.update_support(uow(), require_principal(), str(flag_id), **plain(body))


# --- welfare visits ----------------------------------------------------------------------------------------
@blp.route("/support/<uuid:flag_id>/visit-plan")
class VisitPlanOf(MethodView):
    @blp.response(200, VisitPlanSchema)
    def get(self, flag_id: Any) -> Any:
        return care.get_visit_plan(uow(), require_principal(), str(flag_id))

    @blp.arguments(VisitPlanSchema)
    @blp.response(200, VisitPlanSchema)
    def put(self, body: dict, flag_id: Any) -> Any:
        """Make or change the plan: every `every_days` days, by `visitor_id`. Community staff only."""
        return care.set_visit_plan(uow(), require_principal(), str(flag_id), **plain(body))


@blp.route("/support/<uuid:flag_id>/visits")
class Visits(MethodView):
    @blp.response(200, VisitSchema(many=True))
    @blp.paginate()
    def get(self, flag_id: Any, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            care.list_visits(uow(), require_principal(), str(flag_id), **page_of(pagination_parameters)),
        )

    @blp.arguments(VisitSchema)
    @blp.response(201, VisitSchema)
    def post(self, body: dict, flag_id: Any) -> Any:
        """Record a visit (by the community's staff or the plan's visitor); `booking` books a service
        for the resident on the spot; `concern` raises an issue for them (its id in `issue_id`)."""
        return care.record_visit(uow(), require_principal(), str(flag_id), **plain(body))


@blp.route("/visits/queue", methods=["GET"])
@blp.arguments(QueueFilter, location="query")
@blp.response(200, QueuedVisitSchema(many=True))
@blp.paginate()
def visit_queue(filters: dict, pagination_parameters: Any) -> list[dict]:
    """Overdue visits, most overdue first (with `within_days`, also those due soon): community
    staff see their communities'; a visitor, the visits given to them."""
    items = paged(
        pagination_parameters,
        care.visit_queue(uow(), require_principal(), **plain(filters), **page_of(pagination_parameters)),
    )
    return [
        {
            "plan": q.plan,
            "flag_id": q.flag.id,
            "display_name": q.flag.display_name,
            "address": q.flag.address,
            "needs": q.flag.needs,
            "overdue_days": q.overdue_days,
        }
        for q in items
    ]
