"""Settings of the issues service beyond the shared ones, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from linli_kit.config import ConfigError


@dataclass(frozen=True)
class IssuesConfig:
    auto_close_after: timedelta  # a resolved issue nobody rated closes after this
    deadline_check_seconds: float  # how often the worker looks for overdue issues


def load_issues_config() -> IssuesConfig:
    try:
        days = float(os.environ.get("ISSUES_AUTO_CLOSE_DAYS", "7"))
        interval = float(os.environ.get("ISSUES_DEADLINE_CHECK_SECONDS", "60"))
    except ValueError as exc:
        raise ConfigError(f"ISSUES_AUTO_CLOSE_DAYS / ISSUES_DEADLINE_CHECK_SECONDS must be numbers: {exc}") from exc
    if days <= 0 or interval <= 0:
        raise ConfigError("ISSUES_AUTO_CLOSE_DAYS and ISSUES_DEADLINE_CHECK_SECONDS must be positive")
    return IssuesConfig(auto_close_after=timedelta(days=days), deadline_check_seconds=interval)
