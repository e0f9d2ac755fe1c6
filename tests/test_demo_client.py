"""The demo client (the story's and the demo city's) never sends on a connection the server may be
closing: one idle past the platform's keep-alive is dropped, not reused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from linli_demo.client import IDLE_REUSE_SECONDS, Session
from linli_kit import gunicorn_conf


class _Counting(ThreadingHTTPServer):
    connections = 0

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Counting]:
    httpd = _Counting(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_connection_idle_past_the_limit_is_not_reused(server: _Counting) -> None:
    session = Session(f"http://127.0.0.1:{server.server_address[1]}")
    assert session.get("/a") == {"ok": True}
    assert session.get("/b") == {"ok": True}
    assert server.connections == 1  # kept alive while in use

    session.last_call -= IDLE_REUSE_SECONDS + 1  # as if idle that long
    assert session.get("/c") == {"ok": True}
    assert server.connections == 2
    assert session.get("/d") == {"ok": True}
    assert server.connections == 2


def test_the_limit_is_below_the_platforms_keep_alive() -> None:
    assert IDLE_REUSE_SECONDS < gunicorn_conf.keepalive
