"""Fixtures of the web front's tests.

Unit tests use an app built on a stub gateway (`StubGateway` below) and need nothing running. The
browser tests (`test_browser.py`) start the platform's real processes on SQLite as `make run` does,
the web process beside them, load the demo city through the public API, and drive Debian's Chromium
with Playwright."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from linli_web.app import create_app
from linli_web.settings import load_settings


class StubGateway:
    def __init__(self, *, access_ttl: int = 900) -> None:
        self.access_ttl = access_ttl
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> user id
        self.used_refresh: set[str] = set()
        self.refresh_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self.lock = threading.Lock()
        self.user = {
            "id": "11111111-1111-4111-8111-111111111111",
            "display_name": "Yang Jing 杨静",
            "role": "resident",
            "community_ids": ["22222222-2222-4222-8222-222222222222"],
            "street_id": None,
            "locale": "zh-CN",
            "phone": "+8613900000007",
            "status": "active",
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                if outer.delay:
                    time.sleep(outer.delay)
                status, body, headers = outer.route(self.command, self.path, raw, dict(self.headers))
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pair(self) -> dict[str, Any]:
        now = int(time.time())
        access = jwt.encode({"sub": self.user["id"], "exp": now + self.access_ttl, "jti": str(uuid.uuid4())}, "k" * 32)
        refresh = uuid.uuid4().hex + uuid.uuid4().hex
        self.refresh_tokens[refresh] = self.user["id"]
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": self.access_ttl,
                "user": self.user}  # fmt: skip

    def _error(self, status: int, code: str, fields: dict | None = None) -> tuple[int, dict, dict]:
        body = {"error": {"status": status, "code": code, "message": code, "fields": fields or {}}, "request_id": "r-1"}
        return status, body, {}

    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any, dict]:
        if self.fail_with:
            return self._error(self.fail_with, "unavailable")
        body = json.loads(raw or b"{}") if raw else {}
        if path == "/api/v1/auth/login":
            if body.get("password") != "right-password":
                return self._error(401, "unauthorized")
            return 200, self.pair(), {}
        if path == "/api/v1/auth/refresh":
            with self.lock:
                self.refresh_calls += 1
                token = body.get("refresh_token")
                if token in self.used_refresh or token not in self.refresh_tokens:
                    # The real gateway treats a reused refresh token as stolen and revokes the family.
                    self.refresh_tokens.clear()
                    return self._error(401, "unauthorized")
                self.used_refresh.add(token)
                del self.refresh_tokens[token]
                return 200, self.pair(), {}
        if path == "/api/v1/auth/logout":
            return 204, None, {}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._error(401, "unauthorized")
        try:
            jwt.decode(auth[7:], "k" * 32, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return self._error(401, "unauthorized")
        if path.startswith("/api/v1/notifications/unread-count"):
            return 200, {"count": 3}, {}
        if path.startswith("/api/v1/directory/communities/"):
            return 200, {"id": self.user["community_ids"][0], "name": "Xihu Community 西湖社区"}, {}
        if path.startswith("/api/v1/issues/?") or path == "/api/v1/issues/":
            return 200, [], {"X-Pagination": json.dumps({"total": 0})}
        if path.startswith("/api/v1/notifications/follows"):
            return 200, [], {}
        if path.startswith("/api/v1/issues/bad"):
            return self._error(422, "validation_error", {"title": ["Missing data for required field."]})
        return 200, [], {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()



@pytest.fixture
def stub() -> Iterator[StubGateway]:
    gateway = StubGateway()
    yield gateway
    gateway.close()


@pytest.fixture
def app(stub: StubGateway, tmp_path: Path):
    settings = load_settings(gateway_url=stub.url, data_dir=tmp_path, secret_key="s" * 40)
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()
