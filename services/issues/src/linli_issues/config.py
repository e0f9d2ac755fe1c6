"""Settings of the issues service beyond the shared ones, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from linli_kit.config import ConfigError


@dataclass(frozen=True)
class IssuesConfig:
    auto_close_after: timedelta  # a resolved issue nobody rated closes after this
    deadline_check_seconds: float  # how often the worker looks for overdue issues
    # The public address of the Open311 endpoint (e.g. https://linli.example.org/open311/v2), as
    # discovery advertises it and media URLs start; None: from the gateway's X-Forwarded-* headers.
    open311_public_url: str | None = None


def load_issues_config() -> IssuesConfig:
    try:
        days = float(os.environ.get("ISSUES_AUTO_CLOSE_DAYS", "7"))
        interval = float(os.environ.get("ISSUES_DEADLINE_CHECK_SECONDS", "60"))
    except ValueError as exc:
        raise ConfigError(f"ISSUES_AUTO_CLOSE_DAYS / ISSUES_DEADLINE_CHECK_SECONDS must be numbers: {exc}") from exc
    if not (0 < days < 36_500 and 0 < interval < 86_400):
        raise ConfigError(
            "ISSUES_AUTO_CLOSE_DAYS must be between 0 and 36500 and ISSUES_DEADLINE_CHECK_SECONDS between 0 and 86400"
        )
    public_url = os.environ.get("OPEN311_PUBLIC_URL", "").strip().rstrip("/") or None
    if public_url is not None:
        parsed = urlparse(public_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.query or parsed.fragment:
            raise ConfigError(
                f"OPEN311_PUBLIC_URL must be an absolute http(s) URL without query, "
                f"e.g. https://linli.example.org/open311/v2; got {public_url!r}"
            )
    return IssuesConfig(
        auto_close_after=timedelta(days=days), deadline_check_seconds=interval, open311_public_url=public_url
    )
