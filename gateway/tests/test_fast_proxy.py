"""The proxied reads' fast path (entrypoints/fast_proxy.py) answers as the Flask path does: the same
request through each gives the same answer, sends the service the same request, and is counted once
by the rate limits and the metrics; what it does not serve reaches the Flask app untouched."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client

from linli_gateway.adapters.upstream_http import Answer, ConnectFailed, UpstreamPools
from linli_gateway.entrypoints.fast_proxy import FastProxy
from linli_kit.metrics import HTTP_REQUESTS

REQUEST_ID = "req-fast-1"


class Recorder:
    """Stands in for the services: records each request sent, answers with `answer` (or raises it)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer: Answer | Exception = Answer(200, [("Content-Type", "application/json")], b"[]")

    def request(self, pools: Any, method: str, url: str, headers: dict[str, str], body: bytes, **_: Any) -> Answer:
        self.sent.append((method, url, dict(headers), body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(UpstreamPools, "request", lambda pools, *a, **k: recorder.request(pools, *a, **k))
    return recorder


def fast_proxy_of(app: Any) -> FastProxy:
    inner = app.wsgi_app
    while not isinstance(inner, FastProxy):  # under ProxyFix with TRUSTED_PROXIES
        inner = inner.app
    return inner


class Both:
    """One app, reached through its fast path and straight through its Flask machinery."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fast = fast_proxy_of(app)
        self.flask_calls = 0
        flask_app = self.fast.app
        served = self.fast.services

        def counted(environ: dict, start_response: Any) -> Any:
            self.flask_calls += 1
            return flask_app(environ, start_response)

        def without_fast_path(environ: dict, start_response: Any) -> Any:
            self.fast.services = frozenset()
            try:
                return app.wsgi_app(environ, start_response)
            finally:
                self.fast.services = served

        self.fast.app = counted
        self.through_fast = Client(app.wsgi_app)
        # The whole app (ProxyFix included, with TRUSTED_PROXIES) with no service on the fast path.
        self.through_flask = Client(without_fast_path)

    def compare(self, upstream: Recorder, method: str, url: str, **kwargs: Any) -> tuple[Any, Any]:
        """The same request through each path: their answers, and the requests the service got, the
        same (X-RateLimit-Remaining one less the second time: each request is counted once)."""
        sent_before = len(upstream.sent)
        calls = self.flask_calls
        fast = self.through_fast.open(url, method=method, **kwargs)
        assert self.flask_calls == calls, "the fast path handed the request to Flask"
        flask = self.through_flask.open(url, method=method, **kwargs)
        assert (fast.status, fast.get_data()) == (flask.status, flask.get_data())
        fast_headers, flask_headers = fast.headers.to_wsgi_list(), flask.headers.to_wsgi_list()
        remaining = [i for i, (k, _) in enumerate(fast_headers) if k == "X-RateLimit-Remaining"]
        assert len(remaining) == 1
        (i,) = remaining
        assert flask_headers[i][0] == "X-RateLimit-Remaining"
        assert int(flask_headers[i][1]) == int(fast_headers[i][1]) - 1
        assert fast_headers[:i] + fast_headers[i + 1 :] == flask_headers[:i] + flask_headers[i + 1 :]
        sent = upstream.sent[sent_before:]  # each request once, or with its retries (a 503)
        assert sent and sent[: len(sent) // 2] == sent[len(sent) // 2 :]
        return fast, flask


def resident(token_signer: Any, **headers: str) -> dict[str, str]:
    token = token_signer.sign(user_id="u-1", role="resident", community_ids=["c-1"])
    return {"Authorization": f"Bearer {token}", "X-Request-ID": REQUEST_ID, **headers}


ANSWERS = [
    Answer(
        200,
        [
            ("Content-Type", "application/json"),
            ("X-Pagination", '{"total": 1}'),
            ("X-Request-ID", REQUEST_ID),
            ("Content-Language", "zh-CN"),
            ("Vary", "Accept-Language"),
            ("Content-Length", "9"),
            ("Connection", "keep-alive"),
        ],
        b'[{"a":1}]',
    ),
    # No Content-Type, its own Vary, headers in lower case, hop-by-hop ones to drop.
    Answer(
        404,
        [("vary", "Accept-Encoding"), ("x-request-id", "theirs"), ("Keep-Alive", "5"), ("vary", "Cookie")],
        b"nope",
    ),
    Answer(200, [("Content-Type", "text/plain"), ("VARY", "accept-language, Origin")], b"ok"),
    # Answers werkzeug itself changes on the way out.
    Answer(304, [("ETag", '"x"'), ("Content-Type", "application/json")], b""),
    Answer(204, [("X-Thing", "1")], b""),
    Answer(302, [("Location", "/api/v1/issues/é?x=1"), ("Content-Type", "text/html")], b"moved"),
    Answer(503, [("Content-Type", "application/json")], b'{"error": {"code": "database_unavailable"}}'),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: str(a.status))
def test_the_fast_path_answers_as_the_flask_path(make_app, token_signer, upstream, answer):
    both = Both(make_app())
    upstream.answer = answer
    both.compare(upstream, "GET", "/api/v1/issues/?community_id=c-1", headers=resident(token_signer))


def test_what_is_passed_on_and_answered_is_the_same_for_every_kind_of_read(make_app, token_signer, upstream):
    both = Both(make_app())
    upstream.answer = ANSWERS[0]
    cases = [
        ("GET", "/api/v1/issues/", {}),
        ("HEAD", "/api/v1/issues/?community_id=c-1", {}),
        ("GET", "/api/v1/meetings/a/b/?q=two+words&x=%C3%A9&x=&flag", {"Accept-Language": "en-GB,en;q=0.8"}),
        ("GET", "/api/v1/activities/x", {"Accept-Language": "fr, zh;q=0.1", "X-Forwarded-For": "203.0.113.9"}),
        ("GET", "/api/v1/notifications/mine", {"X-API-Key": "lk_x", "X-Custom_Thing": "1", "X-Linli-Client": "f"}),
    ]
    for method, url, extra in cases:
        fast, _flask = both.compare(upstream, method, url, headers=resident(token_signer, **extra))
        assert fast.status_code == 200
        method_sent, url_sent, headers_sent, body_sent = upstream.sent[-1]
        assert (method_sent, body_sent) == (method, b"")
        assert url_sent.endswith(url.split("/", 4)[4])
        assert headers_sent["X-Request-ID"] == REQUEST_ID
        assert headers_sent["Authorization"] != resident(token_signer)["Authorization"]
        assert fast.headers["X-Request-ID"] == REQUEST_ID
    # Without a request id of the caller's, each path makes one, the same way.
    fast = both.through_fast.get("/api/v1/issues/", headers={"Authorization": resident(token_signer)["Authorization"]})
    assert fast.headers["X-Request-ID"] == upstream.sent[-1][2]["X-Request-ID"]
    assert len(fast.headers["X-Request-ID"]) == 36


def test_behind_a_trusted_proxy_both_paths_see_the_public_request(make_app, token_signer, upstream):
    both = Both(make_app(TRUSTED_PROXIES="1"))
    headers = resident(
        token_signer,
        **{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "linli.example", "X-Forwarded-Prefix": "/city"},
    )
    both.compare(upstream, "GET", "/api/v1/issues/x", headers=headers)
    sent = upstream.sent[-1][2]
    assert (sent["X-Forwarded-Host"], sent["X-Forwarded-Prefix"]) == ("linli.example", "/city/api/v1/issues")


def test_the_fast_path_counts_each_request_once_in_the_metrics(make_app, token_signer, upstream):
    both = Both(make_app())
    child = HTTP_REQUESTS.labels("gateway", "GET", "/api/v1/<service>/<path:path>", 200)
    before = child._value.get()
    both.compare(upstream, "GET", "/api/v1/issues/x", headers=resident(token_signer))
    assert child._value.get() == before + 2


def test_a_service_that_cannot_answer_gets_the_flask_paths_error_once_sent_and_counted(
    make_app, token_signer, upstream
):
    both = Both(make_app(PROXY_RETRIES="1"))
    upstream.answer = ConnectFailed("refused")
    fast = both.through_fast.get("/api/v1/issues/", headers=resident(token_signer))
    assert both.flask_calls == 1  # handed over for the error answer
    assert len(upstream.sent) == 2  # one try, one retry: not sent again by the Flask app
    flask = both.through_flask.get("/api/v1/issues/", headers=resident(token_signer))
    assert fast.status_code == flask.status_code == 503
    assert fast.get_json() == flask.get_json()
    assert fast.headers["Retry-After"] == flask.headers["Retry-After"]
    assert int(fast.headers["X-RateLimit-Remaining"]) == int(flask.headers["X-RateLimit-Remaining"]) + 1
    assert fast.get_json()["request_id"] == REQUEST_ID


def test_over_the_limit_the_fast_path_hands_over_the_429_counted_once(make_app, token_signer, upstream):
    both = Both(make_app(RATE_LIMIT_PER_ACCOUNT="3/minute"))
    headers = resident(token_signer)
    for _ in range(3):
        assert both.through_fast.get("/api/v1/issues/", headers=headers).status_code == 200
    assert both.flask_calls == 0
    fast = both.through_fast.get("/api/v1/issues/", headers=headers)
    flask = both.through_flask.get("/api/v1/issues/", headers=headers)
    assert fast.status_code == flask.status_code == 429
    assert fast.get_json() == flask.get_json()
    assert fast.headers["X-RateLimit-Remaining"] == flask.headers["X-RateLimit-Remaining"] == "0"
    assert abs(int(fast.headers["Retry-After"]) - int(flask.headers["Retry-After"])) <= 1
    assert len(upstream.sent) == 3


@pytest.mark.parametrize(
    ("method", "url", "extra", "status"),
    [
        ("GET", "/api/v1/issues/", {"Authorization": "Bearer not-a-token"}, 401),
        ("GET", "/api/v1/issues/", {"Authorization": "Basic dTpw"}, 401),
        ("GET", "/api/v1/issues/?q=%00", {}, 422),
        ("GET", "/api/v1/nowhere/", {}, 404),
        ("GET", "/api/v1/directory/streets", {}, 200),
        ("GET", "/api/v1/issues//x", {}, 404),
        ("GET", "/api/v1/issues", {}, 308),
        ("POST", "/api/v1/issues/", {}, 200),
        ("DELETE", "/api/v1/issues/x", {}, 200),
        ("GET", "/api/v1/issues/é", {}, 200),
    ],
)
def test_what_the_fast_path_does_not_serve_reaches_the_flask_app(
    make_app, token_signer, upstream, method, url, extra, status
):
    both = Both(make_app())
    headers = resident(token_signer) | extra
    answer = both.through_fast.open(url, method=method, headers=headers, json={} if method == "POST" else None)
    assert both.flask_calls == 1
    assert answer.status_code == status
