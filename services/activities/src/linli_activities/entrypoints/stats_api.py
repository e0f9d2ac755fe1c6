"""`GET /stats` for the street-office overview the gateway builds."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from linli_activities.entrypoints.common import plain, uow
from linli_activities.service_layer import stats
from linli_kit.schemas import PeriodQuery
from linli_kit.web import require_principal

blp = Blueprint("stats", __name__, url_prefix="/", description="Statistics for a scope and period")


class StatsQuery(PeriodQuery):
    """The scope (default: the widest the caller may see) and the platform's period (`from`, `to`)."""

    community_id = fields.UUID(load_default=None, metadata={"description": "one community"})
    street_id = fields.UUID(load_default=None, metadata={"description": "every community of one street"})
    by = fields.String(
        load_default="community",
        validate=validate.OneOf(("community", "street")),
        metadata={"description": "rows per community (`by_community`, default) or per street (`by_street`)"},
    )


def _count(description: str) -> fields.Integer:
    return fields.Integer(required=True, metadata={"description": description})


class FiguresSchema(Schema):
    """Every figure, for the whole scope or for one community."""

    activities_held = _count("published activities that started in the period, up to now")
    participant_times = _count("people checked in (party members and walk-ins summed)")
    distinct_participants = _count("different registered people checked in")
    registrations = _count("places-holding registrations for activities held in the period")
    registered_places = _count("places those registrations hold (party sizes summed)")
    registrations_attended = _count("of those registrations, the ones that checked in")
    still_waitlisted = _count("registrations for activities held that never left the waiting list")
    service_posts = _count("active service posts (now, not in the period)")
    residents_covered = _count("residents the active posts serve")
    mutual_aid_groups = _count("active mutual-aid groups")
    group_members = _count("different members of those groups")
    help_hours = fields.Float(required=True, metadata={"description": "hours of help logged in the period"})
    help_entries = _count("help log entries in the period")
    talents = _count("active entries of the talent pool")
    service_person_times = _count("person-times of services completed in the period")
    door_to_door_person_times = _count("of those, delivered door-to-door")
    services_completed = _count("bookings completed in the period")
    welfare_visits = _count("visits made to residents needing support in the period")
    visit_plans = _count("residents needing support with a visit plan (now, not in the period)")
    visits_overdue = _count("of those plans, the ones whose visit is overdue today")
    patrol_rounds = _count("patrol rounds of mutual-aid groups walked in the period")
    patrol_findings = _count("findings recorded on patrol rounds in the period")
    patrol_issues_raised = _count("patrol findings raised as issues in the period")
    attendance_rate = fields.Float(
        required=True, allow_none=True, metadata={"description": "registrations_attended / registrations; null: none"}
    )
    door_to_door_share = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "door_to_door_person_times / service_person_times; null: none"},
    )


class TotalsSchema(FiguresSchema):
    activities_by_kind = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "activities held, by kind"},
    )


class CommunityFiguresSchema(FiguresSchema):
    community_id = fields.String(required=True)


class StreetFiguresSchema(FiguresSchema):
    street_id = fields.String(
        required=True, allow_none=True, metadata={"description": "null: communities the directory does not know yet"}
    )


class MonthFiguresSchema(Schema):
    month = fields.String(required=True, metadata={"description": "YYYY-MM, in the city's time zone"})
    activities_held = _count("activities held that month")
    participant_times = _count("people checked in that month")
    service_person_times = _count("person-times of services completed that month")
    door_to_door_person_times = _count("of those, door-to-door")
    help_hours = fields.Float(required=True, metadata={"description": "hours of help logged that month"})
    welfare_visits = _count("visits made to residents needing support that month")
    patrol_rounds = _count("patrol rounds walked that month")
    patrol_findings = _count("patrol findings recorded that month")
    patrol_issues_raised = _count("patrol findings raised as issues that month")


class StatsScopeSchema(Schema):
    """Exactly one of these keys: the scope the figures are for."""

    community_id = fields.String()
    street_id = fields.String()
    community_ids = fields.List(fields.String(), metadata={"description": "community staff's own communities"})
    city = fields.Boolean(metadata={"description": "true: the whole city (city_admin)"})


class StatsPeriodSchema(Schema):
    period_from = fields.Date(
        required=True, attribute="from", data_key="from", metadata={"description": "first local day"}
    )
    period_to = fields.Date(
        required=True, attribute="to", data_key="to", metadata={"description": "last local day, included"}
    )
    timezone = fields.String(required=True, metadata={"description": "the city's time zone the days are in"})


class StatsSchema(Schema):
    scope = fields.Nested(StatsScopeSchema, required=True)
    period = fields.Nested(StatsPeriodSchema, required=True)
    totals = fields.Nested(TotalsSchema, required=True)
    by_community = fields.List(
        fields.Nested(CommunityFiguresSchema),
        required=True,
        metadata={"description": "every community with any figure, by id"},
    )
    by_street = fields.List(
        fields.Nested(StreetFiguresSchema),
        required=True,
        metadata={"description": "with `by=street`: every street with any figure (then `by_community` is empty)"},
    )
    monthly = fields.List(
        fields.Nested(MonthFiguresSchema),
        required=True,
        metadata={"description": "every month of the period, in order, zeros included"},
    )


@blp.route("/stats", methods=["GET"])
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
def statistics(query: dict) -> Response:
    """Activities held by kind, participant-times, distinct participants, registrations against
    attendance, posts and residents covered, mutual-aid groups, members and help hours, talents,
    services delivered in person-times and the door-to-door share; totals, per community, per month.

    Who: community staff (their communities), street officials (their street), city admins (any
    scope). The period is the platform's: by default the twelve calendar months ending with the
    current one, in the city's time zone."""
    timezone = current_app.extensions["linli.settings"].timezone
    answer = stats.statistics(uow(), require_principal(), timezone=timezone, **plain(query))
    # Sent as built: the figures are JSON values already, and dumping a hundred rows of them
    # through the schema (which documents the answer) cost more than reading them from the counts.
    return current_app.json.response(as_sent(answer))


def as_sent(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer in JSON values, as StatsSchema dumps it (the tests hold the two equal): the
    period's days in ISO form, everything else as it is."""
    period = answer["period"]
    days = {"from": period["from"].isoformat(), "to": period["to"].isoformat(), "timezone": period["timezone"]}
    return {**answer, "period": days}
