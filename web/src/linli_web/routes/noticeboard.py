"""The community's noticeboard (公示): what was decided and what became of it. Anyone may read a
community's public board without signing in (the meetings API answers an anonymous read with what
public meetings decided, a private issue's words withheld); signed in, people of the community also
see its resolved issues with their ratings (the issues API answers only them), and staff may add the
private meetings' part."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request
from linli_web.auth import client_headers, current_user
from linli_web.gateway_client import ApiError, GatewayClient
from linli_web.routes.desk import scope_communities
from linli_web.viewmodels.meetings_desk import OWNER_BODY
from linli_web.viewmodels.noticeboard import RESOLVED_SHOWN, board_community, build_board
from linli_web.viewmodels.signup import community_choices

bp = Blueprint("noticeboard", __name__)

STAFF = ("community_staff", "street_official", "city_admin")


def _gateway() -> GatewayClient:
    return current_app.extensions["linli_web.gateway"]


@bp.get("/noticeboard")
def index() -> Any:
    user = current_user()
    if user is None:
        # Anyone: first choose the community, street by street (the directory reads without a token).
        groups = community_choices(_gateway())
        return render_template("noticeboard/choose.html", groups=groups, communities=[])
    community_id = board_community(user, None)
    if community_id is None:
        # A street official or the city admin: first choose which community's board.
        return render_template("noticeboard/choose.html", communities=scope_communities(g.api, user))
    return _board(community_id)


@bp.get("/noticeboard/<uuid:community_id>")
def show(community_id: Any) -> Any:
    if current_user() is None:
        return _public_board(str(community_id))
    return _board(str(community_id))


def _public_board(community_id: str) -> Any:
    """The board as anyone reads it: the meetings API's anonymous answer, without resolved issues."""
    gateway, headers, request_id = _gateway(), client_headers(), g.request_id
    board, community = gateway.gather(
        [
            lambda: (
                gateway.request(
                    "GET",
                    "/api/v1/meetings/noticeboard",
                    params={"community_id": community_id},
                    headers=headers,
                    request_id=request_id,
                ).data
            ),
            lambda: (
                gateway.request(
                    "GET", f"/api/v1/directory/communities/{community_id}", headers=headers, request_id=request_id
                ).data
            ),
        ]
    )
    if isinstance(board, ApiError):
        if board.status == 404:
            abort(404)
        raise board
    name = community.get("name") if isinstance(community, dict) else None
    model = build_board(board, name or "", [])
    return render_template(
        "noticeboard/show.html", board=model, staff=False, with_private=False, public=True, OWNER_BODY=OWNER_BODY
    )


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
