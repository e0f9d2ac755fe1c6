"""The web front is served at the gateway's address: every path the gateway does not answer itself
goes to the front as it was sent (cookies included, no token added), and comes back as the front
encoded it (a compressed file stays compressed)."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

pytestmark = pytest.mark.integration

PAGE = ("<!doctype html><title>邻里</title>" + "x" * 4000).encode()


class _Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Front.seen.append({"path": self.path, "headers": dict(self.headers.items())})
        body = gzip.compress(PAGE) if "gzip" in self.headers.get("Accept-Encoding", "") else PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if body is not PAGE:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "linli_session=abc; HttpOnly; Path=/; SameSite=Lax")
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def front():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Front)
    _Front.seen.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_pages_go_to_the_front_and_come_back_as_it_encoded_them(platform, front):
    platform.extra_env.update({"FRONT_URL": front})
    gateway = platform.start_web("gateway")

    raw = requests.get(
        gateway.url + "/static/css/app.css?v=1",
        headers={"Accept-Encoding": "gzip", "Cookie": "linli_session=abc"},
        stream=True,
    )
    assert raw.status_code == 200 and raw.headers["Content-Encoding"] == "gzip"
    body = raw.raw.read(decode_content=False)
    assert int(raw.headers["Content-Length"]) == len(body) < len(PAGE) and gzip.decompress(body) == PAGE
    seen = _Front.seen[-1]
    assert seen["path"] == "/static/css/app.css?v=1"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["cookie"] == "linli_session=abc" and "authorization" not in headers
    assert headers["x-forwarded-host"] == gateway.url.removeprefix("http://")

    home = requests.get(gateway.url + "/")
    assert home.status_code == 200 and home.content == PAGE and "linli_session" in home.headers["Set-Cookie"]
    assert _Front.seen[-1]["path"] == "/"
    # A cookie the front set for one person never rides along with the next person's request.
    requests.get(gateway.url + "/login")
    assert "cookie" not in {k.lower() for k in _Front.seen[-1]["headers"]}

    # What the gateway answers itself stays its own.
    before = len(_Front.seen)
    assert requests.get(gateway.url + "/healthz").json() == {"status": "ok"}
    unknown = requests.get(gateway.url + "/api/v2/anything")
    assert unknown.status_code == 404 and json.loads(unknown.content)["error"]["code"] == "not_found"
    assert "paths" in requests.get(gateway.url + "/api/openapi.json").json()
    assert len(_Front.seen) == before


def test_without_a_front_other_paths_are_404(platform):
    platform.extra_env.update({"FRONT_URL": ""})
    gateway = platform.start_web("gateway")
    assert requests.get(gateway.url + "/static/app.css").status_code == 404


def test_the_fronts_calls_count_against_the_person_it_serves(platform, front):
    """The front's calls all come from its own address; the gateway seals the address of the person
    behind each page it passes on, and counts the front's calls for that page against that person."""
    from linli_gateway.entrypoints.front_client import HEADER, ClientSeal

    platform.extra_env.update({"FRONT_URL": front, "RATE_LIMIT_AUTH": "3/minute"})
    gateway = platform.start_web("gateway")

    # A page request: the front is told who asked, sealed; whatever the browser claimed is dropped.
    requests.get(gateway.url + "/", headers={HEADER: "203.0.113.9|9999999999|forged"})
    sealed = {k.lower(): v for k, v in _Front.seen[-1]["headers"].items()}["x-linli-client"]
    seal = ClientSeal(platform.private_key)
    assert seal.open(sealed) == "127.0.0.1" and seal.open("203.0.113.9|9999999999|forged") is None

    def login(headers: dict[str, str]) -> int:
        body = {"phone": "13900000000", "password": "wrong-password"}
        return requests.post(gateway.url + "/api/v1/auth/login", json=body, headers=headers).status_code

    first, second = ({HEADER: seal.seal(address)} for address in ("198.51.100.1", "198.51.100.2"))
    assert [login(first) for _ in range(3)] == [401, 401, 401]
    assert login(first) == 429  # that person has used their sign-in attempts
    assert login(second) == 401  # their neighbour, served by the same front, has not
    # A value the gateway did not seal counts against the caller's own address.
    assert login({HEADER: "198.51.100.3|9999999999|" + "0" * 64}) == 401
