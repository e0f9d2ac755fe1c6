"""The only way the web process reaches the platform: the gateway's public HTTP API (`/api/v1/...`).

One pooled `requests.Session` per process, timeouts on every call, and every failure mapped to an
`ApiError` carrying what the gateway's error body says (status, code, message, fields), so a page
can show a message and mark the fields the API named.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)


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
    ) -> None:
        """`language`: the language to ask the API's messages and labels in (`Accept-Language`) for
        a call that does not name one: the reader's, where there is one."""
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.timeout = (min(3.05, timeout), timeout)  # (connect, read)
        self.http = requests.Session()
        # One session serves every signed-in person: no cookie an answer sets may ride along with
        # someone else's call (each person's credential is the token passed per call).
        self.http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
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
