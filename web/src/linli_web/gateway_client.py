"""The only way the web process reaches the platform: the gateway's public HTTP API (`/api/v1/...`).

One pooled `requests.Session` per process, timeouts on every call, and every failure mapped to an
`ApiError` carrying what the gateway's error body says (status, code, message, fields), so a page
can show a message and mark the fields the API named. A pooled connection idle past
`IDLE_REUSE_SECONDS` is closed before it would be used again (see `_FreshConnectionPool`).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger(__name__)

# A pooled connection idle longer than this is never sent on again. The gateway's gunicorn closes a
# keep-alive connection after 5 s idle (linli_kit/gunicorn_conf.py); a request sent on one just as
# the server closes it meets a reset before any answer, and a POST must not be sent twice, so no
# retry can mend it. Below 5 s the server never closes a connection the client is about to use.
IDLE_REUSE_SECONDS = 4.0


class _FreshConnectionPool(HTTPConnectionPool):
    """A pool that closes a connection idle past `idle_reuse_seconds` when it is taken out, so the
    request opens a fresh one. The idle time is kept on each connection (from when its answer was
    read and it came back to the pool): one request thread's connection is judged by its own age,
    never by another thread's, and nothing is shared across threads but urllib3's own queue."""

    def __init__(
        self, *args: Any, idle_reuse_seconds: float, clock: Callable[[], float] = time.monotonic, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.idle_reuse_seconds = idle_reuse_seconds
        self.clock = clock

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.linli_idle_since = self.clock()
        super()._put_conn(conn)

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        idle_since = getattr(conn, "linli_idle_since", None)
        if idle_since is not None and self.clock() - idle_since > self.idle_reuse_seconds:
            # As urllib3 does with a connection it finds dropped: closed, it connects afresh on use.
            conn.close()
            conn.linli_idle_since = None
        return conn


class _FreshHTTPSConnectionPool(_FreshConnectionPool, HTTPSConnectionPool):
    pass


class _FreshAdapter(HTTPAdapter):
    """requests' adapter whose pools (direct or through a proxy) are `_FreshConnectionPool`s."""

    def __init__(self, *, idle_reuse_seconds: float, clock: Callable[[], float], **kwargs: Any) -> None:
        fresh = {"idle_reuse_seconds": idle_reuse_seconds, "clock": clock}
        self._pool_classes = {
            "http": functools.partial(_FreshConnectionPool, **fresh),
            "https": functools.partial(_FreshHTTPSConnectionPool, **fresh),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager


class ApiError(RuntimeError):
    """The gateway answered with an error, or could not be reached (`status` 503, code `unavailable`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.request_id = request_id

    @property
    def unavailable(self) -> bool:
        return self.code in ("unavailable", "timeout") or self.status >= 500

    @classmethod
    def from_response(cls, response: requests.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            fields = error.get("fields") if isinstance(error.get("fields"), dict) else {}
            # The error body names a field's problems as a list, or as nested dicts for nested input.
            flat = {
                str(k): v if isinstance(v, list) else [json.dumps(v, ensure_ascii=False)] for k, v in fields.items()
            }
            return cls(
                response.status_code,
                str(error.get("code") or "error"),
                str(error.get("message") or response.reason),
                flat,
                body.get("request_id"),
            )
        return cls(response.status_code, "error", response.reason or "error")


@dataclass
class ApiResponse:
    status: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def total(self) -> int | None:
        """The list's total from `X-Pagination`, when the API sent one."""
        raw = self.headers.get("X-Pagination")
        if not raw:
            return None
        try:
            return int(json.loads(raw).get("total"))
        except (ValueError, TypeError, AttributeError):
            return None


class GatewayClient:
    """Calls the gateway. Thread-safe: `requests.Session` pools connections per host."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        pool_size: int = 16,
        language: Callable[[], str | None] | None = None,
        idle_reuse_seconds: float = IDLE_REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`language`: the language to ask the API's messages and labels in (`Accept-Language`) for
        a call that does not name one: the reader's, where there is one. `idle_reuse_seconds`: a
        pooled connection idle longer is not used again (keep it below the gateway's keep-alive);
        `clock` measures that idle time (a test's own clock)."""
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.timeout = (min(3.05, timeout), timeout)  # (connect, read)
        self.http = requests.Session()
        # One session serves every signed-in person: no cookie an answer sets may ride along with
        # someone else's call (each person's credential is the token passed per call).
        self.http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = _FreshAdapter(
            idle_reuse_seconds=idle_reuse_seconds,
            clock=clock,
            pool_connections=4,
            pool_maxsize=pool_size,
            max_retries=0,
        )
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
        raw: bool = False,
    ) -> ApiResponse:
        """One call. 2xx: the decoded body (or bytes when `raw`); otherwise raises ApiError."""
        if not path.startswith("/api/v1/"):
            raise ValueError(f"the web front calls only the public API, not {path!r}")
        sent = {"Accept": "application/json", **(headers or {})}
        if "Accept-Language" not in sent and self.language is not None:
            chosen = self.language()
            if chosen:
                sent["Accept-Language"] = chosen
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if request_id:
            sent["X-Request-ID"] = request_id
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = self.http.request(
                method,
                self.base_url + path,
                json=json_body if files is None else None,
                params=clean,
                files=files,
                headers=sent,
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            log.warning("gateway timeout: %s %s", method, path)
            raise ApiError(504, "timeout", "the platform did not answer in time") from exc
        except requests.RequestException as exc:
            log.warning("gateway unreachable: %s %s: %s", method, path, type(exc).__name__)
            raise ApiError(503, "unavailable", "the platform cannot be reached") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        headers_out = {k: v for k, v in response.headers.items()}
        if raw:
            return ApiResponse(response.status_code, None, headers_out, response.content)
        data: Any = None
        if response.content and response.headers.get("Content-Type", "").startswith("application/json"):
            data = response.json()
        return ApiResponse(response.status_code, data, headers_out, response.content if data is None else b"")

    def gather(self, calls: Iterable[Callable[[], Any]]) -> list[Any]:
        """Run independent calls at once (a page's server time is then about its slowest call, not the
        sum). Each result is the call's value or the ApiError it raised."""
        calls = list(calls)
        if len(calls) <= 1:
            return [_capture(c) for c in calls]
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gateway")
        return list(self._executor.map(_capture, calls))


def _capture(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ApiError as error:
        return error
