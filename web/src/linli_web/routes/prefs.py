"""The language and text-size switches: remembered in long-lived cookies (not in the session), so
they hold after signing out and on the sign-in page."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request
from linli_web.auth import safe_next
from linli_web.i18n import LANG_COOKIE, LOCALES, TEXT_COOKIE, YEAR

bp = Blueprint("prefs", __name__)


def _remember(name: str, value: str) -> Response:
    response = redirect(safe_next(request.form.get("next")), code=303)
    response.set_cookie(name, value, max_age=YEAR, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


@bp.post("/settings/language")
def language() -> Response:
    chosen = request.form.get("lang", "")
    return _remember(LANG_COOKIE, chosen if chosen in LOCALES else "zh")


@bp.post("/settings/text-size")
def text_size() -> Response:
    return _remember(TEXT_COOKIE, "large" if request.form.get("size") == "large" else "normal")
