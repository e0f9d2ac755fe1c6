"""My issues and those I follow; one issue with its whole story; me too, rating, reopening, following."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.forms import Form
from linli_web.viewmodels.issues import build_detail, split_lists

bp = Blueprint("issues", __name__, url_prefix="/issues")


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.get("")
@login_required
def index() -> Any:
    mine, follows = g.api.gather(
        lambda a: a.get("/api/v1/issues/", mine="true", page_size=50),
        lambda a: a.get("/api/v1/notifications/follows"),
    )
    if isinstance(mine, ApiError):
        raise mine
    followed_ids = (
        [] if isinstance(follows, ApiError) else [f["target_id"] for f in follows if f["target_type"] == "issue"]
    )
    mine_ids = {i["id"] for i in mine}
    wanted = [i for i in followed_ids if i not in mine_ids][:20]
    found = g.api.gather(*[lambda a, i=i: a.get(f"/api/v1/issues/{i}") for i in wanted])
    followed = [f for f in found if not isinstance(f, ApiError)]
    return render_template("issues/index.html", lists=split_lists(mine, followed))


@bp.get("/<uuid:issue_id>")
@login_required
def show(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    issue = g.api.get(f"/api/v1/issues/{issue_id}")
    updates, meetings, actions, photos, follows = g.api.gather(
        lambda a: a.get(f"/api/v1/issues/{issue_id}/updates"),
        lambda a: a.get(f"/api/v1/issues/{issue_id}/meetings"),
        lambda a: a.get("/api/v1/meetings/action-items", issue_id=issue_id, page_size=50),
        lambda a: a.get(f"/api/v1/issues/{issue_id}/photos"),
        lambda a: a.get("/api/v1/notifications/follows"),
    )
    detail = build_detail(
        issue,
        user_id=current_user()["id"],
        updates=[] if isinstance(updates, ApiError) else updates,
        meetings=[] if isinstance(meetings, ApiError) else meetings,
        actions=[] if isinstance(actions, ApiError) else actions,
        photos=[] if isinstance(photos, ApiError) else photos,
        follows=[] if isinstance(follows, ApiError) else follows,
    )
    if session.get("just_supported") == issue_id:
        # Supporting follows the issue, by an event the notifications service may not have taken
        # yet: the page just after "Me too" shows the follow it is about to have.
        session.pop("just_supported")
        detail.following = True
    form = Form({"rating": "", "comment": "", "reason": ""})
    return render_template("issues/show.html", d=detail, form=form, sent=request.args.get("sent") == "1")


@bp.get("/<uuid:issue_id>/photos/<uuid:photo_id>")
@login_required
def photo(issue_id: Any, photo_id: Any) -> Any:
    """The photo, fetched with the person's token (a photo is seen by whoever may see the issue)."""
    answer = g.api.call("GET", f"/api/v1/issues/{issue_id}/photos/{photo_id}", raw=True)
    content_type = answer.headers.get("Content-Type", "image/jpeg")
    if not content_type.startswith("image/"):
        return "", 404
    response = current_app.response_class(answer.content, content_type=content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.post("/<uuid:issue_id>/support")
@login_required
def support(issue_id: Any) -> Any:
    """'Me too'. From the report flow, the draft is dropped: the neighbour's issue is the same one."""
    issue_id = str(issue_id)
    supporter_count = None
    try:
        answer = g.api.post(f"/api/v1/issues/{issue_id}/supporters")
        if isinstance(answer, dict):
            supporter_count = answer.get("supporter_count")
        ok = True
    except ApiError as error:
        if error.status != 409:  # 409: supported already; the same outcome for the person
            raise
        ok = True
    if request.form.get("from_report") == "1":
        session.pop("report", None)
    if _is_htmx():
        return render_template(
            "issues/_supported.html",
            issue_id=issue_id,
            from_report=request.form.get("from_report"),
            supporter_count=supporter_count,
        )
    if ok:
        session["just_supported"] = issue_id
        flash(_("Thank you: your support is counted, and you will be told of its progress."), "success")
    return redirect(url_for("issues.show", issue_id=issue_id), code=303)


@bp.post("/<uuid:issue_id>/rating")
@login_required
def rate(issue_id: Any) -> Any:
    form = Form.of(request.form, ["rating", "comment"])
    form.choice("rating", ["1", "2", "3", "4", "5"], _("Choose how satisfied you are, from 1 to 5"))
    form.length("comment", maximum=2000, label=_("Your comment"))
    if form.ok:
        body = {"rating": int(form.values["rating"])}
        if form.values["comment"]:
            body["comment"] = form.values["comment"]
        g.api.post(f"/api/v1/issues/{issue_id}/rating", body)
        flash(_("Thank you for rating the result."), "success")
        return redirect(url_for("issues.show", issue_id=issue_id), code=303)
    return _show_with_errors(str(issue_id), form)


@bp.post("/<uuid:issue_id>/reopen")
@login_required
def reopen(issue_id: Any) -> Any:
    form = Form.of(request.form, ["reason"])
    form.required("reason", _("Say why the problem is not solved"))
    form.length("reason", maximum=2000, label=_("The reason"))
    if form.ok:
        g.api.post(f"/api/v1/issues/{issue_id}/reopen", {"reason": form.values["reason"]})
        flash(_("The issue is open again. Staff will look at it."), "success")
        return redirect(url_for("issues.show", issue_id=issue_id), code=303)
    return _show_with_errors(str(issue_id), form)


def _show_with_errors(issue_id: str, form: Form) -> Any:
    issue = g.api.get(f"/api/v1/issues/{issue_id}")
    detail = build_detail(
        issue, user_id=current_user()["id"], updates=[], meetings=[], actions=[], photos=[], follows=[]
    )
    return render_template("issues/show.html", d=detail, form=form, sent=False), 400


@bp.post("/<uuid:issue_id>/follow")
@login_required
def follow(issue_id: Any) -> Any:
    if request.form.get("stop") == "1":
        try:
            g.api.delete(f"/api/v1/notifications/follows/issue/{issue_id}")
        except ApiError as error:
            if error.status != 404:
                raise
        flash(_("You no longer follow this issue."), "success")
    else:
        try:
            g.api.post("/api/v1/notifications/follows", {"target_type": "issue", "target_id": str(issue_id)})
        except ApiError as error:
            if error.status != 409:
                raise
        flash(_("You follow this issue: you will be told of its progress."), "success")
    return redirect(url_for("issues.show", issue_id=issue_id), code=303)
