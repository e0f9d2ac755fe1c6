"""Meetings: what is coming, register, check in by code (or by the QR code's link), minutes and
decisions, add to my calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.events import my_participation, roll_calls, split_by_time
from linli_web.viewmodels.forms import Form

bp = Blueprint("meetings", __name__)


def _community() -> str | None:
    return ((current_user() or {}).get("community_ids") or [None])[0]


@bp.get("/meetings")
@login_required
def index() -> Any:
    now = datetime.now(UTC)
    scope = {"community_id": _community()} if _community() else {}
    items = g.api.get("/api/v1/meetings/", starts_after=(now - timedelta(days=90)).isoformat(), page_size=100, **scope)
    coming, past = split_by_time(items, now)
    return render_template("meetings/index.html", coming=coming, past=past[:20])


def _meeting_page(meeting_id: str, form: Form | None = None, status: int = 200) -> Any:
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    motions, participants = g.api.gather(
        lambda a: a.get(f"/api/v1/meetings/{meeting_id}/motions"),
        lambda a: a.get(f"/api/v1/meetings/{meeting_id}/participants"),
    )
    me = None if isinstance(participants, ApiError) else my_participation(participants, current_user()["id"])
    decisions = [] if isinstance(motions, ApiError) else [m for m in motions if m.get("status") == "recorded"]
    ballots = (
        []
        if isinstance(motions, ApiError) or not (me and me.get("checked_in_at"))
        else roll_calls(motions, current_user()["id"])
    )
    return render_template(
        "meetings/show.html",
        m=meeting,
        decisions=decisions,
        ballots=ballots,
        me=me,
        form=form or Form({"code": request.args.get("code", "")}),
    ), status


@bp.get("/meetings/<uuid:meeting_id>")
@login_required
def show(meeting_id: Any) -> Any:
    return _meeting_page(str(meeting_id))


@bp.post("/meetings/<uuid:meeting_id>/register")
@login_required
def register(meeting_id: Any) -> Any:
    try:
        answer = g.api.post(f"/api/v1/meetings/{meeting_id}/registrations", {})
    except ApiError as error:
        if error.status != 409:
            raise
        flash(_("You cannot register for this meeting: %(why)s", why=error.message), "error")
    else:
        if answer.get("enrolment") == "waitlisted":
            flash(_("The meeting is full: you are on the waiting list."), "success")
        else:
            flash(_("You are registered for the meeting."), "success")
    return redirect(url_for("meetings.show", meeting_id=meeting_id), code=303)


@bp.post("/meetings/<uuid:meeting_id>/check-in")
@login_required
def check_in(meeting_id: Any) -> Any:
    form = Form.of(request.form, ["code"])
    code = form.code()
    if form.ok:
        try:
            g.api.post(f"/api/v1/meetings/{meeting_id}/check-in", {"code": code})
        except ApiError as error:
            if error.status in (409, 422, 403):
                form.error("code", _("That code is not right, or check-in is not open. Ask at the meeting."))
            else:
                raise
        else:
            flash(_("You are checked in. Welcome!"), "success")
            return redirect(url_for("meetings.show", meeting_id=meeting_id), code=303)
    return _meeting_page(str(meeting_id), form, 400)


@bp.post("/meetings/<uuid:meeting_id>/motions/<uuid:decision_id>/vote")
@login_required
def vote(meeting_id: Any, decision_id: Any) -> Any:
    """A roll-call vote of a participant present: for, against or abstaining (once; the API says
    who may vote under the rules of procedure)."""
    choice = request.form.get("choice", "")
    if choice not in ("for", "against", "abstain"):
        flash(_("Choose for, against or abstain."), "error")
    else:
        try:
            g.api.post(f"/api/v1/meetings/{meeting_id}/motions/{decision_id}/votes", {"choice": choice})
        except ApiError as error:
            if error.unavailable or error.status not in (403, 409, 422):
                raise
            flash(_("Your vote was not taken: %(why)s", why=error.message), "error")
        else:
            flash(_("Your vote is counted."), "success")
    return redirect(url_for("meetings.show", meeting_id=meeting_id, _anchor="vote"), code=303)


@bp.get("/m/<uuid:meeting_id>/checkin")
@login_required
def qr_check_in(meeting_id: Any) -> Any:
    """Where the QR code shown at a meeting leads: the code filled in, one button to press."""
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    form = Form({"code": request.args.get("code", "")[:6]})
    return render_template("meetings/qr.html", m=meeting, form=form)


@bp.get("/meetings/<uuid:meeting_id>.ics")
@login_required
def calendar(meeting_id: Any) -> Response:
    answer = g.api.call("GET", f"/api/v1/meetings/{meeting_id}.ics", raw=True)
    return _ics(answer.content, f"meeting-{meeting_id}.ics")


def _ics(body: bytes, filename: str) -> Response:
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
