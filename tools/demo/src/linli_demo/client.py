"""A thin client of the gateway's public API, as a phone app or a script would use it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

# A pooled connection idle longer than this is not used again. The platform's gunicorn closes a
# keep-alive connection after 5 s idle (linli_kit/gunicorn_conf.py); a request sent on one just as
# it closes meets a reset before any answer, and a POST cannot be safely sent again. Below 5 s the
# server never closes a connection the client is about to use.
IDLE_REUSE_SECONDS = 4.0


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, response: requests.Response) -> None:
        super().__init__(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        self.status = response.status_code
        self.response = response


@dataclass
class Session:
    """One person's session: logs in by phone and password, calls the API with their token."""

    base_url: str
    name: str = "anonymous"
    token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)
    http: requests.Session = field(default_factory=requests.Session)
    last_call: float = field(default=float("-inf"), repr=False)

    @property
    def id(self) -> str:
        return self.user["id"]

    def login(self, phone: str, password: str) -> Session:
        answer = self.call("POST", "/api/v1/auth/login", json={"phone": phone, "password": password})
        self.token = answer["access_token"]
        self.user = answer["user"]
        self.name = self.user["display_name"]
        return self

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if time.monotonic() - self.last_call > IDLE_REUSE_SECONDS:
            self.http.close()  # its pools empty; the next request opens a fresh connection
        try:
            response = self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)
        finally:
            self.last_call = time.monotonic()
        if response.status_code not in expect:
            raise ApiError(method, path, response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.content

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: dict | None = None, **kwargs: Any) -> Any:
        return self.call("POST", path, json=body or {}, **kwargs)

    def put(self, path: str, body: dict | None = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, json=body or {}, **kwargs)

    def patch(self, path: str, body: dict | None = None, **kwargs: Any) -> Any:
        return self.call("PATCH", path, json=body or {}, **kwargs)
