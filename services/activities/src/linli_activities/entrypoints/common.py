"""Pieces every blueprint of the service uses."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app

from linli_activities.config import ActivitiesConfig
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork


def uow() -> ActivitiesUnitOfWork:
    return ActivitiesUnitOfWork(current_app.extensions["linli.database"], current_app.extensions["activities.clock"])


def config() -> ActivitiesConfig:
    return current_app.extensions["activities.config"]


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
