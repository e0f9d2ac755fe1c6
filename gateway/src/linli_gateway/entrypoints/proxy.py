"""Routing `/api/v1/<service>/...` (and Open311) to the services.

One pool of kept-alive upstream connections per worker process, through the gateway's own lean
HTTP/1.1 client (adapters/upstream_http.py): requests' session machinery, and then urllib3's and
`http.client`'s, cost more than the rest of a proxied request, and a proxy needs none of it. Each
proxied request has a time budget (`PROXY_BUDGET_SECONDS`) that no retry can stretch, and each
attempt waits at most the service's timeout for an answer. A retry happens only when it cannot
hurt: after a connection that could not be made (the service never saw the request), or after a
502/503 or a dropped connection to a safe method. Never after a read timeout: the service is
working on that request, and asking again only doubles the load of a caller who is already slow. A
circuit breaker per service (see `adapters/circuit.py`) opens on evidence the service is down,
never on one caller's slow request.

Writes need a valid token before any service sees them; anonymous reads pass (the services decide
what is public). No service sees the caller's own token: each gets one made for it alone (see
adapters/service_tokens.py), for the caller's verified token or API key.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from xml.etree import ElementTree

import jwt
import requests
from flask import Response, current_app, g, jsonify, request
from requests.adapters import HTTPAdapter

from linli_gateway.adapters.circuit import CircuitBreaker
from linli_gateway.adapters.service_tokens import ServiceTokens
from linli_gateway.adapters.upstream_http import Answer, ConnectFailed, Dropped, ReadTimedOut, UpstreamPools
from linli_gateway.domain.accounts import AccountError
from linli_gateway.entrypoints import front_client
from linli_gateway.entrypoints.front_client import ClientSeal
from linli_gateway.service_layer import accounts
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_gateway.settings import GatewaySettings
from linli_kit.auth import Principal
from linli_kit.errors import N_, NotFound, ServiceError, Text, Unauthorized
from linli_kit.web import current_principal

# RFC 9110 section 7.6.1: meaningful for one connection only; never forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# Set by the gateway itself from what it knows (or what a trusted proxy in front told it, see
# TRUSTED_PROXIES); a client's own values are never passed on.
FORWARDING = {
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-forwarded-port",
    "x-linli-client",  # sealed by this gateway for the web front only (see front_client)
}
# Credentials too: the gateway sends the service a token of its own (see authorise_request).
_NOT_PASSED = frozenset(HOP_BY_HOP | FORWARDING | {"authorization"})
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Answers that say "the service cannot serve now": retried for safe methods, counted by the breaker.
RETRIED_STATUSES = {502, 503}
DOWN_STATUSES = {502, 503, 504}
CONNECT_TIMEOUT = 2.0
BACKOFF_SECONDS = 0.05
# Writes that carry no user token because their caller proves itself another way: providers'
# delivery receipts and SMS replies are signed as each provider documents, and checked there.
PUBLIC_WRITES = ("notifications/receipts/",)


FRONT = "web front"
# The environ key under which the fast path (fast_proxy.py) hands a request it already sent, and
# failed to relay, to the Flask app for its error answer. No caller can set it: theirs are HTTP_*.
FAILED_ON_THE_FAST_PATH = "linli.proxy.failed"


class ServiceUnavailable(ServiceError):
    status = 503
    code = "service_unavailable"


class _Upstream:
    """Per-process HTTP session and per-service breakers (made again after a fork)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.session: requests.Session | None = None  # the fan-outs' (search, statistics) client
        self.pools: UpstreamPools | None = None  # the proxy's connections
        self.breakers: dict[str, CircuitBreaker] = {}

    def ensure(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            session = requests.Session()
            # No retries in the adapter: `_send` decides, within the request's time budget.
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False
            # One session carries everyone's requests: a cookie one answer sets (the front's
            # session cookie above all) must never ride along with the next caller's request.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self.session = session
            # No retries, no redirects followed: `_send` decides, and a redirect goes back to the
            # caller as the service gave it. No cookie jar: nothing an answer sets is kept.
            self.pools = UpstreamPools(maxsize=32)
            self.breakers = {
                name: CircuitBreaker(
                    name,
                    fail_max=self.settings.breaker_fail_max,
                    reset_seconds=self.settings.breaker_reset_seconds,
                )
                for name in [*self.settings.service_urls, FRONT]
            }
            self._pid = os.getpid()


def install(app: Any, settings: GatewaySettings) -> None:
    app.extensions["linli.upstream"] = _Upstream(settings)
    app.extensions["linli.gateway_settings"] = settings


def _api_key() -> str | None:
    # Read (and cache) the body before looking into the form, so it can still be forwarded whole.
    request.get_data(cache=True)
    return (
        request.headers.get("X-API-Key")
        or request.args.get("api_key")
        or (
            request.form.get("api_key")
            if request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}
            else None
        )
    )


def authorise_request(service: str) -> str | None:
    """The Authorization header to forward to `service`: a token for that service alone standing for
    the caller (their verified token's identity, or their API key's client), or none for an
    anonymous read. Raises 401 otherwise."""
    tokens: ServiceTokens = current_app.extensions["linli.service_tokens"]
    key = _api_key()
    if key and "Authorization" not in request.headers:
        try:
            client = accounts.api_client(GatewayUnitOfWork(current_app.extensions["linli.database"]), key)
        except AccountError as exc:
            raise Unauthorized(exc.message) from exc
        g.api_client = True
        expires = datetime.now(UTC) + accounts.API_CLIENT_TOKEN_TTL
        return "Bearer " + tokens.for_service(client, service, expires, session="key:" + client.user_id)
    public = request.method in SAFE_METHODS or request.path.removeprefix("/api/v1/").startswith(PUBLIC_WRITES)
    principal = current_principal(required=not public)
    if principal is None:
        return None
    return "Bearer " + service_token(principal, service)


def service_token(principal: Principal, service: str) -> str:
    """A token for `service` standing for the verified caller of this request."""
    tokens: ServiceTokens = current_app.extensions["linli.service_tokens"]
    return service_token_for(tokens, principal, service, request.headers["Authorization"])


def service_token_for(tokens: ServiceTokens, principal: Principal, service: str, authorization: str) -> str:
    """A token for `service` standing for `principal`, verified from the `authorization` header."""
    presented = authorization.partition(" ")[2].strip()
    expires = principal.expires_at or datetime.fromtimestamp(
        jwt.decode(presented, options={"verify_signature": False})["exp"], UTC
    )
    return tokens.for_service(principal, service, expires, session=principal.token_id or presented)


def forwarding_headers(route_prefix: str) -> dict[str, str]:
    """What the service needs to know about the public request: who asked (`X-Forwarded-For`, the
    chain with the gateway's peer appended), which address and scheme they used
    (`X-Forwarded-Host`, `X-Forwarded-Proto`), and the path prefix the gateway removed
    (`X-Forwarded-Prefix`, left out when nothing was removed). Behind `TRUSTED_PROXIES` proxies the
    gateway's own view of host, scheme and prefix already comes from theirs (werkzeug's ProxyFix)."""
    return forwarding_headers_of(request.environ, request.host, request.script_root, route_prefix)


def forwarding_headers_of(environ: dict[str, Any], host: str, script_root: str, route_prefix: str) -> dict[str, str]:
    """`forwarding_headers` from a WSGI environ and werkzeug's `host` and `script_root` of it."""
    peer = environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR", environ.get("REMOTE_ADDR"))
    headers = {
        "X-Forwarded-For": ", ".join(filter(None, [environ.get("HTTP_X_FORWARDED_FOR"), peer])),
        "X-Forwarded-Host": host,
        "X-Forwarded-Proto": environ.get("wsgi.url_scheme", "http"),
    }
    prefix = script_root.rstrip("/") + route_prefix
    if prefix:
        headers["X-Forwarded-Prefix"] = prefix
    return headers


def forward(service: str, path: str, *, route_prefix: str) -> Response:
    """Send this request to `service` at `/<path>`; `route_prefix` is the public prefix removed."""
    failed = request.environ.get(FAILED_ON_THE_FAST_PATH)
    if failed is not None:
        # The fast path (fast_proxy.py) already sent it and failed: answered here, as any failure is.
        raise failed
    upstream: _Upstream = current_app.extensions["linli.upstream"]
    upstream.ensure()
    settings = upstream.settings
    authorization = authorise_request(service)
    headers = _passed_headers(route_prefix)
    if authorization:
        headers["Authorization"] = authorization
    query = request.query_string.decode("latin-1")
    url = f"{settings.service_urls[service]}/{path}" + (f"?{query}" if query else "")
    answer = _relay(upstream, service, url, headers, read_timeout=settings.timeouts[service], decode=True)
    response_headers = [(k, v) for k, v in answer.headers if k.lower() not in HOP_BY_HOP]
    return Response(answer.body, status=answer.status, headers=response_headers)


def forward_front(path: str) -> Response:
    """A page (or a page's file) from the web front, at the gateway's address. Sent as the browser
    sent it, cookies included and without any token: the front keeps its own session. It comes back
    as the front encoded it, so a compressed file stays compressed."""
    upstream: _Upstream = current_app.extensions["linli.upstream"]
    upstream.ensure()
    settings = upstream.settings
    if settings.front_url is None:
        raise NotFound("no page at /{path}: this platform runs without its web front (FRONT_URL)", path=path)
    headers = _passed_headers("")
    seal: ClientSeal = current_app.extensions["linli.client_seal"]
    headers[front_client.HEADER] = seal.seal(request.remote_addr or "unknown")
    query = request.query_string.decode("latin-1")
    url = f"{settings.front_url}/{path}" + (f"?{query}" if query else "")
    answer = _relay(upstream, FRONT, url, headers, read_timeout=settings.front_timeout, decode=False)
    response_headers = [(k, v) for k, v in answer.headers if k.lower() not in HOP_BY_HOP]
    response = Response(answer.body, status=answer.status, headers=response_headers)
    # Flask would otherwise take the Content-Encoding as its own to undo: the body is sent as is.
    response.direct_passthrough = True
    g.passed_through = True  # the page's language is the front's choice (its cookie), not ours
    return response


def _passed_headers(route_prefix: str) -> dict[str, str]:
    """The caller's headers less those for one connection, forwarding and credentials (the gateway
    adds its own), plus what the upstream must know about the public request."""
    headers = passed_headers_of(request.environ)
    headers.update(forwarding_headers(route_prefix))
    headers["X-Request-ID"] = g.request_id
    return headers


def passed_headers_of(environ: dict[str, Any]) -> dict[str, str]:
    """The caller's headers in a WSGI environ, less those `_passed_headers` never passes on."""
    headers: dict[str, str] = {}
    names = _ENVIRON_HEADERS
    for key, value in environ.items():
        name = names.get(key, _UNSEEN)
        if name is _UNSEEN:
            name = _passed_header_name(key)
            if len(names) < _ENVIRON_HEADERS_KEPT:
                names[key] = name
        # Werkzeug's own rule: an empty Content-Type or Content-Length is no header.
        if name is not None and (value or not key.startswith("CONTENT_")):
            headers[name] = value
    return headers


# The header each WSGI environ key stands for (named as werkzeug's `request.headers` names it), or
# None when it is no header or one never passed on: worked out once per key, not once per request.
# Bounded: the keys are the callers' header names, and anyone can make up new ones.
_ENVIRON_HEADERS: dict[str, str | None] = {}
_ENVIRON_HEADERS_KEPT = 1024
_UNSEEN = object()


def _passed_header_name(key: str) -> str | None:
    if key.startswith("HTTP_") and key not in {"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"}:
        name = key[5:].replace("_", "-").title()
    elif key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
        name = key.replace("_", "-").title()
    else:
        return None
    return None if name.lower() in _NOT_PASSED else name


def _decoded(answer: Answer) -> Answer:
    """A service's answer with its body decoded from a gzip or deflate Content-Encoding, as urllib3
    decoded it before (that header is then not passed on). An encoding the gateway cannot decode
    goes on as it came, with its header: the caller asked for it (their Accept-Encoding is
    forwarded). A body that does not decode is a broken answer: `Dropped`."""
    body, headers = answer.body, []
    for name, value in answer.headers:
        if name.lower() == "content-encoding":
            decoded = _decode(body, value)
            if decoded is not None:
                body = decoded
                continue
        headers.append((name, value))
    return answer if len(headers) == len(answer.headers) else Answer(answer.status, headers, body)


def _decode(body: bytes, encoding: str) -> bytes | None:
    """`body` without its Content-Encoding `encoding` (gzip, deflate, identity, or several in the
    order applied); None when one of them is not known here."""
    for coding in reversed([c.strip().lower() for c in encoding.split(",")]):
        if coding in {"", "identity"}:
            continue
        if coding in {"gzip", "x-gzip"}:
            body = _gunzip(body)
        elif coding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:  # raw deflate, without the zlib header, as some servers send it
                body = _inflate(body, -zlib.MAX_WBITS)
        else:
            return None
    return body


def _gunzip(body: bytes) -> bytes:
    parts = []
    while body:  # one member after another, as gzip allows
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        parts.append(_inflate(body, decompressor=decompressor))
        body = decompressor.unused_data
    return b"".join(parts)


def _inflate(body: bytes, wbits: int = zlib.MAX_WBITS, decompressor: Any = None) -> bytes:
    decompressor = decompressor or zlib.decompressobj(wbits)
    try:
        data = decompressor.decompress(body)
    except zlib.error as exc:
        raise Dropped(f"the answer's body could not be decoded: {exc}") from exc
    if not decompressor.eof:
        raise Dropped("the answer's compressed body ends early")
    return data


def _relay(
    upstream: _Upstream,
    name: str,
    url: str,
    headers: dict[str, str],
    *,
    read_timeout: float,
    decode: bool,
    method: str | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request through `name`'s circuit breaker, within the request's time budget; `decode`:
    undo the body's Content-Encoding (see `_decoded`). `method` and `body`: this request's unless
    given (the fast path has no Flask request)."""
    settings = upstream.settings
    breaker = upstream.breakers[name]
    if not breaker.allow():
        raise _unavailable(name, N_("is not answering (circuit open)"), breaker.retry_after())
    try:
        assert upstream.pools is not None
        answer = _send(
            upstream.pools,
            request.method if method is None else method,
            url,
            headers,
            request.get_data() if body is None else body,
            read_timeout=read_timeout,
            budget=settings.budget_seconds,
            retries=settings.retries,
            decode=decode,
        )
    except _ServiceDown as exc:
        breaker.record_down()
        raise _unavailable(name, N_("is unreachable"), 1) from exc
    except _TimedOut as exc:
        breaker.record_inconclusive()
        raise _unavailable(name, N_("did not answer in time"), 1) from exc
    except BaseException:
        breaker.record_inconclusive()
        raise
    # Only a service answers in the platform's error shape; the web front's pages are its own.
    if answer.status in DOWN_STATUSES and not (name != FRONT and _answering_without_its_database(answer)):
        breaker.record_down()
    elif answer.status in DOWN_STATUSES:
        # The service itself answered, at once: it is up, its database is not. Opening the circuit
        # would refuse everyone for BREAKER_RESET_SECONDS after a database blip of one second.
        breaker.record_inconclusive()
    else:
        breaker.record_up()
    return answer


def _answering_without_its_database(answer: Answer) -> bool:
    """A 503 in the platform's own error shape saying `database_unavailable` (see linli_kit.web)."""
    if answer.status != 503:
        return False
    return b'"database_unavailable"' in answer.body[:2000]


class _ServiceDown(Exception):
    """No answer: the connection could not be made or was dropped."""


class _TimedOut(Exception):
    """The service took longer than its timeout, or the request's budget ran out."""


def _send(
    pools: UpstreamPools,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    read_timeout: float,
    budget: float,
    retries: int,
    decode: bool,
) -> Answer:
    """The service's answer, its body read whole (decoded with `decode`, see `_decoded`)."""
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut("the request's time budget ran out")
        try:
            answer = pools.request(
                method,
                url,
                headers,
                body,
                connect_timeout=min(CONNECT_TIMEOUT, remaining),
                read_timeout=min(read_timeout, remaining),
            )
            if decode:
                answer = _decoded(answer)
        except ReadTimedOut as exc:
            raise _TimedOut(str(exc)) from exc
        except (ConnectFailed, Dropped) as exc:
            # Never sent (refused, unreachable, connect timeout): safe to repeat whatever the
            # method. Sent, then dropped: only a safe one.
            never_sent = isinstance(exc, ConnectFailed)
            if (never_sent or method in SAFE_METHODS) and _may_retry(attempt, retries, deadline):
                attempt += 1
                continue
            raise _ServiceDown(str(exc)) from exc
        if answer.status in RETRIED_STATUSES and method in SAFE_METHODS:
            if _may_retry(attempt, retries, deadline):
                attempt += 1
                continue
        return answer


def _may_retry(attempt: int, retries: int, deadline: float) -> bool:
    """Another attempt is allowed, and the short pause before it fits in the budget."""
    if attempt >= retries:
        return False
    pause = BACKOFF_SECONDS * (2**attempt)
    if time.monotonic() + pause >= deadline:
        return False
    time.sleep(pause)
    return True


def _unavailable(service: str, what: str, retry_after: float) -> ServiceUnavailable:
    subject = Text("the web front") if service == FRONT else Text("the {service} service", service=service)
    error = ServiceUnavailable("{subject} {what}; try again shortly", subject=subject, what=Text(what))
    error.retry_after = int(max(1, retry_after + 0.999))
    return error


# --- Open311 --------------------------------------------------------------------------------------
def open311_error(status: int, description: str) -> Response:
    """An error as GeoReport v2 has it: `[{"code", "description"}]`, or `<errors><error>...` for a
    `.xml` path."""
    if request.path.endswith(".xml"):
        errors = ElementTree.Element("errors")
        error = ElementTree.SubElement(errors, "error")
        ElementTree.SubElement(error, "code").text = str(status)
        ElementTree.SubElement(error, "description").text = description
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(errors, encoding="utf-8")
        return Response(body, status=status, content_type="text/xml; charset=utf-8")
    response = jsonify([{"code": status, "description": description}])
    response.status_code = status
    return response


def forward_open311(path: str) -> Response:
    """Open311 paths go to the issues service unchanged. A missing or bad key (or token) is the
    spec's 403 in the spec's error format, not the platform's 401."""
    try:
        return forward("issues", f"open311/v2/{path}", route_prefix="")
    except Unauthorized as exc:
        message = exc.message
        if "Authorization" not in request.headers and not _api_key():
            message = "an api_key is required"
        return open311_error(403, message)
