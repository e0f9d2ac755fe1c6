"""The overview of a street (street officials), the city (city admins) or a community (its staff, and
anyone above it drilling down): the gateway's `/api/v1/stats/overview`, `/stats/rankings` and
`/stats/export` (CSV and Excel, passed through as the gateway makes them). Plain tables first;
ECharts draws the same numbers when JavaScript runs."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request
from linli_web.auth import current_user
from linli_web.gateway_client import ApiError
from linli_web.routes.desk import scope_communities, staff_required
from linli_web.viewmodels import area_map
from linli_web.viewmodels import overview as vm
from linli_web.viewmodels.desk import OPEN
from linli_web.viewmodels.forms import Form

bp = Blueprint("overview", __name__, url_prefix="/overview")


def _uuid_arg(name: str) -> str:
    value = request.args.get(name, "")
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        abort(404)


def _scope() -> tuple[Form, dict[str, str], dict[str, str]]:
    """The period form, the query for the gateway, and the address's own arguments to keep in links."""
    form, period = vm.take_period(request.args)
    scope = {k: v for k in ("community_id", "street_id") if (v := _uuid_arg(k))}
    if scope.get("community_id"):
        scope.pop("street_id", None)  # a community is the narrower scope
    keep = {**scope, **{k: form.values[k] for k in ("from", "to") if form.values[k] and form.ok}}
    return form, {**scope, **period}, keep


@bp.get("")
@staff_required
def index() -> Any:
    user = current_user()
    form, query, keep = _scope()
    metric = request.args.get("metric", "resolution_rate")
    if metric not in vm.METRICS:
        metric = "resolution_rate"
    community_id = query.get("community_id")
    calls = [
        lambda a: a.get("/api/v1/stats/overview", **query),
        (lambda a: a.get("/api/v1/stats/rankings", metric=metric, **query)) if not community_id else (lambda a: None),
        (lambda a: a.get(f"/api/v1/directory/communities/{community_id}")) if community_id else (lambda a: None),
        (lambda a: a.get("/api/v1/directory/streets", page_size=100))
        if user.get("role") == "city_admin"
        else (lambda a: None),
    ]
    data, ranking, community, streets = g.api.gather(*calls)
    if isinstance(data, ApiError):
        if data.status == 422 and data.fields:
            form.api_fields(data.fields)
            scope_only = {k: v for k, v in query.items() if k not in ("from", "to")}
            data = g.api.gather(lambda a: a.get("/api/v1/stats/overview", **scope_only))[0]
            ranking = None
            keep = {k: v for k, v in keep.items() if k not in ("from", "to")}
        if isinstance(data, ApiError):
            raise data
    page = vm.build(data)
    street_id = (data.get("scope") or {}).get("street_id") or (community or {}).get("street_id")
    if isinstance(streets, ApiError) or streets is None:
        streets = []
    street_name = ""
    if street_id:
        street = g.api.gather(lambda a: a.get(f"/api/v1/directory/streets/{street_id}"))[0]
        street_name = "" if isinstance(street, ApiError) else street.get("name", "")
    return render_template(
        "overview/index.html",
        page=page,
        form=form,
        keep=keep,
        period_keep={k: v for k, v in keep.items() if k in ("from", "to")},
        ranking=None if ranking is None or isinstance(ranking, ApiError) else vm.build_ranking(ranking),
        ranking_missing=isinstance(ranking, ApiError),
        metric=metric,
        metrics=vm.METRICS,
        community=None if isinstance(community, ApiError) else community,
        street_id=street_id,
        street_name=street_name,
        streets=streets,
        role=user.get("role"),
    ), (200 if form.ok else 400)


@bp.get("/export.<any(csv, xlsx):fmt>")
@staff_required
def export(fmt: str) -> Any:
    """The gateway's export, passed through: the file it makes, under the name it gives."""
    _form, query, _keep = _scope()
    answer = g.api.call("GET", "/api/v1/stats/export", params={**query, "format": fmt}, raw=True)
    default = "text/csv; charset=utf-8" if fmt == "csv" else vm.XLSX
    response = current_app.response_class(answer.content, content_type=answer.headers.get("Content-Type", default))
    disposition = answer.headers.get("Content-Disposition") or f'attachment; filename="linli-overview.{fmt}"'
    response.headers["Content-Disposition"] = disposition
    return response


@bp.get("/map")
@staff_required
def map_view() -> Any:
    """Communities and compounds with overdue issues, service posts, and the compounds with no post
    within a 15-minute walk: for the person's street (officials), the city or a street (city
    admins), their community (staff); narrowed to one community with `community_id`."""
    user = current_user()
    role = user.get("role")
    street_id = _uuid_arg("street_id") if role == "city_admin" else ""
    if role == "street_official":
        street_id = user.get("street_id") or ""
    community_id = _uuid_arg("community_id")

    def communities_of(a: Any) -> list[dict[str, Any]]:
        if role == "city_admin":
            found = a.get(
                "/api/v1/directory/communities", page_size=100, **({"street_id": street_id} if street_id else {})
            )
            return sorted(found, key=lambda c: c.get("name") or "")
        return scope_communities(a, user)

    communities, streets = g.api.gather(
        communities_of,
        (lambda a: a.get("/api/v1/directory/streets", page_size=100)) if role == "city_admin" else (lambda a: []),
    )
    if isinstance(communities, ApiError):
        raise communities
    if community_id:
        communities = [c for c in communities if c["id"] == community_id]
        if not communities:
            abort(404)
    where: dict[str, str] = {}
    if community_id or role == "community_staff":
        where = {"community_id": community_id or (communities[0]["id"] if communities else "")}
    elif street_id:
        where = {"street_id": street_id}
    ids = [c["id"] for c in communities]
    answers = g.api.gather(
        lambda a: a.get("/api/v1/activities/posts", page_size=100, **where),
        lambda a: a.page(
            "/api/v1/issues/", overdue="true", status=",".join(OPEN), page_size=area_map.OVERDUE_PAGE, **where
        ),
        *[lambda a, c=c: a.get(f"/api/v1/activities/coverage/{c}", minutes=area_map.WALK_MINUTES) for c in ids],
    )
    posts, overdue, *coverages = (None if isinstance(v, ApiError) else v for v in answers)
    if posts is not None and len(ids) > 0 and not where:
        posts = [p for p in posts if p.get("community_id") in ids]
    page = area_map.build(communities, dict(zip(ids, coverages, strict=True)), posts, overdue)
    street_name = ""
    if street_id and not isinstance(streets, ApiError):
        street_name = next((s.get("name", "") for s in streets or [] if s["id"] == street_id), "")
    if role == "street_official" and street_id and not street_name:
        street = g.api.gather(lambda a: a.get(f"/api/v1/directory/streets/{street_id}"))[0]
        street_name = "" if isinstance(street, ApiError) else street.get("name", "")
    return render_template(
        "overview/map.html",
        page=page,
        role=role,
        streets=[] if isinstance(streets, ApiError) else streets,
        street_id=street_id,
        street_name=street_name,
        community=communities[0] if community_id else None,
    )
