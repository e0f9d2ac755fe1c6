"""The proxy's HTTP/1.1 client: kept-alive connections to the services, one request at a time each.

urllib3 (over `http.client`) spent about half of the gateway's own work on a proxied request: the
pool manager parsing the URL and looking up its pool, `http.client` writing each header with a call
of its own and parsing the answer's headers with the `email` package, the response object's
machinery. A proxy needs none of that: it sends headers it already has, and reads a status line,
header lines and a body delimited by Content-Length, chunks, or the end of the connection.

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

from urllib3.util import parse_url

IDLE_SECONDS = 4.0
MAX_LINE = 65536
MAX_HEADERS = 100
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
    __slots__ = ("sock", "reader", "idle_since")

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
        self.reader = sock.makefile("rb")
        self.idle_since = 0.0

    def closed_by_peer(self) -> bool:
        """Readable while idle: the service closed it (or sent something unasked). Either way it
        cannot carry another request."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.reader.close()
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
                answer, reusable = _read_answer(connection.reader, method)
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


def _read_answer(reader: object, method: str) -> tuple[Answer, bool]:
    """Status line, headers and body of one answer (interim 1xx answers skipped); and whether the
    connection may carry another request."""
    readline = reader.readline  # type: ignore[attr-defined]
    while True:
        line = readline(MAX_LINE + 1)
        if not line:
            raise Dropped("the connection closed without an answer")
        if len(line) > MAX_LINE:
            raise Dropped("status line too long")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/") or len(code) != 3 or not code.isdigit():
            raise Dropped(f"not an HTTP answer: {line[:80]!r}")
        status = int(code)
        headers: list[tuple[str, str]] = []
        while True:
            line = readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise Dropped("header line too long")
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise Dropped("the connection closed in the answer's headers")
            if line[0] in b" \t" and headers:  # an obsolete folded continuation line
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.decode("latin-1").strip())
                continue
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise Dropped(f"not a header line: {line[:80]!r}")
            headers.append((name.strip(), value.strip()))
            if len(headers) > MAX_HEADERS:
                raise Dropped("more than 100 headers")
        if status >= 200 or status == 101:
            break
    keep_alive = version == b"HTTP/1.1"
    length: str | None = None
    chunked = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            if length is not None and length != value:
                raise Dropped("conflicting Content-Length headers")
            length = value
        elif lowered == "transfer-encoding":
            chunked = value.lower().rsplit(",", 1)[-1].strip() == "chunked"
        elif lowered == "connection" and "close" in value.lower():
            keep_alive = False
    if method == "HEAD" or status in (204, 304) or status < 200:
        return Answer(status, headers, b""), keep_alive and status != 101
    if chunked:
        return Answer(status, headers, _read_chunks(reader)), keep_alive
    if length is not None:
        if not length.isdigit():
            raise Dropped(f"bad Content-Length {length!r}")
        size = int(length)
        body = reader.read(size)  # type: ignore[attr-defined]
        if len(body) != size:
            raise Dropped(f"the connection closed after {len(body)} of {size} bytes")
        return Answer(status, headers, body), keep_alive
    # Neither: the body ends where the connection does.
    return Answer(status, headers, reader.read()), False  # type: ignore[attr-defined]


def _read_chunks(reader: object) -> bytes:
    readline, read = reader.readline, reader.read  # type: ignore[attr-defined]
    parts: list[bytes] = []
    while True:
        line = readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise Dropped(f"bad chunk size {line[:80]!r}") from exc
        if size == 0:
            break
        chunk = read(size)
        if len(chunk) != size or read(2) != b"\r\n":
            raise Dropped("the connection closed inside a chunk")
        parts.append(chunk)
    while True:  # trailers, up to the blank line
        line = readline(MAX_LINE + 1)
        if not line:
            raise Dropped("the connection closed in the trailers")
        if line in (b"\r\n", b"\n"):
            break
    return b"".join(parts)
