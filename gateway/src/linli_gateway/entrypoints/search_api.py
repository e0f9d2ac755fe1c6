"""`GET /api/v1/search`: issues, meetings, activities, service posts, mutual-aid groups and talents
of the caller's scope, found by words (Chinese or not) in every service at once."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from linli_gateway.domain.directory import Community
from linli_gateway.entrypoints.proxy import service_token
from linli_gateway.entrypoints.stats_api import MissingServiceSchema
from linli_gateway.service_layer import search as searching
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit import search
from linli_kit.web import require_principal

blp = Blueprint("search", __name__, url_prefix="/api/v1/search", description="Search across services")

SearchQuery = search.search_query_schema(searching.KINDS, name="SearchQuery")


class FoundSchema(search.HitSchema):
    community_name = fields.String(allow_none=True, required=True)


class SearchResultSchema(Schema):
    q = fields.String(required=True)
    hits = fields.List(fields.Nested(FoundSchema), required=True)
    missing = fields.List(
        fields.Nested(MissingServiceSchema),
        required=True,
        metadata={"description": "services that did not answer: what they hold is left out"},
    )
    complete = fields.Boolean(required=True)


def _fetcher(upstream: Any, authorizations: dict[str, str], request_id: str) -> searching.Fetch:
    """Asks one service's /search with a token for it standing for the caller, so the service applies
    its own scope and privacy rules. Runs on the pool's threads: everything it needs is bound here."""

    def fetch(service: str, query: dict[str, str]) -> list[dict[str, Any]]:
        if upstream.breakers[service].state == "open":
            raise RuntimeError("circuit open: the service was found down")
        response = upstream.session.get(
            f"{upstream.settings.service_urls[service]}/search",
            params=query,
            headers={"Authorization": authorizations[service], "X-Request-ID": request_id},
            timeout=(2.0, upstream.settings.timeouts[service]),
        )
        if response.status_code != 200:
            raise RuntimeError(f"answered {response.status_code}")
        return response.json()

    return fetch


@blp.route("")
@blp.arguments(SearchQuery, location="query")
@blp.response(200, SearchResultSchema)
def search_everything(query: dict) -> dict:
    """Find what you may see, by words of titles and texts, in every service at once: issues,
    meetings, activities, service posts, mutual-aid groups and talents (`kinds` narrows it). Each
    service decides what you may see as its lists do; services that did not answer are named under
    `missing`, and `complete` is false."""
    principal = require_principal()
    kinds = list(query["kinds"])
    upstream = current_app.extensions["linli.upstream"]
    upstream.ensure()
    services = searching.plan(kinds)
    tokens = {service: "Bearer " + service_token(principal, service) for service in services}
    fetch = _fetcher(upstream, tokens, g.request_id)
    hits, missing = searching.gather(query["q"], kinds, query["limit"], fetch)
    with GatewayUnitOfWork(current_app.extensions["linli.database"]) as uow:

        def name_of(community_id: str) -> str | None:
            community = uow.directory.get(Community, community_id)
            return community.name if community else None

        found = searching.merge(hits, query["limit"], name_of)
    return {"q": query["q"], "hits": found, "missing": missing, "complete": not missing}
