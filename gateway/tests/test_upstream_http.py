"""The proxy's own HTTP/1.1 client: what it sends, how it reads each kind of answer, which connections
it reuses, and how it tells a service that is not there from one that is slow or drops the line."""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest
from urllib3.util import parse_url

from linli_gateway.adapters import upstream_http
from linli_gateway.adapters.upstream_http import ConnectFailed, Dropped, ReadTimedOut, UpstreamPools
from linli_gateway.entrypoints.proxy import Answer, _decoded

Reply = Callable[[bytes], bytes | None]  # the request's head and body -> raw answer (None: hang up)


class RawServer:
    """A loopback server answering each request with raw bytes; counts connections and requests."""

    def __init__(self, reply: Reply, *, close_after: bool = False) -> None:
        self.reply = reply
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.hold = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                answer = self.reply(head + b"\r\n\r\n" + body)
                if answer is None:
                    return
                conn.sendall(answer)
                if self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(reply: Reply, **kwargs: bool) -> RawServer:
        servers.append(RawServer(reply, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def ok(body: bytes = b"hello", *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", "Content-Type: text/plain", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def send(pools: UpstreamPools, url: str, method: str = "GET", body: bytes = b"", **headers: str) -> Answer:
    return pools.request(method, url, headers, body, connect_timeout=2, read_timeout=2)


def test_requests_carry_the_headers_given_and_share_one_kept_alive_connection(serve):
    server = serve(lambda _request: ok(b'{"a": 1}', "X-Upstream: raw"))
    pools = UpstreamPools()
    first = send(pools, server.url + "/issues/?community_id=c-1", **{"X-Request-ID": "r-1", "Accept": "*/*"})
    assert (first.status, first.body) == (200, b'{"a": 1}')
    assert ("X-Upstream", "raw") in first.headers and ("Content-Length", "8") in first.headers
    second = send(pools, server.url + "/issues/", "POST", b'{"title": "wall"}')
    assert second.status == 200 and server.connections == 1
    get, post = server.requests
    port = server.url.rsplit(":", 1)[1]
    assert get.startswith(b"GET /issues/?community_id=c-1 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\n")
    assert b"\r\nX-Request-ID: r-1\r\n" in get and b"Content-Length" not in get
    assert post.startswith(b"POST /issues/ HTTP/1.1\r\n")
    assert post.endswith(b'\r\nContent-Length: 17\r\n\r\n{"title": "wall"}')
    # A write without a body still says so, as http.client did.
    send(pools, server.url + "/x", "PUT")
    assert server.requests[-1].endswith(b"\r\nContent-Length: 0\r\n\r\n")


def test_chunked_and_unbounded_bodies_and_answers_without_one(serve):
    chunked = serve(
        lambda _r: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
    )
    pools = UpstreamPools()
    assert send(pools, chunked.url).body == b"hello, world"
    assert send(pools, chunked.url).body == b"hello, world" and chunked.connections == 1

    until_close = serve(lambda _r: b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n", close_after=True)
    assert send(pools, until_close.url).body == b"a,b\r\n1,2\r\n"
    assert send(pools, until_close.url).body == b"a,b\r\n1,2\r\n" and until_close.connections == 2

    empty = serve(lambda r: b"HTTP/1.1 204 No Content\r\n\r\n" if r.startswith(b"DELETE") else ok(b"", "X-A: 1"))
    assert send(pools, empty.url, "DELETE").body == b""
    head = send(pools, empty.url, "HEAD")
    assert head.status == 200 and head.body == b"" and empty.connections == 1

    interim = serve(lambda _r: b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done"))
    assert send(pools, interim.url, "POST", b"x").body == b"done"

    closing = serve(lambda _r: ok(b"bye", "Connection: close"), close_after=True)
    send(pools, closing.url)
    send(pools, closing.url)
    assert closing.connections == 2


def test_a_connection_closed_while_idle_or_idle_too_long_is_not_reused(serve, monkeypatch):
    server = serve(lambda _r: ok(), close_after=True)  # closes after each answer, keep-alive or not
    pools = UpstreamPools()
    for _ in range(3):
        assert send(pools, server.url).status == 200
        time.sleep(0.05)  # the close reaches this end while the connection is idle
    assert server.connections == 3

    lasting = serve(lambda _r: ok())
    send(pools, lasting.url)
    monkeypatch.setattr(upstream_http, "IDLE_SECONDS", 0.05)
    time.sleep(0.1)
    send(pools, lasting.url)
    assert lasting.connections == 2


def test_no_connection_a_slow_answer_and_a_dropped_one_are_told_apart(serve):
    pools = UpstreamPools()
    free = socket.create_server(("127.0.0.1", 0))
    nobody = f"http://127.0.0.1:{free.getsockname()[1]}"
    free.close()
    with pytest.raises(ConnectFailed):
        send(pools, nobody)

    slow = serve(lambda _r: (time.sleep(1.5), ok())[1])
    started = time.monotonic()
    with pytest.raises(ReadTimedOut):
        pools.request("GET", slow.url, {}, b"", connect_timeout=1, read_timeout=0.3)
    assert time.monotonic() - started < 1.2

    hung_up = serve(lambda _r: None)
    with pytest.raises(Dropped):
        send(pools, hung_up.url)
    cut = serve(lambda _r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close_after=True)
    with pytest.raises(Dropped):
        send(pools, cut.url)
    garbage = serve(lambda _r: b"SSH-2.0-OpenSSH\r\n\r\n", close_after=True)
    with pytest.raises(Dropped):
        send(pools, garbage.url)


def test_answers_whose_headers_do_not_describe_their_body(serve):
    # A HEAD answer's Content-Length is the GET's: no body follows and the connection is reused.
    head = serve(lambda _r: ok(b"x" * 40))
    pools = UpstreamPools()
    answer = send(pools, head.url, "HEAD")
    assert (answer.status, answer.body) == (200, b"") and ("Content-Length", "40") in answer.headers
    assert send(pools, head.url).body == b"x" * 40 and head.connections == 1

    not_modified = serve(lambda _r: b"HTTP/1.1 304 Not Modified\r\nContent-Length: 40\r\nETag: e\r\n\r\n")
    assert send(pools, not_modified.url).body == b""
    assert send(pools, not_modified.url).status == 304 and not_modified.connections == 1

    # Bytes after a whole answer, that no request asked for: the answer stands, the line is not reused.
    extra = serve(lambda _r: ok(b"abc") + b"HTTP/1.1 200 OK\r\n")
    assert send(pools, extra.url).body == b"abc"
    assert send(pools, extra.url).body == b"abc" and extra.connections == 2


def test_framing_a_proxy_could_be_fooled_by_is_refused(serve):
    pools = UpstreamPools()
    for raw in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # closed inside a chunk
        b"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
    ):
        server = serve(lambda _r, raw=raw: raw, close_after=True)
        with pytest.raises(Dropped):
            send(pools, server.url)


def test_a_header_cannot_smuggle_another_line(serve):
    server = serve(lambda _r: ok())
    with pytest.raises(ValueError):
        send(UpstreamPools(), server.url, **{"X-A": "1\r\nX-Injected: 2"})
    assert server.requests == []


def test_request_targets_are_encoded_as_urllib3_encoded_them():
    pools = UpstreamPools()
    alphabet = [*"aZ09-._~!$&'()*+,;=:@/?%#[]{}|\\^\"<> ", "é", "邻", "%2F", "%2f", "%zz", "/../", "/./", ".."]
    rng = random.Random(15)
    for _ in range(5000):
        url = "http://127.0.0.1:8001/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        assert pools._split(url)[1] == parse_url(url).request_uri, url


def test_the_proxy_decodes_what_urllib3_decoded_and_passes_on_what_it_cannot():
    page = b'{"items": []}' * 50

    def answer(body: bytes, encoding: str) -> Answer:
        headers = [("Content-Type", "application/json"), ("Content-Encoding", encoding), ("Connection", "keep-alive")]
        return Answer(200, headers, body)

    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for body, encoding in (
        (gzip.compress(page), "gzip"),
        (gzip.compress(page[:100]) + gzip.compress(page[100:]), "gzip"),
        (zlib.compress(page), "deflate"),
        (raw_deflate.compress(page) + raw_deflate.flush(), "deflate"),
        (zlib.compress(gzip.compress(page)), "gzip, deflate"),
        (page, "identity"),
    ):
        decoded = _decoded(answer(body, encoding))
        assert decoded.body == page
        assert decoded.headers == [("Content-Type", "application/json"), ("Connection", "keep-alive")]
    brotli = _decoded(answer(b"\x1b\x00", "br"))
    assert brotli.body == b"\x1b\x00" and ("Content-Encoding", "br") in brotli.headers
    with pytest.raises(Dropped):
        _decoded(answer(b"not gzip", "gzip"))
