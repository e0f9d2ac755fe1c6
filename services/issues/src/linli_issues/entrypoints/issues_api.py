"""HTTP API of the issues service. The gateway forwards `/api/v1/issues/<rest>` here as `/<rest>`."""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields as ma_fields

from linli_issues.adapters.photo_store import PhotoStore
from linli_issues.config import PhotoStorageConfig
from linli_issues.domain import privacy
from linli_issues.entrypoints import schemas
from linli_issues.service_layer import issues as use_cases
from linli_issues.service_layer import stats
from linli_issues.service_layer.issues import IssueView
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit import dumping, search
from linli_kit.auth import Role
from linli_kit.errors import Forbidden, Invalid
from linli_kit.i18n import label, language, translate
from linli_kit.periods import resolve_period, today_in
from linli_kit.web import current_principal, require_principal

blp = Blueprint("issues", __name__, url_prefix="", description="Residents' issues from report to resolution")

# The target status a handler asks for, and the use case's action that reaches it.
ACTIONS = {
    "accepted": "accept",
    "rejected": "reject",
    "duplicate": "duplicate",
    "deliberating": "deliberate",
    "resolving": "start_resolving",
    "resolved": "resolve",
}


@blp.before_request
def _authenticate_first() -> None:
    # Who is asking is checked before what they sent: no token, 401, whatever the body holds.
    if request.method == "GET" and request.url_rule is not None and request.url_rule.rule == "/categories":
        return
    current_principal()


def _uow() -> IssuesUnitOfWork:
    return IssuesUnitOfWork(current_app.extensions["linli.database"])


def _reading_uow() -> IssuesUnitOfWork:
    """For the reads that change nothing (lists, search, one issue): no transaction round trips."""
    return _uow().reading()


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions["linli.issues.clock"]
    return clock()


def _photo_store() -> PhotoStore:
    return current_app.extensions["linli.issues.photo_store"]


def _photo_config() -> PhotoStorageConfig:
    return current_app.extensions["linli.issues.photo_config"]


# Read from the issue; `status_label` is worded from `status` (in `present`).
_DETAIL_FIELDS = [
    n for n in schemas.IssueSchema._declared_fields if n not in ("overdue", "supported_by_me", "status_label")
]
_SUMMARY_FIELDS = [
    n for n in schemas.IssueSummarySchema._declared_fields if n not in ("overdue", "reporter_id", "status_label")
]


# What people typed: masked (phone and identity-card numbers) for those who read it masked.
_TYPED_TEXT = (
    "title", "description", "address", "building", "reason", "resolution_plan", "resolution_summary", "rating_comment",
)  # fmt: skip


_NO_STATE: dict[str, Any] = {}


def present(
    item: IssueView, now: datetime | None = None, *, summary: bool = False, status_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The issue as the caller may read it; `status_labels`: the words of the statuses worded so
    far for this answer (a page words each status once)."""
    issue = item.issue
    now = now or _now()
    # Each value from the issue's state where it is there (a report's new issue holds them all),
    # else through its attribute (a property, a column not loaded yet, a summary's slot).
    state = getattr(issue, "__dict__", _NO_STATE)
    body = {
        name: state[name] if name in state else getattr(issue, name)
        for name in (_SUMMARY_FIELDS if summary else _DETAIL_FIELDS)
    }
    # Lists are serialised without the schema, so the label is worded here.
    if status_labels is None:
        body["status_label"] = label("issue_status", issue.status)
    else:
        if issue.status not in status_labels:
            status_labels[issue.status] = label("issue_status", issue.status)
        body["status_label"] = status_labels[issue.status]
    if item.masked:
        for name in _TYPED_TEXT:
            if name in body:
                body[name] = privacy.masked(body[name])
    body["reporter_id"] = issue.reporter_id if item.show_reporter else None
    body["overdue"] = issue.is_overdue(now)
    if not summary:
        if not item.internal:
            body["reported_by"] = None
        body["supported_by_me"] = item.supported_by_me
    return body


# A list row read in one call, and which of its values are instants (written as the schema writes them).
_summary_values = operator.attrgetter(*_SUMMARY_FIELDS)
_SUMMARY_INSTANTS = tuple(
    name for name in _SUMMARY_FIELDS if isinstance(schemas.IssueSummarySchema._declared_fields[name], schemas.Instant)
)
_SUMMARY_TYPED_TEXT = tuple(name for name in _TYPED_TEXT if name in _SUMMARY_FIELDS)


def present_summary(item: IssueView, now: datetime, status_labels: dict[str, str]) -> dict[str, Any]:
    """A list row as `present(..., summary=True)` makes it, with its instants already as text: a page
    is the hottest read, so each row is made in a few steps (`status_labels` as in `present`)."""
    issue = item.issue
    body = dict(zip(_SUMMARY_FIELDS, _summary_values(issue), strict=True))
    for name in _SUMMARY_INSTANTS:
        value = body[name]
        if value is not None:
            # Read from the database an instant is already in UTC (UtcDateTime): written as it is.
            body[name] = value.isoformat() if value.tzinfo is UTC else schemas.utc_isoformat(value)
    status = issue.status
    words = status_labels.get(status)
    if words is None:
        words = status_labels[status] = label("issue_status", status)
    body["status_label"] = words
    if item.masked:
        for name in _SUMMARY_TYPED_TEXT:
            body[name] = privacy.masked(body[name])
    body["reporter_id"] = issue.reporter_id if item.show_reporter else None
    body["overdue"] = issue.is_overdue(now)
    return body


def _detail_converters() -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Each key of `IssueSchema` in its order, with what its field makes of the value `present`
    gives it (None: the value as it is; `present` words `status_label` itself)."""
    follow_up = dumping.compile_dumper(schemas.FollowUpSchema())
    assert follow_up is not None
    steps: list[tuple[str, Callable[[Any], Any] | None]] = []
    for name, field in schemas.IssueSchema._declared_fields.items():
        convert: Callable[[Any], Any] | None = None
        if isinstance(field, schemas.Instant):
            convert = _instant_text
        elif isinstance(field, ma_fields.Nested):
            convert = follow_up
        elif isinstance(field, ma_fields.Float):
            convert = float
        elif isinstance(field, ma_fields.Integer):
            convert = int
        elif isinstance(field, ma_fields.Boolean):
            convert = bool
        elif isinstance(field, ma_fields.String):
            convert = str
        steps.append((name, convert))
    return tuple(steps)


def _instant_text(value: datetime) -> str:
    # Read from the database an instant is already in UTC (UtcDateTime): written as it is.
    return value.isoformat() if value.tzinfo is UTC else schemas.utc_isoformat(value)


_DETAIL_STEPS = _detail_converters()


def detail_json(body: dict[str, Any]) -> bytes:
    """`IssueSchema().dump(body)` as JSON, for the body `present` makes of a whole issue: the
    schema documents the answer, this writes it without marshmallow's walk through its fields
    (a report's answer; tests/test_list_rows.py compares both)."""
    out: dict[str, Any] = {}
    for name, convert in _DETAIL_STEPS:
        value = body[name]
        out[name] = value if value is None or convert is None else convert(value)
    return orjson.dumps(out)


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return schemas.utc_isoformat(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _strings(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if k.endswith("_id") and v is not None else v for k, v in values.items()}


@blp.route("/")
class Issues(MethodView):
    @blp.arguments(schemas.IssueFilterSchema(), location="query")
    @blp.response(200, schemas.IssueSummarySchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        """List the issues you may see, filtered and sorted (summaries; GET /<id> for the whole issue)."""
        principal = require_principal()
        now = _now()
        sort = filters.pop("sort")
        items, total = use_cases.list_issues(
            _reading_uow(),
            principal,
            now,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            filters=_strings(filters),
            sort=sort,
            summaries=True,
        )
        pagination_parameters.item_count = total
        # Serialised here rather than by the schema (which documents it): a page is the hottest
        # read, and the rows are already plain values.
        status_labels: dict[str, str] = {}
        rows = [present_summary(i, now, status_labels) for i in items]
        # orjson: the same JSON (UTF-8, no ASCII escapes) in a tenth of the json module's time.
        return Response(orjson.dumps(rows, default=_json_value), content_type="application/json")

    @blp.arguments(schemas.IssueCreateSchema())
    @blp.response(201, schemas.IssueSchema)
    def post(self, body: dict) -> Response:
        """Report an issue (residents for themselves; staff may report on a resident's behalf)."""
        principal = require_principal()
        now = _now()
        issue = use_cases.report_issue(_uow(), principal, now, **_strings(body))
        shown = present(IssueView(issue, show_reporter=True, internal=principal.is_staff, masked=False), now)
        return Response(detail_json(shown), status=201, content_type="application/json")


@blp.route("/similar")
class Similar(MethodView):
    @blp.arguments(schemas.SimilarQuerySchema(), location="query")
    @blp.response(200, schemas.SimilarSchema(many=True))
    def get(self, query: dict) -> list:
        """Issues that may already describe what is about to be reported."""
        principal = require_principal()
        found = use_cases.similar_issues(
            _uow(),
            principal,
            community_id=str(query["community_id"]),
            text=f"{query['title']} {query.get('description') or ''}",
            category=query.get("category"),
            latitude=query.get("latitude"),
            longitude=query.get("longitude"),
        )
        now = _now()
        return [{"score": score, "issue": present(view, now)} for view, score in found]


IssueSearchQuery = search.search_query_schema(["issue"], name="IssueSearchQuery")


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(IssueSearchQuery, location="query")
    @blp.response(200, search.HitSchema(many=True))
    def get(self, query: dict) -> list:
        """Find the issues you may see by words of their title or description, Chinese or not
        (titles holding every word first, then the newest). Text is masked as in the issue itself;
        no reporter is named."""
        terms = search.terms_of(query["q"])
        found = use_cases.search_issues(_reading_uow(), require_principal(), terms, query["limit"])
        hits = []
        for view, in_title in found:
            issue = view.issue
            title, description = issue.title, issue.description
            if view.masked:
                title, description = privacy.masked(title), privacy.masked(description)
            hits.append(
                {
                    "kind": "issue",
                    "id": issue.id,
                    "title": title,
                    "snippet": search.snippet([description], terms),
                    "community_id": issue.community_id,
                    "date": schemas.utc_isoformat(issue.created_at),
                    "score": search.score(in_title),
                }
            )
        return hits


@blp.route("/export.csv")
class Export(MethodView):
    @blp.arguments(schemas.IssueFilterSchema(), location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    def get(self, filters: dict) -> Response:
        """The filtered list as CSV, for staff (at most 50,000 rows)."""
        principal = require_principal(Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)
        now = _now()
        sort = filters.pop("sort")
        items, _total = use_cases.list_issues(
            _reading_uow(), principal, now, offset=0, limit=50_000, filters=_strings(filters), sort=sort
        )
        zone = ZoneInfo(current_app.extensions["linli.settings"].timezone)
        columns = [
            "id", "community_id", "title", "category", "urgency", "status", "tier", "assignee_type",
            "supporter_count", "consultation_count", "created_at", "due_at", "resolved_at", "overdue", "rating",
            "visibility",
        ]  # fmt: skip
        out = io.StringIO()
        writer = csv.writer(out)
        # The header in the reader's language: words in Chinese (the default), the column ids in English.
        writer.writerow(columns if language() == "en" else [label("issue_column", c) for c in columns])
        for item in items:
            row = present(item, now)
            writer.writerow(
                [row[c].astimezone(zone).isoformat() if isinstance(row[c], datetime) else row[c] for c in columns]
            )
        return Response(
            out.getvalue(),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="issues.csv"'},
        )


@blp.route("/<uuid:issue_id>")
class IssueById(MethodView):
    @blp.response(200, schemas.IssueSchema)
    def get(self, issue_id: Any) -> dict:
        return present(use_cases.get_issue(_reading_uow(), require_principal(), str(issue_id)))


@blp.route("/<uuid:issue_id>/status")
class Status(MethodView):
    @blp.arguments(schemas.StatusChangeSchema())
    @blp.response(200, schemas.IssueSchema)
    def post(self, body: dict, issue_id: Any) -> dict:
        """Move the issue (accept, reject with a reason, mark duplicate, deliberate, resolve...). 409 if illegal."""
        view = use_cases.transition(
            _uow(),
            require_principal(),
            str(issue_id),
            ACTIONS[body["status"]],
            _now(),
            reason=body.get("reason"),
            duplicate_of=str(body["duplicate_of"]) if body.get("duplicate_of") else None,
            summary=body.get("summary"),
            plan=body.get("plan"),
        )
        return present(view)


@blp.route("/<uuid:issue_id>/reopen")
class Reopen(MethodView):
    @blp.arguments(schemas.ReasonSchema())
    @blp.response(200, schemas.IssueSchema)
    def post(self, body: dict, issue_id: Any) -> dict:
        """The reporter is not satisfied: the issue is handled again."""
        view = use_cases.transition(_uow(), require_principal(), str(issue_id), "reopen", _now(), reason=body["reason"])
        return present(view)


@blp.route("/<uuid:issue_id>/escalations")
class Escalations(MethodView):
    @blp.arguments(schemas.ReasonSchema())
    @blp.response(200, schemas.IssueSchema)
    def post(self, body: dict, issue_id: Any) -> dict:
        """Move the issue one tier up (compound → community → street → city)."""
        return present(use_cases.escalate(_uow(), require_principal(), str(issue_id), body["reason"], _now()))


@blp.route("/<uuid:issue_id>/assignment")
class Assignment(MethodView):
    @blp.arguments(schemas.AssignmentSchema())
    @blp.response(200, schemas.IssueSchema)
    def put(self, body: dict, issue_id: Any) -> dict:
        """Give the issue to a responsible body (property company, bureau...)."""
        view = use_cases.assign(
            _uow(),
            require_principal(),
            str(issue_id),
            _now(),
            assignee_type=body["assignee_type"],
            assignee_id=str(body["assignee_id"]) if body.get("assignee_id") else None,
            note=body.get("note"),
        )
        return present(view)


@blp.route("/<uuid:issue_id>/assignment/acceptance")
class AssignmentAcceptance(MethodView):
    @blp.arguments(schemas.AssignmentAcceptanceSchema())
    @blp.response(201, schemas.TimelineEntrySchema)
    def post(self, body: dict, issue_id: Any) -> Any:
        """The organisation the issue is assigned to takes it on (its property company or bureau
        account, or a member of its owners' committee); once per assignment (409 after)."""
        return use_cases.accept_assignment(_uow(), require_principal(), str(issue_id), _now(), note=body.get("note"))


@blp.route("/<uuid:issue_id>/privacy")
class Privacy(MethodView):
    @blp.arguments(schemas.PrivacySchema())
    @blp.response(200, schemas.IssueSchema)
    def put(self, body: dict, issue_id: Any) -> dict:
        """Staff of the issue's scope mark it private (reporter, supporters, staff and assignee only;
        never in Open311), or lift their mark (it reads again as its category publishes)."""
        view = use_cases.mark_private(
            _uow(), require_principal(), str(issue_id), _now(), private=body["private"], reason=body.get("reason")
        )
        return present(view)


@blp.route("/<uuid:issue_id>/supporters")
class Supporters(MethodView):
    @blp.response(200, schemas.IssueSchema)
    def post(self, issue_id: Any) -> dict:
        """'Me too': support the issue (once)."""
        return present(use_cases.support(_uow(), require_principal(), str(issue_id), _now()))


@blp.route("/<uuid:issue_id>/rating")
class Rating(MethodView):
    @blp.arguments(schemas.RatingSchema())
    @blp.response(200, schemas.IssueSchema)
    def post(self, body: dict, issue_id: Any) -> dict:
        """The reporter rates the resolution (1-5); this closes the issue."""
        view = use_cases.rate(
            _uow(), require_principal(), str(issue_id), _now(), rating=body["rating"], comment=body.get("comment")
        )
        return present(view)


@blp.route("/<uuid:issue_id>/updates")
class Updates(MethodView):
    @blp.response(200, schemas.TimelineEntrySchema(many=True))
    def get(self, issue_id: Any) -> list:
        """The timeline; internal notes only for staff and the assignee. What the service wrote on its
        own (the reason of a move it made) reads in the language of the answer; what people wrote,
        as they wrote it."""
        entries = use_cases.timeline(_uow(), require_principal(), str(issue_id))
        for entry in entries:
            message = entry.pop("message")
            if message is not None:
                entry["body"] = translate(message)
        return entries

    @blp.arguments(schemas.UpdateCreateSchema())
    @blp.response(201, schemas.TimelineEntrySchema)
    def post(self, body: dict, issue_id: Any) -> Any:
        """A public reply, an internal note or an on-site inspection (who attended, findings)."""
        return use_cases.add_update(_uow(), require_principal(), str(issue_id), _now(), **body)


@blp.route("/<uuid:issue_id>/meetings")
class Meetings(MethodView):
    @blp.response(200, schemas.MeetingLinkSchema(many=True))
    def get(self, issue_id: Any) -> list:
        """Every meeting that took the issue up: its consultation history."""
        return use_cases.meetings(_uow(), require_principal(), str(issue_id))


def _with_url(row: dict[str, Any]) -> dict[str, Any]:
    url = f"{row['issue_id']}/photos/{row['id']}"
    return {**row, "url": url, "thumbnail_url": f"{url}/thumbnail"}


@blp.route("/<uuid:issue_id>/photos")
class Photos(MethodView):
    @blp.response(200, schemas.PhotoSchema(many=True))
    def get(self, issue_id: Any) -> list:
        return [_with_url(r) for r in use_cases.list_photos(_uow(), require_principal(), str(issue_id))]

    @blp.response(201, schemas.PhotoSchema)
    def post(self, issue_id: Any) -> dict:
        """Attach a JPEG, PNG or HEIC/HEIF photo (multipart field `photo`, at most PHOTO_MAX_MB, 5 MB
        by default). It is stored re-encoded (HEIC as JPEG) without its metadata (EXIF location
        included), with a thumbnail."""
        principal = require_principal()
        upload = request.files.get("photo")
        if upload is None:
            raise Invalid("no photo", fields={"photo": ["send the image as multipart field 'photo'"]})
        config = _photo_config()
        row = use_cases.add_photo(
            _uow(),
            principal,
            str(issue_id),
            upload.read(config.max_bytes + 1),  # one byte more tells "too large" without reading it all
            _photo_store(),
            _now(),
            max_bytes=config.max_bytes,
            thumbnail_side=config.thumbnail_side,
        )
        return _with_url(row)


def _image_response(content: bytes, content_type: str) -> Response:
    response = Response(content, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.route("/<uuid:issue_id>/photos/<uuid:photo_id>")
class PhotoFile(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/*")
    def get(self, issue_id: Any, photo_id: Any) -> Response:
        """The photo as stored (no metadata)."""
        content, content_type = use_cases.photo_file(
            _uow(), require_principal(), str(issue_id), str(photo_id), _photo_store(), thumbnail=False
        )
        return _image_response(content, content_type)


@blp.route("/<uuid:issue_id>/photos/<uuid:photo_id>/thumbnail")
class PhotoThumbnail(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg")
    def get(self, issue_id: Any, photo_id: Any) -> Response:
        """The photo's thumbnail: a JPEG at most PHOTO_THUMBNAIL_PX (320) on its longer side."""
        content, content_type = use_cases.photo_file(
            _uow(), require_principal(), str(issue_id), str(photo_id), _photo_store(), thumbnail=True
        )
        return _image_response(content, content_type)


@blp.route("/categories")
class Categories(MethodView):
    @blp.arguments(schemas.CategoryFilterSchema(), location="query")
    @blp.response(200, schemas.CategorySchema(many=True))
    def get(self, query: dict) -> list:
        """The city's categories (public: a report form shows them)."""
        return use_cases.list_categories(_uow(), include_inactive=query["include_inactive"])


@blp.route("/categories/<string:key>")
class CategoryByKey(MethodView):
    @blp.arguments(schemas.CategorySchema())
    @blp.response(200, schemas.CategorySchema)
    def put(self, body: dict, key: str) -> Any:
        """Create or change a category (city admin)."""
        if not key.replace("_", "").isalnum() or len(key) > 80:
            raise Invalid("bad key", fields={"key": ["letters, digits and underscores, at most 80"]})
        return use_cases.save_category(_uow(), require_principal(), key, _now(), **body)


@blp.route("/stats")
class Stats(MethodView):
    @blp.arguments(schemas.StatsQuerySchema(), location="query")
    @blp.response(200, schemas.StatsSchema)
    def get(self, query: dict) -> dict:
        """Figures for a community, a street or the city over a period (local dates, both included;
        default: the 12 calendar months ending with the current one, as every service counts)."""
        principal = require_principal()
        if principal.role not in (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN):
            raise Forbidden("role {role} may not read statistics", role=principal.role.value)
        settings = current_app.extensions["linli.settings"]
        today = today_in(settings.timezone, _now())
        asked = stats.StatsQuery(
            community_id=str(query["community_id"]) if query.get("community_id") else None,
            street_id=str(query["street_id"]) if query.get("street_id") else None,
            start=today,
            end=today,
        )
        # Scope before state: a scope the caller may not see is 403 whatever period they sent.
        with _uow() as uow:
            stats.authorise(principal, uow, asked)
        period = resolve_period(today, query["period_from"], query["period_to"])
        request_query = stats.StatsQuery(asked.community_id, asked.street_id, period.start, period.end, query["by"])
        return stats.compute(_uow(), principal, request_query, settings.timezone)
