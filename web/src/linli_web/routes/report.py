"""Report a problem: one question per page (see viewmodels/report.py for the rules of each step)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.i18n import CATEGORY, CATEGORY_HINT, label
from linli_web.photos import PhotoError, Uploads, to_jpeg
from linli_web.viewmodels import report as vm

bp = Blueprint("report", __name__, url_prefix="/report")


def _uploads() -> Uploads:
    if "linli_web.uploads" not in current_app.extensions:
        settings = current_app.extensions["linli_web.settings"]
        current_app.extensions["linli_web.uploads"] = Uploads(settings.data_dir / "web-uploads")
    return current_app.extensions["linli_web.uploads"]


def _draft() -> vm.ReportDraft:
    return vm.ReportDraft.load(session.get("report"))


def _save(draft: vm.ReportDraft) -> None:
    session["report"] = draft.dump()


def _community() -> str | None:
    user = current_user() or {}
    return (user.get("community_ids") or [None])[0]


def _categories() -> list[dict[str, Any]]:
    found = current_app.extensions["linli_web.gateway"].request("GET", "/api/v1/issues/categories").data or []
    return [c for c in found if c.get("active", True)]


def _compounds(community_id: str) -> list[dict[str, Any]]:
    return g.api.get("/api/v1/directory/compounds", community_id=community_id, page_size=100)


def _after(step: str) -> Any:
    changing = request.values.get("change") == "1"
    return redirect(url_for(f"report.{vm.next_step(step, changing)}"), code=303)


@bp.get("")
@login_required
def start() -> Any:
    if request.args.get("new") == "1":
        old = _draft()
        _uploads().drop(old.photo)
        session.pop("report", None)
    return redirect(url_for("report.category"))


@bp.route("/category", methods=["GET", "POST"])
@login_required
def category() -> Any:
    draft = _draft()
    categories = _categories()
    form = vm.Form({"category": draft.category})
    if request.method == "POST":
        form = vm.take_category(draft, request.form, [c["key"] for c in categories])
        if form.ok:
            _save(draft)
            return _after("category")
    options = [
        (c["key"], label(CATEGORY, c["key"], c.get("name")), label(CATEGORY_HINT, c["key"], "")) for c in categories
    ]
    return render_template("report/category.html", form=form, options=options), 200 if form.ok else 400


@bp.route("/place", methods=["GET", "POST"])
@login_required
def place() -> Any:
    draft = _draft()
    community = _community()
    if community is None:
        flash(_("Your account belongs to no community, so you cannot report here."), "error")
        return redirect(url_for("home.index"))
    compounds = _compounds(community)
    form = vm.Form(
        {
            "compound_id": draft.compound_id,
            "building": draft.building,
            "address": draft.address,
            "latitude": "" if draft.latitude is None else str(draft.latitude),
            "longitude": "" if draft.longitude is None else str(draft.longitude),
        }
    )
    if request.method == "POST":
        form = vm.take_place(draft, request.form, [c["id"] for c in compounds])
        if form.ok:
            _save(draft)
            return _after("place")
    markers = [
        {"id": c["id"], "name": c["name"], "lat": c["latitude"], "lon": c["longitude"]}
        for c in compounds
        if c.get("latitude") is not None and c.get("longitude") is not None
    ]
    return render_template(
        "report/place.html", form=form, compounds=compounds, markers=markers
    ), 200 if form.ok else 400


@bp.route("/details", methods=["GET", "POST"])
@login_required
def details() -> Any:
    draft = _draft()
    form = vm.Form(
        {
            "title": draft.title,
            "description": draft.description,
            "urgency": draft.urgency,
            "anonymous": "yes" if draft.anonymous else "",
        }
    )
    if request.method == "POST":
        form = vm.take_details(draft, request.form)
        if form.ok:
            _save(draft)
            return _after("details")
    return render_template("report/details.html", form=form), 200 if form.ok else 400


@bp.route("/photo", methods=["GET", "POST"])
@login_required
def photo() -> Any:
    draft = _draft()
    errors: dict[str, str] = {}
    if request.method == "POST":
        if request.form.get("remove") == "1":
            _uploads().drop(draft.photo)
            draft.photo = draft.photo_name = ""
            _save(draft)
            return redirect(url_for("report.photo", change=request.values.get("change")), code=303)
        upload = request.files.get("photo")
        if upload is not None and upload.filename:
            try:
                jpeg = to_jpeg(upload.read())
            except PhotoError:
                errors["photo"] = _("The file must be a photo (JPEG, PNG or HEIC)")
            else:
                _uploads().drop(draft.photo)
                draft.photo = _uploads().keep(jpeg)
                draft.photo_name = upload.filename[:100]
                _save(draft)
        if not errors:
            return _after("photo")
    return render_template("report/photo.html", draft=draft, errors=errors), 400 if errors else 200


@bp.get("/photo/preview")
@login_required
def photo_preview() -> Any:
    path = _uploads().path(_draft().photo)
    if path is None:
        return "", 404
    response = current_app.response_class(path.read_bytes(), content_type="image/jpeg")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/similar")
@login_required
def similar() -> Any:
    draft = _draft()
    missing = draft.first_missing()
    if missing:
        return redirect(url_for(f"report.{missing}"))
    params: dict[str, Any] = {
        "community_id": _community(),
        "title": draft.title,
        "description": draft.description[:1000],
        "category": draft.category,
    }
    if draft.latitude is not None:
        params.update(latitude=draft.latitude, longitude=draft.longitude)
    try:
        found = g.api.get("/api/v1/issues/similar", **params)
    except ApiError:
        found = []  # the check is a help, not a gate: go on without it
    choices = vm.similar_choices(found)
    if not choices:
        return redirect(url_for("report.check"))
    return render_template("report/similar.html", choices=choices, draft=draft)


@bp.get("/check")
@login_required
def check() -> Any:
    draft = _draft()
    missing = draft.first_missing()
    if missing:
        return redirect(url_for(f"report.{missing}"))
    compound_name = ""
    if draft.compound_id and draft.compound_id != vm.ELSEWHERE:
        try:
            compound_name = g.api.get(f"/api/v1/directory/compounds/{draft.compound_id}")["name"]
        except ApiError:
            compound_name = ""
    category_name = label(CATEGORY, draft.category)
    return render_template("report/check.html", draft=draft, compound_name=compound_name, category_name=category_name)


@bp.post("/send")
@login_required
def send() -> Any:
    draft = _draft()
    missing = draft.first_missing()
    if missing:
        return redirect(url_for(f"report.{missing}"), code=303)
    vault = current_app.extensions["linli_web.vault"]
    # One issue per draft, even when the button is pressed twice (two requests at once).
    with vault.lock("report:" + draft.id):
        already = vault.recall("report:" + draft.id)
        if already:
            return redirect(url_for("issues.show", issue_id=already), code=303)
        issue = g.api.post("/api/v1/issues/", draft.api_body(_community()))
        vault.remember("report:" + draft.id, issue["id"])
    path = _uploads().path(draft.photo)
    photo_failed = False
    if path is not None:
        try:
            with path.open("rb") as handle:
                g.api.call(
                    "POST", f"/api/v1/issues/{issue['id']}/photos", files={"photo": ("photo.jpg", handle, "image/jpeg")}
                )
        except ApiError:
            photo_failed = True
        _uploads().drop(draft.photo)
    session.pop("report", None)
    if photo_failed:
        flash(_("Your report was sent, but the photo could not be added."), "error")
    return redirect(url_for("issues.show", issue_id=issue["id"], sent=1), code=303)
