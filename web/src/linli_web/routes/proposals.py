"""Residents start things: a resident proposes an activity and follows what became of it; the
community's staff read the proposals waiting and accept one (the activity is made and published at
the time they fix) or decline it with a reason. The activities API decides again on every call."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.routes.desk import staff_required
from linli_web.viewmodels import proposals as vm
from linli_web.viewmodels.forms import Form

bp = Blueprint("proposals", __name__)


def _own_community() -> str | None:
    return (current_user().get("community_ids") or [None])[0]


@bp.route("/activities/propose", methods=["GET", "POST"])
@login_required
def propose() -> Any:
    community_id = _own_community()
    if current_user().get("role") != "resident" or community_id is None:
        abort(403)  # the API takes proposals from residents, in their own community
    form = Form({"kind": "", "title": "", "reason": "", "description": "", "place": ""})
    if request.method == "POST":
        form, body = vm.take_proposal(request.form, community_id)
        if form.ok:
            try:
                g.api.post("/api/v1/activities/proposals", body)
            except ApiError as error:
                if error.unavailable or error.status not in (403, 422):
                    raise
                if error.fields:
                    form.api_fields(error.fields)
                else:
                    form.error("title", error.message)
            else:
                flash(_("Thank you: your proposal is with the community's staff, who will answer."), "success")
                return redirect(url_for("proposals.mine"), code=303)
        return render_template("activities/propose.html", form=form), 400
    return render_template("activities/propose.html", form=form)


@bp.get("/activities/proposals")
@login_required
def mine() -> Any:
    """My activity proposals and the meetings I asked for, each withdrawable while it waits."""
    items, meetings = g.api.gather(
        lambda a: a.get("/api/v1/activities/proposals", page_size=50),
        lambda a: a.get("/api/v1/meetings/proposals", page_size=50),
    )
    if isinstance(items, ApiError):
        raise items
    # A resident is shown their own proposals only (the APIs' rule); staff, who see the
    # community's, answer them at the desk.
    meetings = [] if isinstance(meetings, ApiError) else meetings
    return render_template("activities/proposals.html", proposals=items, meeting_proposals=meetings)


@bp.post("/activities/proposals/<uuid:proposal_id>/withdraw")
@login_required
def withdraw(proposal_id: Any) -> Any:
    return _withdraw(f"/api/v1/activities/proposals/{proposal_id}/withdraw")


@bp.post("/meeting-proposals/<uuid:proposal_id>/withdraw")
@login_required
def withdraw_meeting(proposal_id: Any) -> Any:
    return _withdraw(f"/api/v1/meetings/proposals/{proposal_id}/withdraw")


def _withdraw(path: str) -> Any:
    """The proposer takes a waiting proposal back; the API refuses (409) one already answered, and
    (403/404) anyone else's."""
    try:
        g.api.post(path)
    except ApiError as error:
        if error.unavailable or error.status not in (403, 404, 409):
            raise
        flash(_("This proposal can no longer be withdrawn: it was answered already."), "error")
    else:
        flash(_("Your proposal is withdrawn."), "success")
    return redirect(url_for("proposals.mine"), code=303)


@bp.get("/desk/proposals")
@staff_required
def desk_list() -> Any:
    waiting, answered, meetings = g.api.gather(
        lambda a: a.get("/api/v1/activities/proposals", status="pending", page_size=100),
        lambda a: a.get("/api/v1/activities/proposals", page_size=20),
        lambda a: a.get("/api/v1/meetings/proposals", status="pending", page_size=100),
    )
    if isinstance(waiting, ApiError):
        raise waiting
    answered = [] if isinstance(answered, ApiError) else [p for p in answered if p.get("status") != "pending"]
    meetings = [] if isinstance(meetings, ApiError) else meetings
    return render_template("desk/proposals.html", waiting=waiting, answered=answered, meeting_proposals=meetings)


def _desk_page(proposal_id: str, accept: Form | None = None, decline: Form | None = None, status: int = 200) -> Any:
    proposal = g.api.get(f"/api/v1/activities/proposals/{proposal_id}")
    accept = accept or Form({"day": "", "start": "", "end": "", "place": proposal.get("place") or "", "capacity": "",
                             "note": ""})  # fmt: skip
    decline = decline or Form({"reason": ""})
    return render_template("desk/proposal.html", p=proposal, accept=accept, decline=decline), status


@bp.get("/desk/proposals/<uuid:proposal_id>")
@staff_required
def desk_show(proposal_id: Any) -> Any:
    return _desk_page(str(proposal_id))


@bp.post("/desk/proposals/<uuid:proposal_id>/accept")
@staff_required
def desk_accept(proposal_id: Any) -> Any:
    timezone = current_app.extensions["linli_web.settings"].timezone
    form, body = vm.take_acceptance(request.form, timezone)
    if form.ok:
        try:
            answer = g.api.post(f"/api/v1/activities/proposals/{proposal_id}/accept", body)
        except ApiError as error:
            if error.unavailable or error.status not in (409, 422):
                raise
            if error.status == 409:
                flash(_("This proposal was answered already."), "error")
                return redirect(url_for("proposals.desk_show", proposal_id=proposal_id), code=303)
            form.api_fields(error.fields, {"starts_at": "start", "ends_at": "end"})
        else:
            flash(_("The activity is published; the resident who proposed it is told."), "success")
            return redirect(url_for("activities.show", activity_id=answer["activity"]["id"]), code=303)
    return _desk_page(str(proposal_id), accept=form, status=400)


@bp.post("/desk/proposals/<uuid:proposal_id>/decline")
@staff_required
def desk_decline(proposal_id: Any) -> Any:
    form, body = vm.take_decline(request.form)
    if form.ok:
        try:
            g.api.post(f"/api/v1/activities/proposals/{proposal_id}/decline", body)
        except ApiError as error:
            if error.unavailable or error.status not in (409, 422):
                raise
            if error.status == 409:
                flash(_("This proposal was answered already."), "error")
                return redirect(url_for("proposals.desk_show", proposal_id=proposal_id), code=303)
            form.api_fields(error.fields)
        else:
            flash(_("The proposal is declined; the resident is told why."), "success")
            return redirect(url_for("proposals.desk_list"), code=303)
    return _desk_page(str(proposal_id), decline=form, status=400)


# --- a bench meeting proposed on an issue (the meetings API's proposals) -------------------------
@bp.post("/issues/<uuid:issue_id>/meeting-proposal")
@login_required
def propose_meeting(issue_id: Any) -> Any:
    """A resident asks for a bench meeting on an issue of their community, saying why."""
    form = Form.of(request.form, ["meeting_reason"])
    form.required("meeting_reason", _("Say why the neighbours should meet about it"))
    form.length("meeting_reason", maximum=2000, label=_("The reason"))
    community_id = _own_community()
    if not form.ok or community_id is None:
        flash(next(iter(form.errors.values()), _("You are not allowed to do that.")), "error")
        return redirect(url_for("issues.show", issue_id=issue_id, _anchor="propose-meeting"), code=303)
    body = {"community_id": community_id, "issue_id": str(issue_id), "reason": form.values["meeting_reason"]}
    try:
        g.api.post("/api/v1/meetings/proposals", body)
    except ApiError as error:
        if error.unavailable or error.status not in (403, 409, 422):
            raise
        flash(_("Your proposal was not taken: %(why)s", why=error.message), "error")
    else:
        flash(_("Thank you: the community's staff will answer your proposal of a meeting."), "success")
    return redirect(url_for("issues.show", issue_id=issue_id), code=303)


def _meeting_page(proposal_id: str, accept: Form | None = None, decline: Form | None = None, status: int = 200) -> Any:
    proposal = g.api.get(f"/api/v1/meetings/proposals/{proposal_id}")
    accept = accept or Form({"day": "", "start": "", "end": "", "place": "", "capacity": "", "note": ""})
    decline = decline or Form({"reason": ""})
    return render_template("desk/meeting_proposal.html", p=proposal, accept=accept, decline=decline), status


@bp.get("/desk/meeting-proposals/<uuid:proposal_id>")
@staff_required
def desk_meeting_show(proposal_id: Any) -> Any:
    return _meeting_page(str(proposal_id))


@bp.post("/desk/meeting-proposals/<uuid:proposal_id>/accept")
@staff_required
def desk_meeting_accept(proposal_id: Any) -> Any:
    """Schedule the proposed meeting: the issue goes on its agenda and the proposer is invited."""
    timezone = current_app.extensions["linli_web.settings"].timezone
    form, body = vm.take_acceptance(request.form, timezone)
    if form.ok:
        try:
            answer = g.api.post(f"/api/v1/meetings/proposals/{proposal_id}/accept", body)
        except ApiError as error:
            if error.unavailable or error.status not in (409, 422):
                raise
            if error.status == 409:
                flash(_("This proposal was answered already."), "error")
                return redirect(url_for("proposals.desk_meeting_show", proposal_id=proposal_id), code=303)
            form.api_fields(error.fields, {"starts_at": "start", "ends_at": "end"})
        else:
            flash(_("The meeting is scheduled; the resident who proposed it is told."), "success")
            return redirect(url_for("deskmeetings.show", meeting_id=answer["meeting_id"]), code=303)
    return _meeting_page(str(proposal_id), accept=form, status=400)


@bp.post("/desk/meeting-proposals/<uuid:proposal_id>/decline")
@staff_required
def desk_meeting_decline(proposal_id: Any) -> Any:
    form, body = vm.take_decline(request.form)
    if form.ok:
        try:
            g.api.post(f"/api/v1/meetings/proposals/{proposal_id}/decline", body)
        except ApiError as error:
            if error.unavailable or error.status not in (409, 422):
                raise
            if error.status == 409:
                flash(_("This proposal was answered already."), "error")
                return redirect(url_for("proposals.desk_meeting_show", proposal_id=proposal_id), code=303)
            form.api_fields(error.fields)
        else:
            flash(_("The proposal is declined; the resident is told why."), "success")
            return redirect(url_for("proposals.desk_list"), code=303)
    return _meeting_page(str(proposal_id), decline=form, status=400)
