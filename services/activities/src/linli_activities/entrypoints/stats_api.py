"""`GET /stats` for the street-office overview the gateway builds."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from linli_activities.entrypoints.common import plain, uow
from linli_activities.service_layer import stats
from linli_kit.web import require_principal

blp = Blueprint("stats", __name__, url_prefix="/", description="Statistics for a scope and period")


class StatsQuery(Schema):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)
    first = fields.Date(load_default=None, data_key="from")
    last = fields.Date(load_default=None, data_key="to")


class StatsSchema(Schema):
    scope = fields.Dict(metadata={"description": "community_id, street_id, community_ids, or city"})
    period = fields.Dict(metadata={"description": "from, to (dates in the city's time zone), timezone"})
    totals = fields.Dict(metadata={"description": "every figure, plus activities_by_kind"})
    by_community = fields.List(fields.Dict(), metadata={"description": "community_id and the figures"})
    monthly = fields.List(fields.Dict(), metadata={"description": "month (YYYY-MM) and the monthly figures"})


@blp.route("/stats", methods=["GET"])
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
def statistics(query: dict) -> dict[str, Any]:
    """Activities held by kind, participant-times, distinct participants, registrations against
    attendance, posts and residents covered, mutual-aid groups, members and help hours, talents,
    services delivered in person-times and the door-to-door share; totals, per community, per month."""
    timezone = current_app.extensions["linli.settings"].timezone
    return stats.statistics(uow(), require_principal(), timezone=timezone, **plain(query))
