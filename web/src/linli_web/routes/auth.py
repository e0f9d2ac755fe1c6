"""Sign in with phone and password, or with a code sent by SMS (one question a page: the phone, then
the code; for people who never set a password); sign up with an SMS code (then staff approve); a new
password with an SMS code; sign out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from linli_web.auth import client_headers, current_user, safe_next, sign_in, sign_out
from linli_web.gateway_client import ApiError, GatewayClient
from linli_web.i18n import api_locale, error_text
from linli_web.viewmodels.forms import Form
from linli_web.viewmodels.signup import community_choices

bp = Blueprint("auth", __name__)


def _gateway() -> GatewayClient:
    return current_app.extensions["linli_web.gateway"]


def _post(path: str, body: dict[str, Any]) -> Any:
    return _gateway().request("POST", path, json_body=body, request_id=g.request_id, headers=client_headers()).data


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user() and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = Form.of(request.form, ["phone", "password"])
    if request.method == "POST":
        phone = form.phone()
        password = form.password()
        if form.ok:
            try:
                answer = _post("/api/v1/auth/login", {"phone": phone, "password": password})
            except ApiError as error:
                if error.code == "pending_approval":
                    return redirect(url_for("auth.waiting", pending=1))
                if error.status in (401, 404, 422):
                    form.error("phone", _("The phone number or password is not right"))
                else:
                    form.error("phone", error_text(error.code, error.status))
            else:
                sign_in(answer)
                return redirect(safe_next(request.form.get("next")), code=303)
    status = 200 if form.ok else 400
    expired = request.args.get("expired") == "1"
    next_url = request.values.get("next", "")
    return render_template("auth/login.html", form=form, next_url=next_url, expired=expired), status


@bp.route("/login/code", methods=["GET", "POST"])
def code_login() -> Any:
    """Sign in with an SMS code, step 1: the phone number; a code is sent to it if it has an account
    (the answer is the same either way)."""
    if current_user() and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = Form.of(request.form, ["phone"])
    if request.method == "POST":
        phone = form.phone()
        if form.ok:
            try:
                _post("/api/v1/auth/codes", {"phone": phone, "purpose": "login", "locale": api_locale()})
            except ApiError as error:
                if error.status not in (404, 429):  # 429: a code was sent a moment ago, still good
                    form.error(
                        "phone",
                        _("Check the phone number") if error.status == 422 else error_text(error.code, error.status),
                    )
            if form.ok:
                session["code_login_phone"] = phone
                session["code_login_next"] = safe_next(request.form.get("next"))
                return redirect(url_for("auth.code_login_enter"), code=303)
    next_url = request.values.get("next", "")
    return render_template("auth/code_login.html", form=form, next_url=next_url), 200 if form.ok else 400


@bp.route("/login/code/enter", methods=["GET", "POST"])
def code_login_enter() -> Any:
    """Sign in with an SMS code, step 2: the code. It works once; wrong codes count towards the same
    lockout as wrong passwords."""
    phone = session.get("code_login_phone")
    if not phone:
        return redirect(url_for("auth.code_login"))
    form = Form.of(request.form, ["code"])
    if request.method == "POST":
        code = form.code()
        if form.ok:
            try:
                answer = _post("/api/v1/auth/login", {"phone": phone, "code": code})
            except ApiError as error:
                if error.code == "pending_approval":
                    return redirect(url_for("auth.waiting", pending=1))
                if error.status in (401, 404, 422):
                    form.error("code", _("That code is not right or has expired: check it, or ask for a new one."))
                else:
                    form.error("code", error_text(error.code, error.status))
            else:
                session.pop("code_login_phone", None)
                next_url = safe_next(session.pop("code_login_next", None))
                sign_in(answer)  # a new session: nothing of this one is kept
                return redirect(next_url, code=303)
    return render_template("auth/code_login_enter.html", form=form, phone=phone), 200 if form.ok else 400


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    flash(_("You have signed out."), "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    """Step 1: the phone number; a code is sent by SMS."""
    form = Form.of(request.form, ["phone"])
    if request.method == "POST":
        phone = form.phone()
        if form.ok:
            try:
                _post("/api/v1/auth/codes", {"phone": phone, "purpose": "signup", "locale": api_locale()})
            except ApiError as error:
                if error.status != 429:  # a code was sent a moment ago: it is still good, go on
                    form.error(
                        "phone",
                        _("Check the phone number") if error.status == 422 else error_text(error.code, error.status),
                    )
            if form.ok:
                session["signup_phone"] = phone
                return redirect(url_for("auth.signup_details"), code=303)
    return render_template("auth/signup.html", form=form), 200 if form.ok else 400


@bp.route("/signup/details", methods=["GET", "POST"])
def signup_details() -> Any:
    """Step 2: the code, a name, a password, the community."""
    phone = session.get("signup_phone")
    if not phone:
        return redirect(url_for("auth.signup"))
    communities = community_choices(_gateway())
    form = Form.of(request.form, ["code", "display_name", "password", "community_id"])
    if request.method == "POST":
        code = form.code()
        name = form.required("display_name", _("Enter your name"))
        form.length("display_name", maximum=200, label=_("Your name"))
        password = form.password(new=True)
        community = form.choice(
            "community_id", {c["id"] for group in communities for c in group["communities"]}, _("Choose your community")
        )
        if form.ok:
            body = {
                "phone": phone,
                "code": code,
                "display_name": name,
                "password": password,
                "community_id": community,
                "locale": api_locale(),
            }
            try:
                _post("/api/v1/auth/signup", body)
            except ApiError as error:
                if error.status == 409:
                    form.error("code", _("This phone number already has an account. Sign in instead."))
                elif "code" in error.fields:
                    form.error("code", _("That code is not right or has expired: check it, or ask for a new one."))
                elif error.fields:
                    form.api_fields(error.fields)
                else:
                    form.error("code", error_text(error.code, error.status))
            else:
                session.pop("signup_phone", None)
                session["signup_name"] = name
                return redirect(url_for("auth.waiting"), code=303)
    return render_template(
        "auth/signup_details.html", form=form, phone=phone, communities=communities
    ), 200 if form.ok else 400


@bp.get("/signup/waiting")
def waiting() -> Any:
    """After signing up; or a sign-in refused while staff have not approved the account yet (`pending`):
    that person is told plainly they are waiting, not thanked again for signing up."""
    return render_template(
        "auth/waiting.html", name=session.get("signup_name"), pending=request.args.get("pending") == "1"
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot() -> Any:
    form = Form.of(request.form, ["phone"])
    if request.method == "POST":
        phone = form.phone()
        if form.ok:
            try:
                _post("/api/v1/auth/codes", {"phone": phone, "purpose": "reset", "locale": api_locale()})
            except ApiError as error:
                if error.status not in (404, 429):  # no account: say nothing that tells it apart
                    form.error("phone", error_text(error.code, error.status))
            if form.ok:
                session["reset_phone"] = phone
                return redirect(url_for("auth.reset"), code=303)
    return render_template("auth/forgot.html", form=form), 200 if form.ok else 400


@bp.route("/password/reset", methods=["GET", "POST"])
def reset() -> Any:
    phone = session.get("reset_phone")
    if not phone:
        return redirect(url_for("auth.forgot"))
    form = Form.of(request.form, ["code", "password"])
    if request.method == "POST":
        code = form.code()
        password = form.password(new=True)
        if form.ok:
            try:
                _post("/api/v1/auth/password-reset", {"phone": phone, "code": code, "password": password})
                answer = _post("/api/v1/auth/login", {"phone": phone, "password": password})
            except ApiError as error:
                if error.code == "pending_approval":
                    return redirect(url_for("auth.waiting", pending=1))
                if error.status in (401, 404, 422):
                    form.error("code", _("That code is not right or has expired: check it, or ask for a new one."))
                else:
                    form.error("code", error_text(error.code, error.status))
            else:
                session.pop("reset_phone", None)
                sign_in(answer)
                flash(_("Your new password is set. You are signed in."), "success")
                return redirect(url_for("home.index"), code=303)
    return render_template("auth/reset.html", form=form, phone=phone), 200 if form.ok else 400
