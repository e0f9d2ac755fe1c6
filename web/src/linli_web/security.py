"""Security headers on every response: a strict Content-Security-Policy (no inline script or style;
scripts from this site only), no framing, no sniffing, and private caching of personal pages."""

from __future__ import annotations

from flask import Flask, Response, request
from linli_web.settings import WebSettings


def content_security_policy(settings: WebSettings) -> str:
    images = ["'self'", "data:", "blob:"]
    if settings.tile_origin:
        images.append(settings.tile_origin)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def install(app: Flask, settings: WebSettings) -> None:
    policy = content_security_policy(settings)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=(), payment=()")
        if settings.secure_cookies or request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not request.path.startswith("/static/") and "Cache-Control" not in headers:
            # Pages hold personal data: never in a shared cache, not kept by the browser either.
            headers["Cache-Control"] = "private, no-store"
        return response
