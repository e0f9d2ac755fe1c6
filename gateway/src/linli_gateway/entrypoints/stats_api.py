"""`/api/v1/stats/...`: the overview a street office reads, rankings across communities, and exports."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, current_app, g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from linli_gateway.domain.directory import Community, Street
from linli_gateway.entrypoints.proxy import service_token
from linli_gateway.service_layer import statistics
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_gateway.settings import ROUTED_SERVICES
from linli_kit.errors import Forbidden, Invalid, NotFound
from linli_kit.i18n import label, labels, language
from linli_kit.periods import today_in
from linli_kit.schemas import PeriodQuery
from linli_kit.web import require_principal

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats", description="Statistics across services")
_ERRORS = {"invalid": Invalid, "forbidden": Forbidden, "not_found": NotFound}


class ScopeQuery(PeriodQuery):
    """Whose figures (default: the widest scope you may see) over which period (`from`/`to`, local
    dates; default: the platform's twelve calendar months ending with this one)."""

    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)


class OverviewQuery(ScopeQuery):
    communities = fields.Boolean(
        load_default=None,
        metadata={
            "description": "whether to list every community of the scope (`by_community`); by default yes for "
            "a community or a street, no for the whole city, which lists its streets instead (`by_street`)"
        },
    )


class RankingQuery(ScopeQuery):
    metric = fields.String(required=True, validate=validate.OneOf(sorted(statistics.RANKING_METRICS)))


class ExportQuery(ScopeQuery):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))
    sheet = fields.String(
        load_default="communities",
        validate=validate.OneOf(["communities", "monthly"]),
        metadata={"description": "CSV only: one row per community (default) or per month; a workbook has both"},
    )


# --- what is answered -------------------------------------------------------------------------------
def _figures(description: str) -> fields.Dict:
    # The figures themselves belong to each service (see its own /stats); the gateway passes them on.
    return fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={"description": description})


class StatsScopeSchema(Schema):
    level = fields.String(required=True, validate=validate.OneOf(["community", "street", "city"]))
    community_id = fields.String(allow_none=True)
    street_id = fields.String(allow_none=True)


PeriodSchema = Schema.from_dict(
    {
        "from": fields.String(required=True, metadata={"format": "date", "description": "first day, included"}),
        "to": fields.String(required=True, metadata={"format": "date", "description": "last day, included"}),
    },
    name="StatsPeriod",
)


class MissingServiceSchema(Schema):
    service = fields.String(required=True)
    reason = fields.String(required=True)


CommunityFiguresSchema = Schema.from_dict(
    {
        "community_id": fields.String(required=True),
        "community_name": fields.String(allow_none=True),
        **{name: _figures(f"the {name} service's figures for this community") for name in ROUTED_SERVICES},
    },
    name="CommunityFigures",
)
StreetFiguresSchema = Schema.from_dict(
    {
        "street_id": fields.String(
            allow_none=True, metadata={"description": "none: communities the directory did not know yet"}
        ),
        "street_name": fields.String(allow_none=True),
        **{
            name: _figures(f"the {name} service's figures for this street (no median or percentile hours)")
            for name in ROUTED_SERVICES
        },
    },
    name="StreetFigures",
)
MonthFiguresSchema = Schema.from_dict(
    {
        "month": fields.String(required=True, metadata={"description": "YYYY-MM"}),
        **{name: _figures(f"the {name} service's figures for this month") for name in ROUTED_SERVICES},
    },
    name="MonthFigures",
)


class OverviewSchema(Schema):
    scope = fields.Nested(StatsScopeSchema, required=True)
    period = fields.Nested(PeriodSchema, required=True)
    totals = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Raw()),
        required=True,
        metadata={"description": "each service that answered, with its figures for the whole scope"},
    )
    by_community = fields.List(
        fields.Nested(CommunityFiguresSchema),
        required=True,
        metadata={"description": "every community of the scope; empty for the whole city unless `communities`"},
    )
    by_street = fields.List(
        fields.Nested(StreetFiguresSchema),
        required=True,
        metadata={"description": "the whole city's streets (when its communities are not listed); else empty"},
    )
    monthly = fields.List(fields.Nested(MonthFiguresSchema), required=True)
    missing = fields.List(
        fields.Nested(MissingServiceSchema),
        required=True,
        metadata={"description": "services that did not answer; their figures are left out"},
    )
    complete = fields.Boolean(required=True)
    labels = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "the words for each figure (`<service>.<figure>`, a breakdown's "
            "`<service>.<figure>.<key>`), in the language of the answer (Content-Language)"
        },
    )


class RankedCommunitySchema(Schema):
    community_id = fields.String(required=True)
    community_name = fields.String(allow_none=True)
    value = fields.Raw(allow_none=True, metadata={"type": "number", "nullable": True})
    rank = fields.Integer(allow_none=True, metadata={"description": "none for a community without the figure"})


class RankingSchema(Schema):
    metric = fields.String(required=True)
    scope = fields.Nested(StatsScopeSchema, required=True)
    period = fields.Nested(PeriodSchema, required=True)
    ranking = fields.List(fields.Nested(RankedCommunitySchema), required=True)
    missing = fields.List(fields.Nested(MissingServiceSchema), required=True)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_RESPONSE = {
    "description": "a file to download: CSV (UTF-8 with a BOM, for Excel) or an Excel workbook",
    "headers": {
        "Content-Disposition": {
            "description": 'attachment; filename="linli-<level>-<from>-<to>.<format>"',
            "schema": {"type": "string"},
        }
    },
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        XLSX: {"schema": {"type": "string", "format": "binary"}},
    },
}


def _fetcher(upstream: Any, authorizations: dict[str, str], request_id: str) -> statistics.Fetch:
    """Asks one service for its /stats with a token for it standing for the caller, so it applies its
    scope rules too. Runs on the pool's threads: everything it needs is bound here, nothing from the
    request."""

    def fetch(service: str, query: dict[str, str]) -> dict[str, Any]:
        if upstream.breakers[service].state == "open":
            raise RuntimeError("circuit open: the service was found down")
        response = upstream.session.get(
            f"{upstream.settings.service_urls[service]}/stats",
            params=query,
            headers={"Authorization": authorizations[service], "X-Request-ID": request_id},
            timeout=(2.0, upstream.settings.timeouts[service]),
        )
        if response.status_code != 200:
            raise RuntimeError(f"answered {response.status_code}")
        return response.json()

    return fetch


def _overview(query: dict[str, Any], *, communities: bool | None = None) -> dict[str, Any]:
    """The overview of the scope asked for. `communities`: list every community of the scope; by
    default a community or a street does, the whole city lists its streets (a hundred rows, not ten
    thousand, and no service reads its communities one by one)."""
    principal = require_principal()
    database = current_app.extensions["linli.database"]
    settings = current_app.extensions["linli.settings"]
    with GatewayUnitOfWork(database) as uow:

        def street_of(community_id: str) -> str | None:
            community = uow.directory.get(Community, community_id)
            return community.street_id if community else None

        try:
            scope = statistics.resolve_scope(
                principal,
                community_id=str(query["community_id"]) if query["community_id"] else None,
                street_id=str(query["street_id"]) if query["street_id"] else None,
                period_from=query["period_from"],
                period_to=query["period_to"],
                street_of=street_of,
                today=today_in(settings.timezone),
            )
        except statistics.ScopeError as exc:
            raise _ERRORS[exc.kind](exc.message) from exc
        if scope.community_id is None and scope.street_id is None and not communities:
            scope = scope.per_street()
            names = uow.directory.names(Street)
        elif scope.community_id:
            names = {scope.community_id: uow.directory.get(Community, scope.community_id).name}
        else:
            names = uow.directory.names(Community, street_id=scope.street_id)
    upstream = current_app.extensions["linli.upstream"]
    upstream.ensure()
    tokens = {service: "Bearer " + service_token(principal, service) for service in ROUTED_SERVICES}
    fetch = _fetcher(upstream, tokens, g.request_id)
    answers, missing = statistics.gather(list(ROUTED_SERVICES), scope, fetch)
    overview = statistics.merge(scope, answers, missing, names)
    # Every community (or street) of the scope is listed, also one with nothing in the period.
    rows = overview[f"by_{scope.by}"]
    known = {entry[f"{scope.by}_id"] for entry in rows}
    for group_id, name in names.items():
        if group_id not in known and scope.community_id is None:
            rows.append({f"{scope.by}_id": group_id, f"{scope.by}_name": name})
    rows.sort(key=lambda e: (e[f"{scope.by}_name"] or "", e[f"{scope.by}_id"] or ""))
    return overview


@blp.route("/overview")
@blp.arguments(OverviewQuery, location="query")
@blp.response(200, OverviewSchema)
def overview(query: dict) -> dict:
    """Every service's figures for a community, a street or the city over a period: totals, months,
    and the communities of the scope (for the whole city, its streets unless `communities=true`).
    Parts from a service that did not answer are listed under `missing`; `labels` names the figures
    in words."""
    overview = _overview(query, communities=query["communities"]) | {"labels": labels("stat_figure")}
    # Sent as built: the services' figures are JSON already and the schema (which documents the
    # answer) would only copy them, which was two thirds of the gateway's work for a street.
    return current_app.json.response(overview)


@blp.route("/rankings")
@blp.arguments(RankingQuery, location="query")
@blp.response(200, RankingSchema)
def rankings(query: dict) -> dict:
    """The communities of the scope ranked by one figure (resolution rate, overdue, participation...)."""
    data = _overview(query, communities=True)
    return {
        "metric": query["metric"],
        "scope": data["scope"],
        "period": data["period"],
        "ranking": statistics.ranking(data, query["metric"]),
        "missing": data["missing"],
    }


# A text cell a spreadsheet would run as a formula (OWASP "CSV injection"): names come from people.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _append_row(sheet: Any, values: list[Any]) -> None:
    """Text goes in as text (never a formula), without the control characters a workbook cannot hold."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    sheet.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.data_type == "f":
            cell.data_type = "s"


def _headings(columns: list[str]) -> list[str]:
    """An export's header row: in Chinese (the default) the figures' names; in English the column
    ids, as they always were (spreadsheets and scripts read them)."""
    if language() == "en":
        return columns
    return [label("stat_figure", column) for column in columns]


# The workbook's sheets by language (their contents are the same).
_SHEETS = {"zh": ("社区", "按月"), "en": ("communities", "monthly")}


@blp.route("/export")
@blp.arguments(ExportQuery, location="query")
@blp.doc(responses={"200": EXPORT_RESPONSE})
def export(query: dict) -> Response:
    """The overview per community (and per month) as CSV or Excel, for reporting upward: one column
    per figure, breakdowns spread out (`issues.escalated_by_tier.<from>_to_<to>`,
    `meetings.meetings_by_type.bench|pavilion|round_table`); a workbook has a `communities` and a
    `monthly` sheet (`社区`, `按月` in Chinese), a CSV one of them (`sheet`). The header row is in the
    language of the answer: the figures' names in Chinese, the column ids in English."""
    data = _overview(query, communities=True)
    header, rows = statistics.flatten(data)
    stem = f"linli-{data['scope']['level']}-{data['period']['from']}-{data['period']['to']}"
    if query["format"] == "csv":
        if query["sheet"] == "monthly":
            header, rows = statistics.flatten_monthly(data)
            stem += "-monthly"
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_headings(header))
        writer.writerows([[_csv_cell(value) for value in row] for row in rows])
        return Response(
            "\ufeff" + buffer.getvalue(),  # a BOM so Excel opens Chinese names correctly
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    communities_title, monthly_title = _SHEETS[language()]
    sheet.title = communities_title
    _append_row(sheet, _headings(header))
    for row in rows:
        _append_row(sheet, row)
    trend = workbook.create_sheet(monthly_title)
    header, rows = statistics.flatten_monthly(data)
    _append_row(trend, _headings(header))
    for row in rows:
        _append_row(trend, row)
    out = io.BytesIO()
    workbook.save(out)
    return Response(
        out.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'},
    )
