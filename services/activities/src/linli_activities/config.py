"""Settings of the activities service beyond the shared ones, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from linli_activities.domain.places import DEFAULT_WALKING_SPEED_M_PER_MIN, WalkingModel
from linli_kit.config import ConfigError

WALKING_SPEED_VARIABLE = "ACTIVITIES_WALKING_SPEED_M_PER_MIN"


@dataclass(frozen=True)
class ActivitiesConfig:
    walking: WalkingModel


def load_activities_config() -> ActivitiesConfig:
    raw = os.environ.get(WALKING_SPEED_VARIABLE, "")
    speed = DEFAULT_WALKING_SPEED_M_PER_MIN
    if raw:
        try:
            speed = float(raw)
        except ValueError as exc:
            raise ConfigError(f"{WALKING_SPEED_VARIABLE}: not a number: {raw!r}") from exc
        if not 20 <= speed <= 200:
            raise ConfigError(f"{WALKING_SPEED_VARIABLE}: {speed} m/min is not a walking speed (20-200)")
    return ActivitiesConfig(walking=WalkingModel(speed_m_per_min=speed))
