"""The Open311 endpoints in the service's OpenAPI document, as GeoReport v2 defines them.

They are not flask-smorest views (the spec's own error format and XML), so they are described here
by hand: what each takes, and every body it answers, errors included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule

TAG = "Open311 GeoReport v2"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "nullable": True, **extra}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Open311Error": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
    "Open311Errors": {"type": "array", "items": _ref("Open311Error")},
    "Open311Discovery": {
        "type": "object",
        "required": ["changeset", "contact", "key_service", "endpoints"],
        "properties": {
            "changeset": {"type": "string", "format": "date-time"},
            "contact": {"type": "string"},
            "key_service": {"type": "string"},
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["specification", "url", "changeset", "type", "formats"],
                    "properties": {
                        "specification": {"type": "string"},
                        "url": {"type": "string", "description": "the public address of this endpoint"},
                        "changeset": {"type": "string", "format": "date-time"},
                        "type": {"type": "string", "enum": ["production", "test"]},
                        "formats": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "Open311Service": {
        "type": "object",
        "required": ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"],
        "properties": {
            "service_code": {"type": "string"},
            "service_name": {"type": "string"},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string", "description": "comma separated"},
            "group": {"type": "string"},
        },
    },
    "Open311ServiceDefinition": {
        "type": "object",
        "required": ["service_code", "attributes"],
        "properties": {
            "service_code": {"type": "string"},
            "attributes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["variable", "code", "datatype", "required", "order", "description"],
                    "properties": {
                        "variable": {"type": "boolean"},
                        "code": {"type": "string"},
                        "datatype": {
                            "type": "string",
                            "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"],
                        },
                        "required": {"type": "boolean"},
                        "datatype_description": _nullable("string"),
                        "order": {"type": "integer", "minimum": 1},
                        "description": {"type": "string"},
                        "values": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "name"],
                                "properties": {"key": {"type": "string"}, "name": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
    "Open311ServiceRequest": {
        "type": "object",
        "required": [
            "service_request_id",
            "status",
            "status_notes",
            "service_name",
            "service_code",
            "description",
            "agency_responsible",
            "service_notice",
            "requested_datetime",
            "updated_datetime",
            "expected_datetime",
            "address",
            "address_id",
            "zipcode",
            "lat",
            "long",
            "media_url",
        ],  # fmt: skip
        "properties": {
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "status_notes": _nullable("string"),
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": {"type": "string"},
            "agency_responsible": _nullable("string"),
            "service_notice": _nullable("string"),
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": _nullable("string", format="date-time"),
            "expected_datetime": _nullable("string", format="date-time"),
            "address": _nullable("string"),
            "address_id": _nullable("string"),
            "zipcode": _nullable("string"),
            "lat": _nullable("number"),
            "long": _nullable("number"),
            "media_url": _nullable(
                "string", description="the request's first photo at the public address, or its client's media URL"
            ),
        },
    },
    "Open311Created": {
        "type": "object",
        "required": ["service_request_id", "service_notice", "account_id"],
        "properties": {
            "service_request_id": {"type": "string"},
            "service_notice": _nullable("string"),
            "account_id": _nullable("string"),
        },
    },
    "Open311Token": {
        "type": "object",
        "required": ["service_request_id", "token"],
        "properties": {"service_request_id": {"type": "string"}, "token": {"type": "string"}},
    },
    "Open311RequestUpdate": {
        "type": "object",
        "required": ["update_id", "service_request_id", "status", "updated_datetime", "description", "detailed_status"],
        "properties": {
            "update_id": {"type": "string"},
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "description": {"type": "string"},
            "media_url": _nullable("string"),
            "detailed_status": {"type": "string"},
        },
    },
}

JURISDICTION = {
    "name": "jurisdiction_id",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "accepted and ignored: this endpoint serves one city",
}
XML = {"schema": {"type": "string"}}


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}, "text/xml": XML}}


def _errors(*codes: int) -> dict[str, Any]:
    described = {
        400: "what was sent is wrong (named in the description)",
        403: "the API key is missing or invalid, or the location is outside the key's scope",
        404: "not found",
        405: "method not allowed",
        503: "the database is unavailable; try again",
    }
    responses = {str(code): _body(_ref("Open311Errors"), described[code]) for code in (*codes, 405, 503)}
    responses["default"] = _body(_ref("Open311Errors"), "an error, in the spec's format")
    return responses


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", **schema},
        "description": description,
    }


def _operation(summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any], **extra: Any) -> dict:
    return {
        "tags": [TAG],
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
        "security": [],  # public
        **extra,
    }


def describe(spec: Any, rules: Mapping[str, Rule], *, attribute_codes: Iterable[str], urgencies: Iterable[str]) -> None:
    """Add the schemas and every operation; `rules` are the blueprint's URL rules by view name, so
    the documented paths and path parameters are exactly those routed."""
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    ok = "200"
    spec.path(
        rule=rules["discovery"],
        operations={
            "get": _operation(
                "Service discovery: where this endpoint is published and what it speaks",
                [],
                {ok: _body(_ref("Open311Discovery"), "the discovery document"), **_errors()},
            )
        },
    )
    spec.path(
        rule=rules["services"],
        operations={
            "get": _operation(
                "The service types: the city's public categories (every active category for an API client's token)",
                [JURISDICTION],
                {ok: _body({"type": "array", "items": _ref("Open311Service")}, "services"), **_errors()},
            )
        },
    )
    spec.path(
        rule=rules["service_definition"],
        operations={
            "get": _operation(
                "A service's definition: the attributes a request may carry (404 for a category that is not "
                "public, unless asked with an API client's token)",
                [
                    JURISDICTION,
                ],
                {ok: _body(_ref("Open311ServiceDefinition"), "the definition"), **_errors(404)},
            )
        },
    )
    urgency_list = list(urgencies)
    form: dict[str, Any] = {
        "type": "object",
        "required": ["service_code"],
        "properties": {
            "api_key": {"type": "string", "description": "the gateway exchanges it for the bearer token"},
            "jurisdiction_id": {"type": "string"},
            "service_code": {"type": "string"},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "address_string": {"type": "string", "maxLength": 300},
            "address_id": {"type": "string", "description": "a compound's id"},
            "email": {"type": "string"},
            "device_id": {"type": "string"},
            "account_id": {"type": "string"},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "phone": {"type": "string"},
            "description": {"type": "string", "maxLength": 4000},
            "media_url": {"type": "string", "maxLength": 2000},
            **{f"attribute[{code}]": {"type": "string"} for code in attribute_codes},
        },
    }
    form["properties"]["attribute[urgency]"] = {"type": "string", "enum": urgency_list}
    spec.path(
        rule=rules["list_requests"],
        operations={
            "get": _operation(
                "Service requests: the newest 1,000 published ones of at most 90 days (default: the last 90 "
                "days). Published: of a public category, not reported anonymously, not marked private; phone "
                "and identity-card numbers masked",
                [
                    JURISDICTION,
                    _query("service_request_id", "ids, comma separated; overrides every other argument"),
                    _query("service_code", "service codes, comma separated"),
                    _query("start_date", "earliest requested_datetime (W3C, with offset)"),
                    _query(
                        "end_date", "latest requested_datetime (W3C, with offset); at most 90 days after start_date"
                    ),
                    _query("status", "open, closed, or both comma separated"),
                ],
                {ok: _body({"type": "array", "items": _ref("Open311ServiceRequest")}, "requests"), **_errors(400)},
            ),
            "post": _operation(
                "Post a service request (an API key's client); it is created at once",
                [],
                {
                    "201": _body({"type": "array", "items": _ref("Open311Created")}, "the request was created"),
                    **_errors(400, 403, 404),
                },
                requestBody={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
                security=[{"bearerAuth": []}],
            ),
        },
    )
    spec.path(
        rule=rules["get_request"],
        operations={
            "get": _operation(
                "One service request: a published one, or the asking client's own (its key's token)",
                [
                    JURISDICTION,
                ],
                {ok: _body({"type": "array", "items": _ref("Open311ServiceRequest")}, "the request"), **_errors(404)},
            )
        },
    )
    spec.path(
        rule=rules["get_token"],
        operations={
            "get": _operation(
                "The request id of a token (requests are created at once: the token is the request id)",
                [JURISDICTION],
                {ok: _body({"type": "array", "items": _ref("Open311Token")}, "the token's request"), **_errors(404)},
            )
        },
    )
    spec.path(
        rule=rules["request_updates"],
        operations={
            "get": _operation(
                "Public steps of published requests' lifecycles (extension), newest first",
                [
                    JURISDICTION,
                    _query("service_request_id", "ids, comma separated"),
                    _query("start_date", "earliest update (W3C, with offset)"),
                    _query("end_date", "latest update (W3C, with offset)"),
                ],
                {
                    ok: _body({"type": "array", "items": _ref("Open311RequestUpdate")}, "updates"),
                    **_errors(400),
                },
            )
        },
    )
    spec.path(
        rule=rules["media"],
        operations={
            "get": _operation(
                "A public request's photo (its media_url)",
                [],
                {
                    ok: {
                        "description": "the photo",
                        "content": {
                            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "404": {
                        "description": "no such photo, or its request is not public",
                        "content": {"application/json": {"schema": _ref("Open311Errors")}},
                    },
                    "default": {
                        "description": "an error, in the spec's format",
                        "content": {"application/json": {"schema": _ref("Open311Errors")}},
                    },
                },
            )
        },
    )
