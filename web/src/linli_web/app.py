"""The web front's Flask app: `gunicorn 'linli_web.app:create_app()'` on port 8005.

Layering: routes (thin blueprints under `routes/`) call view models (`viewmodels/`, plain Python that
builds what a template shows) with data fetched through `auth.Api` (the signed-in person's calls to
the gateway, over `gateway_client.GatewayClient`). Nothing here imports a service's code or opens a
database: the only state is the server-side session (files under LINLI_DATA_DIR, or Redis).
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

from cachelib import FileSystemCache
from flask import Flask, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect
from linli_web import assets, i18n, security
from linli_web.auth import Api, SignedOut, TokenVault, current_user
from linli_web.gateway_client import ApiError, GatewayClient
from linli_web.settings import WebSettings, load_settings
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger("linli_web")
SESSION_DAYS = 30


def create_app(settings: WebSettings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    app.extensions["linli_web.settings"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,  # a phone's photo; resized before it goes on
        SESSION_COOKIE_NAME="linli_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_PERMANENT=True,
        SESSION_REFRESH_EACH_REQUEST=False,  # saved when changed only: parallel requests never clash
        PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS),
        SESSION_KEY_PREFIX="linli-web:session:",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session; a slow form is no error
        WTF_CSRF_SSL_STRICT=True,
        TEMPLATES_AUTO_RELOAD=False,
    )
    redis_client = None
    if settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url)
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis_client)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.config.update(
            SESSION_TYPE="cachelib",
            SESSION_CACHELIB=FileSystemCache(str(settings.data_dir / "web-sessions"), threshold=0, mode=0o600),
        )
    Session(app)
    interface = app.session_interface
    # Secure cookies when configured, and whenever the request itself came over https.
    interface.get_cookie_secure = lambda _app: bool(  # type: ignore[method-assign]
        _app.config["SESSION_COOKIE_SECURE"] or request.is_secure
    )
    CSRFProtect(app)

    gateway = GatewayClient(settings.gateway_url, timeout=settings.api_timeout, language=i18n.api_language)
    app.extensions["linli_web.gateway"] = gateway
    app.extensions["linli_web.vault"] = TokenVault(settings.data_dir, redis_client)

    i18n.install(app, settings.timezone)
    assets.install(app)
    security.install(app, settings)
    _install_request_hooks(app, gateway)
    _install_errors(app)
    _install_template_context(app, settings)

    from linli_web.routes import register

    register(app)
    return app


def _install_request_hooks(app: Flask, gateway: GatewayClient) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else str(uuid.uuid4())
        g.started = time.perf_counter()
        g.api = Api(gateway)

    @app.after_request
    def _finish(response: Any) -> Any:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if "started" in g:
            # The whole request, and the part of it spent waiting for the gateway.
            total = (time.perf_counter() - g.started) * 1000
            waited = g.api.waited * 1000 if "api" in g else 0.0
            response.headers["Server-Timing"] = f"app;dur={total:.1f}, api;dur={waited:.1f}"
        return response


def _install_errors(app: Flask) -> None:
    @app.errorhandler(SignedOut)
    def _signed_out(_error: SignedOut) -> Any:
        keep = {k: session[k] for k in ("locale",) if k in session}
        session.clear()
        session.update(keep)
        if request.headers.get("HX-Request"):
            response = app.response_class(status=204)
            response.headers["HX-Redirect"] = url_for("auth.login")
            return response
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?"), expired=1))

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Any:
        status = 503 if error.unavailable else (error.status if error.status in (403, 404, 409, 429) else 400)
        if error.unavailable:
            log.warning("gateway error %s %s on %s", error.status, error.code, request.path)
        message = i18n.error_text(error.code, error.status)
        return render_template("error.html", status=status, message=message, request_id=error.request_id), status

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> Any:
        message = _("This form was open too long or came from somewhere else. Please try again.")
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        messages = {
            404: _("There is no such page."),
            405: _("That cannot be done from here."),
            413: _("That file is too big. Please choose a photo under 16 MB."),
        }
        message = messages.get(error.code or 500, _("Something went wrong. Please try again."))
        return render_template("error.html", status=error.code, message=message), error.code

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Any:
        log.exception("unhandled error on %s", request.path)
        return render_template("error.html", status=500, message=_("Something went wrong on our side.")), 500


def _install_template_context(app: Flask, settings: WebSettings) -> None:
    @app.context_processor
    def _context() -> dict[str, Any]:
        user = current_user()
        return {
            "user": user,
            "large_text": request.cookies.get(i18n.TEXT_COOKIE) == "large",
            "settings": settings,
            "header": _header(user) if user else None,
            "nonce": secrets.token_hex(4),
        }


def _header(user: dict[str, Any]) -> dict[str, Any]:
    """The community's name (once per session) and the unread count (each page) for the header."""
    header: dict[str, Any] = {"community": session.get("community_name"), "unread": None}
    api: Api | None = g.get("api")
    if api is None:  # an error raised before the request was set up (a form's CSRF token refused)
        return header
    wanted = []
    community_ids = user.get("community_ids") or []
    if header["community"] is None and community_ids:
        wanted.append(("community", lambda a: a.get(f"/api/v1/directory/communities/{community_ids[0]}")["name"]))
    wanted.append(("unread", lambda a: a.get("/api/v1/notifications/unread-count")["count"]))
    try:
        results = api.gather(*[call for _name, call in wanted])
    except (SignedOut, ApiError):
        return header
    for (name, _call), value in zip(wanted, results, strict=True):
        if not isinstance(value, ApiError):
            header[name] = value
            if name == "community":
                session["community_name"] = value
    return header
