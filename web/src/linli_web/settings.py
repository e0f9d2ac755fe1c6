"""Settings of the web process, read once from the environment at start.

A bad value stops the process with a message naming the variable, instead of failing on a page.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(RuntimeError):
    """The environment does not describe a web process that can start."""


@dataclass(frozen=True)
class WebSettings:
    gateway_url: str
    web_url: str
    data_dir: Path
    redis_url: str | None
    secret_key: str
    timezone: str
    map_tile_url: str
    map_tile_crs: str
    map_tile_attribution: str
    secure_cookies: bool
    api_timeout: float
    platform_name: str

    @property
    def tile_origin(self) -> str | None:
        """scheme://host of the tile server, for the Content-Security-Policy's img-src."""
        if not self.map_tile_url:
            return None
        parsed = urlparse(self.map_tile_url.replace("{s}", "a"))
        host = parsed.netloc
        if "{s}" in self.map_tile_url:
            # Leaflet's subdomains: a.tile.example, b.tile.example... -> *.tile.example
            host = "*." + host.split(".", 1)[1] if "." in host else host
        return f"{parsed.scheme}://{host}"


def _secret_key(data_dir: Path) -> str:
    """WEB_SECRET_KEY, or one made once and kept in the data folder so every gunicorn worker and every
    restart signs sessions alike."""
    given = os.environ.get("WEB_SECRET_KEY")
    if given:
        if len(given) < 32:
            raise SettingsError("WEB_SECRET_KEY must be at least 32 characters")
        return given
    path = data_dir / "web_secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if not path.exists() else None
        if fd is not None:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _url(name: str, default: str) -> str:
    value = os.environ.get(name, default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, not {value!r}")
    return value


def load_settings(**overrides: object) -> WebSettings:
    """Read and check the settings; `overrides` (for tests) replace what the environment says."""
    problems: list[str] = []
    try:
        gateway_url = _url("GATEWAY_URL", "http://127.0.0.1:8000")
        # The pages are served at the gateway's address (it passes them on to this process): the
        # address a check-in link or QR code gives a phone is the gateway's, never this process's.
        web_url = _url("WEB_URL", "http://127.0.0.1:8000")
    except SettingsError as exc:
        raise SettingsError(str(exc)) from None
    data_dir = Path(os.environ.get("LINLI_DATA_DIR", "var")).resolve()
    timezone = os.environ.get("LINLI_TIMEZONE", "Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"LINLI_TIMEZONE: unknown time zone {timezone!r}")
    crs = os.environ.get("MAP_TILE_CRS", "wgs84").lower()
    if crs not in ("wgs84", "gcj02"):
        problems.append(f"MAP_TILE_CRS must be wgs84 or gcj02, not {crs!r}")
    tile_url = os.environ.get("MAP_TILE_URL", "").strip()
    if tile_url and not tile_url.startswith(("https://", "http://")):
        problems.append("MAP_TILE_URL must be an http(s) URL template like https://tile.example/{z}/{x}/{y}.png")
    try:
        timeout = float(os.environ.get("WEB_API_TIMEOUT_SECONDS", "15"))
        if not 0.5 <= timeout <= 120:
            raise ValueError
    except ValueError:
        problems.append("WEB_API_TIMEOUT_SECONDS must be a number of seconds between 0.5 and 120")
        timeout = 15.0
    secure = os.environ.get("WEB_SECURE_COOKIES", "auto").lower()
    if secure not in ("auto", "true", "false"):
        problems.append("WEB_SECURE_COOKIES must be auto, true or false")
    if problems:
        raise SettingsError("; ".join(problems))
    values: dict[str, object] = {
        "gateway_url": gateway_url,
        "web_url": web_url,
        "data_dir": data_dir,
        "redis_url": os.environ.get("REDIS_URL") or None,
        "secret_key": "",
        "timezone": timezone,
        "map_tile_url": tile_url,
        "map_tile_crs": crs,
        "map_tile_attribution": os.environ.get("MAP_TILE_ATTRIBUTION", ""),
        # "auto": Secure when the page itself is served over https (WEB_URL says so).
        "secure_cookies": secure == "true" or (secure == "auto" and web_url.startswith("https://")),
        "api_timeout": timeout,
        "platform_name": os.environ.get("WEB_PLATFORM_NAME", ""),
    }
    values.update(overrides)
    if not values["secret_key"]:
        values["secret_key"] = _secret_key(Path(values["data_dir"]))  # type: ignore[arg-type]
    return WebSettings(**values)  # type: ignore[arg-type]
