"""Pieces every blueprint of the service uses."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from marshmallow import ValidationError, fields

from linli_activities.config import ActivitiesConfig
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.schemas import AwareDateTime


def uow() -> ActivitiesUnitOfWork:
    return ActivitiesUnitOfWork(
        current_app.extensions["linli.database"],
        current_app.extensions["activities.clock"],
        reminder_minutes=config().reminder_minutes,
        timezone=current_app.extensions["linli.settings"].timezone,
    )


def config() -> ActivitiesConfig:
    return current_app.extensions["activities.config"]


def paged(pagination_parameters: Any, result: tuple[list, int]) -> list:
    """A page of a list use case's (items, total): the total goes to the X-Pagination header."""
    items, total = result
    pagination_parameters.item_count = total
    return items


def page_of(pagination_parameters: Any) -> dict[str, int]:
    """The offset and limit a list use case takes, from flask-smorest's pagination parameters."""
    return {"offset": pagination_parameters.first_item, "limit": pagination_parameters.page_size}


def plain(value: Any) -> Any:
    """UUIDs from the schemas as the strings the core stores, inside dicts and lists too."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Redacted:
    """`target` as seen by a caller who may not see some of its fields (they read as None)."""

    def __init__(self, target: object, *hidden: str) -> None:
        self._target = target
        self._hidden = frozenset(hidden)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            return None
        return getattr(self._target, name)


def _storable(value: str) -> str:
    """Refuse what neither database can store: PostgreSQL rejects NUL in text, and a lone surrogate
    (valid in JSON's \\u escapes) cannot be encoded to UTF-8 at all. Both would fail at the INSERT."""
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError("must be valid Unicode text (no lone surrogates)") from exc
    return value


class Text(fields.String):
    """A string field whose value the databases can store (422 naming the field otherwise)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _storable(super()._deserialize(value, attr, data, **kwargs))


class Url(fields.Url):
    """A URL field whose value the databases can store."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _storable(super()._deserialize(value, attr, data, **kwargs))


class Instant(AwareDateTime):
    """An instant that must carry its offset (a bare local time is refused, 422, rather than read
    as UTC: 19:00 for a neighbourhood activity would otherwise land eight hours off in Shanghai).
    Bounded like every instant of the platform."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", None)
        super().__init__(**kwargs)
