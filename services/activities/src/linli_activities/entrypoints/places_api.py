"""HTTP API of service posts and the 15-minute circle: /posts, /posts/nearby, /coverage/<community>."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from linli_activities.domain.places import CIRCLE_MINUTES, FACILITIES
from linli_activities.entrypoints.common import Instant, Text, config, plain, uow
from linli_activities.service_layer import places
from linli_kit.web import require_principal

blp = Blueprint("posts", __name__, url_prefix="/", description="Service posts and the 15-minute circle")


class PostSchema(Schema):
    id = Text(dump_only=True)
    community_id = fields.UUID(required=True)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    latitude = fields.Float(required=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(required=True, validate=validate.Range(-180, 180))
    address = Text(load_default="", validate=validate.Length(max=300))
    opening_hours = Text(
        load_default="", validate=validate.Length(max=500), metadata={"example": "Mon-Sun 08:00-20:00"}
    )
    facilities = fields.List(Text(validate=validate.OneOf(FACILITIES)), load_default=list)
    services = fields.List(Text(validate=validate.Length(min=1, max=100)), load_default=list)
    compound_ids = fields.List(fields.UUID(), load_default=list)
    residents_served = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    active = fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)


class PostPatchSchema(Schema):
    name = Text(validate=validate.Length(min=1, max=200))
    latitude = fields.Float(validate=validate.Range(-90, 90))
    longitude = fields.Float(validate=validate.Range(-180, 180))
    address = Text(validate=validate.Length(max=300))
    opening_hours = Text(validate=validate.Length(max=500))
    facilities = fields.List(Text(validate=validate.OneOf(FACILITIES)))
    services = fields.List(Text(validate=validate.Length(min=1, max=100)))
    compound_ids = fields.List(fields.UUID())
    residents_served = fields.Integer(validate=validate.Range(min=0, max=1_000_000))
    active = fields.Boolean()


class PostFilter(Schema):
    community_id = fields.UUID(load_default=None)
    street_id = fields.UUID(load_default=None)


class NearbyQuery(Schema):
    latitude = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, validate=validate.Range(-180, 180))
    compound_id = fields.UUID(load_default=None)
    minutes = fields.Float(load_default=CIRCLE_MINUTES, validate=validate.Range(min=1, max=60))

    @validates_schema
    def one_place(self, data: dict, **_kwargs: Any) -> None:
        has_point = data.get("latitude") is not None and data.get("longitude") is not None
        if has_point == (data.get("compound_id") is not None):
            raise ValidationError("give latitude and longitude, or compound_id", field_name="latitude")


class NearbyPostSchema(Schema):
    post = fields.Nested(PostSchema)
    straight_m = fields.Float()
    walking_m = fields.Float()
    walking_minutes = fields.Float()


class CoverageQuery(Schema):
    minutes = fields.Float(load_default=CIRCLE_MINUTES, validate=validate.Range(min=1, max=60))


class CompoundCoverageSchema(Schema):
    compound_id = Text()
    name = Text()
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    covered = fields.Boolean()
    nearest_post_id = Text(allow_none=True)
    nearest_post_name = Text(allow_none=True)
    walking_minutes = fields.Float(allow_none=True)


class CoverageSchema(Schema):
    community_id = Text()
    minutes = fields.Float()
    walking_speed_m_per_min = fields.Float()
    detour_factor = fields.Float()
    compounds = fields.Integer()
    covered = fields.Integer()
    gaps = fields.List(fields.Nested(CompoundCoverageSchema))
    without_coordinates = fields.List(Text())
    detail = fields.List(fields.Nested(CompoundCoverageSchema))


def _nearby_out(distance: Any) -> dict[str, Any]:
    return {
        "post": distance.post,
        "straight_m": round(distance.walk.straight_m, 1),
        "walking_m": round(distance.walk.walking_m, 1),
        "walking_minutes": round(distance.walk.minutes, 2),
    }


def _compound_out(item: Any) -> dict[str, Any]:
    nearest = item.nearest
    return {
        "compound_id": item.compound.compound_id,
        "name": item.compound.name,
        "latitude": item.compound.latitude,
        "longitude": item.compound.longitude,
        "covered": nearest is not None,
        "nearest_post_id": nearest.post.id if nearest else None,
        "nearest_post_name": nearest.post.name if nearest else None,
        "walking_minutes": round(nearest.walk.minutes, 2) if nearest else None,
    }


@blp.route("/posts")
class Posts(MethodView):
    @blp.arguments(PostFilter, location="query")
    @blp.response(200, PostSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        require_principal()
        items, total = places.list_posts(
            uow(), **plain(filters), offset=pagination_parameters.first_item, limit=pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(PostSchema)
    @blp.response(201, PostSchema)
    def post(self, body: dict) -> Any:
        return places.create_post(uow(), require_principal(), **plain(body))


@blp.route("/posts/nearby", methods=["GET"])
@blp.arguments(NearbyQuery, location="query")
@blp.response(200, NearbyPostSchema(many=True))
def nearby(query: dict) -> list:
    """Posts within a walk (15 minutes by default) of a point or a compound, nearest first."""
    require_principal()
    found = places.posts_near(uow(), config().walking, **plain(query))
    return [_nearby_out(d) for d in found]


@blp.route("/posts/<uuid:post_id>")
class PostById(MethodView):
    @blp.response(200, PostSchema)
    def get(self, post_id: Any) -> Any:
        require_principal()
        return places.get_post(uow(), str(post_id))

    @blp.arguments(PostPatchSchema)
    @blp.response(200, PostSchema)
    def patch(self, body: dict, post_id: Any) -> Any:
        return places.update_post(uow(), require_principal(), str(post_id), **plain(body))


@blp.route("/coverage/<uuid:community_id>", methods=["GET"])
@blp.arguments(CoverageQuery, location="query")
@blp.response(200, CoverageSchema)
def community_coverage(query: dict, community_id: Any) -> dict:
    """Which compounds of the community have no post within the walk: the gaps to fill."""
    model = config().walking
    result = places.community_coverage(uow(), require_principal(), model, str(community_id), query["minutes"])
    return {
        "community_id": result.community_id,
        "minutes": result.minutes,
        "walking_speed_m_per_min": model.speed_m_per_min,
        "detour_factor": model.detour_factor,
        "compounds": len(result.compounds),
        "covered": len(result.compounds) - len(result.gaps) - len(result.unlocated),
        "gaps": [_compound_out(c) for c in result.gaps],
        "without_coordinates": [c.compound.compound_id for c in result.unlocated],
        "detail": [_compound_out(c) for c in result.compounds],
    }
