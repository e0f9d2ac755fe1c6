"""Events the gateway publishes about the directory (streets, communities, compounds, organisations)."""

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


# The kinds of body that take part in a community's governance, and where each belongs:
# property companies serve compounds; an owners' committee is one compound's; bureaus and agencies
# are city-wide (no street) or a street's; a party organisation is a community's or a street's, and
# its branches (parent_id) are within it.
ORGANISATION_KINDS = (
    "property_company",
    "owners_committee",
    "bureau",
    "agency",
    "party_organisation",
    "party_branch",
)


class OrganisationUpserted(EventSchema):
    organisation_id = _id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ORGANISATION_KINDS))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    street_id = _id(load_default=None, allow_none=True)
    community_id = _id(load_default=None, allow_none=True)
    compound_ids = fields.List(fields.UUID(), load_default=list)
    parent_id = _id(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=True)
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


CATALOGUE.register("directory.street.upserted", 1, StreetUpserted)
CATALOGUE.register("directory.community.upserted", 1, CommunityUpserted)
CATALOGUE.register("directory.compound.upserted", 1, CompoundUpserted)
CATALOGUE.register("directory.organisation.upserted", 1, OrganisationUpserted)
