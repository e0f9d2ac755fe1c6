"""Me: my page, what I follow, how I am told (channels per kind of message, quiet hours)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from linli_web.auth import current_user, login_required, safe_next
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.follows import FOLLOWS_PAGE, community_offers, followed_communities
from linli_web.viewmodels.inbox import CHANNELS, preference_rows, quiet_values, take_preferences

bp = Blueprint("account", __name__, url_prefix="/me")


@bp.get("")
@login_required
def index() -> Any:
    return render_template("account/index.html")


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def preferences() -> Any:
    prefs = g.api.get("/api/v1/notifications/preferences")
    form = None
    if request.method == "POST":
        form, body = take_preferences(request.form, prefs)
        if form.ok:
            g.api.put("/api/v1/notifications/preferences", body)
            flash(_("Saved."), "success")
            return redirect(url_for("account.preferences"), code=303)
    from linli_web.viewmodels.forms import Form

    form = form or Form(quiet_values(prefs))
    return render_template(
        "account/preferences.html",
        rows=preference_rows(prefs),
        channels=CHANNELS,
        form=form,
        vapid_key=_vapid_key(),
    ), 200 if form.ok else 400


VAPID_KEY_SECONDS = 600  # the key changes only with the platform's settings


def _vapid_key() -> str | None:
    """The key a browser subscribes to Web Push with, or None when the platform sends no Web Push
    (asked of the gateway at most every ten minutes: it is the same for everyone)."""
    cache = current_app.extensions.setdefault("linli_web.vapid_key", {})
    if cache.get("until", 0) > time.monotonic():
        return cache["key"]
    try:
        found = g.api.get("/api/v1/notifications/push/vapid-public-key")
    except ApiError as error:
        if error.unavailable:
            return None  # asked again next time
        found = None
    key = found.get("public_key") if isinstance(found, dict) else None
    cache.update(key=key if isinstance(key, str) and key else None, until=time.monotonic() + VAPID_KEY_SECONDS)
    return cache["key"]


def _subscription(body: Any) -> dict[str, Any] | None:
    """A browser's `PushSubscription.toJSON()`, reduced to what the platform takes, or None."""
    if not isinstance(body, dict):
        return None
    keys = body.get("keys")
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        return None
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not (isinstance(p256dh, str) and isinstance(auth, str) and endpoint.startswith("https://")):
        return None
    return {"endpoint": endpoint[:2048], "keys": {"p256dh": p256dh[:200], "auth": auth[:200]}}


@bp.post("/alerts")
@login_required
def alerts() -> Any:
    """Turn on alerts in this browser: its Web Push subscription (sent by static/js/app.js, with the
    CSRF token in a header) registered as a device of the person signed in."""
    subscription = _subscription(request.get_json(silent=True))
    if subscription is None:
        return jsonify(ok=False, message=_("Alerts could not be turned on.")), 400
    try:
        g.api.post("/api/v1/notifications/devices", {"provider": "webpush", "subscription": subscription})
    except ApiError as error:
        if error.unavailable or error.status == 401:
            raise
        return jsonify(ok=False, message=_("Alerts could not be turned on.")), 422
    return jsonify(ok=True, message=_("Alerts are on for this device.")), 201


def _community_names(community_ids: list[str]) -> dict[str, str | None]:
    """The directory's name of each community (None where it did not answer: the page still works)."""
    found = g.api.gather(*[lambda a, c=c: a.get(f"/api/v1/directory/communities/{c}") for c in community_ids])
    return {c: (f.get("name") if isinstance(f, dict) else None) for c, f in zip(community_ids, found, strict=True)}


@bp.get("/follows")
@login_required
def follows() -> Any:
    found = g.api.get("/api/v1/notifications/follows", page_size=FOLLOWS_PAGE)
    paths = {"issue": "/api/v1/issues/{}", "meeting": "/api/v1/meetings/{}"}
    wanted = [f for f in found if f["target_type"] in paths][:30]
    details = g.api.gather(*[lambda a, f=f: a.get(paths[f["target_type"]].format(f["target_id"])) for f in wanted])
    titles = {
        f["target_id"]: d.get("title") for f, d in zip(wanted, details, strict=True) if not isinstance(d, ApiError)
    }
    community_ids = list((current_user() or {}).get("community_ids") or [])
    names = _community_names(list(dict.fromkeys(community_ids + sorted(followed_communities(found)))))
    titles.update({c: n for c, n in names.items() if n})
    kinds = {"issue": _("Issue"), "meeting": _("Meeting"), "community": _("Community")}
    reasons = {"reporter": _("you reported it"), "supporter": _("you support it")}
    rows = []
    for f in found:
        href = None
        if f["target_type"] == "issue":
            href = url_for("issues.show", issue_id=f["target_id"])
        elif f["target_type"] == "meeting":
            href = url_for("meetings.show", meeting_id=f["target_id"])
        rows.append(
            {
                **f,
                "title": titles.get(f["target_id"]) or kinds.get(f["target_type"], f["target_type"]),
                "kind": kinds.get(f["target_type"], f["target_type"]),
                "reason": reasons.get(f.get("reason") or "", ""),
                "href": href,
            }
        )
    return render_template("account/follows.html", rows=rows, offers=community_offers(community_ids, found, names))


@bp.post("/follows/community")
@login_required
def follow_community() -> Any:
    """Follow one of the person's communities: its public meetings and activities reach them. The
    notifications service decides whose community it is (a resident, their own) and says why not."""
    back_to = safe_next(request.form.get("next"), url_for("account.follows"))
    community_id = request.form.get("community_id", "")
    try:
        g.api.post("/api/v1/notifications/follows", {"target_type": "community", "target_id": community_id})
    except ApiError as error:
        if error.unavailable or error.status == 401:
            raise
        if error.status != 409:  # 409: followed already, which is what the person asked for
            flash(_("You could not follow this community: %(why)s", why=error.message), "error")
            return redirect(back_to, code=303)
    session.pop("community_invitation_later", None)
    flash(_("You follow your community: you will be told of its public meetings and activities."), "success")
    return redirect(back_to, code=303)


@bp.post("/follows/community/later")
@login_required
def community_later() -> Any:
    """'Not now' to the home page's invitation: not asked again in this session (the follows page
    still offers it)."""
    session["community_invitation_later"] = True
    return redirect(url_for("home.index"), code=303)


@bp.post("/follows/stop")
@login_required
def unfollow() -> Any:
    target_type = request.form.get("target_type", "")
    if target_type in ("issue", "meeting", "community"):
        try:
            g.api.delete(f"/api/v1/notifications/follows/{target_type}/{request.form.get('target_id', '')}")
        except ApiError as error:
            if error.status not in (404, 422):
                raise
    return redirect(url_for("account.follows"), code=303)
