"""The web process's gateway client never sends on a pooled connection the gateway may be closing.

The gateway's gunicorn closes a keep-alive connection idle for 5 s; a request that leaves on it just
then meets a reset and no answer (the demo client met it on a POST). The server here is a real
HTTP/1.1 server over TCP that keeps connections alive and resets a request that arrives on one idle
past its keep-alive, as gunicorn does when its keep-alive ends while the request is on its way. Both
sides read one clock the test moves, so idleness is exact and nothing sleeps.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from linli_web.gateway_client import IDLE_REUSE_SECONDS, ApiError, GatewayClient

from linli_kit import gunicorn_conf


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class KeepAliveServer:
    """Answers every request 200 (201 for a POST) with the body it read, keeping the connection
    alive; a request on a connection idle longer than `keepalive` is reset unanswered."""

    def __init__(self, keepalive: float, clock: Clock) -> None:
        self.keepalive = keepalive
        self.clock = clock
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.resets = 0
        self.answered: list[tuple[str, str, bytes]] = []
        self.hold: threading.Barrier | None = None  # answers wait here: forces that many connections
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            with self.lock:
                self.connections += 1
                self._sockets.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        idle_since: float | None = None
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                if idle_since is not None and self.clock() - idle_since > self.keepalive:
                    # Closed with the request unread: the client gets a reset, never an answer.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with self.lock:
                        self.resets += 1
                    return
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                with self.lock:
                    self.answered.append((method, path, body))
                if self.hold is not None:
                    self.hold.wait(timeout=10)
                data = json.dumps({"path": path}).encode()
                status = "201 Created" if method == "POST" else "200 OK"
                # Idle from this answer on; taken before sending, as the client may move the clock as
                # soon as it has read the answer.
                idle_since = self.clock()
                preamble = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                conn.sendall(preamble.encode() + data)

    def stop(self) -> None:
        self.listener.close()
        with self.lock:
            for conn in self._sockets:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[KeepAliveServer]:
    httpd = KeepAliveServer(gunicorn_conf.keepalive, clock)
    yield httpd
    httpd.stop()


def _client(server: KeepAliveServer, clock: Clock, **kwargs: float) -> Iterator[GatewayClient]:
    client = GatewayClient(f"http://127.0.0.1:{server.port}", timeout=5, pool_size=4, clock=clock, **kwargs)
    yield client
    client.http.close()


@pytest.fixture
def client(server: KeepAliveServer, clock: Clock) -> Iterator[GatewayClient]:
    yield from _client(server, clock)


def test_the_limit_is_below_the_gateways_keep_alive() -> None:
    assert IDLE_REUSE_SECONDS < gunicorn_conf.keepalive


def test_the_server_resets_a_request_on_a_connection_idle_past_its_keep_alive(
    server: KeepAliveServer, clock: Clock
) -> None:
    # What the client met before: with no idle limit, the pooled connection is sent on and reset.
    client = next(_client(server, clock, idle_reuse_seconds=math.inf))
    client.request("GET", "/api/v1/a")
    clock.now += gunicorn_conf.keepalive + 0.5
    with pytest.raises(ApiError) as error:
        client.request("POST", "/api/v1/issues/", json_body={"title": "wall"})
    assert error.value.code == "unavailable"
    assert server.resets == 1
    assert [m for m, _, _ in server.answered] == ["GET"]  # the POST never reached the service
    client.http.close()


def test_a_connection_is_kept_alive_while_it_is_used(client: GatewayClient, server: KeepAliveServer, clock: Clock):
    for step in range(3):
        assert client.request("GET", f"/api/v1/{step}").data == {"path": f"/api/v1/{step}"}
        clock.now += IDLE_REUSE_SECONDS - 0.1
    assert server.connections == 1
    assert server.resets == 0


def test_a_post_after_the_gateways_keep_alive_goes_once_on_a_fresh_connection(
    client: GatewayClient, server: KeepAliveServer, clock: Clock
) -> None:
    client.request("GET", "/api/v1/issues/")
    clock.now += gunicorn_conf.keepalive + 0.5
    answer = client.request("POST", "/api/v1/issues/", json_body={"title": "wall"})
    assert answer.status == 201
    assert server.resets == 0
    assert server.connections == 2
    posts = [body for method, _, body in server.answered if method == "POST"]
    assert [json.loads(body) for body in posts] == [{"title": "wall"}]
    # The fresh connection is pooled in turn.
    client.request("GET", "/api/v1/issues/")
    assert server.connections == 2


def test_each_pooled_connection_is_judged_by_its_own_idle_time_across_threads(
    client: GatewayClient, server: KeepAliveServer, clock: Clock
) -> None:
    # Two request threads at once open two connections (the server holds both answers until both came).
    server.hold = threading.Barrier(2)
    results = client.gather([lambda: client.request("GET", "/api/v1/x"), lambda: client.request("GET", "/api/v1/y")])
    assert all(r.status == 200 for r in results)
    assert server.connections == 2

    # A while later one thread uses one connection; the other connection stays idle.
    server.hold = None
    clock.now += 3.0
    client.request("GET", "/api/v1/z")
    clock.now += 2.5  # the one just used is 2.5 s idle, the other 5.5 s: past the gateway's keep-alive

    server.hold = threading.Barrier(2)
    results = client.gather(
        [
            lambda: client.request("POST", "/api/v1/issues/", json_body={"n": 1}),
            lambda: client.request("POST", "/api/v1/issues/", json_body={"n": 2}),
        ]
    )
    assert all(not isinstance(r, ApiError) and r.status == 201 for r in results), results
    assert server.resets == 0
    assert server.connections == 3  # the recent one reused, the stale one replaced
    posts = sorted(json.loads(body)["n"] for method, _, body in server.answered if method == "POST")
    assert posts == [1, 2]
