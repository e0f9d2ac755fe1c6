"""What the gateway tells a service about the public request (X-Forwarded-*), with and without a
trusted proxy in front."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from linli_gateway.entrypoints.proxy import forwarding_headers

CLIENT_CLAIMS = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "linli.example.org",
    "X-Forwarded-Prefix": "/city",
}


def seen_by_service(trusted_proxies: int, route_prefix: str) -> dict[str, str]:
    app = Flask("gateway-test")
    if trusted_proxies:
        n = trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)
    seen: dict[str, str] = {}

    @app.get("/<path:path>")
    def view(path: str) -> str:
        seen.update(forwarding_headers(route_prefix))
        return ""

    app.test_client().get(
        "/api/v1/issues/x",
        headers=CLIENT_CLAIMS,
        base_url="http://gw.internal:8000",
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )
    return seen


def test_the_gateway_at_the_edge_reports_what_it_saw_itself():
    assert seen_by_service(0, "/api/v1/issues") == {
        "X-Forwarded-For": "203.0.113.9, 127.0.0.2",
        "X-Forwarded-Host": "gw.internal:8000",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Prefix": "/api/v1/issues",
    }
    # Open311 paths are not rewritten: no prefix at all (not "/").
    assert "X-Forwarded-Prefix" not in seen_by_service(0, "")


def test_behind_a_trusted_proxy_the_public_address_is_the_proxys():
    assert seen_by_service(1, "/api/v1/issues") == {
        "X-Forwarded-For": "203.0.113.9, 127.0.0.2",
        "X-Forwarded-Host": "linli.example.org",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Prefix": "/city/api/v1/issues",
    }
    assert seen_by_service(1, "")["X-Forwarded-Prefix"] == "/city"


def test_the_callers_headers_are_passed_as_werkzeug_names_them_less_the_gateways_own():
    """`_passed_headers` reads the WSGI environ with names remembered per key: what it passes must be
    what `request.headers` holds, less hop-by-hop headers, forwarding claims and credentials."""
    from flask import g, request

    from linli_gateway.entrypoints import proxy

    app = Flask("gateway-test")
    passed: list[dict[str, str]] = []
    expected: list[dict[str, str]] = []

    @app.route("/<path:path>", methods=["GET", "POST"])
    def view(path: str) -> str:
        g.request_id = "r-1"
        passed.append(proxy._passed_headers("/api/v1/issues"))
        own = {k: v for k, v in request.headers.items() if k.lower() not in proxy._NOT_PASSED}
        expected.append(own | forwarding_headers("/api/v1/issues") | {"X-Request-ID": "r-1"})
        return ""

    odd = {
        "accept-LANGUAGE": "zh",
        "X-Custom_Thing": "1",
        "X-Empty": "",
        "Authorization": "Bearer secret",
        "X-API-Key": "lk_x",
        "Connection": "keep-alive",
        "Keep-Alive": "5",
        "X-Linli-Client": "forged",
        "Forwarded": "for=1.2.3.4",
    }
    client = app.test_client()
    for _ in range(2):  # the second time from the remembered names
        client.post("/api/v1/issues/x", headers=odd, data=b"{}", content_type="application/json")
        client.get("/api/v1/issues/x", headers={"Content-Type": ""})
    assert passed == expected
    assert passed[0]["Accept-Language"] == "zh" and passed[0]["X-Empty"] == "" and passed[0]["X-Api-Key"] == "lk_x"
    assert passed[0]["Content-Type"] == "application/json" and "Content-Type" not in passed[1]
    assert not {"Authorization", "Connection", "Keep-Alive", "X-Linli-Client", "Forwarded"} & set(passed[0])


def test_the_remembered_header_names_are_bounded(monkeypatch):
    from linli_gateway.entrypoints import proxy

    monkeypatch.setattr(proxy, "_ENVIRON_HEADERS", {})
    monkeypatch.setattr(proxy, "_ENVIRON_HEADERS_KEPT", 3)
    app = Flask("gateway-test")
    seen: list[dict[str, str]] = []

    @app.get("/<path:path>")
    def view(path: str) -> str:
        from flask import g

        g.request_id = "r"
        seen.append(proxy._passed_headers(""))
        return ""

    client = app.test_client()
    for n in range(5):
        client.get("/x", headers={f"X-Made-Up-{n}": str(n)})
    assert len(proxy._ENVIRON_HEADERS) == 3
    assert [s[f"X-Made-Up-{n}"] for n, s in enumerate(seen)] == ["0", "1", "2", "3", "4"]


def test_a_body_is_forwarded_whole_and_a_bodiless_request_sends_none(make_app, token_signer, monkeypatch):
    """The proxy reads the caller's body only when there is one (Content-Length or
    Transfer-Encoding): a form, JSON, a chunked upload go on whole; a GET goes on empty."""
    import io

    from linli_gateway.adapters.upstream_http import Answer, UpstreamPools

    sent: list[bytes] = []

    def request(self, method, url, headers, body, **_timeouts):  # noqa: ANN001, ANN202 - the pool's own signature
        sent.append(body)
        return Answer(200, [("Content-Type", "application/json")], b"{}")

    monkeypatch.setattr(UpstreamPools, "request", request)
    client = make_app().test_client()
    resident = {"Authorization": "Bearer " + token_signer.sign(user_id="u", role="resident", community_ids=["c"])}
    assert client.get("/api/v1/issues/", headers=resident).status_code == 200
    assert client.post("/api/v1/issues/", json={"title": "x"}, headers=resident).status_code == 200
    assert (
        client.post("/open311/v2/requests.json", data={"api_key": "k", "a": "1"}, headers=resident).status_code == 200
    )
    chunked = b"chunked body, no length"
    answer = client.post(
        "/api/v1/issues/",
        headers={**resident, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": io.BytesIO(chunked), "wsgi.input_terminated": True},
    )
    assert answer.status_code == 200
    assert sent == [b"", b'{"title": "x"}', b"api_key=k&a=1", chunked]
