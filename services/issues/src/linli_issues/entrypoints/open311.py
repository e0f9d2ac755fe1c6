"""Open311 GeoReport v2 at `/open311/v2/...`, in JSON and XML, with the spec's error format.

Discovery, services, service definitions, reading requests and the media of public requests are
public: only what the city publishes, the issues of its public categories not reported anonymously
nor marked private (domain/privacy.py), with phone and identity-card numbers masked. A client reads
its own requests (by id, or the token) whatever their category.

Posting a request needs the bearer token the gateway gives a client for its API key (role
`api_client`, the key's scope; a key with no scope is the city's own and may post anywhere in the
city). The `servicerequestupdates` extension lists the public steps of each request's lifecycle.

Whatever residents and clients typed, every XML document is well-formed XML 1.0 (characters XML
forbids become U+FFFD) and every JSON document is valid UTF-8 JSON.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

from flask import Blueprint, Flask, Response, current_app, request
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from linli_issues.adapters.repository import Scope
from linli_issues.domain import privacy, similarity
from linli_issues.domain.model import URGENCIES, Category, Issue
from linli_issues.domain.text import unicode_text, xml_text
from linli_issues.entrypoints import open311_openapi
from linli_issues.service_layer import access
from linli_issues.service_layer import issues as use_cases
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import NotFound as MissingRecord
from linli_kit.errors import ServiceError
from linli_kit.schemas import AwareDateTime
from linli_kit.web import current_principal

PREFIX = "/open311/v2"
blp = Blueprint("open311", __name__, url_prefix=PREFIX)
FORMATS = "any(json, xml)"
MAX_REQUESTS = 1000  # the spec's volume limit per query
WINDOW = timedelta(days=90)  # the spec's default and longest span of start_date..end_date
CHANGESET = "2026-12-03T00:00:00Z"  # when this endpoint last changed what it offers
# A location maps to the nearest compound of the client's scope within this distance; farther
# away, the community must be named (attribute[community_id], address_id or address_string).
NEAREST_COMPOUND_METRES = 3000.0
# Lifecycle states that Open311, which knows only open and closed, reports as closed.
CLOSED = frozenset({"resolved", "closed", "rejected", "duplicate"})
OPEN311_TO_STATUS = {
    "open": ["reported", "accepted", "deliberating", "resolving"],
    "closed": sorted(CLOSED),
}
# Open311's attribute codes of every service (see `service_definition`).
ATTRIBUTE_CODES = ("urgency", "community_id", "building")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_INSTANT = AwareDateTime()


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
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the public address ----------------------------------------------------------------------------
def _first(header: str) -> str:
    """The first (client-most) value of a forwarded header that proxies may have appended to."""
    return (request.headers.get(header) or "").split(",")[0].strip()


def public_base() -> str:
    """Where clients reach this endpoint: OPEN311_PUBLIC_URL, else what the gateway's (or a front
    proxy's) X-Forwarded-Proto/-Host/-Prefix say. Never this process's own (private) address: with
    neither, the address is relative to the host the client used."""
    configured: str | None = current_app.extensions.get("linli.issues.open311_public_url")
    if configured:
        return configured
    prefix = _first("X-Forwarded-Prefix").rstrip("/")
    if prefix and (not prefix.startswith("/") or not re.fullmatch(r"[A-Za-z0-9._~/\-%]*", prefix)):
        prefix = ""
    host = _first("X-Forwarded-Host")
    if host and _HOST.match(host):
        proto = _first("X-Forwarded-Proto").lower()
        return f"{proto if proto in ('http', 'https') else 'http'}://{host}{prefix}{PREFIX}"
    return f"{prefix}{PREFIX}"


# --- rendering -------------------------------------------------------------------------------------
_ITEM_NAMES = {"values": "value", "formats": "format", "endpoints": "endpoint", "attributes": "attribute"}


def _xml_value(parent: ElementTree.Element, name: str, value: Any) -> None:
    child = ElementTree.SubElement(parent, name)
    if isinstance(value, list):
        for item in value:
            _xml_value(child, _ITEM_NAMES.get(name, "item"), item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(child, key, inner)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = xml_text(str(value))


def _plain(value: Any) -> Any:
    """`value` with every string encodable as UTF-8 (JSON escapes control characters itself)."""
    if isinstance(value, str):
        return unicode_text(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def render(fmt: str, payload: Any, root: str, item: str, status: int = 200) -> Response:
    """JSON as the spec shows it; XML as `<root><item>...</item></root>` (or one element for a dict)."""
    if fmt == "json":
        # The spec's field order, not sorted keys.
        body = json.dumps(_plain(payload), ensure_ascii=False)
        return Response(body.encode("utf-8"), status=status, content_type="application/json; charset=utf-8")
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


def error_response(code: int, description: str) -> Response:
    return render(_format_of_request(), [{"code": code, "description": description}], "errors", "error", code)


@blp.errorhandler(Open311Error)
def _open311_error(error: Open311Error) -> Response:
    return error_response(error.code, error.description)


@blp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    # The spec's codes: 400 for what the client sent wrong, 403 for a missing or bad key.
    code = {401: 403, 409: 400, 422: 400}.get(error.status, error.status)
    detail = "; ".join(f"{field}: {', '.join(map(str, msgs))}" for field, msgs in error.fields.items())
    return error_response(code, f"{error.message}" + (f" ({detail})" if detail else ""))


@blp.errorhandler(OperationalError)
def _database_unavailable(_error: OperationalError) -> Response:
    response = error_response(503, "the database is unavailable; try again shortly")
    response.headers["Retry-After"] = "1"
    return response


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return error_response(error.code or 500, error.description or error.name)


def install(app: Flask) -> None:
    """Register the blueprint, its OpenAPI description, and the spec's error format for paths under
    /open311/ that match no route (an unknown format, a wrong method): the blueprint's own error
    handlers only see requests that reached one of its routes."""
    app.register_blueprint(blp)
    api = app.extensions["linli.api"]
    rules = {
        r.endpoint.removeprefix(f"{blp.name}."): r
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith(f"{blp.name}.")
    }
    open311_openapi.describe(api.spec, rules, attribute_codes=ATTRIBUTE_CODES, urgencies=URGENCIES)
    kit_handler = api.handle_http_exception

    def routing_error(error: HTTPException) -> Any:
        if request.path.startswith(PREFIX + "/") or request.path == PREFIX:
            response = error_response(error.code or 404, error.description or error.name)
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response
        return kit_handler(error)

    app.register_error_handler(NotFound, routing_error)
    app.register_error_handler(MethodNotAllowed, routing_error)


# --- discovery and services -----------------------------------------------------------------------------
@blp.get(f"/discovery.<{FORMATS}:fmt>")
def discovery(fmt: str) -> Response:
    payload = {
        "changeset": CHANGESET,
        "contact": "Linli issues service, via your community office",
        "key_service": "API keys are issued by the city and street offices through the Linli gateway",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": public_base(),
                "changeset": CHANGESET,
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
        "keywords": ", ".join(category.key.split("_")),
        "group": category.responsible_body,
    }


def _client_reading() -> Principal | None:
    """The API client reading (its key's token, optional): it may also see and post to the
    categories that are not public, and read its own requests. Anyone else reads what is published."""
    principal = current_principal(required=False)
    return principal if principal is not None and principal.role == Role.API_CLIENT else None


def _offered(categories: list[Category]) -> list[Category]:
    """The services a caller is shown: every active category to a client, else the public ones."""
    if _client_reading() is not None:
        return categories
    return [c for c in categories if privacy.is_published(c.publication)]


@blp.get(f"/services.<{FORMATS}:fmt>")
def services(fmt: str) -> Response:
    return render(fmt, [_service(c) for c in _offered(use_cases.list_categories(_uow()))], "services", "service")


def _active_category(code: str) -> Category | None:
    return next((c for c in _offered(use_cases.list_categories(_uow())) if c.key == code), None)


ATTRIBUTES = [
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
        "datatype_description": "The community's id, when neither the location nor the address names it",
        "order": 2,
        "description": "Community",
    },
    {
        "variable": True,
        "code": "building",
        "datatype": "string",
        "required": False,
        "datatype_description": "Building name or number (at most 100 characters)",
        "order": 3,
        "description": "Building",
    },
]


@blp.get(f"/services/<string:code>.<{FORMATS}:fmt>")
def service_definition(code: str, fmt: str) -> Response:
    category = _active_category(code)
    if category is None:
        raise Open311Error(404, f"service_code {code} not found")
    return render(fmt, {"service_code": category.key, "attributes": ATTRIBUTES}, "service_definition", "")


# --- requests ----------------------------------------------------------------------------------------------------
def is_public(issue: Issue) -> bool:
    """Whose photos anyone may fetch: a published issue (public category, not reported anonymously,
    not marked private), not rejected (what the office refused to take up is not published further)."""
    return privacy.is_published(issue.visibility) and issue.status != "rejected"


def _readable(issue: Issue | None, client: Principal | None) -> bool:
    """Whether a request is shown: published, or the reading client's own."""
    if issue is None:
        return False
    return privacy.is_published(issue.visibility) or (
        client is not None and issue.reporter_id == access.person_id(client)
    )


def _media(issues: list[Issue]) -> dict[str, str]:
    """The media URL of each request: its first photo through the public address, else the URL its
    client sent with it."""
    ids = [i.id for i in issues]
    with _uow() as uow:
        photos = uow.issues.first_photos([i.id for i in issues if is_public(i)])
        reports = uow.issues.report_data(ids)
    base = public_base()
    urls = {issue_id: reports[issue_id]["media_url"] for issue_id in ids if reports.get(issue_id, {}).get("media_url")}
    for issue_id, photo in photos.items():
        urls[issue_id] = f"{base}/media/{photo['file_name']}"
    return urls


def _updated(issue: Issue) -> datetime | None:
    # "For requests with status=closed, this will be the date the request was closed."
    if issue.status == "closed" and issue.closed_at:
        return issue.closed_at
    if issue.status == "resolved" and issue.resolved_at:
        return issue.resolved_at
    return issue.updated_at or issue.created_at


def _request_row(issue: Issue, names: dict[str, str], media: dict[str, str]) -> dict[str, Any]:
    status_notes = None
    if issue.status in CLOSED:
        status_notes = issue.resolution_summary or issue.reason or issue.status
    elif issue.status != "reported":
        status_notes = issue.status
    return {
        "service_request_id": issue.id,
        "status": "closed" if issue.status in CLOSED else "open",
        "status_notes": privacy.masked(status_notes),
        "service_name": names.get(issue.category, issue.category),
        "service_code": issue.category,
        "description": privacy.masked(issue.description),
        "agency_responsible": issue.assignee_type,
        "service_notice": f"tier: {issue.tier}",
        "requested_datetime": _w3c(issue.created_at),
        "updated_datetime": _w3c(_updated(issue)),
        "expected_datetime": _w3c(issue.due_at),
        "address": privacy.masked(issue.address),
        "address_id": issue.compound_id,
        "zipcode": None,
        "lat": issue.latitude,
        "long": issue.longitude,
        "media_url": media.get(issue.id),
    }


def _rows(fmt: str, items: list[Issue]) -> Response:
    names = {c.key: c.name for c in use_cases.list_categories(_uow(), include_inactive=True)}
    media = _media(items)
    return render(fmt, [_request_row(i, names, media) for i in items], "service_requests", "request")


def _instant(name: str) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return _INSTANT.deserialize(raw)
    except ValidationError as exc:
        problem = "; ".join(exc.messages) if isinstance(exc.messages, list) else str(exc.messages)
        raise Open311Error(
            400, f"{name} must be a W3C date-time with its offset (e.g. 2026-11-28T09:30:00+08:00): {problem}"
        ) from exc


def _list(name: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (request.args.get(name) or "").split(",") if v.strip()))


def _window() -> tuple[datetime, datetime]:
    """start_date..end_date: at most 90 days; a missing end is 90 days after the start (or now),
    a missing start 90 days before the end."""
    start, end = _instant("start_date"), _instant("end_date")
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > WINDOW:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
        return start, end
    if start is not None:
        return start, start + WINDOW
    end = end or _now()
    return end - WINDOW, end


@blp.get(f"/requests.<{FORMATS}:fmt>")
def list_requests(fmt: str) -> Response:
    ids = _list("service_request_id")
    if ids:
        # Requests asked for by id ignore every other argument, as the spec says.
        client = _client_reading()
        with _uow() as uow:
            found = [uow.issues.get(i) for i in ids[:MAX_REQUESTS] if _looks_like_id(i)]
        return _rows(fmt, [i for i in found if i is not None and _readable(i, client)])
    statuses = _list("status")
    if any(s not in OPEN311_TO_STATUS for s in statuses):
        raise Open311Error(400, "status must be open, closed or both, comma separated")
    start, end = _window()
    # The published issues only: public categories, not anonymous, not marked private.
    filters: dict[str, Any] = {"created_from": start, "published": True}
    codes = _list("service_code")
    if codes:
        filters["category"] = codes
    if statuses:
        filters["status"] = [s for name in statuses for s in OPEN311_TO_STATUS[name]]
    with _uow() as uow:
        items, _ = uow.issues.list(
            Scope(everything=True),
            offset=0,
            limit=MAX_REQUESTS,
            # end_date is "the latest datetime to include": the repository's bound excludes it.
            filters={**filters, "created_to": end + timedelta(microseconds=1)},
            now=_now(),
            sort="-created_at",
        )
    return _rows(fmt, items)


@blp.get(f"/requests/<string:request_id>.<{FORMATS}:fmt>")
def get_request(request_id: str, fmt: str) -> Response:
    client = _client_reading()
    with _uow() as uow:
        issue = uow.issues.get(request_id) if _looks_like_id(request_id) else None
    if issue is None or not _readable(issue, client):
        raise Open311Error(404, f"service_request_id {request_id} not found")
    return _rows(fmt, [issue])


@blp.get(f"/tokens/<string:token>.<{FORMATS}:fmt>")
def get_token(token: str, fmt: str) -> Response:
    # Requests are created at once, so the token a client holds is the request id itself.
    client = _client_reading()
    with _uow() as uow:
        issue = uow.issues.get(token) if _looks_like_id(token) else None
    if issue is None or not _readable(issue, client):
        raise Open311Error(404, f"token {token} not found")
    return render(fmt, [{"service_request_id": issue.id, "token": token}], "service_requests", "request")


@blp.get("/media/<string:file_name>")
def media(file_name: str) -> Response:
    """A public request's photo, for anyone (the `media_url` of its request)."""
    stem = file_name.rpartition(".")[0]
    with _uow() as uow:
        photo = uow.issues.photo_by_id(stem) if _looks_like_id(stem) else None
        issue = uow.issues.get(photo["issue_id"]) if photo is not None else None
    if photo is None or issue is None or not is_public(issue) or photo["file_name"] != file_name:
        raise Open311Error(404, f"media {file_name} not found")
    try:
        content, content_type = use_cases.stored_photo(
            current_app.extensions["linli.issues.photo_store"], photo, thumbnail=False
        )
    except MissingRecord as exc:
        raise Open311Error(404, f"media {file_name} not found") from exc
    response = Response(content, mimetype=content_type)
    # A photo never changes under its id; a public one may be cached by anyone.
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _looks_like_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- posting a request -----------------------------------------------------------------------------------------
def _value(name: str, max_length: int | None = None) -> str | None:
    """A form value, stripped; empty counts as absent (the spec's "optional" rule)."""
    raw = request.form.get(name)
    value = raw.strip() if raw is not None else ""
    if not value:
        return None
    if max_length is not None and len(value) > max_length:
        raise Open311Error(400, f"{name} is longer than {max_length} characters")
    return value


def _coordinate(name: str, bound: float) -> float | None:
    raw = _value(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be a decimal number (WGS84)") from exc
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Open311Error(400, f"{name} must be between -{bound:g} and {bound:g}")
    return value


def _attribute(code: str, max_length: int) -> str | None:
    """attribute[code]=value (or the first of attribute[code][]=... for a list)."""
    value = _value(f"attribute[{code}]", max_length)
    if value is None:
        values = [v.strip() for v in request.form.getlist(f"attribute[{code}][]") if v.strip()]
        value = values[0] if values else None
        if value is not None and len(value) > max_length:
            raise Open311Error(400, f"attribute[{code}] is longer than {max_length} characters")
    return value


def _client() -> Principal:
    if not request.headers.get("Authorization"):
        raise Open311Error(403, "api_key missing or invalid: the gateway exchanges a valid key for access")
    principal = current_principal()
    assert principal is not None
    if principal.role != Role.API_CLIENT:
        raise Open311Error(403, "requests are posted with an API key (api_key), not a person's token")
    return principal


@blp.post(f"/requests.<{FORMATS}:fmt>")
def post_request(fmt: str) -> Response:
    principal = _client()
    code = _value("service_code")
    if code is None:
        raise Open311Error(400, "service_code is required")
    category = _active_category(code)
    if category is None:
        raise Open311Error(404, f"service_code {code} not found")
    lat, lon = _coordinate("lat", 90), _coordinate("long", 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long go together: send both")
    address = _value("address_string", 300)
    address_id = _value("address_id")
    if lat is None and address is None and address_id is None:
        raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
    description = _value("description", 4000)
    urgency = _attribute("urgency", 20) or "normal"
    if urgency not in URGENCIES:
        raise Open311Error(400, f"attribute[urgency] must be one of {', '.join(URGENCIES)}")
    building = _attribute("building", 100)
    media_url = _value("media_url", 2000)
    if media_url is not None:
        parsed = urlparse(media_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise Open311Error(400, "media_url must be an absolute http or https URL")
    # Contact details (email, first_name, last_name, phone, device_id, account_id) are accepted and
    # not stored: the client keeps its callers' details, the city does not need them twice.
    with _uow() as uow:
        community_id, compound_id = _locate(
            uow, principal, _attribute("community_id", 36), address_id, lat, lon, address
        )
    issue = use_cases.report_issue(
        _uow(),
        principal,
        _now(),
        community_id=community_id,
        compound_id=compound_id,
        building=building,
        address=address,
        latitude=lat,
        longitude=lon,
        title=_title(category, description, address),
        description=description or _title(category, None, address),
        category=category.key,
        urgency=urgency,
        channel="open311",
        client_name=str(principal.extra.get("client_name") or "")[:100] or None,
        media_url=media_url,
    )
    payload = [
        {"service_request_id": issue.id, "service_notice": f"handled at the {issue.tier} tier", "account_id": None}
    ]
    return render(fmt, payload, "service_requests", "request", 201)


def _title(category: Category, description: str | None, address: str | None) -> str:
    """The issue's title: the description's first line, else the service and where."""
    first_line = (description or "").strip().splitlines()[0].strip()[:120] if description else ""
    if len(first_line) >= 3:
        return first_line
    title = f"{category.name}: {first_line or address or 'reported through Open311'}"
    return title[:200]


def _locate(
    uow: IssuesUnitOfWork,
    principal: Principal,
    community_id: str | None,
    address_id: str | None,
    lat: float | None,
    lon: float | None,
    address: str | None,
) -> tuple[str, str | None]:
    """The community (and compound) of a request, in this order: attribute[community_id]; the
    compound `address_id` names; the nearest compound of the client's scope within 3 km of lat/long;
    the community or compound of the client's scope that `address_string` names; the client's only
    community. Whether the client may post there is checked when the issue is reported (403)."""
    if community_id:
        if not _looks_like_id(community_id) or not uow.issues.community_exists(community_id):
            raise Open311Error(400, "attribute[community_id] names no known community")
        return community_id, None
    if address_id:
        compound = uow.issues.compound(address_id) if _looks_like_id(address_id) else None
        if compound is None:
            raise Open311Error(400, "address_id names no known compound")
        return compound["community_id"], compound["compound_id"]
    scope = access.scope_of(principal)
    if lat is not None and lon is not None:
        nearest = _nearest_compound(uow, scope, lat, lon)
        if nearest is not None:
            return nearest["community_id"], nearest["compound_id"]
    if address:
        named = _named_place(uow, scope, address)
        if named is not None:
            return named
    if len(principal.community_ids) == 1:
        return principal.community_ids[0], None
    raise Open311Error(
        400,
        "cannot tell the community: give attribute[community_id], address_id, a lat/long near one of its "
        "compounds, or an address_string naming the community or compound",
    )


def _nearest_compound(uow: IssuesUnitOfWork, scope: Scope, lat: float, lon: float) -> dict[str, Any] | None:
    half_lat = NEAREST_COMPOUND_METRES / 111_000
    half_lon = min(180.0, half_lat / max(math.cos(math.radians(lat)), 0.01))
    near = [
        (similarity.distance_metres(lat, lon, c["latitude"], c["longitude"]), c)
        for c in uow.issues.compounds_near(lat, lon, (half_lat, half_lon), scope)
    ]
    near = [(d, c) for d, c in near if d <= NEAREST_COMPOUND_METRES]
    return min(near, key=lambda pair: (pair[0], pair[1]["compound_id"]))[1] if near else None


def _named_place(uow: IssuesUnitOfWork, scope: Scope, address: str) -> tuple[str, str | None] | None:
    """The community (and compound) that `address_string` names, among the client's scope.

    Names are matched case-insensitively, at least two characters; a name inside a longer matched
    name does not count on its own ("Yucai" inside "Yucai Garden"). Naming places of two
    communities is ambiguous (400); a compound is taken when it is the only one named that lies in
    the community named (if any)."""
    text = address.casefold()
    communities: dict[str, set[str]] = {}
    compounds: dict[str, set[tuple[str, str]]] = {}
    for name, community_id, compound_id in uow.issues.places(scope):
        key = name.strip().casefold()
        if len(key) < 2 or key not in text:
            continue
        if compound_id is None:
            communities.setdefault(key, set()).add(community_id)
        else:
            compounds.setdefault(key, set()).add((community_id, compound_id))
    names = set(communities) | set(compounds)

    def outermost(name: str) -> bool:
        return not any(name != other and name in other for other in names)

    named = {c for key, ids in communities.items() if outermost(key) for c in ids}
    if len(named) > 1:
        raise Open311Error(400, "address_string names several communities: give attribute[community_id]")
    places = {p for key, found in compounds.items() if outermost(key) for p in found if not named or p[0] in named}
    if len(places) == 1:
        return next(iter(places))
    if named:
        return next(iter(named)), None
    if len({community for community, _ in places}) == 1:
        return next(iter(places))[0], None
    if places:
        raise Open311Error(400, "address_string names places in several communities: give attribute[community_id]")
    return None


# --- updates (extension) ------------------------------------------------------------------------------
@blp.get(f"/servicerequestupdates.<{FORMATS}:fmt>")
def request_updates(fmt: str) -> Response:
    ids = [i for i in _list("service_request_id") if _looks_like_id(i)][:MAX_REQUESTS]
    if ids:
        start, end = _instant("start_date"), _instant("end_date")
    else:
        start, end = _window()
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
                "description": privacy.masked(entry.body) or _describe(entry),
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
