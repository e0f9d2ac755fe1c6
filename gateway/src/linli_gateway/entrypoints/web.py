"""The gateway web process: `gunicorn 'linli_gateway.entrypoints.web:create_app()'`."""

from __future__ import annotations

import os

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from linli_gateway import SERVICE
from linli_gateway.adapters.passwords import HashingPool
from linli_gateway.adapters.revocations import RevokedTokens
from linli_gateway.adapters.service_tokens import ServiceTokens
from linli_gateway.definition import definition
from linli_gateway.entrypoints import auth_api, directory_api, fast_proxy, limits, openapi, proxy, search_api, stats_api
from linli_gateway.entrypoints.front_client import ClientSeal
from linli_gateway.entrypoints.limits import account_key, client_key
from linli_gateway.service_layer.accounts import API_CLIENT_TOKEN_TTL, Identity
from linli_gateway.settings import ROUTED_SERVICES, load_gateway_settings
from linli_kit.auth import Principal, TokenSigner, TokenVerifier
from linli_kit.db import Database
from linli_kit.errors import NotFound, Unauthorized
from linli_kit.web import create_app as create_kit_app

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RevocationAwareVerifier(TokenVerifier):
    """Refuses access tokens revoked by logout, and those of an account whose sessions ended
    (disabled, password reset, logged out everywhere), which a signature check alone would accept."""

    def __init__(self, public_key: str, *, issuer: str, revoked: RevokedTokens, audience: str) -> None:
        super().__init__(public_key, issuer=issuer, audience=audience)
        self.revoked = revoked

    def verify(self, token: str) -> Principal:
        principal = super().verify(token)
        if principal.token_id and principal.token_id in self.revoked:
            raise Unauthorized("token revoked (logged out)")
        if self.revoked.session_ended(principal.user_id, principal.extra.get("iat_ms")):
            raise Unauthorized("session ended (account disabled, password reset or logged out everywhere)")
        return principal


def _keep_form_body() -> None:
    if request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        request.get_data(cache=True)


def create_app() -> Flask:
    settings = definition.settings()
    gateway = load_gateway_settings(settings)
    database = Database(settings.database_url)
    app = create_kit_app(
        settings,
        database,
        title="Linli gateway",
        blueprints=[directory_api.blp, auth_api.blp, stats_api.blp, search_api.blp],
        verifier=RevocationAwareVerifier(
            settings.jwt_public_key(),
            issuer=settings.jwt_issuer,
            revoked=RevokedTokens(database, token_lifetime=max(gateway.access_token_ttl, API_CLIENT_TOKEN_TTL)),
            audience=SERVICE,
        ),
    )
    # Keep a form's raw body readable for forwarding (Open311 posts forms): once anything parses
    # `request.form` from the stream (the kit's input checks do, before any view), `get_data()` is
    # empty, unless the body was cached first. So this hook goes before the kit's.
    app.before_request_funcs.setdefault(None, []).insert(0, _keep_form_body)
    signer = TokenSigner(gateway.private_key(), issuer=settings.jwt_issuer, ttl=gateway.access_token_ttl)
    hashing = HashingPool(gateway.password_hash_workers, gateway.password_hash_queue, gateway.password_hash_niceness)
    app.extensions["linli.password_hashing"] = hashing
    app.extensions["linli.identity"] = Identity(signer, check_password=hashing.check_password)
    app.extensions["linli.client_seal"] = ClientSeal(gateway.private_key())
    app.extensions["linli.service_tokens"] = ServiceTokens(signer)
    proxy.install(app, gateway)
    app.register_blueprint(openapi.blp)

    rate_limits = limits.install(app, gateway, workers=int(os.environ.get("WEB_CONCURRENCY") or 2))
    rate_limits.limit_blueprint(auth_api.blp.name, gateway.auth_rate_limit, client_key, methods=["POST"])
    rate_limits.limit_endpoint("route", gateway.account_rate_limit, account_key)
    rate_limits.limit_endpoint("open311", gateway.account_rate_limit, account_key)

    def route(service: str, path: str = "") -> Response:
        if service not in ROUTED_SERVICES:
            raise NotFound(
                "no service {service!r}; known: {known}", service=service, known=", ".join(sorted(ROUTED_SERVICES))
            )
        return proxy.forward(service, path, route_prefix=f"/api/v1/{service}")

    def open311(path: str) -> Response:
        return proxy.forward_open311(path)

    app.add_url_rule("/api/v1/<service>/", "route", route, methods=ALL_METHODS, defaults={"path": ""})
    app.add_url_rule("/api/v1/<service>/<path:path>", "route", route, methods=ALL_METHODS)
    app.add_url_rule("/open311/v2/<path:path>", "open311", open311, methods=ALL_METHODS)

    def unknown_api(path: str) -> Response:
        raise NotFound("no API at /api/{path}; the API is under /api/v1 (see /api/docs)", path=path)

    def page(path: str = "") -> Response:
        return proxy.forward_front(path)

    # Everything else is the web front's: residents open the gateway's address in a browser.
    app.add_url_rule("/api/<path:path>", "unknown_api", unknown_api, methods=ALL_METHODS)
    app.add_url_rule("/", "page", page, methods=ALL_METHODS)
    app.add_url_rule("/<path:path>", "page", page, methods=ALL_METHODS)

    # The proxied reads skip Flask's request machinery (see fast_proxy.py); the hook it adds for the
    # requests it hands over goes before the rate limits' (which may refuse them).
    hooks = app.before_request_funcs[None]
    fast_proxy.install(app, rate_limits)
    hooks.insert(hooks.index(rate_limits.check), hooks.pop())
    if gateway.trusted_proxies:
        # Believe the X-Forwarded-* headers of that many proxies in front (and no more), so the
        # caller's address, scheme, host and prefix are the public ones (the fast path's too).
        n = gateway.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)  # type: ignore[method-assign]
    return app
