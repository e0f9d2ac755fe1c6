"""Fixtures for the tests that cross services: the platform's real processes on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import pytest


class _Upstream:
    """A stand-in service on loopback that answers with what it received (for the proxy's mechanics)."""

    def __init__(self, *, hang: bool = False) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                outer.requests.append(seen)
                if hang:
                    outer.released.wait(30)
                if self.path.startswith("/openapi.json"):
                    payload = {
                        "openapi": "3.0.3",
                        "info": {"title": "echo", "version": "v1"},
                        "paths": {
                            "/{id}": {
                                "get": {
                                    "tags": ["things"],
                                    "responses": {
                                        "200": {
                                            "description": "ok",
                                            "content": {
                                                "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                                            },
                                        }
                                    },
                                }
                            }
                        },
                        "components": {"schemas": {"Thing": {"type": "object"}}},
                    }
                    status = 200
                elif self.path.startswith("/missing"):
                    payload, status = {"error": {"status": 404, "code": "not_found"}}, 404
                else:
                    payload, status = seen, 200
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Upstream", "echo")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream_factory():
    made: list[_Upstream] = []

    def make(**kwargs) -> _Upstream:
        server = _Upstream(**kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
