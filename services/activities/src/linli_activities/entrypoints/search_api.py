"""`GET /search`: activities, service posts, mutual-aid groups and talents by words, Chinese or not."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from linli_activities.entrypoints.common import uow
from linli_activities.service_layer import search as use_case
from linli_kit import search
from linli_kit.web import require_principal

blp = Blueprint("search", __name__, url_prefix="/", description="Search")

ActivitiesSearchQuery = search.search_query_schema(use_case.KINDS, name="ActivitiesSearchQuery")


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(ActivitiesSearchQuery, location="query")
    @blp.response(200, search.HitSchema(many=True))
    def get(self, query: dict) -> list:
        """Find what you may see by words of its title and text: activities (not drafts, unless
        you organise), service posts and mutual-aid groups of your scope, and talents once vetted
        (staff: every talent of their scope). Titles holding every word first, then the latest."""
        terms = search.terms_of(query["q"])
        found = use_case.search(uow(), require_principal(), terms, list(query["kinds"]), query["limit"])
        return [
            {
                "kind": f.kind,
                "id": f.id,
                "title": f.title,
                "snippet": search.snippet([f.text], terms),
                "community_id": f.community_id,
                "date": search.instant(f.date),
                "score": search.score(f.in_title),
            }
            for f in found
        ]
