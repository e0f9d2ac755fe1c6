"""Services: posts within a 15-minute walk on a map, door-to-door services to book, my bookings,
mutual-aid groups to join and log help in, offering a skill to the talent pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.forms import Form
from linli_web.viewmodels.services import SKILLS, post_markers, take_booking, take_help, take_talent

bp = Blueprint("services", __name__, url_prefix="/services")


def _community() -> str | None:
    return ((current_user() or {}).get("community_ids") or [None])[0]


def _today() -> Any:
    zone = ZoneInfo(current_app.extensions["linli_web.settings"].timezone)
    return datetime.now(UTC).astimezone(zone).date()


@bp.get("")
@login_required
def index() -> Any:
    community = _community()
    compounds = g.api.get("/api/v1/directory/compounds", community_id=community, page_size=100) if community else []
    chosen = request.args.get("compound_id") or session.get("compound_id")
    ids = [c["id"] for c in compounds]
    if chosen not in ids:
        chosen = ids[0] if ids else None
    elif request.args.get("compound_id"):
        session["compound_id"] = chosen
    lat, lon = request.args.get("latitude"), request.args.get("longitude")
    where: dict[str, Any] = {"compound_id": chosen}
    try:
        if lat and lon and -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180:
            where = {"latitude": float(lat), "longitude": float(lon)}
    except ValueError:
        pass
    calls = [
        lambda a: (
            a.get("/api/v1/activities/posts/nearby", minutes=15, **where)
            if where.get("compound_id") or "latitude" in where
            else []
        ),
        lambda a: a.get("/api/v1/activities/offerings", community_id=community, page_size=50),
        lambda a: a.get("/api/v1/activities/groups", community_id=community, page_size=50),
        lambda a: a.get("/api/v1/activities/bookings", page_size=20),
    ]
    nearby, offerings, groups, bookings = g.api.gather(*calls)
    missing = [
        n
        for n, v in zip(
            ("posts", "offerings", "groups", "bookings"), (nearby, offerings, groups, bookings), strict=True
        )
        if isinstance(v, ApiError)
    ]
    nearby = [] if isinstance(nearby, ApiError) else nearby
    return render_template(
        "services/index.html",
        compounds=compounds,
        chosen=chosen,
        nearby=nearby,
        markers=post_markers(nearby),
        offerings=[] if isinstance(offerings, ApiError) else [o for o in offerings if o.get("active", True)],
        groups=[] if isinstance(groups, ApiError) else [gr for gr in groups if gr.get("active", True)],
        bookings=[] if isinstance(bookings, ApiError) else bookings,
        missing=missing,
    )


@bp.route("/offerings/<uuid:offering_id>/book", methods=["GET", "POST"])
@login_required
def book(offering_id: Any) -> Any:
    offerings = g.api.get("/api/v1/activities/offerings", community_id=_community(), page_size=100)
    offering = next((o for o in offerings if o["id"] == str(offering_id)), None)
    if offering is None:
        flash(_("This service is not offered in your community."), "error")
        return redirect(url_for("services.index"))
    settings = current_app.extensions["linli_web.settings"]
    form = Form({"for_whom": "me"})
    if request.method == "POST":
        form, body = take_booking(request.form, settings.timezone, _today())
        if form.ok:
            body["offering_id"] = str(offering_id)
            if not offering.get("door_to_door"):
                body["door_to_door"] = False
            try:
                g.api.post("/api/v1/activities/bookings", body)
            except ApiError as error:
                if error.status not in (403, 409, 422):
                    raise
                if error.fields:
                    form.api_fields(error.fields, {"slot_start": "day", "slot_end": "time"})
                else:
                    form.error("day", _("It could not be booked: %(why)s", why=error.message))
            else:
                flash(_("Your request is sent. Staff will confirm the time with you."), "success")
                return redirect(url_for("services.index"), code=303)
    return render_template("services/book.html", o=offering, form=form, today=_today().isoformat()), (
        200 if form.ok else 400
    )


@bp.post("/bookings/<uuid:booking_id>/cancel")
@login_required
def cancel_booking(booking_id: Any) -> Any:
    try:
        g.api.post(f"/api/v1/activities/bookings/{booking_id}/cancel")
        flash(_("The booking is cancelled."), "success")
    except ApiError as error:
        if error.status not in (403, 409):
            raise
        flash(_("This booking cannot be cancelled now."), "error")
    return redirect(url_for("services.index"), code=303)


@bp.get("/groups/<uuid:group_id>")
@login_required
def group(group_id: Any, form: Form | None = None, status: int = 200) -> Any:
    found, members = g.api.gather(
        lambda a: a.get(f"/api/v1/activities/groups/{group_id}"),
        lambda a: a.get(f"/api/v1/activities/groups/{group_id}/members", page_size=100),
    )
    if isinstance(found, ApiError):
        raise found
    members = [] if isinstance(members, ApiError) else members
    me = current_user()["id"]
    member = any(m.get("user_id") == me for m in members) or found.get("coordinator_id") == me
    return render_template(
        "services/group.html",
        group=found,
        members=members,
        member=member,
        form=form or Form({"helped_on": _today().isoformat(), "hours": ""}),
        today=_today().isoformat(),
    ), status


@bp.post("/groups/<uuid:group_id>/join")
@login_required
def join(group_id: Any) -> Any:
    try:
        g.api.post(f"/api/v1/activities/groups/{group_id}/members", {"display_name": current_user()["display_name"]})
        flash(_("Welcome to the group!"), "success")
    except ApiError as error:
        if error.status != 409:
            raise
    return redirect(url_for("services.group", group_id=group_id), code=303)


@bp.post("/groups/<uuid:group_id>/leave")
@login_required
def leave(group_id: Any) -> Any:
    try:
        g.api.delete(f"/api/v1/activities/groups/{group_id}/members/{current_user()['id']}")
        flash(_("You have left the group."), "success")
    except ApiError as error:
        if error.status != 404:
            raise
    return redirect(url_for("services.group", group_id=group_id), code=303)


@bp.post("/groups/<uuid:group_id>/help")
@login_required
def log_help(group_id: Any) -> Any:
    form, body = take_help(request.form, _today())
    if form.ok:
        g.api.post(f"/api/v1/activities/groups/{group_id}/help", body)
        flash(_("Thank you! Your help is logged."), "success")
        return redirect(url_for("services.group", group_id=group_id), code=303)
    return group(group_id, form, 400)


@bp.route("/talent", methods=["GET", "POST"])
@login_required
def talent() -> Any:
    form = Form({"skills": "", "availability": "", "description": ""})
    if request.method == "POST":
        form, body = take_talent(request.form, current_user()["display_name"])
        if form.ok:
            try:
                g.api.post("/api/v1/activities/talents", body)
            except ApiError as error:
                if error.status != 409:
                    raise
                flash(_("You are already in the talent pool."), "success")
            else:
                flash(_("Thank you! Community staff may ask you when a neighbour needs your skill."), "success")
            return redirect(url_for("services.index"), code=303)
    return render_template("services/talent.html", form=form, skills=SKILLS), 200 if form.ok else 400
