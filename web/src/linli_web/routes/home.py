"""The community's home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, g, render_template, session
from linli_web.auth import current_user
from linli_web.gateway_client import ApiError
from linli_web.viewmodels.desk import is_staff
from linli_web.viewmodels.follows import FOLLOWS_PAGE, community_offers
from linli_web.viewmodels.home import HomePage, decisions_of, recent_concluded, upcoming

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> Any:
    user = current_user()
    if user is None:
        return render_template("welcome.html")
    now = datetime.now(UTC)
    community = (user.get("community_ids") or [None])[0]
    scope = {"community_id": community} if community else {}
    meetings, activities, held, notices, follows = g.api.gather(
        lambda a: a.get("/api/v1/meetings/", starts_after=now.isoformat(), page_size=20, **scope),
        lambda a: a.get("/api/v1/activities/", **{"from": now.isoformat()}, page_size=20, status="published", **scope),
        lambda a: a.get(
            "/api/v1/meetings/",
            status="concluded",
            starts_after=(now - timedelta(days=120)).isoformat(),
            page_size=100,
            **scope,
        ),
        lambda a: a.get("/api/v1/notifications/", category="broadcast", page_size=3),
        lambda a: a.get("/api/v1/notifications/follows", page_size=FOLLOWS_PAGE),
    )
    page = HomePage()
    for name, value in (("meetings", meetings), ("activities", activities), ("decisions", held), ("notices", notices)):
        if isinstance(value, ApiError):
            page.missing.append(name)
    if not isinstance(meetings, ApiError):
        page.meetings = upcoming(meetings, now)
    if not isinstance(activities, ApiError):
        page.activities = upcoming(activities, now)
    if not isinstance(notices, ApiError):
        page.notices = notices
    if not isinstance(held, ApiError):
        recent = recent_concluded(held)
        motions = g.api.gather(*[lambda a, m=m: a.get(f"/api/v1/meetings/{m['id']}/motions") for m in recent])
        for meeting, found in zip(recent, motions, strict=True):
            if not isinstance(found, ApiError):
                page.decisions.extend(decisions_of(meeting, found))
    if (
        community
        and not is_staff(user)
        and not isinstance(follows, ApiError)
        and not session.get("community_invitation_later")
    ):
        # Until they follow it, a resident would never hear of their community's public meetings
        # they are not invited to: asked until they choose, never followed for them. (Staff plan
        # those meetings; the follows page still offers it to them.)
        page.invitation = bool(community_offers([community], follows, {}))
    return render_template("home.html", page=page)
