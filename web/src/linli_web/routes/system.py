"""Probes, the installable web app's manifest and service worker, the offline page."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, render_template, url_for
from flask_babel import gettext as _
from linli_web.gateway_client import ApiError, GatewayClient

bp = Blueprint("system", __name__)


@bp.get("/web/healthz")
def healthz() -> Response:
    """Alive (the gateway is not asked: a slow gateway must not get this process restarted)."""
    return Response('{"status": "ok"}', content_type="application/json")


@bp.get("/web/readyz")
def readyz() -> tuple[Response, int]:
    """Ready: the gateway answers its public directory."""
    gateway: GatewayClient = current_app.extensions["linli_web.gateway"]
    try:
        gateway.request("GET", "/api/v1/directory/streets", params={"page_size": 1})
    except ApiError as error:
        body = {"status": "unavailable", "gateway": error.code}
        return Response(json.dumps(body), content_type="application/json"), 503
    return Response('{"status": "ok"}', content_type="application/json"), 200


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    assets = current_app.extensions["linli_web.assets"]
    body = {
        "name": _("Linli neighbourhood"),
        "short_name": _("Linli"),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#a4262c",
        "icons": [
            {"src": assets.url("img/icon.svg"), "sizes": "any", "type": "image/svg+xml", "purpose": "any"},
            {"src": assets.url("img/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": assets.url("img/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        ],
    }
    response = Response(json.dumps(body, ensure_ascii=False), content_type="application/manifest+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    """At the site's root so that it may serve the whole site; it caches the offline page and its
    styles only, never a page with personal data (see static/js/sw.js)."""
    assets = current_app.extensions["linli_web.assets"]
    script = assets.get("js/sw.js").body.decode()
    precache = [url_for("system.offline"), assets.url("css/app.css"), assets.url("img/icon.svg")]
    body = f"const OFFLINE_URL = {json.dumps(url_for('system.offline'))};\n"
    body += f"const PRECACHE = {json.dumps(precache)};\n"
    body += f"const INBOX_URL = {json.dumps(url_for('inbox.index'))};\n"
    body += f"const ICON_URL = {json.dumps(assets.url('img/icon-192.png'))};\n" + script
    response = Response(body, content_type="text/javascript; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/offline")
def offline() -> Response:
    response = current_app.make_response(render_template("offline.html"))
    # The one page the service worker keeps: nothing personal on it (rendered without the session).
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
