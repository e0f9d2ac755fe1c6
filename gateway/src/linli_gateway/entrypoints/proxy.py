"""Routing `/api/v1/<service>/...` (and Open311) to the services.

One pooled HTTP session per worker process; a timeout per service; retries only for idempotent
methods; a circuit breaker per service so a dead one answers 503 at once instead of tying up the
gateway's threads. Writes need a valid token before any service sees them; anonymous reads pass
(the services decide what is public). An API key is exchanged for a short-lived token here.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pybreaker
import requests
from flask import Blueprint, Response, current_app, g, request
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from linli_gateway.domain.accounts import AccountError
from linli_gateway.service_layer import accounts
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_gateway.settings import GatewaySettings
from linli_kit.errors import ServiceError, Unauthorized
from linli_kit.web import current_principal

blp = Blueprint("proxy", __name__)

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
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Writes that carry no user token because their caller proves itself another way: providers'
# delivery receipts and SMS replies are signed as each provider documents, and checked there.
PUBLIC_WRITES = ("notifications/receipts/",)


class ServiceUnavailable(ServiceError):
    status = 503
    code = "service_unavailable"


class _Upstream:
    """Per-process HTTP session and per-service breakers (made again after a fork)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.session: requests.Session | None = None
        self.breakers: dict[str, pybreaker.CircuitBreaker] = {}

    def ensure(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            session = requests.Session()
            retry = Retry(
                total=self.settings.retries,
                connect=self.settings.retries,
                read=self.settings.retries,
                status=self.settings.retries,
                backoff_factor=0.05,
                allowed_methods=frozenset(SAFE_METHODS),
                status_forcelist=(502, 503, 504),
                raise_on_status=False,
                respect_retry_after_header=False,
            )
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False
            self.session = session
            self.breakers = {
                name: pybreaker.CircuitBreaker(
                    fail_max=self.settings.breaker_fail_max,
                    reset_timeout=self.settings.breaker_reset_seconds,
                    name=name,
                )
                for name in self.settings.service_urls
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


def authorise_request() -> str | None:
    """The Authorization header to forward: the caller's verified token, a token for their API key,
    or none for an anonymous read. Raises 401 otherwise."""
    key = _api_key()
    if key and "Authorization" not in request.headers:
        try:
            token = accounts.exchange_api_key(
                GatewayUnitOfWork(current_app.extensions["linli.database"]),
                current_app.extensions["linli.identity"],
                key,
            )
        except AccountError as exc:
            raise Unauthorized(exc.message) from exc
        g.api_client = True
        return f"Bearer {token}"
    public = request.method in SAFE_METHODS or request.path.removeprefix("/api/v1/").startswith(PUBLIC_WRITES)
    principal = current_principal(required=not public)
    return request.headers["Authorization"] if principal is not None else None


def forward(service: str, path: str) -> Response:
    upstream: _Upstream = current_app.extensions["linli.upstream"]
    upstream.ensure()
    settings = upstream.settings
    authorization = authorise_request()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization"}}
    headers["X-Request-ID"] = g.request_id
    headers["X-Forwarded-For"] = ", ".join(filter(None, [request.headers.get("X-Forwarded-For"), request.remote_addr]))
    headers["X-Forwarded-Prefix"] = request.path[: len(request.path) - len(path)] if path else request.path
    if authorization:
        headers["Authorization"] = authorization
    url = f"{settings.service_urls[service]}/{path}"
    breaker = upstream.breakers[service]
    try:
        upstream_response = breaker.call(
            _send, upstream.session, request.method, url, headers, settings.timeouts[service]
        )
    except _ServiceFailed as failed:
        upstream_response = failed.response
    except pybreaker.CircuitBreakerError as exc:
        raise _unavailable(service, "is not answering (circuit open)", settings.breaker_reset_seconds) from exc
    except requests.Timeout as exc:
        raise _unavailable(service, "did not answer in time", 1) from exc
    except requests.RequestException as exc:
        raise _unavailable(service, "is unreachable", 1) from exc
    response_headers = [
        (k, v)
        for k, v in upstream_response.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
    ]
    return Response(upstream_response.content, status=upstream_response.status_code, headers=response_headers)


def _send(session: requests.Session, method: str, url: str, headers: dict[str, str], timeout: float) -> Any:
    response = session.request(
        method,
        url,
        params=request.args,
        data=request.get_data(),
        headers=headers,
        timeout=(2.0, timeout),
        allow_redirects=False,
        stream=False,
    )
    if response.status_code >= 500 and response.status_code != 501:
        # A service that answers 5xx is failing: count it towards opening the circuit, but still
        # hand its answer to the client.
        raise _ServiceFailed(response)
    return response


class _ServiceFailed(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"upstream answered {response.status_code}")
        self.response = response


def _unavailable(service: str, what: str, retry_after: float) -> ServiceUnavailable:
    error = ServiceUnavailable(f"the {service} service {what}; try again shortly")
    error.retry_after = int(max(1, retry_after))
    return error
