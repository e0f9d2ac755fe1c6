"""Events the gateway publishes about the directory (streets, communities, compounds)."""

from marshmallow import fields, validate

from linli_kit.events.catalogue import CATALOGUE, EventSchema

_id = fields.UUID


# --- directory (gateway) -----------------------------------------------------------------------
class StreetUpserted(EventSchema):
    street_id = _id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(load_default=None, allow_none=True)
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


class CommunityUpserted(EventSchema):
    community_id = _id(required=True)
    street_id = _id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


class CompoundUpserted(EventSchema):
    compound_id = _id(required=True)
    community_id = _id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


CATALOGUE.register("directory.street.upserted", 1, StreetUpserted)
CATALOGUE.register("directory.community.upserted", 1, CommunityUpserted)
CATALOGUE.register("directory.compound.upserted", 1, CompoundUpserted)
