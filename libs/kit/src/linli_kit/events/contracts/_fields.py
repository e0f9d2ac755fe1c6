"""Field shapes shared by the contract modules."""

from marshmallow import fields, validate


def uuid(required: bool = True) -> fields.Field:
    if required:
        return fields.UUID(required=True)
    return fields.UUID(load_default=None, allow_none=True)


def text(max_length: int = 500, required: bool = True) -> fields.Field:
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length))
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length))


def when(required: bool = True) -> fields.Field:
    """ISO 8601 with offset."""
    if required:
        return fields.AwareDateTime(required=True)
    return fields.AwareDateTime(load_default=None, allow_none=True)


def id_list() -> fields.Field:
    return fields.List(fields.UUID(), load_default=list)


def one_of(*choices: str, required: bool = True) -> fields.Field:
    if required:
        return fields.String(required=True, validate=validate.OneOf(choices))
    return fields.String(load_default=None, allow_none=True, validate=validate.OneOf(choices))
