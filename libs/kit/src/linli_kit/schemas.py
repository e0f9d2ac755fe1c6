"""Marshmallow pieces every service's HTTP layer shares: bounded dates and instants, the query of a
statistics period, and the one error body, as documented in each OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from linli_kit.periods import EARLIEST, LATEST

_RANGE = f"between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
# Instants a little inside the date range, so converting them to any offset stays valid.
_EARLIEST_INSTANT = datetime(EARLIEST.year, 1, 2, tzinfo=UTC)
_LATEST_INSTANT = datetime(LATEST.year, 12, 30, tzinfo=UTC)


def _documented_range(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Say the range in the field's OpenAPI description (OpenAPI has no minimum for dates)."""
    metadata = dict(kwargs.pop("metadata", None) or {})
    described = metadata.get("description")
    metadata["description"] = f"{described}; {_RANGE}" if described else _RANGE.capitalize()
    kwargs["metadata"] = metadata
    return kwargs


class BoundedDate(fields.Date):
    """A calendar date the platform can compute with (1970-01-01 to 2999-12-31)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_documented_range(kwargs))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        result = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST <= result <= LATEST:
            raise ValidationError(f"must be {_RANGE}")
        return result


class AwareDateTime(fields.AwareDateTime):
    """An instant with its offset (a time without one is read in UTC), returned in UTC; bounded to
    the platform's range so comparing or storing it never overflows."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**_documented_range(kwargs))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            result = super()._deserialize(value, attr, data, **kwargs)
        except OverflowError as exc:
            raise ValidationError(f"must be {_RANGE}") from exc
        try:
            if not _EARLIEST_INSTANT <= result <= _LATEST_INSTANT:
                raise ValidationError(f"must be {_RANGE}")
            return result.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(f"must be {_RANGE}") from exc


class PeriodQuery(Schema):
    """`from` and `to`, local dates both included; see `linli_kit.periods` for the defaults."""

    period_from = BoundedDate(
        load_default=None,
        data_key="from",
        metadata={"description": "first day (local date); default: the 1st of the month 11 months back"},
    )
    period_to = BoundedDate(
        load_default=None, data_key="to", metadata={"description": "last day, included (local date); default: today"}
    )


class ErrorDetailSchema(Schema):
    status = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    code = fields.String(required=True, metadata={"description": "machine-readable reason, e.g. validation_error"})
    message = fields.String(required=True, metadata={"description": "what went wrong, for people"})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={"description": "each bad field (or location) with its messages"},
    )


class ErrorSchema(Schema):
    """The body of every error the platform answers, whatever its status."""

    error = fields.Nested(ErrorDetailSchema, required=True)
    request_id = fields.String(allow_none=True, metadata={"description": "the X-Request-ID of the request"})


PAGE_MAX = 100_000
page_validator = validate.Range(min=1, max=PAGE_MAX)


class DisplayLabel(fields.Field):
    """The words for a code in the reader's language (`status_label` beside `status`: `议事中`, or
    `Being discussed` with `Accept-Language: en`). The code stays the contract; this is for people."""

    def __init__(self, kind: str, source: str, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"] = {
            "type": "string",
            "description": f"`{source}` in words, in the language of the answer (Content-Language)",
            **kwargs["metadata"],
        }
        super().__init__(attribute=source, dump_only=True, **kwargs)
        self.kind = kind

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        from linli_kit import i18n

        return i18n.label(self.kind, value) if value is not None else None
