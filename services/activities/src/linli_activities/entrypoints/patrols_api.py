"""HTTP API of patrols: a mutual-aid group's rota (/groups/<id>/patrols), a round's findings
(/patrols/<id>/findings), and a finding raised as an issue (/patrols/findings/<id>/issue)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from linli_activities.domain.patrols import DEFAULT_FINDING_CATEGORY, MAX_ROUND_HOURS, MAX_ROUND_MEMBERS, URGENCIES
from linli_activities.entrypoints.common import Instant, Text, page_of, paged, plain, uow
from linli_activities.service_layer import patrols
from linli_kit.web import require_principal

blp = Blueprint("patrols", __name__, url_prefix="/", description="Patrols of mutual-aid groups")


def _filled(value: str, least: int) -> None:
    if len(value.strip()) < least:
        raise ValidationError(f"at least {least} characters besides blanks")


class RoundSchema(Schema):
    id = Text(dump_only=True)
    group_id = Text(dump_only=True)
    community_id = Text(dump_only=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True, metadata={"description": f"at most {MAX_ROUND_HOURS} hours after starts_at"})
    route = Text(load_default="", validate=validate.Length(max=500), metadata={"description": "where it goes"})
    member_ids = fields.List(
        fields.UUID(),
        required=True,
        validate=validate.Length(min=1, max=MAX_ROUND_MEMBERS),
        metadata={"description": "the members (or the coordinator) who walk it"},
    )
    walked_at = Instant(dump_only=True, allow_none=True, metadata={"description": "null: not walked yet"})
    walked_by = Text(dump_only=True, allow_none=True)
    report = Text(dump_only=True)
    created_by = Text(dump_only=True)
    created_at = Instant(dump_only=True)


class RotaFilter(Schema):
    starts_from = Instant(load_default=None, metadata={"description": "rounds starting at or after"})
    starts_before = Instant(load_default=None)


class WalkSchema(Schema):
    report = Text(load_default="", validate=validate.Length(max=4000), metadata={"description": "how it went"})


class FindingSchema(Schema):
    id = Text(dump_only=True)
    round_id = Text(dump_only=True)
    group_id = Text(dump_only=True)
    community_id = Text(dump_only=True)
    # Checked as the issues service checks a report (stripped), so the issue it becomes is valid.
    title = Text(required=True, validate=[validate.Length(min=3, max=200), lambda v: _filled(v, 3)])
    description = Text(required=True, validate=[validate.Length(min=1, max=4000), lambda v: _filled(v, 1)])
    location = Text(load_default="", validate=validate.Length(max=300), metadata={"description": "where exactly"})
    category = Text(
        load_default=None,
        validate=validate.Length(min=1, max=80),
        metadata={"description": f"an issue category key; default {DEFAULT_FINDING_CATEGORY}"},
    )
    urgency = Text(load_default="normal", validate=validate.OneOf(URGENCIES))
    raise_issue = fields.Boolean(
        load_default=False, load_only=True, metadata={"description": "raise it as an issue at once"}
    )
    recorded_by = Text(dump_only=True)
    recorded_at = Instant(dump_only=True)
    issue_id = Text(
        dump_only=True,
        allow_none=True,
        metadata={"description": "the issue it became (reported by the issues service, credited to the group)"},
    )
    raised_by = Text(dump_only=True, allow_none=True)
    raised_at = Instant(dump_only=True, allow_none=True)


class PatrolFiguresSchema(Schema):
    group_id = fields.String(required=True)
    rounds = fields.Integer(required=True, metadata={"description": "on the rota"})
    rounds_walked = fields.Integer(required=True)
    findings = fields.Integer(required=True)
    issues_raised = fields.Integer(required=True)


@blp.route("/groups/<uuid:group_id>/patrols")
class Rota(MethodView):
    @blp.arguments(RotaFilter, location="query")
    @blp.response(200, RoundSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, group_id: Any, pagination_parameters: Any) -> list:
        """The group's rota, in time order."""
        return paged(
            pagination_parameters,
            patrols.rota(uow(), require_principal(), str(group_id), **filters, **page_of(pagination_parameters)),
        )

    @blp.arguments(RoundSchema)
    @blp.response(201, RoundSchema)
    def post(self, body: dict, group_id: Any) -> Any:
        """Put a round on the rota (the coordinator or staff)."""
        return patrols.schedule_round(uow(), require_principal(), str(group_id), **plain(body))


@blp.route("/groups/<uuid:group_id>/patrols/figures", methods=["GET"])
@blp.response(200, PatrolFiguresSchema)
def group_patrol_figures(group_id: Any) -> Any:
    """The group's patrols so far (also in /stats by community and month)."""
    return patrols.group_figures(uow(), require_principal(), str(group_id))


@blp.route("/patrols/<uuid:round_id>", methods=["GET"])
@blp.response(200, RoundSchema)
def round_by_id(round_id: Any) -> Any:
    return patrols.get_round(uow(), require_principal(), str(round_id))


@blp.route("/patrols/<uuid:round_id>/walked", methods=["POST"])
@blp.arguments(WalkSchema)
@blp.response(200, RoundSchema)
def walked(body: dict, round_id: Any) -> Any:
    """The round was walked (a member on it, the coordinator or staff), with a short report."""
    return patrols.walk_round(uow(), require_principal(), str(round_id), **body)


@blp.route("/patrols/<uuid:round_id>/findings")
class Findings(MethodView):
    @blp.response(200, FindingSchema(many=True))
    @blp.paginate()
    def get(self, round_id: Any, pagination_parameters: Any) -> list:
        return paged(
            pagination_parameters,
            patrols.list_findings(uow(), require_principal(), str(round_id), **page_of(pagination_parameters)),
        )

    @blp.arguments(FindingSchema)
    @blp.response(201, FindingSchema)
    def post(self, body: dict, round_id: Any) -> Any:
        """Record what was found (the round counts as walked); `raise_issue` makes it an issue at once."""
        return patrols.record_finding(uow(), require_principal(), str(round_id), **plain(body))


@blp.route("/patrols/findings/<uuid:finding_id>/issue", methods=["POST"])
@blp.response(200, FindingSchema)
def raise_issue(finding_id: Any) -> Any:
    """Make the finding an issue of the community, credited to the group (once: again is a 409
    naming the issue). The issues service reports it from `activities.patrol.finding_raised`."""
    return patrols.raise_finding(uow(), require_principal(), str(finding_id))
