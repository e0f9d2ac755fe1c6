"""The community's noticeboard (公示): what was decided and what became of it, for everyone of the
community to read. The meetings API answers only signed-in people of the community (and the staff
and officials over it), so the page asks for a sign-in too; it shows what the API shows, less any
private issue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from linli_web.auth import current_user, login_required
from linli_web.gateway_client import ApiError
from linli_web.routes.desk import scope_communities
from linli_web.viewmodels.meetings_desk import OWNER_BODY
from linli_web.viewmodels.noticeboard import RESOLVED_SHOWN, board_community, build_board

bp = Blueprint("noticeboard", __name__)

STAFF = ("community_staff", "street_official", "city_admin")


@bp.get("/noticeboard")
@login_required
def index() -> Any:
    user = current_user()
    community_id = board_community(user, None)
    if community_id is None:
        # A street official or the city admin: first choose which community's board.
        return render_template("noticeboard/choose.html", communities=scope_communities(g.api, user))
    return _board(community_id)


@bp.get("/noticeboard/<uuid:community_id>")
@login_required
def show(community_id: Any) -> Any:
    return _board(str(community_id))


def _board(community_id: str) -> Any:
    user = current_user()
    # Staff may ask for the private meetings' part too; the API refuses anyone else (403).
    with_private = request.args.get("private") == "1" and user.get("role") in STAFF
    board, community, resolved = g.api.gather(
        lambda a: a.get(
            "/api/v1/meetings/noticeboard", community_id=community_id, include_private="true" if with_private else None
        ),
        lambda a: a.get(f"/api/v1/directory/communities/{community_id}"),
        lambda a: a.get(
            "/api/v1/issues/",
            community_id=community_id,
            status="resolved,closed",
            sort="-updated_at",
            page_size=RESOLVED_SHOWN * 2,
        ),
    )
    if isinstance(board, ApiError):
        raise board
    # The list's summaries carry what the board shows (rating, what was done, visibility, when
    # resolved): no call per issue.
    summaries = resolved if isinstance(resolved, list) else []
    name = community.get("name") if isinstance(community, dict) else None
    model = build_board(board, name or "", [s for s in summaries if isinstance(s, dict)])
    return render_template(
        "noticeboard/show.html",
        board=model,
        staff=user.get("role") in STAFF,
        with_private=with_private,
        OWNER_BODY=OWNER_BODY,
    )
