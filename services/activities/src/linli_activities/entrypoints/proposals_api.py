"""HTTP API of residents' activity proposals (/proposals): a resident proposes, the community's staff
accept (making the activity) or decline with a reason, the proposer may withdraw."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_activities.domain.activities import KINDS
from linli_activities.domain.proposals import PROPOSAL_STATUSES
from linli_activities.entrypoints.activities_api import ActivitySchema
from linli_activities.entrypoints.common import Instant, Text, plain, uow
from linli_activities.service_layer import proposals
from linli_kit.schemas import DisplayLabel
from linli_kit.web import require_principal

blp = Blueprint("proposals", __name__, url_prefix="/", description="Residents' activity proposals")


class ProposalSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(required=True)
    kind = Text(required=True, validate=validate.OneOf(KINDS))
    title = Text(required=True, validate=validate.Length(min=1, max=300))
    description = Text(load_default="", validate=validate.Length(max=10_000))
    reason = Text(
        load_default="", validate=validate.Length(max=2000), metadata={"description": "why it is worth doing"}
    )
    preferred_starts_at = Instant(
        load_default=None, allow_none=True, metadata={"description": "when the proposer would like it (a wish)"}
    )
    place = Text(load_default=None, allow_none=True, validate=validate.Length(max=300))
    proposer_id = Text(dump_only=True)
    status = Text(dump_only=True, validate=validate.OneOf(PROPOSAL_STATUSES))
    status_label = DisplayLabel("proposal_status", "status")
    decided_by = Text(dump_only=True, allow_none=True)
    decided_at = Instant(dump_only=True, allow_none=True)
    decision_reason = Text(dump_only=True, allow_none=True, metadata={"description": "why declined, or a note"})
    activity_id = Text(dump_only=True, allow_none=True, metadata={"description": "the activity made, once accepted"})
    created_at = Instant(dump_only=True)


class ProposalFilter(Schema):
    community_id = fields.UUID(load_default=None)
    status = Text(load_default=None, validate=validate.OneOf(PROPOSAL_STATUSES))


class ProposalAcceptSchema(Schema):
    """The activity made from the proposal: the times are the staff's; the rest as proposed unless given."""

    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    kind = Text(load_default=None, validate=validate.OneOf(KINDS))
    title = Text(load_default=None, validate=validate.Length(min=1, max=300))
    description = Text(load_default=None, validate=validate.Length(max=10_000))
    place = Text(load_default=None, validate=validate.Length(max=300))
    post_id = fields.UUID(load_default=None)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000))
    publish = fields.Boolean(load_default=True, metadata={"description": "false: keep the activity a draft"})
    note = Text(load_default=None, validate=validate.Length(max=2000), metadata={"description": "for the proposer"})

    @validates_schema
    def _order(self, data: dict, **_: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", field_name="ends_at")


class ProposalAcceptedSchema(Schema):
    proposal = fields.Nested(ProposalSchema)
    activity = fields.Nested(ActivitySchema)


class ProposalDeclineSchema(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


@blp.route("/proposals")
class Proposals(MethodView):
    @blp.arguments(ProposalFilter, location="query")
    @blp.response(200, ProposalSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        """Staff: the proposals of their communities; a resident: their own."""
        items, total = proposals.list_proposals(
            uow(),
            require_principal(),
            **plain(filters),
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(ProposalSchema)
    @blp.response(201, ProposalSchema)
    def post(self, values: dict) -> Any:
        """A resident proposes an activity for their community; its staff are told."""
        return proposals.submit(uow(), require_principal(), **plain(values))


@blp.route("/proposals/<uuid:proposal_id>", methods=["GET"])
@blp.response(200, ProposalSchema)
def get_proposal(proposal_id: Any) -> Any:
    """The proposer and the community's staff read a proposal (404 for anyone else)."""
    return proposals.get(uow(), require_principal(), str(proposal_id))


@blp.route("/proposals/<uuid:proposal_id>/accept", methods=["POST"])
@blp.arguments(ProposalAcceptSchema)
@blp.response(200, ProposalAcceptedSchema)
def accept_proposal(body: dict, proposal_id: Any) -> Any:
    """Staff accept a pending proposal: the activity is made (published unless `publish` is false)
    and the proposer is told when it is. 409 once it was answered or withdrawn."""
    proposal, activity = proposals.accept(uow(), require_principal(), str(proposal_id), **plain(body))
    return {"proposal": proposal, "activity": activity}


@blp.route("/proposals/<uuid:proposal_id>/decline", methods=["POST"])
@blp.arguments(ProposalDeclineSchema)
@blp.response(200, ProposalSchema)
def decline_proposal(body: dict, proposal_id: Any) -> Any:
    """Staff decline a pending proposal with a reason, which the proposer is told."""
    return proposals.decline(uow(), require_principal(), str(proposal_id), body["reason"])


@blp.route("/proposals/<uuid:proposal_id>/withdraw", methods=["POST"])
@blp.response(200, ProposalSchema)
def withdraw_proposal(proposal_id: Any) -> Any:
    """The proposer withdraws a proposal nobody has answered yet."""
    return proposals.withdraw(uow(), require_principal(), str(proposal_id))
