"""Activities: browse, sign up (or the waiting list), cancel, my sign-ups, check in by code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.events import can_register_activity, my_registration, party_sizes, split_by_time
from linli_web.viewmodels.forms import Form

bp = Blueprint("activities", __name__, url_prefix="/activities")


def _community() -> str | None:
    return ((current_user() or {}).get("community_ids") or [None])[0]


@bp.get("")
@login_required
def index() -> Any:
    now = datetime.now(UTC)
    scope = {"community_id": _community()} if _community() else {}
    items, mine = g.api.gather(
        lambda a: a.get(
            "/api/v1/activities/", **{"from": (now - timedelta(hours=12)).isoformat()}, page_size=50, **scope
        ),
        lambda a: a.get("/api/v1/activities/registrations/mine", page_size=50),
    )
    if isinstance(items, ApiError):
        raise items
    coming, _past = split_by_time([i for i in items if i.get("status") == "published"], now)
    mine = [] if isinstance(mine, ApiError) else mine
    live = {r["activity_id"]: r for r in mine if r.get("status") != "cancelled"}
    return render_template("activities/index.html", coming=coming, mine=live)


@bp.get("/mine")
@login_required
def mine() -> Any:
    registrations = g.api.get("/api/v1/activities/registrations/mine", page_size=50)
    live = [r for r in registrations if r.get("status") != "cancelled"]
    found = g.api.gather(*[lambda a, r=r: a.get(f"/api/v1/activities/{r['activity_id']}") for r in live[:20]])
    rows = [(r, a) for r, a in zip(live, found, strict=False) if not isinstance(a, ApiError)]
    return render_template("activities/mine.html", rows=rows)


def _page(activity_id: str, form: Form | None = None, status: int = 200) -> Any:
    activity, registrations = g.api.gather(
        lambda a: a.get(f"/api/v1/activities/{activity_id}"),
        lambda a: a.get("/api/v1/activities/registrations/mine", page_size=100),
    )
    if isinstance(activity, ApiError):
        raise activity
    mine = None if isinstance(registrations, ApiError) else my_registration(registrations, activity_id)
    return render_template(
        "activities/show.html",
        a=activity,
        mine=mine,
        can_register=can_register_activity(activity, mine, datetime.now(UTC)),
        sizes=party_sizes(activity),
        form=form or Form({"code": "", "party_size": "1"}),
    ), status


@bp.get("/<uuid:activity_id>")
@login_required
def show(activity_id: Any) -> Any:
    return _page(str(activity_id))


@bp.post("/<uuid:activity_id>/register")
@login_required
def register(activity_id: Any) -> Any:
    form = Form.of(request.form, ["party_size"])
    form.choice("party_size", [str(n) for n in range(1, 21)], _("Choose how many people come"))
    if not form.ok:
        return _page(str(activity_id), form, 400)
    try:
        answer = g.api.post(
            f"/api/v1/activities/{activity_id}/registrations", {"party_size": int(form.values["party_size"])}
        )
    except ApiError as error:
        if error.status not in (409, 422):
            raise
        form.error("party_size", _("You cannot sign up: %(why)s", why=error.message))
        return _page(str(activity_id), form, 400)
    if answer.get("status") == "waitlisted":
        flash(
            _(
                "It is full: you are number %(n)s on the waiting list. We will tell you if a place frees up.",
                n=answer.get("waitlist_position") or "?",
            ),
            "success",
        )
    else:
        flash(_("You have a place. See you there!"), "success")
    return redirect(url_for("activities.show", activity_id=activity_id), code=303)


@bp.post("/<uuid:activity_id>/cancel")
@login_required
def cancel(activity_id: Any) -> Any:
    registration_id = request.form.get("registration_id", "")
    try:
        g.api.post(f"/api/v1/activities/{activity_id}/registrations/{registration_id}/cancel")
    except ApiError as error:
        if error.status not in (404, 409, 422):
            raise
        flash(_("This sign-up could not be cancelled."), "error")
    else:
        flash(_("Your sign-up is cancelled."), "success")
    return redirect(url_for("activities.show", activity_id=activity_id), code=303)


@bp.post("/<uuid:activity_id>/check-in")
@login_required
def check_in(activity_id: Any) -> Any:
    form = Form.of(request.form, ["code"])
    code = form.required("code", _("Enter the code shown at the activity"))
    if form.ok:
        try:
            g.api.post(f"/api/v1/activities/{activity_id}/checkins", {"code": code})
        except ApiError as error:
            if error.status not in (403, 409, 422):
                raise
            form.error("code", _("That code is not right, or check-in is not open. Ask the organiser."))
        else:
            flash(_("You are checked in. Enjoy!"), "success")
            return redirect(url_for("activities.show", activity_id=activity_id), code=303)
    return _page(str(activity_id), form, 400)


@bp.get("/<uuid:activity_id>.ics")
@login_required
def calendar(activity_id: Any) -> Response:
    answer = g.api.call("GET", f"/api/v1/activities/{activity_id}/calendar.ics", raw=True)
    response = Response(answer.content, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="activity-{activity_id}.ics"'
    return response
