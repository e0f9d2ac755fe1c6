"""Service posts (邻里驿站) and the 15-minute circle.

Walking distance is estimated from coordinates: the great-circle (haversine) distance times a
detour factor. Streets do not run as the crow flies; studies of urban street networks put the ratio
of network to straight-line distance at about 1.2 to 1.4, and 1.3 is the usual planning figure
(used for 15-minute-city catchments), so DETOUR_FACTOR = 1.3. The walking speed is a setting
(80 m/min by default, an unhurried adult; older residents walk nearer 60-70).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from linli_activities.domain.common import new_id
from linli_kit.errors import Invalid, Text

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
DETOUR_FACTOR = 1.3
DEFAULT_WALKING_SPEED_M_PER_MIN = 80.0
CIRCLE_MINUTES = 15.0
FACILITIES = (
    "activity_room",
    "reading_room",
    "canteen",
    "clinic",
    "massage_room",
    "barber",
    "playground",
    "toilet",
    "wifi",
    "accessible_entrance",
    "meeting_room",
    "other",
)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Walk:
    straight_m: float
    walking_m: float
    minutes: float


@dataclass(frozen=True)
class WalkingModel:
    speed_m_per_min: float = DEFAULT_WALKING_SPEED_M_PER_MIN
    detour_factor: float = DETOUR_FACTOR

    def walk(self, lat1: float, lon1: float, lat2: float, lon2: float) -> Walk:
        straight = haversine_m(lat1, lon1, lat2, lon2)
        walking = straight * self.detour_factor
        return Walk(straight, walking, walking / self.speed_m_per_min)

    def straight_line_reach_m(self, minutes: float) -> float:
        """The farthest straight-line distance that can still be walked in `minutes`."""
        return minutes * self.speed_m_per_min / self.detour_factor

    def bounding_box(self, lat: float, lon: float, minutes: float) -> tuple[float, float, float, float]:
        """(min_lat, max_lat, min_lon, max_lon) surely containing every point within `minutes`: a
        cheap indexed prefilter before the exact distance."""
        reach = self.straight_line_reach_m(minutes) * 1.01
        dlat = math.degrees(reach / EARTH_RADIUS_M)
        cos_lat = max(math.cos(math.radians(lat)), 1e-6)
        dlon = min(math.degrees(reach / (EARTH_RADIUS_M * cos_lat)), 180.0)
        return lat - dlat, lat + dlat, lon - dlon, lon + dlon


@dataclass
class ServicePost:
    community_id: str
    name: str
    latitude: float
    longitude: float
    created_at: datetime
    address: str = ""
    opening_hours: str = ""
    facilities: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    compound_ids: list[str] = field(default_factory=list)
    residents_served: int = 0
    active: bool = True
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        problems: dict[str, list[str]] = {}
        if not -90 <= self.latitude <= 90:
            problems["latitude"] = ["between -90 and 90"]
        if not -180 <= self.longitude <= 180:
            problems["longitude"] = ["between -180 and 180"]
        unknown = [f for f in self.facilities if f not in FACILITIES]
        if unknown:
            problems["facilities"] = [Text("unknown: {unknown}", unknown=", ".join(unknown))]
        if self.residents_served < 0:
            problems["residents_served"] = ["cannot be negative"]
        if problems:
            raise Invalid("invalid service post: {names}", fields=problems, names=", ".join(sorted(problems)))

    def change(self, **changes: object) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.check()


@dataclass(frozen=True)
class PostDistance:
    post: ServicePost
    walk: Walk


def posts_within(
    model: WalkingModel, lat: float, lon: float, posts: list[ServicePost], minutes: float = CIRCLE_MINUTES
) -> list[PostDistance]:
    """The posts reachable on foot in `minutes`, nearest first."""
    reachable = [PostDistance(p, model.walk(lat, lon, p.latitude, p.longitude)) for p in posts if p.active]
    return sorted((d for d in reachable if d.walk.minutes <= minutes), key=lambda d: d.walk.minutes)


@dataclass(frozen=True)
class CompoundPoint:
    compound_id: str
    name: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class CompoundCoverage:
    compound: CompoundPoint
    nearest: PostDistance | None  # None: no post within reach, or no coordinates

    @property
    def located(self) -> bool:
        return self.compound.latitude is not None and self.compound.longitude is not None


def coverage(
    model: WalkingModel, compounds: list[CompoundPoint], posts: list[ServicePost], minutes: float = CIRCLE_MINUTES
) -> list[CompoundCoverage]:
    """For every compound, its nearest post within `minutes`, or None (a gap, or no coordinates)."""
    result = []
    for compound in compounds:
        nearest = None
        if compound.latitude is not None and compound.longitude is not None:
            reachable = posts_within(model, compound.latitude, compound.longitude, posts, minutes)
            nearest = reachable[0] if reachable else None
        result.append(CompoundCoverage(compound, nearest))
    return result
