"""The gateway's own settings (beyond the kit's): where the services are, timeouts, breaker, limits.

Proxying: `<SERVICE>_TIMEOUT_SECONDS` (default `PROXY_TIMEOUT_SECONDS`, 10) bounds the wait for one
answer; `PROXY_BUDGET_SECONDS` (15) bounds a whole proxied request, retries included;
`PROXY_RETRIES` (2) extra attempts, only after a failed connection or a 502/503 to a safe method;
`BREAKER_FAIL_MAX` (5) requests in a row that found a service down open its circuit for
`BREAKER_RESET_SECONDS` (15). `TRUSTED_PROXIES` (0): how many proxies in front of the gateway set
`X-Forwarded-For/-Proto/-Host/-Prefix` that it may believe (0: the gateway is the public edge).

The web front: `FRONT_URL` (http://127.0.0.1:8005) is where the pages are made; every path the
gateway does not answer itself goes there, so residents open the gateway's address. Empty: no pages,
those paths are 404. `FRONT_TIMEOUT_SECONDS` (30) bounds the wait for a page.

Limits: `RATE_LIMIT_PER_CLIENT`, `RATE_LIMIT_PER_ACCOUNT`, `RATE_LIMIT_AUTH` (see
entrypoints/limits.py for who each counts); `RATELIMIT_STORAGE_URI` where the counts live (default
`REDIS_URL`, else the process's memory: each gunicorn worker would count alone), and
`RATELIMIT_KEY_PREFIX` ("linli") to share one Redis between deployments.

Logins: `PASSWORD_HASH_WORKERS` (default: the cores this process may use) password checks at once
per web process, off the request threads; `PASSWORD_HASH_QUEUE` (0) more logins may wait for a turn,
and one beyond those is answered 503 `busy` with Retry-After at once (see adapters/passwords.py).
0 workers: checks on the request threads, unbounded (the old way; for comparison only).
`PASSWORD_HASH_NICENESS` (10): how much lower the hashing threads' CPU priority is (0: the same).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from environs import Env, EnvError
from marshmallow import ValidationError
from marshmallow.validate import Range

from linli_kit.config import ConfigError, Settings

ROUTED_SERVICES = {"issues": 8001, "meetings": 8002, "activities": 8003, "notifications": 8004}


@dataclass(frozen=True)
class GatewaySettings:
    service_urls: dict[str, str]
    timeouts: dict[str, float]
    breaker_fail_max: int
    breaker_reset_seconds: float
    redis_url: str | None
    client_rate_limit: str
    account_rate_limit: str
    auth_rate_limit: str
    access_token_ttl: timedelta
    private_key_file: Path
    retries: int = 2
    budget_seconds: float = 15.0
    trusted_proxies: int = 0
    front_url: str | None = None
    front_timeout: float = 30.0
    ratelimit_storage_uri: str | None = None
    ratelimit_key_prefix: str = "linli"
    password_hash_workers: int = 1
    password_hash_queue: int = 0
    password_hash_niceness: int = 10
    extra: dict[str, str] = field(default_factory=dict)

    def private_key(self) -> str:
        inline = os.environ.get("JWT_PRIVATE_KEY")
        if inline:
            return inline
        try:
            return self.private_key_file.read_text()
        except FileNotFoundError as exc:
            raise ConfigError(
                f"JWT private key not found at {self.private_key_file}: set JWT_PRIVATE_KEY(_FILE) "
                "or run `linli-gateway init-keys`"
            ) from exc


def load_gateway_settings(settings: Settings) -> GatewaySettings:
    env = Env(eager=False)
    try:
        urls = {
            name: env.str(f"{name.upper()}_URL", f"http://127.0.0.1:{port}").rstrip("/")
            for name, port in ROUTED_SERVICES.items()
        }
        seconds = Range(0, 120, min_inclusive=False)
        default_timeout = env.float("PROXY_TIMEOUT_SECONDS", 10.0, validate=seconds)
        timeouts = {
            name: env.float(f"{name.upper()}_TIMEOUT_SECONDS", default_timeout, validate=seconds)
            for name in ROUTED_SERVICES
        }
        gateway = GatewaySettings(
            service_urls=urls,
            timeouts=timeouts,
            breaker_fail_max=env.int("BREAKER_FAIL_MAX", 5, validate=Range(min=1)),
            breaker_reset_seconds=env.float("BREAKER_RESET_SECONDS", 15.0, validate=Range(min=0, min_inclusive=False)),
            redis_url=env.str("REDIS_URL", None) or None,
            client_rate_limit=env.str("RATE_LIMIT_PER_CLIENT", "300/minute"),
            account_rate_limit=env.str("RATE_LIMIT_PER_ACCOUNT", "600/minute"),
            auth_rate_limit=env.str("RATE_LIMIT_AUTH", "20/minute"),
            access_token_ttl=timedelta(seconds=env.int("ACCESS_TOKEN_TTL_SECONDS", 900, validate=Range(min=30))),
            private_key_file=env.path("JWT_PRIVATE_KEY_FILE", settings.data_dir / "jwt_private.pem"),
            retries=env.int("PROXY_RETRIES", 2, validate=Range(0, 5)),
            budget_seconds=env.float("PROXY_BUDGET_SECONDS", 15.0, validate=Range(0, 300, min_inclusive=False)),
            trusted_proxies=env.int("TRUSTED_PROXIES", 0, validate=Range(0, 5)),
            front_url=env.str("FRONT_URL", "http://127.0.0.1:8005").rstrip("/") or None,
            front_timeout=env.float("FRONT_TIMEOUT_SECONDS", 30.0, validate=seconds),
            ratelimit_storage_uri=env.str("RATELIMIT_STORAGE_URI", None, validate=_storage_uri) or None,
            ratelimit_key_prefix=env.str("RATELIMIT_KEY_PREFIX", "linli"),
            password_hash_workers=env.int(
                "PASSWORD_HASH_WORKERS", len(os.sched_getaffinity(0)) or 1, validate=Range(0, 256)
            ),
            password_hash_queue=env.int("PASSWORD_HASH_QUEUE", 0, validate=Range(0, 1024)),
            password_hash_niceness=env.int("PASSWORD_HASH_NICENESS", 10, validate=Range(0, 19)),
        )
        env.seal()
    except EnvError as exc:
        raise ConfigError(f"invalid gateway configuration: {exc}") from exc
    return gateway


# Stores the limits library counts in that every worker can share, and memory (one process only).
STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


def _storage_uri(value: str) -> None:
    if value and value.split("://", 1)[0] not in STORAGE_SCHEMES:
        raise ValidationError(f"must start with one of {', '.join(s + '://' for s in STORAGE_SCHEMES)}")
