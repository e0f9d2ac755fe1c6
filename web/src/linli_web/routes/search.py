"""Search: one box for issues, meetings, activities, service posts, groups and talents of one's own
scope, through the gateway's `/api/v1/search`. A plain GET form: it works without JavaScript."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.search import KIND, MAX_QUERY_CHARS, build_results, check_query

bp = Blueprint("search", __name__)


@bp.get("/search")
@login_required
def index() -> Any:
    q = request.args.get("q")
    kind = request.args.get("kind") or None
    page = {"q": q or "", "kind": kind, "kinds": KIND, "maxlength": MAX_QUERY_CHARS, "errors": {}, "results": None}
    if q is None:  # the page opened, nothing asked yet
        return render_template("search/index.html", **page)
    errors = check_query(q, kind)
    if errors:
        return render_template("search/index.html", **(page | {"errors": errors})), 422
    try:
        answer = g.api.get("/api/v1/search", q=q, kinds=kind)
    except ApiError as exc:
        if exc.status != 422:
            raise
        # The gateway's words for what it refused (a rule this page does not know of yet).
        named = {"q" if name == "q" else "kind": " ".join(messages) for name, messages in exc.fields.items()}
        return render_template("search/index.html", **(page | {"errors": named or {"q": exc.message}})), 422
    results = build_results(answer, current_user().get("role"))
    return render_template("search/index.html", **(page | {"results": results}))
