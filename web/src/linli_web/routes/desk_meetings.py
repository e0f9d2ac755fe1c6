"""The staff's meetings (community staff; street officials and city admins for their area): schedule
one with its agenda from the issues waiting for a meeting, invite people by role, open it and show
the check-in code, take attendance, put motions, count the votes, record the decisions with their
tasks, publish the minutes, and follow each task to done. Every action is a plain form posting here
(works without JavaScript); the meetings API decides again on every call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user
from linli_web.gateway_client import ApiError
from linli_web.i18n import MEETING_TYPE, error_text, label
from linli_web.routes.desk import scope_communities, staff_required
from linli_web.viewmodels import meetings_desk as vm
from linli_web.viewmodels.events import split_by_time
from linli_web.viewmodels.forms import Form

bp = Blueprint("deskmeetings", __name__, url_prefix="/desk/meetings")


def _ok(value: Any, default: Any) -> Any:
    return default if isinstance(value, ApiError) else value


def _timezone() -> str:
    return current_app.extensions["linli_web.settings"].timezone


def _type_options() -> list[tuple[str, str, str]]:
    hints = {
        "bench": _("A few neighbours, in the open: one small matter"),
        "pavilion": _("Residents of a compound or building talk a matter through"),
        "round_table": _("Representatives, the property company, the owners' committee and staff decide together"),
    }
    return [(t, label(MEETING_TYPE, t), hints[t]) for t in vm.TYPES]


@bp.get("")
@staff_required
def index() -> Any:
    now = datetime.now(UTC)
    user = current_user()
    communities = scope_communities(g.api, user)
    ids = [c["id"] for c in communities]
    chosen = request.args.get("community_id", "")
    scope = {"community_id": chosen} if chosen in ids else ({"community_id": ids[0]} if len(ids) == 1 else {})
    items = g.api.get("/api/v1/meetings/", starts_after=(now - timedelta(days=60)).isoformat(), page_size=100, **scope)
    coming, past = split_by_time(items, now)
    names = {c["id"]: c.get("name") or c["id"] for c in communities}
    return render_template(
        "desk/meetings/index.html",
        coming=coming,
        past=past[:30],
        communities=communities,
        community_names=names,
        chosen=scope.get("community_id", ""),
    )


def _candidates(a: Any, community_id: str) -> list[dict[str, Any]]:
    return a.get("/api/v1/meetings/candidates", community_id=community_id, page_size=100) if community_id else []


def _new_page(form: Form, communities: list[dict[str, Any]], status: int = 200) -> Any:
    community_id = form.values.get("community_id") or ""
    candidates = _ok(g.api.gather(lambda a: _candidates(a, community_id))[0], [])
    return render_template(
        "desk/meetings/new.html",
        form=form,
        communities=communities,
        candidates=candidates,
        chosen_issues=(form.values.get("issue_id") or "").split(","),
        type_options=_type_options(),
    ), status


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new() -> Any:
    communities = scope_communities(g.api, current_user())
    ids = [c["id"] for c in communities]
    if request.method == "GET":
        community = request.args.get("community_id", "")
        form = Form(
            {
                "community_id": community if community in ids else (ids[0] if len(ids) == 1 else ""),
                "meeting_type": request.args.get("meeting_type", ""),
                "title": "",
                "day": "",
                "start": "",
                "end": "",
                "place": "",
                "private": "",
                "issue_id": request.args.get("issue_id", ""),
            }
        )
        return _new_page(form, communities)
    form, body = vm.take_schedule(request.form, ids, _timezone())
    if form.ok:
        chosen = [i for i in form.values["issue_id"].split(",") if i]
        if chosen:
            body["agenda"] = vm.agenda_from(chosen, _candidates(g.api, body["community_id"]))
        try:
            meeting = g.api.post("/api/v1/meetings/", body)
        except ApiError as error:
            if error.unavailable or error.status not in (403, 409, 422):
                raise
            form.api_fields(error.fields or {"title": [error_text(error.code, error.status)]},
                            {"starts_at": "day", "ends_at": "end"})  # fmt: skip
        else:
            flash(_("The meeting is scheduled. Residents of the community are told."), "success")
            return redirect(url_for("deskmeetings.show", meeting_id=meeting["id"]), code=303)
    return _new_page(form, communities, 400)


def _page(meeting_id: str, form: Form | None = None, status: int = 200, open_form: str = "") -> Any:
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    community = meeting["community_id"]
    participants, motions, people, candidates, place, code = g.api.gather(
        lambda a: a.get(f"/api/v1/meetings/{meeting_id}/participants"),
        lambda a: a.get(f"/api/v1/meetings/{meeting_id}/motions"),
        lambda a: a.get("/api/v1/auth/users", community_id=community, status="active", page_size=100),
        lambda a: _candidates(a, community) if meeting["status"] == "scheduled" else [],
        lambda a: a.get(f"/api/v1/directory/communities/{community}"),
        lambda a: a.get(f"/api/v1/meetings/{meeting_id}/checkin-code") if meeting["status"] == "in_progress" else {},
    )
    people = _ok(people, [])
    names = {p["id"]: p.get("display_name") or "" for p in people}
    code_value = _ok(code, {}).get("code")
    detail = vm.desk_meeting(meeting, _ok(participants, []), _ok(motions, []), names, code_value)
    on_agenda = {a.get("issue_id") for a in meeting.get("agenda") or []}
    settings = current_app.extensions["linli_web.settings"]
    return render_template(
        "desk/meetings/show.html",
        d=detail,
        m=meeting,
        community_name=_ok(place, {}).get("name", ""),
        candidates=[c for c in _ok(candidates, []) if c["issue_id"] not in on_agenda],
        people=sorted(((p["id"], p.get("display_name") or p["id"]) for p in people), key=lambda p: p[1]),
        names=names,
        form=form or Form({}),
        open_form=open_form,
        checkin_link=vm.checkin_link(settings.web_url, meeting_id, code_value) if code_value else "",
        ROLE=vm.ROLE,
        OWNER_BODY=vm.OWNER_BODY,
        THRESHOLD=vm.THRESHOLD,
        METHOD=vm.METHOD,
        EFFECT=vm.EFFECT,
    ), status


@bp.get("/<uuid:meeting_id>")
@staff_required
def show(meeting_id: Any) -> Any:
    return _page(str(meeting_id))


def _act(meeting_id: str, form: Form, name: str, call: Callable[[], Any], done: str, anchor: str = "") -> Any:
    """Send a checked form; show the API's objection on the form (its field, or the first one)."""
    if form.ok:
        try:
            call()
        except ApiError as error:
            if error.unavailable or error.status == 404 or error.status not in (403, 409, 422):
                raise
            if error.fields:
                form.api_fields(error.fields)
            else:
                form.error(next(iter(form.values), name), error.message or error_text(error.code, error.status))
        else:
            flash(done, "success")
            return redirect(url_for("deskmeetings.show", meeting_id=meeting_id, _anchor=anchor or None), code=303)
    return _page(meeting_id, form, 400 if form.errors else 200, open_form=name)


@bp.post("/<uuid:meeting_id>/agenda")
@staff_required
def add_agenda(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    form, body = vm.take_agenda(request.form, _ok(_safe(lambda: _candidates(g.api, meeting["community_id"])), []))
    return _act(meeting_id, form, "agenda", lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/agenda", body),
                _("Added to the agenda."), "agenda")  # fmt: skip


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ApiError as error:
        return error


@bp.post("/<uuid:meeting_id>/participants")
@staff_required
def invite(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    people = _ok(
        _safe(
            lambda: g.api.get(
                "/api/v1/auth/users", community_id=meeting["community_id"], status="active", page_size=100
            )
        ),  # fmt: skip
        [],
    )
    form, body = vm.take_invitation(request.form, {p["id"]: p.get("display_name") or "" for p in people})
    return _act(meeting_id, form, "invite", lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/participants", body),
                _("Invited. They are told."), "people")  # fmt: skip


@bp.post("/<uuid:meeting_id>/start")
@staff_required
def start(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    return _act(meeting_id, Form({"start": ""}), "start", lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/start"),
                _("The meeting is open: show the check-in code."), "code")  # fmt: skip


@bp.post("/<uuid:meeting_id>/participants/<uuid:participant_id>/check-in")
@staff_required
def check_in(meeting_id: Any, participant_id: Any) -> Any:
    meeting_id = str(meeting_id)
    return _act(
        meeting_id,
        Form({"checkin": ""}),
        "checkin",
        lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/participants/{participant_id}/check-in"),
        _("Marked present."),
        "people",
    )


@bp.post("/<uuid:meeting_id>/motions")
@staff_required
def put_motion(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    form, body = vm.take_motion(request.form, [a["id"] for a in meeting.get("agenda") or []])
    return _act(meeting_id, form, "motion", lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/motions", body),
                _("The motion is put to the meeting."), "motions")  # fmt: skip


def _unsuffixed(key: str) -> dict[str, str]:
    """A form of several on one page names its fields `<name>-<id>` (ids stay unique): the names."""
    return {name.removesuffix(f"-{key}"): value for name, value in request.form.items()}


@bp.post("/<uuid:meeting_id>/motions/<uuid:decision_id>/tally")
@staff_required
def tally(meeting_id: Any, decision_id: Any) -> Any:
    meeting_id = str(meeting_id)
    form, body = vm.take_tally(_unsuffixed(str(decision_id)))
    form.values = {f"{k}-{decision_id}": v for k, v in form.values.items()}
    form.errors = {f"{k}-{decision_id}": v for k, v in form.errors.items()}
    return _act(meeting_id, form, f"tally-{decision_id}",
                lambda: g.api.put(f"/api/v1/meetings/{meeting_id}/motions/{decision_id}/tally", body),
                _("The count is entered. Record the decision when it is right."), "motions")  # fmt: skip


@bp.post("/<uuid:meeting_id>/motions/<uuid:decision_id>/record")
@staff_required
def record(meeting_id: Any, decision_id: Any) -> Any:
    meeting_id = str(meeting_id)
    return _act(meeting_id, Form({f"record-{decision_id}": ""}), f"record-{decision_id}",
                lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/motions/{decision_id}/record"),
                _("The decision is recorded."), "decisions")  # fmt: skip


@bp.post("/<uuid:meeting_id>/conclude")
@staff_required
def conclude(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    form, body = vm.take_minutes(request.form)
    return _act(meeting_id, form, "minutes", lambda: g.api.post(f"/api/v1/meetings/{meeting_id}/conclude", body),
                _("The meeting is closed and its minutes published."), "minutes-heading")  # fmt: skip


@bp.post("/<uuid:meeting_id>/minutes")
@staff_required
def minutes(meeting_id: Any) -> Any:
    meeting_id = str(meeting_id)
    form, body = vm.take_minutes(request.form)
    return _act(meeting_id, form, "minutes", lambda: g.api.put(f"/api/v1/meetings/{meeting_id}/minutes", body),
                _("The minutes are published."), "minutes-heading")  # fmt: skip


@bp.post("/<uuid:meeting_id>/action-items/<uuid:item_id>")
@staff_required
def progress(meeting_id: Any, item_id: Any) -> Any:
    meeting_id = str(meeting_id)
    form, body = vm.take_progress(_unsuffixed(str(item_id)))
    form.values = {f"{k}-{item_id}": v for k, v in form.values.items()}
    form.errors = {f"{k}-{item_id}": v for k, v in form.errors.items()}
    return _act(meeting_id, form, f"progress-{item_id}",
                lambda: g.api.patch(f"/api/v1/meetings/action-items/{item_id}", body),
                _("Progress saved. Residents following the issue see it."), "decisions")  # fmt: skip


@bp.get("/<uuid:meeting_id>/code")
@staff_required
def code_screen(meeting_id: Any) -> Any:
    """The check-in code alone, large, for a screen or a printed sheet at the meeting."""
    meeting_id = str(meeting_id)
    meeting = g.api.get(f"/api/v1/meetings/{meeting_id}")
    code = g.api.get(f"/api/v1/meetings/{meeting_id}/checkin-code")["code"]
    settings = current_app.extensions["linli_web.settings"]
    return render_template(
        "desk/meetings/code.html",
        m=meeting,
        code=code,
        checkin_link=vm.checkin_link(settings.web_url, meeting_id, code),
    )
