"""HTTP API of the directory: `/api/v1/directory/{streets,communities,compounds,organisations}`.

Reads are public (the directory is what a sign-up form offers, and the bodies staff pick from);
writes need a city admin, or a street official for their own street's communities and compounds.
Organisations are registered by those who own them: a city admin (city-wide bureaus and agencies,
and anything), a street official (their street's bodies), community staff (the property companies
and owners' committees of their compounds, their community's party organisations and branches).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from linli_gateway.domain.directory import ORGANISATION_KINDS, Community, Compound, Organisation, Street
from linli_gateway.service_layer import directory
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.web import require_principal

blp = Blueprint("directory", __name__, url_prefix="/api/v1/directory", description="Streets, communities, compounds")


class StreetSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    revision = fields.Integer(dump_only=True)


class StreetPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    city = fields.String(validate=validate.Length(min=1, max=200))


class CommunitySchema(Schema):
    id = fields.String(dump_only=True)
    street_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    revision = fields.Integer(dump_only=True)


class CommunityPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    street_id = fields.UUID()


class CompoundSchema(Schema):
    id = fields.String(dump_only=True)
    community_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    revision = fields.Integer(dump_only=True)


class CompoundPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    latitude = fields.Float(validate=validate.Range(-90, 90))
    longitude = fields.Float(validate=validate.Range(-180, 180))


class CommunityFilter(Schema):
    street_id = fields.UUID(load_default=None)


class CompoundFilter(Schema):
    community_id = fields.UUID(load_default=None)


class OrganisationSchema(Schema):
    id = fields.String(dump_only=True)
    kind = fields.String(required=True, validate=validate.OneOf(ORGANISATION_KINDS))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    street_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "a bureau's or agency's street (none: city-wide), a party organisation's street"},
    )
    community_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "a party organisation's or branch's community"}
    )
    compound_ids = fields.List(
        fields.UUID(),
        load_default=list,
        validate=validate.Length(max=500),
        metadata={"description": "the compounds a property company serves; an owners' committee's one compound"},
    )
    parent_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "a party branch's party organisation"}
    )
    active = fields.Boolean(dump_only=True)
    revision = fields.Integer(dump_only=True)


class OrganisationPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    active = fields.Boolean()
    compound_ids = fields.List(
        fields.UUID(),
        validate=validate.Length(max=500),
        metadata={"description": "a property company's compounds, all of them (you may add or remove yours)"},
    )


class OrganisationFilter(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(ORGANISATION_KINDS))
    community_id = fields.UUID(
        load_default=None, metadata={"description": "the community's own, and those serving its compounds"}
    )
    street_id = fields.UUID(load_default=None, metadata={"description": "the street's own, and its communities'"})
    compound_id = fields.UUID(load_default=None)
    name = fields.String(
        load_default=None, validate=validate.Length(min=1, max=200), metadata={"description": "a part of the name"}
    )
    active = fields.Boolean(load_default=None)


def _uow() -> GatewayUnitOfWork:
    return GatewayUnitOfWork(current_app.extensions["linli.database"])


def _strings(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key.endswith("_ids") and value is not None:
            out[key] = [str(v) for v in value]
        elif key.endswith("_id") and value is not None:
            out[key] = str(value)
        else:
            out[key] = value
    return out


@blp.route("/streets")
class Streets(MethodView):
    @blp.response(200, StreetSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list:
        items, total = directory.list_entries(
            _uow(), Street, offset=pagination_parameters.first_item, limit=pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(StreetSchema)
    @blp.response(201, StreetSchema)
    def post(self, body: dict) -> Street:
        return directory.create_street(_uow(), require_principal(), **body)


@blp.route("/streets/<uuid:street_id>")
class StreetById(MethodView):
    @blp.response(200, StreetSchema)
    def get(self, street_id: Any) -> Street:
        return directory.get_entry(_uow(), Street, str(street_id))

    @blp.arguments(StreetPatchSchema)
    @blp.response(200, StreetSchema)
    def patch(self, body: dict, street_id: Any) -> Street:
        return directory.update_street(_uow(), require_principal(), str(street_id), **body)


@blp.route("/communities")
class Communities(MethodView):
    @blp.arguments(CommunityFilter, location="query")
    @blp.response(200, CommunitySchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        items, total = directory.list_entries(
            _uow(),
            Community,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            **_strings(filters),
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(CommunitySchema)
    @blp.response(201, CommunitySchema)
    def post(self, body: dict) -> Community:
        return directory.create_community(_uow(), require_principal(), **_strings(body))


@blp.route("/communities/<uuid:community_id>")
class CommunityById(MethodView):
    @blp.response(200, CommunitySchema)
    def get(self, community_id: Any) -> Community:
        return directory.get_entry(_uow(), Community, str(community_id))

    @blp.arguments(CommunityPatchSchema)
    @blp.response(200, CommunitySchema)
    def patch(self, body: dict, community_id: Any) -> Community:
        return directory.update_community(_uow(), require_principal(), str(community_id), **_strings(body))


@blp.route("/compounds")
class Compounds(MethodView):
    @blp.arguments(CompoundFilter, location="query")
    @blp.response(200, CompoundSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        items, total = directory.list_entries(
            _uow(),
            Compound,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            **_strings(filters),
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(CompoundSchema)
    @blp.response(201, CompoundSchema)
    def post(self, body: dict) -> Compound:
        return directory.create_compound(_uow(), require_principal(), **_strings(body))


@blp.route("/compounds/<uuid:compound_id>")
class CompoundById(MethodView):
    @blp.response(200, CompoundSchema)
    def get(self, compound_id: Any) -> Compound:
        return directory.get_entry(_uow(), Compound, str(compound_id))

    @blp.arguments(CompoundPatchSchema)
    @blp.response(200, CompoundSchema)
    def patch(self, body: dict, compound_id: Any) -> Compound:
        return directory.update_compound(_uow(), require_principal(), str(compound_id), **body)


@blp.route("/organisations")
class Organisations(MethodView):
    @blp.arguments(OrganisationFilter, location="query")
    @blp.response(200, OrganisationSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        """The register of organisations, by kind, place (community, street, compound) or name."""
        items, total = directory.list_organisations(
            _uow(), offset=pagination_parameters.first_item, limit=pagination_parameters.page_size, **_strings(filters)
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(OrganisationSchema)
    @blp.response(201, OrganisationSchema)
    def post(self, body: dict) -> Organisation:
        """Register a property company (with the compounds it serves), an owners' committee (of one
        compound), a bureau or agency (city-wide or a street's), a party organisation (a street's or
        a community's) or a party branch (within its organisation)."""
        return directory.create_organisation(_uow(), require_principal(), **_strings(body))


@blp.route("/organisations/<uuid:organisation_id>")
class OrganisationById(MethodView):
    @blp.response(200, OrganisationSchema)
    def get(self, organisation_id: Any) -> Organisation:
        return directory.get_entry(_uow(), Organisation, str(organisation_id))

    @blp.arguments(OrganisationPatchSchema)
    @blp.response(200, OrganisationSchema)
    def patch(self, body: dict, organisation_id: Any) -> Organisation:
        return directory.update_organisation(_uow(), require_principal(), str(organisation_id), **_strings(body))
