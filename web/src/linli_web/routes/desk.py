"""The staff desk (community staff; street officials and city admins for their area): the triage
queue, one issue with every action staff take on it, sign-ups waiting for approval, notices to a
community. Every action is a plain form (works without JavaScript) posting to a route here, which
checks it (viewmodels/desk.py) and calls the gateway's API; nothing is decided here that the API
does not decide again."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.i18n import CATEGORY, error_text, label
from linli_web.viewmodels import desk
from linli_web.viewmodels.forms import Form

bp = Blueprint("desk", __name__, url_prefix="/desk")


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not desk.is_staff(current_user()):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _ok(value: Any, default: Any) -> Any:
    return default if isinstance(value, ApiError) else value


def scope_communities(a: Any, user: dict[str, Any]) -> list[dict[str, Any]]:
    """The communities a staff member works for, with their names (runs inside `gather` too: only
    the `a` it is given calls the gateway)."""
    role = user.get("role")
    if role == "community_staff":
        found = []
        for community_id in user.get("community_ids") or []:
            try:
                found.append(a.get(f"/api/v1/directory/communities/{community_id}"))
            except ApiError:
                found.append({"id": community_id, "name": community_id})
        return found
    params: dict[str, Any] = {"page_size": 100}
    if role == "street_official":
        params["street_id"] = user.get("street_id")
    communities = a.get("/api/v1/directory/communities", **params)
    return sorted(communities, key=lambda c: c.get("name") or "")


def _registered_organisations(a: Any, community_id: str | None = None) -> list[dict[str, Any]]:
    """The directory's register: those serving one community (its compounds' companies and
    committees, its street's and the city's bureaus), or all the caller may pick from."""
    scope = {"community_id": community_id} if community_id else {}
    try:
        return a.get("/api/v1/directory/organisations", active="true", page_size=100, **scope)
    except ApiError:
        return []  # the body is then chosen without a name


# --- the queue ------------------------------------------------------------------------------------


@bp.get("")
@staff_required
def queue() -> Any:
    user = current_user()
    communities, org_users, categories = g.api.gather(
        lambda a: scope_communities(a, user),
        _registered_organisations,
        lambda a: a.get("/api/v1/issues/categories"),
    )
    communities = _ok(communities, [])
    orgs = desk.organisations(_ok(org_users, []))
    categories = _ok(categories, [])
    filters, form = desk.take_queue_filters(
        request.args,
        communities=[c["id"] for c in communities],
        organisation_ids=[o.id for o in orgs],
        categories=[c["key"] for c in categories],
    )
    counted = ("new", "overdue", "escalated")
    scope = {"community_id": filters.community_id} if filters.community_id else {}
    answers = g.api.gather(
        lambda a: a.page("/api/v1/issues/", **filters.params()),
        *[lambda a, v=v: a.page("/api/v1/issues/", **desk.VIEWS[v], **scope, page_size=1) for v in counted],
    )
    if isinstance(answers[0], ApiError):
        raise answers[0]
    items, total = answers[0]
    counts = {v: (None if isinstance(r, ApiError) else r[1]) for v, r in zip(counted, answers[1:], strict=True)}
    names = {c["id"]: c.get("name") or c["id"] for c in communities}
    org_names = {o.id: o.name for o in orgs}
    return render_template(
        "desk/queue.html",
        items=items,
        pager=desk.Pager(filters.page, total),
        total=total,
        counts=counts,
        filters=filters,
        form=form,
        communities=communities,
        community_names=names,
        orgs=orgs,
        org_names=org_names,
        community_options=[(c["id"], c.get("name") or c["id"]) for c in communities],
        assignee_options=desk.assignee_options(orgs),
        category_options=[(c["key"], label(CATEGORY, c["key"], c.get("name"))) for c in categories],
        views=desk.VIEW_NAMES,
        sorts=desk.SORTS,
        bodies=desk.BODY,
    ), (200 if form.ok else 400)


# --- one issue ------------------------------------------------------------------------------------


def _issue_page(issue_id: str, form: Form | None = None, status: int = 200, open_form: str = "") -> Any:
    user = current_user()
    issue = g.api.get(f"/api/v1/issues/{issue_id}")
    community = issue["community_id"]
    reporter = issue.get("reporter_id")
    updates, meetings, photos, org_users, similar, recent, reporter_user, place = g.api.gather(
        lambda a: a.get(f"/api/v1/issues/{issue_id}/updates"),
        lambda a: a.get(f"/api/v1/issues/{issue_id}/meetings"),
        lambda a: a.get(f"/api/v1/issues/{issue_id}/photos"),
        lambda a: _registered_organisations(a, community),
        lambda a: a.get("/api/v1/issues/similar", community_id=community, title=issue["title"][:200]),
        lambda a: a.get(
            "/api/v1/issues/", community_id=community, status=",".join(desk.OPEN), page_size=30, sort="-created_at"
        ),
        lambda a: a.get(f"/api/v1/auth/users/{reporter}") if reporter else None,
        lambda a: a.get(f"/api/v1/directory/communities/{community}"),
    )
    updates = _ok(updates, [])
    names: dict[str, str] = {}
    if reporter_user and not isinstance(reporter_user, ApiError):
        names[reporter_user["id"]] = reporter_user.get("display_name") or ""
    authors = {u.get("author_id") for u in updates if u.get("author_id")} - set(names) - {user["id"]}
    wanted = sorted(a for a in authors if a)[:12]
    found = g.api.gather(*[lambda a, i=i: a.get(f"/api/v1/auth/users/{i}") for i in wanted])
    for author_id, person in zip(wanted, found, strict=True):
        if not isinstance(person, ApiError):
            names[author_id] = person.get("display_name") or ""
    orgs = desk.organisations(_ok(org_users, []))
    org_names = {o.id: o.name for o in orgs}
    detail = desk.StaffIssue(
        issue=issue,
        user=user,
        reporter=names.get(reporter, "") if reporter else "",
        assignee=org_names.get(issue.get("assignee_id") or "", ""),
        timeline=desk.staff_timeline(updates, names, me=user["id"]),
        duplicates=desk.duplicate_candidates(issue_id, _ok(similar, []), _ok(recent, [])),
        organisations=orgs,
        meetings=sorted(_ok(meetings, []), key=lambda m: m.get("starts_at") or ""),
        photos=_ok(photos, []),
    )
    return render_template(
        "desk/issue.html",
        d=detail,
        i=issue,
        community_name=_ok(place, {}).get("name", ""),
        form=form or Form({}),
        open_form=open_form,
        bodies=desk.BODY,
        channels_in=desk.CHANNEL_IN,
    ), status


@bp.get("/issues/<uuid:issue_id>")
@staff_required
def issue(issue_id: Any) -> Any:
    return _issue_page(str(issue_id))


def _act(issue_id: str, form: Form, name: str, call: Callable[[], Any], done: str) -> Any:
    """Send a checked form; show the API's objection on the form (its field, or the first one)."""
    if form.ok:
        try:
            call()
        except ApiError as error:
            if error.unavailable or error.status == 404:
                raise
            if error.fields:
                form.api_fields(error.fields)
            else:
                form.error(next(iter(form.values), name), error_text(error.code, error.status))
        else:
            flash(done, "success")
            return redirect(url_for("desk.issue", issue_id=issue_id), code=303)
    return _issue_page(issue_id, form, 400 if form.errors else 200, open_form=name)


@bp.post("/issues/<uuid:issue_id>/accept")
@staff_required
def accept(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    form = Form({"accept": ""})
    return _act(
        issue_id,
        form,
        "accept",
        lambda: g.api.post(f"/api/v1/issues/{issue_id}/status", {"status": "accepted"}),
        _("Accepted. The resident is told."),
    )


@bp.post("/issues/<uuid:issue_id>/reject")
@staff_required
def reject(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    form, body = desk.take_reject(request.form)
    return _act(
        issue_id,
        form,
        "reject",
        lambda: g.api.post(f"/api/v1/issues/{issue_id}/status", body),
        _("Not accepted. The resident is told why."),
    )


@bp.post("/issues/<uuid:issue_id>/duplicate")
@staff_required
def duplicate(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    # The choice is checked against the community's issues the API finds (any open one may be named).
    candidate = request.form.get("duplicate_of", "")
    allowed = [candidate] if desk._uuid(candidate) and candidate != issue_id else []
    form, body = desk.take_duplicate(request.form, allowed)
    return _act(
        issue_id,
        form,
        "duplicate",
        lambda: g.api.post(f"/api/v1/issues/{issue_id}/status", body),
        _("Marked as the same as another issue. The resident is told where to follow it."),
    )


@bp.post("/issues/<uuid:issue_id>/assign")
@staff_required
def assign(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    try:
        community = g.api.get(f"/api/v1/issues/{issue_id}").get("community_id")
    except ApiError:
        community = None  # the assignment below then answers as the API does
    orgs = desk.organisations(_registered_organisations(g.api, community))
    form, body = desk.take_assignment(request.form, orgs)
    return _act(
        issue_id,
        form,
        "assign",
        lambda: g.api.put(f"/api/v1/issues/{issue_id}/assignment", body),
        _("Given to the body responsible."),
    )


@bp.post("/issues/<uuid:issue_id>/updates/<any(reply, note, inspection):kind>")
@staff_required
def update(issue_id: Any, kind: str) -> Any:
    issue_id = str(issue_id)
    form, body = desk.take_update(request.form, kind)
    done = {
        "reply": _("Reply sent: the resident and the neighbours who follow it are told."),
        "note": _("Internal note kept. Residents do not see it."),
        "inspection": _("Inspection recorded."),
    }[kind]
    return _act(issue_id, form, kind, lambda: g.api.post(f"/api/v1/issues/{issue_id}/updates", body), done)


@bp.post("/issues/<uuid:issue_id>/escalate")
@staff_required
def escalate(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    form, body = desk.take_escalation(request.form)
    return _act(
        issue_id,
        form,
        "escalate",
        lambda: g.api.post(f"/api/v1/issues/{issue_id}/escalations", body),
        _("Passed up to the next office."),
    )


@bp.post("/issues/<uuid:issue_id>/progress")
@staff_required
def progress(issue_id: Any) -> Any:
    issue_id = str(issue_id)
    form, body = desk.take_progress(request.form, ["deliberating", "resolving", "resolved"])
    return _act(
        issue_id,
        form,
        "progress",
        lambda: g.api.post(f"/api/v1/issues/{issue_id}/status", body),
        _("Saved. The resident is told."),
    )


# --- sign-ups ---------------------------------------------------------------------------------------


@bp.get("/signups")
@staff_required
def signups() -> Any:
    user = current_user()
    pending, communities = g.api.gather(
        lambda a: a.get("/api/v1/auth/users", status="pending", page_size=100),
        lambda a: scope_communities(a, user),
    )
    if isinstance(pending, ApiError):
        raise pending
    names = {c["id"]: c.get("name") for c in _ok(communities, [])}
    return render_template("desk/signups.html", pending=pending, community_names=names)


@bp.post("/signups/<uuid:user_id>/approve")
@staff_required
def approve(user_id: Any) -> Any:
    try:
        person = g.api.post(f"/api/v1/auth/users/{user_id}/approve")
    except ApiError as error:
        if error.status != 409:
            raise
        flash(_("That sign-up was already handled."), "info")
    else:
        flash(_("%(name)s can now sign in.", name=person.get("display_name") or ""), "success")
    return redirect(url_for("desk.signups"), code=303)


# --- notices to a community ---------------------------------------------------------------------------


@bp.route("/broadcast", methods=["GET", "POST"])
@staff_required
def broadcast() -> Any:
    communities = scope_communities(g.api, current_user())
    ids = [c["id"] for c in communities]
    if request.method == "GET":
        first = ids[0] if len(ids) == 1 else ""
        form = Form({"community_id": first, "title": "", "body": "", "urgent": "", "channels": "push,sms"})
        return render_template("desk/broadcast.html", form=form, communities=communities)
    form, body = desk.take_broadcast(request.form, ids)
    if form.ok:
        try:
            sent = g.api.post("/api/v1/notifications/broadcasts", body)
        except ApiError as error:
            if error.unavailable or not error.fields and error.status not in (403, 409, 422):
                raise
            if error.fields:
                form.api_fields(error.fields)
            else:
                form.error("body", error_text(error.code, error.status))
        else:
            flash(_("The notice is on its way."), "success")
            return redirect(url_for("desk.broadcast_sent", broadcast_id=sent["id"]), code=303)
    return render_template("desk/broadcast.html", form=form, communities=communities), 400


@bp.get("/broadcast/<uuid:broadcast_id>")
@staff_required
def broadcast_sent(broadcast_id: Any) -> Any:
    sent = g.api.get(f"/api/v1/notifications/broadcasts/{broadcast_id}")
    place = g.api.gather(lambda a: a.get(f"/api/v1/directory/communities/{sent['community_id']}"))[0]
    return render_template(
        "desk/broadcast_sent.html",
        b=sent,
        community_name=_ok(place, {}).get("name", ""),
        DELIVERY_STATE=desk.DELIVERY_STATE,
    )
