"""Settings of the activities service beyond the shared ones, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from linli_activities.domain.places import DEFAULT_WALKING_SPEED_M_PER_MIN, WalkingModel
from linli_activities.domain.reminders import DEFAULT_LEAD_MINUTES, MAX_LEAD_MINUTES
from linli_kit.config import ConfigError

WALKING_SPEED_VARIABLE = "ACTIVITIES_WALKING_SPEED_M_PER_MIN"
REMINDER_VARIABLE = "ACTIVITIES_REMINDER_MINUTES"
MAX_REMINDERS = 5


@dataclass(frozen=True)
class ActivitiesConfig:
    walking: WalkingModel
    reminder_minutes: tuple[int, ...] = DEFAULT_LEAD_MINUTES


def _reminder_minutes() -> tuple[int, ...]:
    """Comma-separated minutes before the start, e.g. "1440,60"; empty or "none": no reminders."""
    raw = os.environ.get(REMINDER_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_LEAD_MINUTES
    if raw.lower() == "none":
        return ()
    leads = []
    for part in raw.split(","):
        try:
            lead = int(part.strip())
        except ValueError as exc:
            raise ConfigError(f"{REMINDER_VARIABLE}: not a number of minutes: {part.strip()!r}") from exc
        if not 1 <= lead <= MAX_LEAD_MINUTES:
            raise ConfigError(f"{REMINDER_VARIABLE}: {lead} minutes is not 1-{MAX_LEAD_MINUTES} (7 days)")
        leads.append(lead)
    if len(set(leads)) > MAX_REMINDERS:
        raise ConfigError(f"{REMINDER_VARIABLE}: at most {MAX_REMINDERS} reminders")
    return tuple(sorted(set(leads), reverse=True))


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
    return ActivitiesConfig(walking=WalkingModel(speed_m_per_min=speed), reminder_minutes=_reminder_minutes())
