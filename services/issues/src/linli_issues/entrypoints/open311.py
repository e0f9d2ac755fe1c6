"""Open311 GeoReport v2 at `/open311/v2/...`, in JSON and XML, with the spec's error format.

Discovery, services, service definitions and reading requests are public. Posting a request needs
the bearer token the gateway gives a client for its API key (role `api_client`, the key's scope).
The `servicerequestupdates` extension lists the public steps of each request's lifecycle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from linli_issues.adapters.repository import Scope
from linli_issues.domain import similarity
from linli_issues.domain.model import URGENCIES, Category, Issue
from linli_issues.service_layer import issues as use_cases
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.errors import ServiceError
from linli_kit.web import require_principal

blp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FORMATS = "any(json, xml)"
MAX_REQUESTS = 1000
DEFAULT_WINDOW = timedelta(days=90)
# Lifecycle states that Open311, which knows only open and closed, reports as closed.
CLOSED = frozenset({"resolved", "closed", "rejected", "duplicate"})
OPEN311_TO_STATUS = {
    "open": [s for s in ("reported", "accepted", "deliberating", "resolving")],
    "closed": sorted(CLOSED),
}


class Open311Error(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _uow() -> IssuesUnitOfWork:
    return IssuesUnitOfWork(current_app.extensions["linli.database"])


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions["linli.issues.clock"]
    return clock()


def _w3c(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# --- rendering -------------------------------------------------------------------------------------
def _xml_value(parent: ElementTree.Element, name: str, value: Any) -> None:
    child = ElementTree.SubElement(parent, name)
    if isinstance(value, list):
        item_name = {"values": "value", "formats": "format", "endpoints": "endpoint", "keywords": "keyword"}.get(
            name, "item"
        )
        for item in value:
            _xml_value(child, item_name, item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(child, key, inner)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = str(value)


def render(fmt: str, payload: Any, root: str, item: str, status: int = 200) -> Response:
    """JSON as the spec shows it; XML as `<root><item>...</item></root>` (or one element for a dict)."""
    if fmt == "json":
        # The spec's field order, not sorted keys.
        return Response(json.dumps(payload, ensure_ascii=False), status=status, content_type="application/json")
    top = ElementTree.Element(root)
    if isinstance(payload, list):
        for entry in payload:
            element = ElementTree.SubElement(top, item)
            for key, value in entry.items():
                _xml_value(element, key, value)
    else:
        for key, value in payload.items():
            _xml_value(top, key, value)
    body = b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(top, encoding="utf-8")
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def _format_of_request() -> str:
    return "xml" if request.path.endswith(".xml") else "json"


def _error(code: int, description: str) -> Response:
    return render(_format_of_request(), [{"code": code, "description": description}], "errors", "error", code)


@blp.errorhandler(Open311Error)
def _open311_error(error: Open311Error) -> Response:
    return _error(error.code, error.description)


@blp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    # The spec's codes: 400 for what the client sent wrong, 403 for a missing or bad key.
    code = {401: 403, 409: 400, 422: 400}.get(error.status, error.status)
    detail = "; ".join(f"{field}: {', '.join(map(str, msgs))}" for field, msgs in error.fields.items())
    return _error(code, f"{error.message}" + (f" ({detail})" if detail else ""))


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return _error(error.code or 500, error.description or error.name)


# --- discovery and services -----------------------------------------------------------------------------
@blp.get(f"/discovery.<{FORMATS}:fmt>")
def discovery(fmt: str) -> Response:
    base = request.host_url.rstrip("/") + blp.url_prefix
    payload = {
        "changeset": "2026-11-28T00:00:00Z",
        "contact": "Linli issues service, via your community office",
        "key_service": "API keys are issued by the city through the Linli gateway",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": "2026-11-28T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return render(fmt, payload, "discovery", "discovery")


def _service(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.key,
        "service_name": category.name,
        "description": f"{category.name}: handled first by the {category.default_tier}, "
        f"responsible body {category.responsible_body.replace('_', ' ')}",
        "metadata": True,
        "type": "realtime",
        "keywords": category.key.replace("_", ","),
        "group": category.responsible_body,
    }


@blp.get(f"/services.<{FORMATS}:fmt>")
def services(fmt: str) -> Response:
    return render(fmt, [_service(c) for c in use_cases.list_categories(_uow())], "services", "service")


@blp.get(f"/services/<string:code>.<{FORMATS}:fmt>")
def service_definition(code: str, fmt: str) -> Response:
    category = next((c for c in use_cases.list_categories(_uow()) if c.key == code), None)
    if category is None:
        raise Open311Error(404, f"service_code {code} not found")
    attributes = [
        {
            "variable": True,
            "code": "urgency",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "How urgent the problem is (default normal)",
            "order": 1,
            "description": "Urgency",
            "values": [{"key": u, "name": u.capitalize()} for u in URGENCIES],
        },
        {
            "variable": True,
            "code": "community_id",
            "datatype": "string",
            "required": False,
            "datatype_description": "The community's id, when the location does not tell it",
            "order": 2,
            "description": "Community",
        },
        {
            "variable": True,
            "code": "building",
            "datatype": "string",
            "required": False,
            "datatype_description": "Building name or number",
            "order": 3,
            "description": "Building",
        },
    ]
    if fmt == "xml":
        # XML wraps the list of attributes in <attributes><attribute>...</attribute></attributes>.
        top = ElementTree.Element("service_definition")
        _xml_value(top, "service_code", category.key)
        holder = ElementTree.SubElement(top, "attributes")
        for attribute in attributes:
            element = ElementTree.SubElement(holder, "attribute")
            for key, value in attribute.items():
                _xml_value(element, key, value)
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(top, encoding="utf-8")
        return Response(body, content_type="text/xml; charset=utf-8")
    return render(fmt, {"service_code": category.key, "attributes": attributes}, "service_definition", "")


# --- requests ----------------------------------------------------------------------------------------------------
def _request_row(issue: Issue, names: dict[str, str]) -> dict[str, Any]:
    status_notes = None
    if issue.status in CLOSED:
        status_notes = issue.resolution_summary or issue.reason or issue.status
    elif issue.status != "reported":
        status_notes = issue.status
    return {
        "service_request_id": issue.id,
        "status": "closed" if issue.status in CLOSED else "open",
        "status_notes": status_notes,
        "service_name": names.get(issue.category, issue.category),
        "service_code": issue.category,
        "description": issue.description,
        "agency_responsible": issue.assignee_type,
        "service_notice": f"tier: {issue.tier}",
        "requested_datetime": _w3c(issue.created_at),
        "updated_datetime": _w3c(issue.updated_at or issue.created_at),
        "expected_datetime": _w3c(issue.due_at),
        "address": issue.address,
        "address_id": issue.compound_id,
        "zipcode": None,
        "lat": issue.latitude,
        "long": issue.longitude,
        "media_url": None,
    }


def _parse_w3c(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Open311Error(400, f"{name} is not a W3C date-time (e.g. 2026-11-28T09:30:00+08:00)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _category_names() -> dict[str, str]:
    return {c.key: c.name for c in use_cases.list_categories(_uow(), include_inactive=True)}


@blp.get(f"/requests.<{FORMATS}:fmt>")
def list_requests(fmt: str) -> Response:
    ids = [i for i in (request.args.get("service_request_id") or "").split(",") if i]
    codes = [c for c in (request.args.get("service_code") or "").split(",") if c]
    statuses = [s for s in (request.args.get("status") or "").split(",") if s]
    if any(s not in OPEN311_TO_STATUS for s in statuses):
        raise Open311Error(400, "status must be open, closed or both, comma separated")
    start, end = _parse_w3c("start_date"), _parse_w3c("end_date")
    filters: dict[str, Any] = {}
    if ids:
        # Requests asked for by id ignore the other filters, as the spec says.
        pass
    else:
        if start is None and end is None:
            start = _now() - DEFAULT_WINDOW
        filters["created_from"] = start
        filters["created_to"] = end
        if codes:
            filters["category"] = codes
        if statuses:
            filters["status"] = [s for name in statuses for s in OPEN311_TO_STATUS[name]]
    with _uow() as uow:
        if ids:
            found = [uow.issues.get(i) for i in ids[:MAX_REQUESTS]]
            items = [i for i in found if i is not None]
        else:
            items, _ = uow.issues.list(
                Scope(everything=True), offset=0, limit=MAX_REQUESTS, filters=filters, now=_now(), sort="-created_at"
            )
    names = _category_names()
    return render(fmt, [_request_row(i, names) for i in items], "service_requests", "request")


@blp.get(f"/requests/<string:request_id>.<{FORMATS}:fmt>")
def get_request(request_id: str, fmt: str) -> Response:
    with _uow() as uow:
        issue = uow.issues.get(request_id) if _looks_like_id(request_id) else None
    if issue is None:
        raise Open311Error(404, f"service_request_id {request_id} not found")
    return render(fmt, [_request_row(issue, _category_names())], "service_requests", "request")


@blp.get(f"/tokens/<string:token>.<{FORMATS}:fmt>")
def get_token(token: str, fmt: str) -> Response:
    # Requests are created at once, so the token a client holds is the request id itself.
    with _uow() as uow:
        issue = uow.issues.get(token) if _looks_like_id(token) else None
    if issue is None:
        raise Open311Error(404, f"token {token} not found")
    return render(fmt, [{"service_request_id": issue.id, "token": token}], "service_requests", "request")


def _looks_like_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _float(name: str) -> float | None:
    raw = request.values.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be a decimal number") from exc


@blp.post(f"/requests.<{FORMATS}:fmt>")
def post_request(fmt: str) -> Response:
    header = request.headers.get("Authorization", "")
    if not header:
        raise Open311Error(403, "api_key missing or invalid: the gateway exchanges a valid key for access")
    principal = require_principal()
    values = request.values
    code = values.get("service_code")
    if not code:
        raise Open311Error(400, "service_code is required")
    lat, lon = _float("lat"), _float("long")
    address = values.get("address_string")
    address_id = values.get("address_id")
    if (lat is None or lon is None) and not address and not address_id:
        raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
    if lat is not None and not -90 <= lat <= 90 or lon is not None and not -180 <= lon <= 180:
        raise Open311Error(400, "lat/long out of range")
    description = (values.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required")
    if len(description) > 4000:
        raise Open311Error(400, "description is longer than 4000 characters")
    urgency = values.get("attribute[urgency]") or "normal"
    if urgency not in URGENCIES:
        raise Open311Error(400, f"attribute[urgency] must be one of {', '.join(URGENCIES)}")
    with _uow() as uow:
        community_id, compound_id = _locate(uow, principal, values.get("attribute[community_id]"), address_id, lat, lon)
    title = description.splitlines()[0][:120]
    issue = use_cases.report_issue(
        _uow(),
        principal,
        _now(),
        community_id=community_id,
        compound_id=compound_id,
        building=(values.get("attribute[building]") or None),
        address=address,
        latitude=lat,
        longitude=lon,
        title=title if len(title) >= 3 else f"{code}: {title}",
        description=description,
        category=code,
        urgency=urgency,
        channel="open311",
        client_name=str(principal.extra.get("client_name") or "")[:100] or None,
    )
    payload = [
        {"service_request_id": issue.id, "service_notice": f"handled at the {issue.tier} tier", "account_id": None}
    ]
    return render(fmt, payload, "service_requests", "request", 201)


def _locate(
    uow: IssuesUnitOfWork,
    principal: Any,
    community_id: str | None,
    address_id: str | None,
    lat: float | None,
    lon: float | None,
) -> tuple[str, str | None]:
    """The community (and compound) of a request: named, by compound id, or the nearest compound in scope."""
    if community_id:
        if not _looks_like_id(community_id):
            raise Open311Error(400, "attribute[community_id] is not a community id")
        return community_id, None
    if address_id:
        compound = uow.issues.compound(address_id) if _looks_like_id(address_id) else None
        if compound is None:
            raise Open311Error(400, "address_id names no known compound")
        return compound["community_id"], compound["compound_id"]
    scope_ids = list(principal.community_ids) or None
    if lat is not None and lon is not None:
        compounds = uow.issues.compounds_in(scope_ids, principal.street_id if not scope_ids else None)
        if compounds:
            nearest = min(compounds, key=lambda c: similarity.distance_metres(lat, lon, c["latitude"], c["longitude"]))
            return nearest["community_id"], nearest["compound_id"]
    if scope_ids and len(scope_ids) == 1:
        return scope_ids[0], None
    raise Open311Error(400, "cannot tell the community: give attribute[community_id] or address_id")


@blp.get(f"/servicerequestupdates.<{FORMATS}:fmt>")
def request_updates(fmt: str) -> Response:
    ids = [i for i in (request.args.get("service_request_id") or "").split(",") if _looks_like_id(i)]
    start, end = _parse_w3c("start_date"), _parse_w3c("end_date")
    if start is None and not ids:
        start = _now() - DEFAULT_WINDOW
    with _uow() as uow:
        entries = uow.issues.public_updates(since=start, until=end, issue_ids=ids or None, limit=MAX_REQUESTS)
        history = uow.issues.status_history(sorted({e.issue_id for e in entries}))
    rows = []
    for entry in entries:
        detailed = entry.data.get("to") if entry.kind == "status" else None
        # The request's state when this update was made: its last status change up to then.
        state = next(
            (status for when, status in reversed(history.get(entry.issue_id, [])) if when <= entry.created_at),
            "reported",
        )
        rows.append(
            {
                "update_id": entry.id,
                "service_request_id": entry.issue_id,
                "status": "closed" if state in CLOSED else "open",
                "updated_datetime": _w3c(entry.created_at),
                "description": entry.body or _describe(entry),
                "media_url": None,
                "detailed_status": detailed or entry.kind,
            }
        )
    return render(fmt, rows, "service_request_updates", "request_update")


def _describe(entry: Any) -> str:
    if entry.kind == "status":
        return f"status changed from {entry.data.get('from')} to {entry.data.get('to')}"
    if entry.kind == "escalation":
        return f"escalated from the {entry.data.get('from')} to the {entry.data.get('to')} tier"
    if entry.kind == "report":
        return "request received"
    return entry.kind
