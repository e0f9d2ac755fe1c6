"""The city's directory: streets, their communities, and the compounds of each community.

Every change raises the entry's revision, so replicas in other services can tell a newer version
from an older one that arrives late.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Street:
    name: str
    city: str | None = None
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, city: str | None = None) -> bool:
        changed = _apply(self, name=name, city=city)
        if changed:
            self.revision += 1
        return changed


@dataclass
class Community:
    street_id: str
    name: str
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, street_id: str | None = None) -> bool:
        changed = _apply(self, name=name, street_id=street_id)
        if changed:
            self.revision += 1
        return changed


@dataclass
class Compound:
    community_id: str
    name: str
    latitude: float | None = None
    longitude: float | None = None
    id: str = field(default_factory=new_id)
    revision: int = 1

    def change(self, *, name: str | None = None, latitude: float | None = None, longitude: float | None = None) -> bool:
        changed = _apply(self, name=name, latitude=latitude, longitude=longitude)
        if changed:
            self.revision += 1
        return changed


def _apply(entry: object, **changes: object) -> bool:
    changed = False
    for attribute, value in changes.items():
        if value is not None and getattr(entry, attribute) != value:
            setattr(entry, attribute, value)
            changed = True
    return changed
