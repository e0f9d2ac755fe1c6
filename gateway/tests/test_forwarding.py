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
