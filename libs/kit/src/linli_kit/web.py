"""The Flask app factory every service and the gateway use.

It gives each app: OpenAPI from marshmallow schemas (flask-smorest) at `/openapi.json`; one error
body for every 4xx naming the bad fields; `X-Request-ID` in and out; JSON logs; `/healthz`,
`/readyz` and `/metrics`; and the caller's identity from the bearer token.
"""

from __future__ import annotations

import importlib.util
import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import Flask, Request, Response, current_app, g, jsonify, request
from flask_smorest import Api, Blueprint, pagination
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from linli_kit import context, dumping, i18n
from linli_kit.arguments import ArgumentsParser
from linli_kit.auth import Principal, Role, TokenVerifier
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.errors import N_, Invalid, ServiceError, Text, Unauthorized
from linli_kit.events.topology import Brokers
from linli_kit.logs import configure_logging
from linli_kit.metrics import HTTP_LATENCY, HTTP_REQUESTS, render
from linli_kit.schemas import ErrorSchema, page_validator

# What an incoming X-Request-ID may be to be kept (else a new one is made); the gateway's fast path checks it too.
REQUEST_ID_FORM = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ReadinessCheck = Callable[[], None]


def error_body(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error body, its message and field messages in the reader's language (`code` and the
    field names never change: clients key on them)."""
    body: dict[str, Any] = {"status": status, "code": code, "message": i18n.translate(message)}
    if fields:
        body["fields"] = i18n.translate_fields(fields)
    return {"error": body, "request_id": context.request_id.get()}


def invalid_input(fields: Iterable[Any]) -> Text:
    return Text("invalid input: {fields}", fields=", ".join(sorted(str(f) for f in fields)))


_smorest_pagination_schema = pagination._pagination_parameters_schema_factory


def _bounded_pagination_schema(def_page: int, def_page_size: int, def_max_page_size: int) -> type[ma.Schema]:
    """flask-smorest bounds `page_size` but not `page`: a huge page overflows the OFFSET of every
    list into a 500. Bound it too (documented in each OpenAPI document as a maximum)."""
    base = _smorest_pagination_schema(def_page, def_page_size, def_max_page_size)

    class BoundedPaginationParametersSchema(base):  # type: ignore[misc, valid-type]
        page = ma.fields.Integer(load_default=def_page, validate=page_validator)

    return BoundedPaginationParametersSchema


# flask-smorest looks the factory up at each `@paginate()`, so every blueprint gets the bound.
pagination._pagination_parameters_schema_factory = _bounded_pagination_schema

# Every blueprint's arguments and pagination parameters go through the kit's parser: surely valid
# ones are loaded by compiled loaders, the rest by marshmallow as before (linli_kit/arguments.py).
# Set here, before any service's module decorates its views (each imports this module first).
flask_smorest.Blueprint.ARGUMENTS_PARSER = ArgumentsParser()
flask_smorest.Blueprint.PAGINATION_ARGUMENTS_PARSER = ArgumentsParser()


def _pagination_metadata(page: int, page_size: int, item_count: int) -> dict[str, int]:
    """flask-smorest's X-Pagination header, the same keys in the same order, without dumping its
    integers through `PaginationMetadataSchema` (which still documents the header) on every page."""
    if item_count == 0:
        return {"total": 0, "total_pages": 0}
    last_page = (item_count - 1) // page_size + 1
    metadata = {"total": item_count, "total_pages": last_page, "first_page": 1, "last_page": last_page}
    if page <= last_page:
        metadata["page"] = page
        if page > 1:
            metadata["previous_page"] = page - 1
        if page < last_page:
            metadata["next_page"] = page + 1
    return metadata


flask_smorest.Blueprint._make_pagination_metadata = staticmethod(_pagination_metadata)

_resolve_response_schema = flask_smorest.response.resolve_schema_instance


def _response_schema(schema: Any) -> Any:
    """flask-smorest's response schema, dumping with a compiled function (linli_kit/dumping.py)."""
    resolved = _resolve_response_schema(schema)
    return dumping.install(resolved) if isinstance(resolved, ma.Schema) else resolved


flask_smorest.response.resolve_schema_instance = _response_schema


class LinliApi(Api):
    """flask-smorest's Api with the platform's one error format, documented as it is answered."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        fields: dict[str, Any] = {}
        # webargs puts validation messages under their location ("json", "query", ...).
        for location, messages in (data.get("messages") or {}).items():
            if isinstance(messages, dict):
                fields.update(messages)
            else:
                fields[location] = messages
        code = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            413: "too_large",
            415: "unsupported_media_type",
            422: "validation_error",
            429: "rate_limited",
        }.get(status, "error")
        message = data.get("message") or error.description or error.name
        if status == 422 and fields:
            message = invalid_input(fields)
        response = jsonify(error_body(status, code, message, fields))
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="linli"'
        return response, status


def create_app(
    settings: Settings,
    database: Database,
    *,
    title: str,
    blueprints: Iterable[Blueprint] = (),
    readiness_checks: Iterable[tuple[str, ReadinessCheck]] | None = None,
    verifier: TokenVerifier | None = None,
    translations: Path | None = None,
) -> Flask:
    """`translations`: the folder of the app's message catalogue (default: the `translations` folder
    of the package `linli_<service>`, when there is one), read over the kit's own."""
    configure_logging(settings.service, level=settings.log_level, json_format=settings.log_json)
    # No static route: a service serves no files, and the gateway passes `/static/` to the web front.
    app = Flask(settings.service, static_folder=None)
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=12 * 1024 * 1024,
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "security": [{"bearerAuth": []}],
        },
    )
    app.extensions["linli.settings"] = settings
    app.extensions["linli.messages"] = i18n.Catalogue(
        [i18n.KIT_TRANSLATIONS, translations or _translations_of(settings)]
    )
    app.extensions["linli.database"] = database
    # Each service accepts the tokens the gateway made for it (audience: its name), not another's.
    app.extensions["linli.verifier"] = verifier or TokenVerifier(
        settings.jwt_public_key(), issuer=settings.jwt_issuer, audience=settings.service
    )
    api = LinliApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.extensions["linli.api"] = api

    checks = (
        list(readiness_checks)
        if readiness_checks is not None
        else [
            ("database", database.ping),
            ("broker", broker_check(settings.amqp_url)),
        ]
    )
    _install_request_hooks(app, settings.service)
    _install_error_handlers(app)
    _install_probes(app, checks)
    return app


def _translations_of(settings: Settings) -> Path:
    spec = importlib.util.find_spec(f"linli_{settings.service}")
    if spec is None or not spec.origin:
        return i18n.KIT_TRANSLATIONS
    return Path(spec.origin).resolve().parent / "translations"


def broker_check(amqp_url: str) -> ReadinessCheck:
    """Ready when one of the brokers `amqp_url` names (one, or the nodes of a cluster) answers."""
    brokers = Brokers(amqp_url, name="readyz", socket_timeout=2)

    def check() -> None:
        conn, _params = brokers.connect()
        conn.close()

    return check


def _install_request_hooks(app: Flask, service: str) -> None:
    # Each metric's child for its labels, looked up once per kind of answer, not for every request
    # (`labels()` takes the metric's lock and builds its key each time). The labels are the
    # routes' rules, methods and statuses: a bounded set.
    requests_counted: dict[tuple[str, str, int], Any] = {}
    latencies: dict[tuple[str, str], Any] = {}

    # Bound once: each hook runs for every request of every service, and each look-up through
    # Flask's `request`/`g` proxies costs a context-variable read.
    match_request_id = REQUEST_ID_FORM.match
    set_request_id = context.request_id.set
    reset_request_id = context.request_id.reset
    perf_counter = time.perf_counter
    content_language = i18n.CONTENT_LANGUAGE
    language = i18n.language

    @app.before_request
    def _start() -> None:
        state = g._get_current_object()
        current = request._get_current_object()  # type: ignore[attr-defined]
        incoming = current.headers.get("X-Request-ID", "")
        request_id = incoming if match_request_id(incoming) else str(uuid.uuid4())
        state.request_id = request_id
        state.request_id_token = set_request_id(request_id)
        state.started = perf_counter()
        _refuse_unstorable_text(current)

    @app.after_request
    def _finish(response: Response) -> Response:
        state = g._get_current_object()
        current = request._get_current_object()  # type: ignore[attr-defined]
        headers = response.headers
        headers["X-Request-ID"] = getattr(state, "request_id", "")
        # Which language the words of this answer are in (an answer passed on as another process
        # made it, a web page, says its own or nothing); caches keep one copy per language.
        if "Content-Language" not in headers and not getattr(state, "passed_through", None):
            headers["Content-Language"] = content_language[language()]
        if "Vary" in headers:
            response.vary.add("Accept-Language")
        else:
            headers["Vary"] = "Accept-Language"  # what `vary.add` writes when there is no Vary yet
        rule = current.url_rule
        endpoint = rule.rule if rule else "unmatched"
        method = current.method
        status = response.status_code
        counter = requests_counted.get((method, endpoint, status))
        if counter is None:
            counter = requests_counted.setdefault(
                (method, endpoint, status), HTTP_REQUESTS.labels(service, method, endpoint, status)
            )
        counter.inc()
        started = getattr(state, "started", None)
        if started is not None:
            histogram = latencies.get((method, endpoint))
            if histogram is None:
                histogram = latencies.setdefault((method, endpoint), HTTP_LATENCY.labels(service, method, endpoint))
            histogram.observe(perf_counter() - started)
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            reset_request_id(token)


# NUL cannot be stored in PostgreSQL text, and a lone surrogate cannot be encoded as UTF-8 by any
# database or JSON encoder: either turns an ordinary write into a 500 deep in a service.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = N_("contains a character that cannot be stored (NUL or a lone surrogate)")


def _refuse_unstorable_text(current: Request | None = None) -> None:
    """422 naming each query parameter or body field whose text holds an unstorable character,
    before any service code sees it (`current`: the request, else Flask's current one)."""
    if current is None:
        current = request._get_current_object()  # type: ignore[attr-defined]
    bad: dict[str, list[str]] = {}
    if current.query_string:  # without one, nothing to parse
        for name, value in current.args.items(multi=True):
            if UNSTORABLE_TEXT.search(name) or UNSTORABLE_TEXT.search(value):
                bad[UNSTORABLE_TEXT.sub("?", name)] = [UNSTORABLE_MESSAGE]
    if current.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        current.get_data(cache=True)  # keep the raw body readable (the gateway forwards it whole)
        for name, value in current.form.items(multi=True):
            if UNSTORABLE_TEXT.search(name) or UNSTORABLE_TEXT.search(value):
                bad[UNSTORABLE_TEXT.sub("?", name)] = [UNSTORABLE_MESSAGE]
    elif current.is_json:
        document = current.get_json(silent=True)
        if document is not None and _may_hold_unstorable(current.get_data(cache=True)):
            _walk(document, "", bad)
    if bad:
        raise Invalid(invalid_input(bad), fields=bad)


def _may_hold_unstorable(raw: bytes) -> bool:
    """Whether a JSON body's parsed text may hold NUL or a lone surrogate; when not, the walk is
    spared. Either comes only as a `\\u` escape, as a NUL byte (refused raw in a string by the
    parser; and any UTF-16 or UTF-32 document, which the parser also reads, holds NUL bytes) or as
    the UTF-8 bytes of a surrogate (0xED then 0xA0-0xBF, which `json.loads` lets through): any of
    these bytes sends the document through the walk, which decides."""
    return b"\\u" in raw or b"\x00" in raw or b"\xed" in raw


def _walk(value: Any, path: str, bad: dict[str, list[str]]) -> None:
    if isinstance(value, str):
        if UNSTORABLE_TEXT.search(value):
            bad[path or "body"] = [UNSTORABLE_MESSAGE]
    elif isinstance(value, dict):
        for key, item in value.items():
            name = UNSTORABLE_TEXT.sub("?", str(key))
            if name != key:
                bad[f"{path}.{name}" if path else name] = [UNSTORABLE_MESSAGE]
            _walk(item, f"{path}.{name}" if path else name, bad)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index), bad)


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(OperationalError)
    def _database_unavailable(_error: OperationalError) -> tuple[Response, int]:
        # The transaction was rolled back: nothing changed. Say so, and when to try again.
        response = jsonify(
            error_body(503, "database_unavailable", Text("the database is unavailable; try again shortly"))
        )
        response.headers["Retry-After"] = "1"
        return response, 503

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> tuple[Response, int]:
        response = jsonify(error_body(error.status, error.code, error.text, error.fields))
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="linli"'
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response, error.status


def _install_probes(app: Flask, checks: list[tuple[str, ReadinessCheck]]) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        results: dict[str, str] = {}
        for name, check in checks:
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                results[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        return jsonify({"status": "ready" if ready else "not ready", "checks": results}), 200 if ready else 503

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = render()
        return Response(body, content_type=content_type)


# --- identity in a request ---------------------------------------------------------------------
_NOT_SET = object()


def current_principal(*, required: bool = True) -> Principal | None:
    """The verified caller of this request; 401 when `required` and no valid token was sent."""
    state = g._get_current_object()  # one look-up through the proxy: asked several times a request
    known = getattr(state, "principal", _NOT_SET)
    if known is not _NOT_SET:
        return known
    current = request._get_current_object()  # type: ignore[attr-defined]
    header = current.headers.get("Authorization", "")
    if not header:
        if required:
            raise Unauthorized("missing bearer token")
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    verifier: TokenVerifier = current_app.extensions["linli.verifier"]
    state.principal = principal = verifier.verify(token.strip())
    return principal


def require_principal(*roles: Role) -> Principal:
    principal = current_principal()
    assert principal is not None
    if roles:
        principal.require_role(*roles)
    return principal
