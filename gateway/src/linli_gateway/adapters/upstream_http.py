"""The proxy's HTTP/1.1 client: kept-alive connections to the services, one request at a time each.

urllib3 (over `http.client`) spent about half of the gateway's own work on a proxied request: the
pool manager parsing the URL and looking up its pool, `http.client` writing each header with a call
of its own and parsing the answer's headers with the `email` package, the response object's
machinery. A proxy needs none of that: it sends headers it already has, and has the answer (status line,
headers, a body delimited by Content-Length, chunks, or the end of the connection) parsed by
httptools, llhttp's binding (the parser of Node.js and of uvicorn): the protocol's corner cases,
where request smuggling hides, are a well-kept parser's job, not this module's.

What a caller can tell apart, for the proxy's retries and circuit breaker:
- `ConnectFailed`: no connection could be made (refused, unreachable, connect timeout); the service
  never saw the request.
- `ReadTimedOut`: the service took longer than the read timeout to send (part of) its answer.
- `Dropped`: the connection closed or broke before a whole answer came, or the answer was not HTTP.

A connection idle in the pool is checked before use (closed by the service meanwhile: a new one is
made), and one idle longer than `IDLE_SECONDS` is closed rather than reused: the services' gunicorn
closes a kept-alive connection after 5 s (linli_kit.gunicorn_conf), and a request sent on it just
as it closes would come back `Dropped`.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import httptools
from urllib3.util import parse_url

IDLE_SECONDS = 4.0
MAX_LINE = 65536
MAX_HEADERS = 100
# The header section is read whole before any of it is passed on: bounded as its lines were before.
MAX_HEAD = MAX_LINE * (MAX_HEADERS + 1)
# Methods whose request carries a body by definition: an empty one is said (Content-Length: 0).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A request target urllib3 would send unchanged: only the characters it leaves as they are, percent
# escapes already upper-case, no dot segment ("/./", "/../") for it to resolve. Any other target is
# made by urllib3 itself, so what a service receives is the same as before.
_PLAIN_TARGET = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*")
_CTL = re.compile(r"[\r\n\0]")


class ConnectFailed(Exception):
    """No connection: the service never saw the request."""


class ReadTimedOut(Exception):
    """The service did not send its answer in time."""


class Dropped(Exception):
    """The connection broke before a whole answer came (or the answer was not HTTP)."""


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: str


class _Connection:
    __slots__ = ("sock", "idle_since")

    def __init__(self, origin: _Origin, connect_timeout: float, tls: ssl.SSLContext | None) -> None:
        try:
            sock = socket.create_connection((origin.host, origin.port), timeout=connect_timeout)
        except OSError as exc:  # refused, unreachable, name unknown, timed out
            raise ConnectFailed(f"{origin.host}:{origin.port}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=origin.host)
        except OSError as exc:
            sock.close()
            raise ConnectFailed(f"{origin.host}:{origin.port}: {exc}") from exc
        self.sock = sock
        self.idle_since = 0.0

    def closed_by_peer(self) -> bool:
        """Readable while idle: the service closed it (or sent something unasked). Either way it
        cannot carry another request."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.sock.close()


class UpstreamPools:
    """Idle kept-alive connections per origin (scheme, host, port), at most `maxsize` each; more
    connections than that are made when needed and closed after their request. One per process:
    made again after a fork (see the proxy's `_Upstream`)."""

    def __init__(self, maxsize: int = 32) -> None:
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._origins: dict[str, tuple[_Origin, str]] = {}
        self._tls: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Answer:
        """Send one request; the answer whole (its body as the service encoded it)."""
        origin, target = self._split(url)
        head = _request_head(method, target, origin.host_header, headers, body)
        connection = self._take(origin, connect_timeout)
        try:
            connection.sock.settimeout(read_timeout)
            try:
                if body and len(body) < 65536:
                    connection.sock.sendall(head + body)
                else:
                    connection.sock.sendall(head)
                    if body:
                        connection.sock.sendall(body)
                answer, reusable = _read_answer(connection.sock, method)
            except TimeoutError as exc:
                raise ReadTimedOut(f"{origin.host}:{origin.port} did not answer within {read_timeout} s") from exc
            except OSError as exc:
                raise Dropped(f"{origin.host}:{origin.port}: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        self._give_back(origin, connection, reusable)
        return answer

    def _split(self, url: str) -> tuple[_Origin, str]:
        scheme, _, rest = url.partition("://")
        authority, slash, target = rest.partition("/")
        target = slash + target
        known = self._origins.get(scheme + "://" + authority)
        if known is None:
            parsed = parse_url(scheme + "://" + authority)
            if parsed.scheme not in {"http", "https"} or not parsed.host:
                raise ValueError(f"not an http(s) service URL: {url!r}")
            default = 443 if parsed.scheme == "https" else 80
            port = parsed.port or default
            host_header = parsed.host if port == default else f"{parsed.host}:{port}"
            known = (_Origin(parsed.scheme, parsed.host.strip("[]"), port, host_header), authority)
            self._origins[scheme + "://" + authority] = known
        if not target:
            target = "/"
        elif "/." in target or not _PLAIN_TARGET.fullmatch(target):
            # Spaces, non-ASCII, quotes...: percent-encoded exactly as urllib3 did before.
            target = parse_url(url).request_uri
        return known[0], target

    def _take(self, origin: _Origin, connect_timeout: float) -> _Connection:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            if now - connection.idle_since < IDLE_SECONDS and not connection.closed_by_peer():
                return connection
            connection.close()
        if origin.scheme == "https" and self._tls is None:
            self._tls = ssl.create_default_context()
        return _Connection(origin, connect_timeout, self._tls if origin.scheme == "https" else None)

    def _give_back(self, origin: _Origin, connection: _Connection, reusable: bool) -> None:
        if reusable:
            connection.idle_since = time.monotonic()
            with self._lock:
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self._maxsize:
                    idle.append(connection)
                    return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


def _request_head(method: str, target: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    # A line break in a name or value would let it write headers (or a request) of its own.
    if _CTL.search("".join(lines)) or " " in method or " " in target:
        raise ValueError("a header or the request line contains a line break or NUL")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Reading:
    """httptools' callbacks for one answer: what it collects, and when the answer is whole.

    llhttp parses the status line, headers and framing (Content-Length, chunked, 1xx/204/304);
    this only keeps what the proxy passes on and decides what the parser cannot be told: a HEAD
    answer has no body whatever its headers say, and the end of the connection ends a body that
    has neither a length nor chunks (httptools has no call for the connection's end)."""

    __slots__ = ("head", "status", "headers", "parts", "headers_done", "done", "keep_alive", "framed", "parser")

    def __init__(self, head: bool) -> None:
        self.head = head
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.framed = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_message_begin(self) -> None:
        if self.done:
            # Bytes after the whole answer, that no request asked for: the connection is not reused.
            self.keep_alive = False
            return
        # After an interim 1xx answer: the final one starts afresh.
        self.headers = []
        self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a chunked body's trailers: not passed on, as before
        if len(self.headers) >= MAX_HEADERS:
            raise Dropped("more than 100 headers")
        if len(name) + len(value) > MAX_LINE:
            raise Dropped("header line too long")
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
        ):
            self.framed = True
        self.headers.append((name.decode("latin-1"), value.decode("latin-1").rstrip(" \t")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None
        if self.done:
            return
        status = parser.get_status_code()
        if status < 200 and status != 101:
            return  # interim: its message completes without a body and the final answer follows
        self.status = status
        self.headers_done = True
        # Asked now: once the message completes llhttp has reset what it knows of its framing.
        self.keep_alive = parser.should_keep_alive() and status != 101
        if self.head or status == 101:
            self.done = True  # no body follows (a HEAD answer's Content-Length describes a GET's)

    def on_body(self, data: bytes) -> None:
        if not self.done:
            self.parts.append(data)

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.done = True

    def at_end(self) -> Answer:
        """The connection closed before the parser saw a whole answer: whole only if its body is
        delimited by the connection's end."""
        if not self.headers_done:
            raise Dropped("the connection closed without a (whole) answer's headers")
        if self.framed:
            raise Dropped(f"the connection closed after {sum(map(len, self.parts))} bytes of the body")
        return Answer(self.status, self.headers, b"".join(self.parts))


def _read_answer(sock: socket.socket, method: str) -> tuple[Answer, bool]:
    """One answer (interim 1xx answers skipped), parsed by httptools; and whether the connection
    may carry another request."""
    reading = _Reading(method == "HEAD")
    parser = httptools.HttpResponseParser(reading)
    reading.parser = parser
    received = 0
    while not reading.done:
        data = sock.recv(65536)
        if not data:
            return reading.at_end(), False
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:  # HttpParserUpgrade and callback errors included
            if reading.done:
                # Whole, but followed by bytes no request asked for (or by another protocol's):
                # the answer stands, the connection is not reused.
                reading.keep_alive = False
                break
            cause = exc.__context__
            if isinstance(cause, Dropped):
                raise cause from None
            raise Dropped(f"not a valid HTTP answer: {exc}") from exc
        if not reading.headers_done:
            received += len(data)
            if received > MAX_HEAD:
                raise Dropped("the answer's headers are too long")
    return Answer(reading.status, reading.headers, b"".join(reading.parts)), reading.keep_alive
