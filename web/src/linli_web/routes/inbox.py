"""The inbox: notices, newest first; mark one or all as read; the unread count for the header."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from linli_web.auth import login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.inbox import with_links

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
PAGE = 20


@bp.get("")
@login_required
def index() -> Any:
    try:
        page = max(1, min(int(request.args.get("page", "1")), 1000))
    except ValueError:
        page = 1
    items, total = g.api.page("/api/v1/notifications/", page=page, page_size=PAGE)
    return render_template("inbox/index.html", items=with_links(items, url_for), page=page, more=page * PAGE < total)


@bp.get("/unread")
@login_required
def unread() -> Any:
    try:
        count = g.api.get("/api/v1/notifications/unread-count")["count"]
    except ApiError:
        count = None
    return render_template("partials/unread.html", header={"unread": count})


@bp.post("/<uuid:notification_id>/read")
@login_required
def read(notification_id: Any) -> Any:
    item = g.api.post(f"/api/v1/notifications/{notification_id}/read")
    if request.headers.get("HX-Request") == "true":
        response = render_template("inbox/_item.html", n=with_links([item], url_for)[0])
        return response, 200, {"HX-Trigger": "unread-changed"}
    return redirect(url_for("inbox.index"), code=303)


@bp.post("/read-all")
@login_required
def read_all() -> Any:
    g.api.post("/api/v1/notifications/read-all")
    return redirect(url_for("inbox.index"), code=303)
