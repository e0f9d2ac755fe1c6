"""Administration pages, `/admin`: the directory (streets › communities › compounds), the register
of organisations, issue categories and their deadlines, people's accounts (register staff and
residents, disable, lift lockouts) and API keys. Each page is offered to the roles the API lets act
(viewmodels/admin.py); every action is a plain form posting here, checked, then sent to the gateway,
whose refusal (403, 409, 422 naming fields) is shown on the form that was sent."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.i18n import TIER, error_text, label
from linli_web.routes.desk import scope_communities
from linli_web.viewmodels import admin as vm
from linli_web.viewmodels.desk import Pager
from linli_web.viewmodels.forms import Form

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERS_PAGE_SIZE = 25


@bp.record_once
def _admin_words(state: Any) -> None:
    """What templates need to offer the administration's links and name its codes (globals: macros
    imported without context see them too)."""
    state.app.jinja_env.globals.update(
        admin_may=lambda section: vm.may(current_user(), section),
        ORG_KIND=vm.ORG_KIND,
        ROLE=vm.ROLE,
    )


def section_required(section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not vm.may(current_user(), section):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _ok(value: Any, default: Any) -> Any:
    return default if isinstance(value, ApiError) else value


def _send(form: Form, call: Callable[[], Any], field: str, mapping: dict[str, str] | None = None) -> tuple[bool, Any]:
    """Call the API for a checked form; its refusal lands on the form (the fields it names, or `field`)."""
    if not form.ok:
        return False, None
    try:
        return True, call()
    except ApiError as error:
        if error.unavailable or error.status not in (400, 403, 404, 409, 422):
            raise
        if error.fields:
            form.api_fields(error.fields, mapping)
        else:
            form.error(field, error_text(error.code, error.status))
        return False, None


def _refused(error: ApiError) -> None:
    """A one-button action the API refused: say so on the page it came from."""
    if error.unavailable or error.status not in (400, 403, 404, 409, 422):
        raise error
    flash(error_text(error.code, error.status), "error")


def scope_streets(a: Any, user: dict[str, Any]) -> list[dict[str, Any]]:
    """The streets a person administers: a city admin all, a street official theirs."""
    if user.get("role") == vm.CITY_ADMIN:
        return sorted(a.get("/api/v1/directory/streets", page_size=100), key=lambda s: s.get("name") or "")
    street_id = user.get("street_id")
    return [a.get(f"/api/v1/directory/streets/{street_id}")] if street_id else []


def _compounds_of(a: Any, community_ids: list[str]) -> list[dict[str, Any]]:
    answers = a.gather(*[lambda b, c=c: b.get("/api/v1/directory/compounds", community_id=c, page_size=100)
                         for c in community_ids])  # fmt: skip
    found: list[dict[str, Any]] = []
    for answer in answers:
        found.extend(_ok(answer, []))
    return sorted(found, key=lambda c: c.get("name") or "")


@bp.get("")
@login_required
def index() -> Any:
    sections = vm.sections_for(current_user())
    if not sections:
        abort(403)
    return render_template("admin/index.html", sections=sections, names=vm.SECTION_NAMES, hints=vm.SECTION_HINTS)


# --- the directory ---------------------------------------------------------------------------------------


@bp.route("/directory", methods=["GET", "POST"])
@section_required("directory")
def directory() -> Any:
    user = current_user()
    form = Form({"name": "", "city": ""})
    status = 200
    if request.method == "POST":
        if user.get("role") != vm.CITY_ADMIN:
            abort(403)
        form, body = vm.take_street(request.form)
        done, street = _send(form, lambda: g.api.post("/api/v1/directory/streets", body), "name")
        if done:
            flash(_("Street %(name)s added.", name=street.get("name") or ""), "success")
            return redirect(url_for("admin.street", street_id=street["id"]), code=303)
        status = 400
    streets = scope_streets(g.api, user)
    if user.get("role") == vm.STREET_OFFICIAL and len(streets) == 1 and request.method == "GET":
        return redirect(url_for("admin.street", street_id=streets[0]["id"]), code=303)
    return render_template("admin/directory.html", streets=streets, form=form), status


def _street_page(street_id: str, form: Form | None = None, rename: Form | None = None, status: int = 200) -> Any:
    street, communities = g.api.gather(
        lambda a: a.get(f"/api/v1/directory/streets/{street_id}"),
        lambda a: a.get("/api/v1/directory/communities", street_id=street_id, page_size=100),
    )
    if isinstance(street, ApiError):
        raise street
    return render_template(
        "admin/street.html",
        street=street,
        communities=sorted(_ok(communities, []), key=lambda c: c.get("name") or ""),
        form=form or Form({"name": ""}),
        rename=rename or Form({"street-name": street.get("name") or "", "street-city": street.get("city") or ""}),
        may_rename=current_user().get("role") == vm.CITY_ADMIN,
        errors={**(form.errors if form else {}), **(rename.errors if rename else {})},
    ), status


def _own_street(street_id: str) -> None:
    user = current_user()
    if user.get("role") == vm.STREET_OFFICIAL and user.get("street_id") != street_id:
        abort(404)  # another street's page is not shown (the API would refuse its changes anyway)


@bp.route("/directory/streets/<uuid:street_id>", methods=["GET", "POST"])
@section_required("directory")
def street(street_id: Any) -> Any:
    street_id = str(street_id)
    _own_street(street_id)
    if request.method == "GET":
        return _street_page(street_id)
    form, body = vm.take_community(request.form, street_id)
    done, community = _send(form, lambda: g.api.post("/api/v1/directory/communities", body), "name")
    if done:
        flash(_("Community %(name)s added.", name=community.get("name") or ""), "success")
        return redirect(url_for("admin.street", street_id=street_id), code=303)
    return _street_page(street_id, form=form, status=400)


@bp.post("/directory/streets/<uuid:street_id>/rename")
@section_required("directory")
def rename_street(street_id: Any) -> Any:
    street_id = str(street_id)
    if current_user().get("role") != vm.CITY_ADMIN:
        abort(403)
    form, body = vm.take_street(request.form, prefix="street-")
    mapping = {"name": "street-name", "city": "street-city"}
    done, _street = _send(form, lambda: g.api.patch(f"/api/v1/directory/streets/{street_id}", body), "street-name",
                          mapping)  # fmt: skip
    if done:
        flash(_("Saved."), "success")
        return redirect(url_for("admin.street", street_id=street_id), code=303)
    return _street_page(street_id, rename=form, status=400)


def _community_page(community_id: str, form: Form | None = None, rename: Form | None = None, status: int = 200) -> Any:
    community, compounds = g.api.gather(
        lambda a: a.get(f"/api/v1/directory/communities/{community_id}"),
        lambda a: a.get("/api/v1/directory/compounds", community_id=community_id, page_size=100),
    )
    if isinstance(community, ApiError):
        raise community
    _own_street(community.get("street_id") or "")
    street = _ok(g.api.gather(lambda a: a.get(f"/api/v1/directory/streets/{community['street_id']}"))[0], {})
    return render_template(
        "admin/community.html",
        community=community,
        street=street,
        compounds=sorted(_ok(compounds, []), key=lambda c: c.get("name") or ""),
        form=form or Form({"name": "", "latitude": "", "longitude": ""}),
        rename=rename or Form({"community-name": community.get("name") or ""}),
        errors={**(form.errors if form else {}), **(rename.errors if rename else {})},
    ), status


@bp.route("/directory/communities/<uuid:community_id>", methods=["GET", "POST"])
@section_required("directory")
def community(community_id: Any) -> Any:
    community_id = str(community_id)
    if request.method == "GET":
        return _community_page(community_id)
    form, body = vm.take_compound(request.form, community_id)
    done, compound = _send(form, lambda: g.api.post("/api/v1/directory/compounds", body), "name")
    if done:
        flash(_("Compound %(name)s added.", name=compound.get("name") or ""), "success")
        return redirect(url_for("admin.community", community_id=community_id), code=303)
    return _community_page(community_id, form=form, status=400)


@bp.post("/directory/communities/<uuid:community_id>/rename")
@section_required("directory")
def rename_community(community_id: Any) -> Any:
    community_id = str(community_id)
    form, body = vm.take_community(request.form, "", prefix="community-")
    done, _community = _send(
        form, lambda: g.api.patch(f"/api/v1/directory/communities/{community_id}", body), "community-name",
        {"name": "community-name"},
    )  # fmt: skip
    if done:
        flash(_("Saved."), "success")
        return redirect(url_for("admin.community", community_id=community_id), code=303)
    return _community_page(community_id, rename=form, status=400)


@bp.route("/directory/compounds/<uuid:compound_id>", methods=["GET", "POST"])
@section_required("directory")
def compound(compound_id: Any) -> Any:
    compound_id = str(compound_id)
    found = g.api.get(f"/api/v1/directory/compounds/{compound_id}")
    status = 200
    if request.method == "POST":
        form, body = vm.take_compound(request.form, found["community_id"], prefix="")
        body.pop("community_id", None)
        done, _saved = _send(form, lambda: g.api.patch(f"/api/v1/directory/compounds/{compound_id}", body), "name")
        if done:
            flash(_("Saved."), "success")
            return redirect(url_for("admin.community", community_id=found["community_id"]), code=303)
        status = 400
    else:
        form = Form(
            {
                "name": found.get("name") or "",
                "latitude": "" if found.get("latitude") is None else str(found["latitude"]),
                "longitude": "" if found.get("longitude") is None else str(found["longitude"]),
            }
        )
    return render_template("admin/compound.html", compound=found, form=form), status


# --- organisations -----------------------------------------------------------------------------------------


def _org_scope(user: dict[str, Any]) -> dict[str, str]:
    if user.get("role") == vm.COMMUNITY_STAFF:
        ids = user.get("community_ids") or []
        return {"community_id": ids[0]} if ids else {}
    if user.get("role") == vm.STREET_OFFICIAL:
        return {"street_id": user.get("street_id") or ""}
    return {}


@bp.get("/organisations")
@section_required("organisations")
def organisations() -> Any:
    user = current_user()
    kind = request.args.get("kind", "")
    name = request.args.get("name", "").strip()[:200]
    params: dict[str, Any] = {**_org_scope(user), "page_size": 100}
    if kind in vm.ORG_KIND:
        params["kind"] = kind
    if name:
        params["name"] = name
    items, communities, streets = g.api.gather(
        lambda a: a.get("/api/v1/directory/organisations", **params),
        lambda a: scope_communities(a, user),
        lambda a: scope_streets(a, user) if user.get("role") != vm.COMMUNITY_STAFF else [],
    )
    if isinstance(items, ApiError):
        raise items
    return render_template(
        "admin/organisations.html",
        items=sorted(items, key=lambda o: (not o.get("active", True), o.get("kind") or "", o.get("name") or "")),
        kind=kind,
        name=name,
        kinds=vm.ORG_KIND,
        community_names={c["id"]: c.get("name") or "" for c in _ok(communities, [])},
        street_names={s["id"]: s.get("name") or "" for s in _ok(streets, [])},
    )


def _organisation_choices(user: dict[str, Any], kind: str, community_id: str) -> dict[str, Any]:
    """What the form for a kind of organisation offers: the streets, communities, compounds (of the
    community chosen, or of the person's one community) and party organisations in the person's scope."""
    streets, communities, parents = g.api.gather(
        lambda a: scope_streets(a, user) if user.get("role") != vm.COMMUNITY_STAFF else [],
        lambda a: scope_communities(a, user),
        lambda a: a.get(
            "/api/v1/directory/organisations", kind="party_organisation", active="true", page_size=100,
            **_org_scope(user),
        ) if kind == "party_branch" else [],
    )  # fmt: skip
    communities = _ok(communities, [])
    ids = [c["id"] for c in communities]
    if community_id not in ids:
        community_id = ids[0] if len(ids) == 1 else ""
    compounds = (
        _compounds_of(g.api, [community_id])
        if community_id and kind in ("property_company", "owners_committee")
        else []
    )
    return {
        "streets": _ok(streets, []),
        "communities": communities,
        "community_id": community_id,
        "compounds": compounds,
        "parents": _ok(parents, []),
    }


@bp.route("/organisations/new", methods=["GET", "POST"])
@section_required("organisations")
def new_organisation() -> Any:
    user = current_user()
    allowed = vm.ORG_KINDS_OF_ROLE.get(user.get("role") or "", ())
    kind = (request.form if request.method == "POST" else request.args).get("kind", "")
    community_id = (request.form if request.method == "POST" else request.args).get("for_community", "")
    if kind not in allowed:
        form = Form({"kind": ""})
        status = 200
        if request.method == "POST" or "kind" in request.args:
            form.error("kind", _("Choose what kind of organisation it is"))
            status = 400
        options = [(k, vm.ORG_KIND[k], vm.ORG_KIND_HINT[k]) for k in allowed]
        return render_template("admin/organisation_kind.html", form=form, options=options), status
    choices = _organisation_choices(user, kind, community_id)
    status = 200
    if request.method == "POST" and "name" in request.form:
        form, body = vm.take_organisation(
            request.form,
            kind,
            streets=[s["id"] for s in choices["streets"]],
            communities=[c["id"] for c in choices["communities"]],
            compounds=[c["id"] for c in choices["compounds"]],
            parents=[p["id"] for p in choices["parents"]],
        )
        done, created = _send(form, lambda: g.api.post("/api/v1/directory/organisations", body), "name")
        if done:
            flash(_("%(name)s is registered.", name=created.get("name") or ""), "success")
            return redirect(url_for("admin.organisations"), code=303)
        status = 400
    else:
        form = Form({"name": "", "street_id": "", "community_id": "", "compound_ids": "", "parent_id": ""})
    return render_template(
        "admin/organisation_new.html", form=form, kind=kind, kind_name=vm.ORG_KIND[kind], **choices
    ), status


@bp.post("/organisations/<uuid:organisation_id>/active")
@section_required("organisations")
def organisation_active(organisation_id: Any) -> Any:
    active = request.form.get("active") == "yes"
    try:
        found = g.api.patch(f"/api/v1/directory/organisations/{organisation_id}", {"active": active})
    except ApiError as error:
        _refused(error)
    else:
        name = found.get("name") or ""
        flash(_("%(name)s is active again.", name=name) if active else _("%(name)s is no longer active.", name=name),
              "success")  # fmt: skip
    return redirect(url_for("admin.organisations"), code=303)


# --- categories and deadlines ------------------------------------------------------------------------------


@bp.get("/categories")
@section_required("categories")
def categories() -> Any:
    items = g.api.get("/api/v1/issues/categories", include_inactive="true")
    items = sorted(items, key=lambda c: (c.get("position") or 0, c.get("key") or ""))
    return render_template("admin/categories.html", items=items, urgencies=vm.URGENCIES, bodies=vm.BODY)


def _category_page(form: Form, key: str, status: int = 200) -> Any:
    tiers = [(t, label(TIER, t)) for t in vm.TIERS]
    return render_template(
        "admin/category.html",
        form=form,
        key=key,
        tiers=tiers,
        bodies=list(vm.BODY.items()),
        publications=list(vm.PUBLICATION.items()),
        urgencies=vm.URGENCIES,
        max_hours=vm.MAX_DEADLINE_HOURS,
    ), status


@bp.route("/categories/new", methods=["GET", "POST"])
@section_required("categories")
def new_category() -> Any:
    if request.method == "GET":
        return _category_page(vm.category_form(None), "")
    form, key, body = vm.take_category(request.form, new=True)
    if form.ok:
        existing = {c.get("key") for c in g.api.get("/api/v1/issues/categories", include_inactive="true")}
        if key in existing:
            form.error("key", _("There is already a category with this code"))
    done, _saved = _send(form, lambda: g.api.put(f"/api/v1/issues/categories/{key}", body), "name")
    if done:
        flash(_("Category %(name)s added.", name=body["name"]), "success")
        return redirect(url_for("admin.categories"), code=303)
    return _category_page(form, "", 400)


@bp.route("/categories/<key>", methods=["GET", "POST"])
@section_required("categories")
def category(key: str) -> Any:
    if request.method == "GET":
        found = next((c for c in g.api.get("/api/v1/issues/categories", include_inactive="true")
                      if c.get("key") == key), None)  # fmt: skip
        if found is None:
            abort(404)
        return _category_page(vm.category_form(found), key)
    # Editing never creates: a new category goes through /categories/new, whose code is checked.
    if not any(c.get("key") == key for c in g.api.get("/api/v1/issues/categories", include_inactive="true")):
        abort(404)
    form, _key, body = vm.take_category(request.form, new=False)
    mapping = {f"deadline_hours.{u}": f"hours_{u}" for u in vm.URGENCIES}
    done, _saved = _send(form, lambda: g.api.put(f"/api/v1/issues/categories/{key}", body), "name", mapping)
    if done:
        flash(_("Saved. New deadlines apply to issues reported from now on."), "success")
        return redirect(url_for("admin.categories"), code=303)
    return _category_page(form, key, 400)


# --- people ----------------------------------------------------------------------------------------------------


@bp.get("/users")
@section_required("users")
def users() -> Any:
    user = current_user()
    role = request.args.get("role", "")
    status = request.args.get("status", "")
    community_id = request.args.get("community_id", "")
    page = request.args.get("page", "1")
    page_number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    communities = _ok(g.api.gather(lambda a: scope_communities(a, user))[0], [])
    ids = [c["id"] for c in communities]
    params: dict[str, Any] = {"page": page_number, "page_size": USERS_PAGE_SIZE}
    if role in vm.ROLE:
        params["role"] = role
    if status in vm.ACCOUNT_STATUS:
        params["status"] = status
    if community_id in ids:
        params["community_id"] = community_id
    items, total = g.api.page("/api/v1/auth/users", **params)
    return render_template(
        "admin/users.html",
        items=items,
        total=total,
        pager=Pager(page_number, total),
        role=role,
        status=status,
        community_id=community_id if community_id in ids else "",
        communities=communities,
        community_names={c["id"]: c.get("name") or "" for c in communities},
        roles=vm.ROLE,
        statuses=vm.ACCOUNT_STATUS,
        me=user["id"],
    )


def _user_choices(user: dict[str, Any]) -> dict[str, Any]:
    streets, communities, orgs = g.api.gather(
        lambda a: scope_streets(a, user) if user.get("role") != vm.COMMUNITY_STAFF else [],
        lambda a: scope_communities(a, user),
        lambda a: a.get("/api/v1/directory/organisations", active="true", page_size=100, **_org_scope(user))
        if user.get("role") != vm.COMMUNITY_STAFF else [],
    )  # fmt: skip
    wanted = {k for kinds in vm.ORG_KINDS_OF_ACCOUNT.values() for k in kinds}
    return {
        "streets": _ok(streets, []),
        "communities": _ok(communities, []),
        "organisations": [o for o in _ok(orgs, []) if o.get("kind") in wanted],
        "roles": [(r, vm.ROLE[r]) for r in vm.CREATABLE_ROLES.get(user.get("role") or "", ())],
    }


@bp.route("/users/new", methods=["GET", "POST"])
@section_required("users")
def new_user() -> Any:
    user = current_user()
    choices = _user_choices(user)
    status = 200
    if request.method == "POST":
        form, body = vm.take_user(
            request.form,
            user.get("role") or "",
            streets=[s["id"] for s in choices["streets"]],
            communities=[c["id"] for c in choices["communities"]],
            organisations={o["id"]: o.get("kind") or "" for o in choices["organisations"]},
        )
        mapping = {"community_ids": "community_id"}
        done, created = _send(form, lambda: g.api.post("/api/v1/auth/users", body), "display_name", mapping)
        if done:
            flash(_("%(name)s is registered.", name=created.get("display_name") or ""), "success")
            return redirect(url_for("admin.users"), code=303)
        status = 400
    else:
        only = choices["communities"][0]["id"] if len(choices["communities"]) == 1 else ""
        role = request.args.get("role", "")
        form = Form(
            {
                "display_name": "",
                "role": role if role in dict(choices["roles"]) else ("resident" if len(choices["roles"]) == 1 else ""),
                "phone": "",
                "street_id": user.get("street_id") or "" if user.get("role") == vm.STREET_OFFICIAL else "",
                "community_id": only,
                "organisation_id": "",
                "password": "",
                "locale": "zh-CN",
            }
        )
    return render_template("admin/user_new.html", form=form, **choices), status


@bp.post("/users/<uuid:user_id>/status")
@section_required("users")
def user_status(user_id: Any) -> Any:
    wanted = request.form.get("status", "")
    if wanted not in ("active", "disabled"):
        abort(400)
    try:
        person = g.api.patch(f"/api/v1/auth/users/{user_id}", {"status": wanted})
    except ApiError as error:
        _refused(error)
    else:
        name = person.get("display_name") or ""
        flash(_("%(name)s can no longer sign in.", name=name) if wanted == "disabled"
              else _("%(name)s can sign in again.", name=name), "success")  # fmt: skip
    return redirect(request.form.get("back") if _safe_back() else url_for("admin.users"), code=303)


def _safe_back() -> bool:
    back = request.form.get("back") or ""
    return back.startswith("/admin/users") and "//" not in back


@bp.post("/users/<uuid:user_id>/lockouts")
@section_required("users")
def lift_lockouts(user_id: Any) -> Any:
    try:
        g.api.delete(f"/api/v1/auth/users/{user_id}/lockouts")
    except ApiError as error:
        _refused(error)
    else:
        flash(_("The lockout is lifted: the person can sign in again from anywhere."), "success")
    return redirect(request.form.get("back") if _safe_back() else url_for("admin.users"), code=303)


# --- API keys ------------------------------------------------------------------------------------------------


def _keys_page(form: Form, created: dict[str, Any] | None = None, status: int = 200) -> Any:
    user = current_user()
    keys, streets, communities = g.api.gather(
        lambda a: a.get("/api/v1/auth/api-keys"),
        lambda a: scope_streets(a, user),
        lambda a: scope_communities(a, user),
    )
    if isinstance(keys, ApiError):
        raise keys
    streets, communities = _ok(streets, []), _ok(communities, [])
    return render_template(
        "admin/api_keys.html",
        keys=sorted(keys, key=lambda k: (k.get("revoked_at") is not None, k.get("name") or "")),
        form=form,
        created=created,
        streets=streets,
        communities=communities,
        street_names={s["id"]: s.get("name") or "" for s in streets},
        community_names={c["id"]: c.get("name") or "" for c in communities},
        city_admin=user.get("role") == vm.CITY_ADMIN,
    ), status


@bp.route("/api-keys", methods=["GET", "POST"])
@section_required("api_keys")
def api_keys() -> Any:
    if request.method == "GET":
        return _keys_page(Form({"name": "", "street_id": "", "community_ids": ""}))
    user = current_user()
    streets, communities = g.api.gather(lambda a: scope_streets(a, user), lambda a: scope_communities(a, user))
    own = user.get("street_id") if user.get("role") == vm.STREET_OFFICIAL else None
    form, body = vm.take_api_key(
        request.form,
        streets=[s["id"] for s in _ok(streets, [])],
        communities=[c["id"] for c in _ok(communities, [])],
        street_required=own,
    )
    done, created = _send(form, lambda: g.api.post("/api/v1/auth/api-keys", body), "name")
    if done:
        # The key is shown on this answer only (never kept in the session or a flash message).
        return _keys_page(Form({"name": "", "street_id": "", "community_ids": ""}), created=created)
    return _keys_page(form, status=400)


@bp.post("/api-keys/<key_id>/revoke")
@section_required("api_keys")
def revoke_key(key_id: str) -> Any:
    if not key_id.replace("-", "").replace("_", "").isalnum() or len(key_id) > 100:
        abort(404)
    try:
        found = g.api.delete(f"/api/v1/auth/api-keys/{key_id}")
    except ApiError as error:
        _refused(error)
    else:
        flash(_("Key %(name)s is revoked: it no longer works.", name=(found or {}).get("name") or ""), "success")
    return redirect(url_for("admin.api_keys"), code=303)
