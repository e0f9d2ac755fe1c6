"""Community staff's activities and care, and acting for residents without a phone: create and
publish activities, see who signed up, tick them in, count walk-ins, sign a resident up; handle
door-to-door bookings; keep the list of residents who need support and record welfare visits; take
a report by telephone or at the door. Every action is a plain form posting here (works without
JavaScript); the activities and issues APIs decide again on every call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user
from linli_web.gateway_client import ApiError
from linli_web.i18n import CATEGORY, error_text, label
from linli_web.routes.desk import scope_communities, staff_required
from linli_web.viewmodels import activities_desk as vm
from linli_web.viewmodels.forms import Form

bp = Blueprint("deskactivities", __name__, url_prefix="/desk")

NAMES_SHOWN = 100
PLANS_SHOWN = 30


def _ok(value: Any, default: Any) -> Any:
    return default if isinstance(value, ApiError) else value


def _timezone() -> str:
    return current_app.extensions["linli_web.settings"].timezone


def _chosen(communities: list[dict[str, Any]], wanted: str) -> str:
    ids = [c["id"] for c in communities]
    return wanted if wanted in ids else (ids[0] if len(ids) == 1 else "")


def _residents(a: Any, community_id: str) -> dict[str, str]:
    """The community's active residents, id -> name (the API limits it to the person's scope)."""
    if not community_id:
        return {}
    people = a.get(
        "/api/v1/auth/users", community_id=community_id, role="resident", status="active", page_size=NAMES_SHOWN
    )
    return dict(sorted(((p["id"], p.get("display_name") or p["id"]) for p in people), key=lambda p: p[1]))


def _refusal(form: Form, error: ApiError, field: str) -> None:
    if error.unavailable or error.status not in (400, 403, 404, 409, 422):
        raise error
    if error.fields:
        form.api_fields(error.fields)
    else:
        form.error(field, error.message if error.status == 409 else error_text(error.code, error.status))


# --- activities ---------------------------------------------------------------------------------------------


@bp.get("/activities")
@staff_required
def activities() -> Any:
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.args.get("community_id", ""))
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    scope = {"community_id": chosen} if chosen else {}
    drafts, published = g.api.gather(
        lambda a: a.get("/api/v1/activities/", status="draft", page_size=50, **scope),
        lambda a: a.get("/api/v1/activities/", status="published", page_size=100, **{"from": since}, **scope),
    )
    if isinstance(published, ApiError):
        raise published
    now = datetime.now(UTC).isoformat()
    return render_template(
        "desk/activities/index.html",
        drafts=_ok(drafts, []),
        coming=sorted((a for a in published if (a.get("ends_at") or "") >= now), key=lambda a: a["starts_at"]),
        past=sorted((a for a in published if (a.get("ends_at") or "") < now), key=lambda a: a["starts_at"],
                    reverse=True),
        communities=communities,
        chosen=chosen,
    )  # fmt: skip


def _new_page(form: Form, communities: list[dict[str, Any]], status: int = 200, editing: Any = None) -> Any:
    return render_template(
        "desk/activities/new.html",
        form=form,
        communities=communities,
        kinds=vm.KINDS,
        audience=vm.AUDIENCE,
        editing=editing,
    ), status


@bp.route("/activities/new", methods=["GET", "POST"])
@staff_required
def new_activity() -> Any:
    communities = scope_communities(g.api, current_user())
    if request.method == "GET":
        names = ["kind", "title", "description", "place", "day", "start", "end", "capacity", "max_party_size"]
        form = Form({"community_id": _chosen(communities, request.args.get("community_id", "")),
                     **dict.fromkeys(names, ""), "audience": "", "publish": "yes"})  # fmt: skip
        return _new_page(form, communities)
    form, body = vm.take_activity(request.form, [c["id"] for c in communities], _timezone())
    if form.ok:
        try:
            created = g.api.post("/api/v1/activities/", body)
        except ApiError as error:
            _refusal(form, error, "title")
        else:
            flash(_("The activity is published: residents can sign up.") if body["publish"]
                  else _("Saved as a draft. Publish it when it is ready."), "success")  # fmt: skip
            return redirect(url_for("deskactivities.activity", activity_id=created["id"]), code=303)
    return _new_page(form, communities, 400)


@bp.route("/activities/<uuid:activity_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_activity(activity_id: Any) -> Any:
    """Change an activity's kind, words, place, time, places or audience (`PATCH`); its community
    stays. The API tells those signed up of a new time or place, and refuses a cancelled one."""
    activity = g.api.get(f"/api/v1/activities/{activity_id}")
    communities = [
        c for c in scope_communities(g.api, current_user()) if c["id"] in (activity.get("community_ids") or [])
    ]
    if not communities or activity.get("status") == "cancelled":
        abort(404 if not communities else 409)
    if request.method == "GET":
        form = Form(vm.activity_form_values(activity, communities[0]["id"], _timezone()))
        return _new_page(form, communities, editing=activity)
    form, body = vm.take_activity(request.form, [c["id"] for c in communities], _timezone())
    if form.ok:
        changes = vm.activity_changes(activity, body)
        try:
            if changes:
                g.api.patch(f"/api/v1/activities/{activity_id}", changes)
        except ApiError as error:
            _refusal(form, error, "title")
        else:
            flash(_("The activity is changed.") if changes else _("Nothing was changed."), "success")
            return redirect(url_for("deskactivities.activity", activity_id=activity_id), code=303)
    return _new_page(form, communities, 400, editing=activity)


def _activity_page(activity_id: str, form: Form | None = None, status: int = 200, open_form: str = "") -> Any:
    activity = g.api.get(f"/api/v1/activities/{activity_id}")
    user = current_user()
    communities = scope_communities(g.api, user)
    mine = [c for c in activity.get("community_ids") or [] if c in {x["id"] for x in communities}]
    home = mine[0] if mine else (activity.get("community_ids") or [""])[0]
    registrations, checkins, residents = g.api.gather(
        lambda a: a.get(f"/api/v1/activities/{activity_id}/registrations", page_size=100),
        lambda a: a.get(f"/api/v1/activities/{activity_id}/checkins", page_size=100),
        lambda a: _residents(a, home),
    )
    names = _ok(residents, {})
    registrations = _ok(registrations, [])
    unknown = sorted({r["user_id"] for r in registrations if r.get("user_id") and r["user_id"] not in names})
    found = g.api.gather(*[lambda a, i=i: a.get(f"/api/v1/auth/users/{i}") for i in unknown[:20]])
    everyone = dict(names)
    for person_id, person in zip(unknown[:20], found, strict=True):
        if not isinstance(person, ApiError):
            everyone[person_id] = person.get("display_name") or ""
    checkins = _ok(checkins, [])
    return render_template(
        "desk/activities/show.html",
        a=activity,
        registrations=sorted(registrations, key=lambda r: (r.get("status") != "confirmed", r.get("created_at") or "")),
        checkins=checkins,
        participant_times=sum(c.get("participants") or 0 for c in checkins),
        names=everyone,
        residents=names,
        communities=[c for c in communities if c["id"] in (activity.get("community_ids") or [])],
        home=home,
        form=form or Form({"walkin_community_id": home, "participants": "1", "party_size": "1"}),
        open_form=open_form,
        STATUS=vm.ACTIVITY_STATUS,
        METHOD=vm.CHECKIN_METHOD,
    ), status


@bp.get("/activities/<uuid:activity_id>")
@staff_required
def activity(activity_id: Any) -> Any:
    return _activity_page(str(activity_id))


def _act(activity_id: str, form: Form, name: str, call: Callable[[], Any], done: str, anchor: str = "") -> Any:
    if form.ok:
        try:
            call()
        except ApiError as error:
            if error.status == 404:
                raise
            _refusal(form, error, next(iter(form.values), name))
        else:
            flash(done, "success")
            return redirect(url_for("deskactivities.activity", activity_id=activity_id, _anchor=anchor or None),
                            code=303)  # fmt: skip
    return _activity_page(activity_id, form, 400, open_form=name)


@bp.post("/activities/<uuid:activity_id>/publish")
@staff_required
def publish(activity_id: Any) -> Any:
    activity_id = str(activity_id)
    return _act(activity_id, Form({"publish": ""}), "publish",
                lambda: g.api.post(f"/api/v1/activities/{activity_id}/publish"),
                _("Published: residents of the community are told and can sign up."))  # fmt: skip


@bp.post("/activities/<uuid:activity_id>/cancel")
@staff_required
def cancel(activity_id: Any) -> Any:
    activity_id = str(activity_id)
    form, body = vm.take_cancel(request.form)
    return _act(activity_id, form, "cancel", lambda: g.api.post(f"/api/v1/activities/{activity_id}/cancel", body),
                _("Cancelled. Everyone signed up is told why."))  # fmt: skip


def _home_residents(activity_id: str) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The activity, the person's community among those it serves, and that community's residents."""
    activity = g.api.get(f"/api/v1/activities/{activity_id}")
    ids = {c["id"] for c in scope_communities(g.api, current_user())}
    mine = [c for c in activity.get("community_ids") or [] if c in ids]
    home = mine[0] if mine else ""
    residents = _ok(g.api.gather(lambda a: _residents(a, home))[0], {})
    return activity, home, residents


@bp.post("/activities/<uuid:activity_id>/registrations")
@staff_required
def sign_up(activity_id: Any) -> Any:
    activity_id = str(activity_id)
    _activity, home, residents = _home_residents(activity_id)
    form, body = vm.take_signup(request.form, residents, home)
    name = residents.get(body["user_id"], "")
    return _act(activity_id, form, "signup",
                lambda: g.api.post(f"/api/v1/activities/{activity_id}/registrations", body),
                _("%(name)s is signed up (or on the waiting list if it is full). They are told.", name=name),
                "people")  # fmt: skip


@bp.post("/activities/<uuid:activity_id>/registrations/<uuid:registration_id>/check-in")
@staff_required
def check_in(activity_id: Any, registration_id: Any) -> Any:
    activity_id = str(activity_id)
    return _act(activity_id, Form({"checkin": ""}), "checkin",
                lambda: g.api.post(f"/api/v1/activities/{activity_id}/checkins",
                                   {"registration_id": str(registration_id)}),
                _("Checked in."), "people")  # fmt: skip


@bp.post("/activities/<uuid:activity_id>/walk-ins")
@staff_required
def walk_in(activity_id: Any) -> Any:
    activity_id = str(activity_id)
    activity, _home, residents = _home_residents(activity_id)
    form, body = vm.take_walk_in(request.form, list(activity.get("community_ids") or []), residents)
    return _act(activity_id, form, "walkin",
                lambda: g.api.post(f"/api/v1/activities/{activity_id}/walk-ins", body),
                _("Walk-ins counted."), "people")  # fmt: skip


# --- door-to-door bookings ---------------------------------------------------------------------------------


def _bookings_page(view: str, chosen: str, communities: list[dict[str, Any]], form: Form | None = None,
                   status: int = 200) -> Any:  # fmt: skip
    scope = {"community_id": chosen} if chosen else {}
    items, offerings, residents = g.api.gather(
        lambda a: a.get("/api/v1/activities/bookings", status=view, page_size=100, **scope),
        lambda a: a.get("/api/v1/activities/offerings", page_size=100, **scope),
        lambda a: _residents(a, chosen),
    )
    if isinstance(items, ApiError):
        raise items
    offerings = {o["id"]: o for o in _ok(offerings, []) if o.get("active", True)}
    return render_template(
        "desk/bookings.html",
        items=sorted(items, key=lambda b: b.get("slot_start") or ""),
        offerings=offerings,
        names=_ok(residents, {}),
        communities=communities,
        chosen=chosen,
        view=view,
        views=vm.BOOKING_VIEWS,
        form=form or Form({"door_to_door": "yes"}),
    ), status


@bp.get("/bookings")
@staff_required
def bookings() -> Any:
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.args.get("community_id", ""))
    view = request.args.get("status", "requested")
    return _bookings_page(view if view in vm.BOOKING_VIEWS else "requested", chosen, communities)


@bp.post("/bookings")
@staff_required
def book_for() -> Any:
    """A service booked for a resident without a phone (activities API: `resident_id`)."""
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    offerings, residents = g.api.gather(
        lambda a: a.get("/api/v1/activities/offerings", page_size=100, community_id=chosen) if chosen else [],
        lambda a: _residents(a, chosen),
    )
    offered = {o["id"]: o for o in _ok(offerings, []) if o.get("active", True)}
    form, body = vm.take_booking_for(request.form, _ok(residents, {}), offered, _timezone())
    if form.ok:
        try:
            g.api.post("/api/v1/activities/bookings", body)
        except ApiError as error:
            _refusal(form, error, "offering_id")
        else:
            flash(_("Booked. The provider confirms it here."), "success")
            return redirect(url_for("deskactivities.bookings", community_id=chosen or None), code=303)
    return _bookings_page("requested", chosen, communities, form, 400)


@bp.post("/bookings/<uuid:booking_id>/<any(confirm, complete, cancel):action>")
@staff_required
def booking_action(booking_id: Any, action: str) -> Any:
    booking_id = str(booking_id)
    body: dict[str, Any] = {}
    if action == "complete":
        form, body = vm.take_completion(request.form, booking_id)
        if not form.ok:
            flash(next(iter(form.errors.values())), "error")
            return redirect(url_for("deskactivities.bookings", status="confirmed"), code=303)
    try:
        g.api.post(f"/api/v1/activities/bookings/{booking_id}/{action}", body)
    except ApiError as error:
        if error.unavailable or error.status not in (400, 403, 404, 409, 422):
            raise
        flash(error.message if error.status == 409 else error_text(error.code, error.status), "error")
    else:
        flash({"confirm": _("Confirmed: the resident is told."), "complete": _("Recorded as done."),
               "cancel": _("Cancelled: the resident is told.")}[action], "success")  # fmt: skip
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/desk/bookings") and "//" not in back
                    else url_for("deskactivities.bookings"), code=303)  # fmt: skip


# --- residents who need support, welfare visits ------------------------------------------------------------


def _support_page(communities: list[dict[str, Any]], chosen: str, form: Form | None = None, status: int = 200,
                  open_form: str = "") -> Any:  # fmt: skip
    flags, queue, residents = g.api.gather(
        lambda a: a.get("/api/v1/activities/support", community_id=chosen, page_size=100) if chosen else [],
        lambda a: a.get("/api/v1/activities/visits/queue", community_id=chosen, within_days=7, page_size=50)
        if chosen else [],
        lambda a: _residents(a, chosen),
    )  # fmt: skip
    if isinstance(flags, ApiError):
        raise flags
    shown = [f["id"] for f in flags if f.get("active", True)][:PLANS_SHOWN]
    plans = g.api.gather(*[lambda a, i=i: a.get(f"/api/v1/activities/support/{i}/visit-plan") for i in shown])
    today = datetime.now(ZoneInfo(_timezone())).date().isoformat()
    return render_template(
        "desk/support.html",
        flags=sorted(flags, key=lambda f: (not f.get("active", True), f.get("display_name") or "")),
        queue=_ok(queue, []),
        plans={i: p for i, p in zip(shown, plans, strict=True) if not isinstance(p, ApiError)},
        visitors=_visitors(_ok(residents, {})),
        residents=_ok(residents, {}),
        communities=communities,
        chosen=chosen,
        today=today,
        form=form or Form({"community_id": chosen, "needs": ""}),
        open_form=open_form,
        NEED=vm.SUPPORT_NEED,
        CONDITION=vm.VISIT_CONDITION,
    ), status


@bp.route("/support", methods=["GET", "POST"])
@staff_required
def support() -> Any:
    communities = scope_communities(g.api, current_user())
    ids = [c["id"] for c in communities]
    if request.method == "GET":
        return _support_page(communities, _chosen(communities, request.args.get("community_id", "")))
    chosen = _chosen(communities, request.form.get("community_id", ""))
    residents = _ok(g.api.gather(lambda a: _residents(a, chosen))[0], {})
    form, body = vm.take_support(request.form, ids, residents)
    if form.ok:
        try:
            g.api.post("/api/v1/activities/support", body)
        except ApiError as error:
            _refusal(form, error, "display_name")
        else:
            flash(_("%(name)s is on the list of residents who need support.", name=body["display_name"]), "success")
            return redirect(url_for("deskactivities.support", community_id=body["community_id"]), code=303)
    return _support_page(communities, chosen, form, 400, open_form="flag")


def _visitors(residents: dict[str, str]) -> dict[str, str]:
    """Who may visit: the person themself first, then the community's residents (volunteers)."""
    me = current_user()
    return {me["id"]: _("Me (%(name)s)", name=me.get("display_name") or ""), **residents}


@bp.post("/support/<uuid:flag_id>/plan")
@staff_required
def visit_plan(flag_id: Any) -> Any:
    flag_id = str(flag_id)
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    residents = _ok(g.api.gather(lambda a: _residents(a, chosen))[0], {})
    form, body = vm.take_visit_plan(request.form, flag_id, _visitors(residents))
    if form.ok:
        try:
            g.api.put(f"/api/v1/activities/support/{flag_id}/visit-plan", body)
        except ApiError as error:
            _refusal(form, error, f"every_days-{flag_id}")
        else:
            flash(_("Visits planned. The visitor sees them when they are due."), "success")
            return redirect(url_for("deskactivities.support", community_id=chosen or None), code=303)
    return _support_page(communities, chosen, form, 400, open_form=f"plan-{flag_id}")


@bp.post("/support/<uuid:flag_id>/visits")
@staff_required
def visit(flag_id: Any) -> Any:
    flag_id = str(flag_id)
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    today = datetime.now(ZoneInfo(_timezone())).date()
    form, body = vm.take_visit(request.form, flag_id, today)
    if form.ok:
        try:
            g.api.post(f"/api/v1/activities/support/{flag_id}/visits", body)
        except ApiError as error:
            _refusal(form, error, f"visited_on-{flag_id}")
        else:
            flash(_("Visit recorded."), "success")
            return redirect(url_for("deskactivities.support", community_id=chosen or None), code=303)
    return _support_page(communities, chosen, form, 400, open_form=f"visit-{flag_id}")


# --- a report taken for a resident -------------------------------------------------------------------------


def _report_page(form: Form, communities: list[dict[str, Any]], status: int = 200) -> Any:
    community = form.values.get("community_id") or ""
    categories, residents = g.api.gather(
        lambda a: a.get("/api/v1/issues/categories"),
        lambda a: _residents(a, community),
    )
    return render_template(
        "desk/report_for.html",
        form=form,
        communities=communities,
        categories=[(c["key"], label(CATEGORY, c["key"], c.get("name"))) for c in _ok(categories, [])],
        residents=list(_ok(residents, {}).items()),
    ), status


@bp.route("/report", methods=["GET", "POST"])
@staff_required
def report_for() -> Any:
    """A report taken by telephone or at the door, in a resident's name (issues API: `on_behalf_of`)."""
    communities = scope_communities(g.api, current_user())
    if request.method == "GET":
        names = ["resident_id", "channel", "category", "title", "description", "urgency", "address"]
        form = Form({"community_id": _chosen(communities, request.args.get("community_id", "")),
                     **dict.fromkeys(names, ""), "channel": "phone", "urgency": "normal"})  # fmt: skip
        return _report_page(form, communities)
    chosen = _chosen(communities, request.form.get("community_id", ""))
    categories, residents = g.api.gather(lambda a: a.get("/api/v1/issues/categories"), lambda a: _residents(a, chosen))
    form, body = vm.take_report_for(
        request.form, [c["id"] for c in communities], _ok(residents, {}), [c["key"] for c in _ok(categories, [])]
    )
    if form.ok:
        try:
            created = g.api.post("/api/v1/issues/", body)
        except ApiError as error:
            _refusal(form, error, "title")
        else:
            flash(_("Reported in the resident's name. They are told by text message as they chose."), "success")
            return redirect(url_for("desk.issue", issue_id=created["id"]), code=303)
    return _report_page(form, communities, 400)


# --- service posts ---------------------------------------------------------------------------------


def _posts_page(communities: list[dict[str, Any]], chosen: str, form: Form | None = None, status: int = 200) -> Any:
    """A community's service posts, which of its compounds have none within a 15-minute walk (the
    gaps a new post would fill), and the form to add one."""
    posts, coverage, compounds = g.api.gather(
        lambda a: a.get("/api/v1/activities/posts", community_id=chosen, page_size=100) if chosen else [],
        lambda a: a.get(f"/api/v1/activities/coverage/{chosen}", minutes=15) if chosen else None,
        lambda a: a.get("/api/v1/directory/compounds", community_id=chosen, page_size=100) if chosen else [],
    )
    if isinstance(posts, ApiError):
        raise posts
    blank = dict.fromkeys(["name", "latitude", "longitude", "address", "opening_hours", "services", "compound_ids"], "")
    return render_template(
        "desk/activities/posts.html",
        posts=sorted(posts, key=lambda p: (not p.get("active", True), p.get("name") or "")),
        coverage=None if isinstance(coverage, ApiError) else coverage,
        compounds=_ok(compounds, []),
        communities=communities,
        chosen=chosen,
        form=form or Form({"community_id": chosen, **blank}),
    ), status


@bp.get("/posts")
@staff_required
def posts() -> Any:
    communities = scope_communities(g.api, current_user())
    return _posts_page(communities, _chosen(communities, request.args.get("community_id", "")))


@bp.post("/posts")
@staff_required
def add_post() -> Any:
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    compounds = g.api.gather(
        lambda a: a.get("/api/v1/directory/compounds", community_id=chosen, page_size=100) if chosen else []
    )[0]
    form, body = vm.take_post(request.form, [c["id"] for c in communities], [c["id"] for c in _ok(compounds, [])])
    if form.ok:
        try:
            g.api.post("/api/v1/activities/posts", body)
        except ApiError as error:
            _refusal(form, error, "name")
        else:
            flash(_("The service post is added: residents find it within their 15-minute walk."), "success")
            return redirect(url_for("deskactivities.posts", community_id=chosen), code=303)
    return _posts_page(communities, chosen, form, 400)


@bp.post("/posts/<uuid:post_id>/active")
@staff_required
def post_active(post_id: Any) -> Any:
    """Close a post (no longer shown to residents nor counted) or open it again."""
    active = request.form.get("active") == "yes"
    post = g.api.patch(f"/api/v1/activities/posts/{post_id}", {"active": active})
    flash(_("The post is open again.") if active else _("The post is closed."), "success")
    return redirect(url_for("deskactivities.posts", community_id=post.get("community_id")), code=303)


# --- services at home and mutual-aid groups ----------------------------------------------------------


def _services_page(
    communities: list[dict[str, Any]],
    chosen: str,
    offering: Form | None = None,
    group: Form | None = None,
    status: int = 200,
) -> Any:
    offerings, groups, residents = g.api.gather(
        lambda a: a.get("/api/v1/activities/offerings", community_id=chosen, page_size=100) if chosen else [],
        lambda a: a.get("/api/v1/activities/groups", community_id=chosen, page_size=100) if chosen else [],
        lambda a: _residents(a, chosen),
    )
    if isinstance(offerings, ApiError):
        raise offerings
    return render_template(
        "desk/activities/services.html",
        offerings=offerings,
        groups=_ok(groups, []),
        residents=_ok(residents, {}),
        communities=communities,
        chosen=chosen,
        kinds=vm.SERVICE_KINDS,
        offering=offering or Form({"where": "home"}),
        group=group or Form({}),
    ), status


@bp.get("/services")
@staff_required
def services() -> Any:
    communities = scope_communities(g.api, current_user())
    return _services_page(communities, _chosen(communities, request.args.get("community_id", "")))


@bp.post("/services/offerings")
@staff_required
def add_offering() -> Any:
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    if not chosen:
        abort(404)
    form, body = vm.take_offering(request.form, chosen)
    if form.ok:
        try:
            g.api.post("/api/v1/activities/offerings", body)
        except ApiError as error:
            _refusal(form, error, "offering_name")
        else:
            flash(_("The service is offered: residents can book it."), "success")
            return redirect(url_for("deskactivities.services", community_id=chosen), code=303)
    return _services_page(communities, chosen, offering=form, status=400)


@bp.post("/services/groups")
@staff_required
def add_group() -> Any:
    communities = scope_communities(g.api, current_user())
    chosen = _chosen(communities, request.form.get("community_id", ""))
    if not chosen:
        abort(404)
    residents = _residents(g.api, chosen)
    form, body = vm.take_group(request.form, chosen, residents)
    if form.ok:
        try:
            g.api.post("/api/v1/activities/groups", body)
        except ApiError as error:
            _refusal(form, error, "group_name")
        else:
            flash(_("The group is started: residents can join it."), "success")
            return redirect(url_for("deskactivities.services", community_id=chosen), code=303)
    return _services_page(communities, chosen, group=form, status=400)
