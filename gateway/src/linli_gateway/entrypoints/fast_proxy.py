"""The proxied read, served in front of the Flask app: `GET`/`HEAD /api/v1/<service>/...` with a
bearer token and no body, the bulk of the gateway's traffic.

Flask's request machinery (request context, routing, the hooks, the response object and its header
structures, werkzeug's context-local proxies behind `request` and `g`) cost about as much CPU as
the rest of a proxied request together: on two shared cores, the hop's cost is the service's CPU
plus the gateway's. This path does what the Flask path does for such a request, in the same order,
from the WSGI environ: the request id, the check for unstorable text in the query, the token
(signature, expiry, revocation), the account's rate limit, the service's own token, the headers
passed and stripped, the circuit breaker, the retries, and on the answer the rate-limit headers,
`X-Request-ID`, `Content-Language`, `Vary` and the metrics.

Anything else goes to the Flask app untouched: another method, a body, no token or one that does not
verify, a query with unstorable text, a path Flask would redirect or route elsewhere. Nothing has
been counted or sent then. After counting, whatever fails (429, a service that cannot answer, a bug)
is handed to the Flask app with what was done (the count, the failure, the request id), so the
error answer is the one Flask gives, and nothing is counted or sent twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401 - registers the "werkzeug.url_quote" codec error handler used below
from flask import g, request
from werkzeug.http import HTTP_STATUS_CODES, parse_set_header
from werkzeug.wsgi import get_host

from linli_gateway import SERVICE
from linli_gateway.entrypoints import proxy
from linli_gateway.entrypoints.limits import COUNTED_ON_THE_FAST_PATH, RateLimits
from linli_gateway.settings import ROUTED_SERVICES
from linli_kit import context, i18n
from linli_kit.auth import TokenVerifier
from linli_kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from linli_kit.web import REQUEST_ID_FORM, UNSTORABLE_TEXT

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The routes this path serves, as Flask names them in the metrics.
RULE_OF_SERVICE_ROOT = "/api/v1/<service>/"
RULE_OF_SERVICE_PATH = "/api/v1/<service>/<path:path>"
ENDPOINT = "route"
METHODS = frozenset({"GET", "HEAD"})
# The environ key under which a request handed over carries the time it started (its latency is
# measured from there, as if the Flask app had had it all along).
STARTED = "linli.proxy.started"
# Answers whose headers werkzeug changes on the way out (no body, Location made absolute...): made
# by werkzeug's own Response here too, so they come out exactly as from the Flask path.
_PLAIN_STATUSES = frozenset(range(200, 600)) - {204, 304}
_WERKZEUG_TOUCHES = frozenset({"location", "content-location"})
_BOUNDED = 1024


class FastProxy:
    """WSGI middleware: the proxied read served here, anything else by `app` (the Flask app's
    `wsgi_app`, under ProxyFix when there are trusted proxies, so the environ is already the
    public request's)."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        upstream: Any,
        verifier: TokenVerifier,
        tokens: Any,
        rate_limits: RateLimits,
        services: Iterable[str],
    ) -> None:
        self.app = app
        self.upstream = upstream
        self.verifier = verifier
        self.tokens = tokens
        self.rate_limits = rate_limits
        self.services = frozenset(services) & set(ROUTED_SERVICES)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}
        self._languages: dict[str, str] = {}
        self._status_lines: dict[int, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = self._route(environ)
        if route is None:
            return self.app(environ, start_response)
        service, path = route
        authorization = environ["HTTP_AUTHORIZATION"]
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return self.app(environ, start_response)
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID_FORM.match(incoming) else str(uuid.uuid4())
        reset = context.request_id.set(request_id)
        try:
            return self._serve(environ, start_response, service, path, authorization, token, request_id, started)
        finally:
            context.request_id.reset(reset)

    def _route(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """(service, path) when the request is one this path serves as Flask would, else None."""
        if environ["REQUEST_METHOD"] not in METHODS or "HTTP_AUTHORIZATION" not in environ:
            return None
        # No body: nothing to read, check or cache (as the Flask path would have to).
        if environ.get("CONTENT_TYPE") or environ.get("CONTENT_LENGTH", "0") not in {"", "0"}:
            return None
        if "HTTP_TRANSFER_ENCODING" in environ:
            return None
        path_info: str = environ.get("PATH_INFO", "")
        if not path_info.startswith("/api/v1/") or not path_info.isascii() or "//" in path_info:
            return None  # elsewhere, or decoded by werkzeug, or redirected by its routing (merge_slashes)
        service, slash, path = path_info[8:].partition("/")
        if not slash or service not in self.services or path.startswith("/"):
            return None
        query: str = environ.get("QUERY_STRING", "")
        if not query.isascii() or not environ.get("SCRIPT_NAME", "").isascii():
            return None
        if query:
            # The kit's check (linli_kit.web): a parameter holding NUL or a lone surrogate is a
            # 422, which the Flask path answers. Parsed exactly as werkzeug parses `request.args`.
            for name, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
                if UNSTORABLE_TEXT.search(name) or UNSTORABLE_TEXT.search(value):
                    return None
        return service, path

    def _serve(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        service: str,
        path: str,
        authorization: str,
        token: str,
        request_id: str,
        started: float,
    ) -> Iterable[bytes]:
        limits = self.rate_limits
        try:
            principal = self.verifier.verify(token)
            rule = limits.rule_for(ENDPOINT, environ["REQUEST_METHOD"])
            assert rule is not None  # the proxied routes' account limit (see web.py)
            counted = limits.count(rule, f"account:{principal.role}:{principal.user_id}", ENDPOINT)
        except Exception:  # noqa: BLE001 - nothing counted or sent yet: the Flask app does it all
            # A bad token (401, counted against the client), a database down (503) or anything
            # else is answered as the Flask path answers it.
            return self.app(environ, start_response)
        within, shown = counted
        try:
            if not within:
                raise _HandOver
            upstream = self.upstream
            upstream.ensure()
            settings = upstream.settings
            headers = proxy.passed_headers_of(environ)
            headers.update(
                proxy.forwarding_headers_of(
                    environ,
                    get_host(environ),
                    environ.get("SCRIPT_NAME", "").encode("latin1").decode(errors="replace"),
                    f"/api/v1/{service}",
                )
            )
            headers["X-Request-ID"] = request_id
            headers["Authorization"] = "Bearer " + proxy.service_token_for(
                self.tokens, principal, service, authorization
            )
            query = environ.get("QUERY_STRING", "")
            url = f"{settings.service_urls[service]}/{path}" + (f"?{query}" if query else "")
            method = environ["REQUEST_METHOD"]
            answer = proxy._relay(
                upstream,
                service,
                url,
                headers,
                read_timeout=settings.timeouts[service],
                decode=True,
                method=method,
                body=b"",
            )
        except Exception as exc:  # noqa: BLE001 - every failure is answered by the Flask app
            environ[COUNTED_ON_THE_FAST_PATH] = counted
            if not isinstance(exc, _HandOver):
                environ[proxy.FAILED_ON_THE_FAST_PATH] = exc
            environ["HTTP_X_REQUEST_ID"] = request_id
            environ[STARTED] = started
            return self.app(environ, start_response)
        rule = RULE_OF_SERVICE_PATH if path else RULE_OF_SERVICE_ROOT
        status = answer.status
        body = answer.body
        response_headers = self._headers(answer.headers, len(body), environ, shown, request_id)
        if status in _PLAIN_STATUSES and not any(k.lower() in _WERKZEUG_TOUCHES for k, _ in response_headers):
            start_response(self._status_line(status), response_headers)
            chunks: Iterable[bytes] = () if method == "HEAD" else (body,)
        else:
            from werkzeug.wrappers import Response

            response = Response(body, status=status, headers=response_headers)
            chunks = response(environ, start_response)
        self._measure(method, rule, status, started)
        return chunks

    def _headers(
        self,
        upstream_headers: list[tuple[str, str]],
        length: int,
        environ: dict[str, Any],
        shown: Any,
        request_id: str,
    ) -> list[tuple[str, str]]:
        """The answer's headers as the Flask path makes them: the service's less those for one
        connection, then what werkzeug's Response adds (the default Content-Type when the service
        sent none, the body's Content-Length), the rate limit's, the request id (in place of the
        service's), the language, and `Vary: Accept-Language`."""
        headers = [(k, v) for k, v in upstream_headers if k.lower() not in proxy.HOP_BY_HOP]
        lowered = {k.lower() for k, _ in headers}
        if "content-type" not in lowered:
            headers.append(("Content-Type", "text/html; charset=utf-8"))
        headers.append(("Content-Length", str(length)))
        item, reset, remaining = shown
        headers.append(("X-RateLimit-Limit", str(item.amount)))
        headers.append(("X-RateLimit-Remaining", str(remaining)))
        headers.append(("X-RateLimit-Reset", str(int(reset + 1))))
        _set(headers, "X-Request-ID", request_id, "x-request-id" in lowered)
        if "content-language" not in lowered:
            headers.append(("Content-Language", i18n.CONTENT_LANGUAGE[self._language(environ)]))
        if "vary" not in lowered:
            headers.append(("Vary", "Accept-Language"))
        else:
            vary = parse_set_header(next(v for k, v in headers if k.lower() == "vary"))
            if "accept-language" not in vary:
                vary.add("Accept-Language")
                _set(headers, "Vary", vary.to_header(), True)
        return headers

    def _language(self, environ: dict[str, Any]) -> str:
        header = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        language = self._languages.get(header)
        if language is None:
            language = i18n.negotiate(header)
            if len(self._languages) < _BOUNDED:  # callers make up headers: remember a bounded few
                self._languages[header] = language
        return language

    def _status_line(self, status: int) -> str:
        line = self._status_lines.get(status)
        if line is None:
            line = self._status_lines.setdefault(status, f"{status} {HTTP_STATUS_CODES.get(status, 'unknown').upper()}")
        return line

    def _measure(self, method: str, rule: str, status: int, started: float) -> None:
        """The kit's request metrics (linli_kit.web), with the labels the Flask path gives them."""
        counter = self._counters.get((method, rule, status))
        if counter is None:
            counter = self._counters.setdefault(
                (method, rule, status), HTTP_REQUESTS.labels(SERVICE, method, rule, status)
            )
        counter.inc()
        histogram = self._latencies.get((method, rule))
        if histogram is None:
            histogram = self._latencies.setdefault((method, rule), HTTP_LATENCY.labels(SERVICE, method, rule))
        histogram.observe(time.perf_counter() - started)


class _HandOver(Exception):
    """Over the limit: the Flask app answers the 429 from what was counted."""


def _set(headers: list[tuple[str, str]], name: str, value: str, present: bool) -> None:
    """werkzeug's `Headers.set`: in place of the first of that name (the others dropped), else added."""
    if not present:
        headers.append((name, value))
        return
    lowered = name.lower()
    for index, (key, _) in enumerate(headers):
        if key.lower() == lowered:
            headers[index] = (name, value)
            headers[index + 1 :] = [(k, v) for k, v in headers[index + 1 :] if k.lower() != lowered]
            return


def install(app: Any, rate_limits: RateLimits) -> FastProxy:
    """Put the fast path in front of `app`'s Flask machinery, for the routed services whose paths
    no route of the gateway's own (more specific than the proxy's) takes."""
    own = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != ENDPOINT]
    services = [
        name
        for name in ROUTED_SERVICES
        if not any(r == f"/api/v1/{name}" or r.startswith(f"/api/v1/{name}/") for r in own)
    ]
    fast = FastProxy(
        app.wsgi_app,
        upstream=app.extensions["linli.upstream"],
        verifier=app.extensions["linli.verifier"],
        tokens=app.extensions["linli.service_tokens"],
        rate_limits=rate_limits,
        services=services,
    )
    app.wsgi_app = fast

    @app.before_request
    def _started_on_the_fast_path() -> None:
        # A request handed over: its latency counts from when the fast path had it.
        started = request.environ.get(STARTED)
        if started is not None:
            g.started = started

    return fast
