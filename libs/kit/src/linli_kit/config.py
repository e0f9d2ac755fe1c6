"""Settings read from the environment, with embedded defaults so a laptop needs nothing set.

Every process of the platform (web, worker, command) builds one `Settings` at start. A bad value
stops the process at once with a message naming the variable, instead of failing on first use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from environs import Env, EnvError
from marshmallow import ValidationError
from marshmallow.validate import Range

# Validators must raise: marshmallow 4 (under environs) ignores a validator that returns False.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_RETENTION_DAYS = 3650
MIN_INBOX_RETENTION_DAYS = 1
# A comma separates two brokers only where the next URL (scheme://) begins, so a password may hold one.
BROKER_SEPARATOR = re.compile(r"\s*,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
# The consumer's batch and prefetch when neither the environment (EVENTS_BATCH_SIZE,
# EVENTS_PREFETCH) nor the service's definition (`ServiceDefinition.events_batch_size`) says.
DEFAULT_EVENTS_BATCH_SIZE = 500
DEFAULT_EVENTS_PREFETCH = 1000


def split_broker_urls(amqp_url: str) -> list[str]:
    """The brokers an `AMQP_URL` value names: one URL, or several (the nodes of one cluster)
    separated by commas, in the order they are to be tried."""
    return [url for url in BROKER_SEPARATOR.split(amqp_url.strip().rstrip(",").strip()) if url]


class ConfigError(RuntimeError):
    """The environment does not describe a process that can start."""


@dataclass(frozen=True)
class BusNames:
    """Names on the broker. A test run sets its own prefix so it never meets another run's messages."""

    exchange: str = "linli.events"
    dead_letter_exchange: str = "linli.dead"
    queue_prefix: str = ""

    def queue(self, service: str) -> str:
        return f"{self.queue_prefix}{service}.events"

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.queue(service)}.dead"

    @property
    def unrouted_exchange(self) -> str:
        """The events exchange's alternate exchange: events no queue is bound for go here."""
        return f"{self.exchange}.unrouted"

    @property
    def unrouted_queue(self) -> str:
        """Where unrouted events wait to be inspected and replayed. Named after the exchange (one
        per exchange, whatever the queue prefix), so removing an exchange's names finds it."""
        return f"{self.exchange}.unrouted"


@dataclass(frozen=True)
class Settings:
    service: str
    data_dir: Path
    database_url: str
    amqp_url: str
    bus: BusNames
    delivery_limit: int
    prefetch: int
    relay_batch_size: int
    relay_idle_seconds: float
    consumer_batch_size: int
    outbox_retention_hours: int
    inbox_retention_days: int
    jwt_public_key_file: Path
    jwt_issuer: str
    timezone: str
    log_level: str
    log_json: bool
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def amqp_urls(self) -> list[str]:
        """The brokers `AMQP_URL` names: one URL, or the nodes of one cluster separated by commas
        (amqp://u:p@node1:5672/%2F,amqp://u:p@node2:5672/%2F), tried in that order."""
        return split_broker_urls(self.amqp_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def jwt_public_key(self) -> str:
        inline = os.environ.get("JWT_PUBLIC_KEY")
        if inline:
            return inline
        try:
            return self.jwt_public_key_file.read_text()
        except FileNotFoundError as exc:
            raise ConfigError(
                f"JWT public key not found at {self.jwt_public_key_file}: set JWT_PUBLIC_KEY or "
                "JWT_PUBLIC_KEY_FILE, or run `make run` once to generate a local key pair"
            ) from exc


def load_settings(
    service: str,
    *,
    events_batch_size: int = DEFAULT_EVENTS_BATCH_SIZE,
    events_prefetch: int = DEFAULT_EVENTS_PREFETCH,
) -> Settings:
    """Read and check the settings of `service`; raise ConfigError naming every bad variable.
    `events_batch_size` and `events_prefetch` are the service's own defaults of the consumer's
    batch and prefetch: EVENTS_BATCH_SIZE and EVENTS_PREFETCH, when set, still decide."""
    env = Env(eager=False)
    try:
        # Absolute, so a process finds the same files whatever folder it was started from.
        data_dir = env.path("LINLI_DATA_DIR", Path("var")).resolve()
        prefix = service.upper()
        database_url = env.str(f"{prefix}_DATABASE_URL", None) or env.str(
            "DATABASE_URL", f"sqlite:///{data_dir / (service + '.db')}"
        )
        settings = Settings(
            service=service,
            data_dir=data_dir,
            database_url=database_url,
            amqp_url=env.str("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            bus=BusNames(
                exchange=env.str("EVENTS_EXCHANGE", "linli.events"),
                dead_letter_exchange=env.str("DEAD_LETTER_EXCHANGE", "linli.dead"),
                queue_prefix=env.str("QUEUE_PREFIX", ""),
            ),
            delivery_limit=env.int("EVENTS_DELIVERY_LIMIT", 5, validate=Range(1, 100)),
            prefetch=env.int("EVENTS_PREFETCH", events_prefetch, validate=Range(1, 10_000)),
            relay_batch_size=env.int("OUTBOX_BATCH_SIZE", 1000, validate=Range(1, 10_000)),
            relay_idle_seconds=env.float("OUTBOX_IDLE_SECONDS", 0.02, validate=Range(0, 60, min_inclusive=False)),
            consumer_batch_size=env.int("EVENTS_BATCH_SIZE", events_batch_size, validate=Range(1, 10_000)),
            # Published outbox rows are kept this long (for inspection), then deleted.
            outbox_retention_hours=env.int("OUTBOX_RETENTION_HOURS", 168, validate=Range(1, MAX_RETENTION_DAYS * 24)),
            # Inbox rows are what recognises a redelivered event: they must outlive any redelivery
            # (see linli_kit.events.retention for why a day is the floor and a month the default).
            inbox_retention_days=env.int(
                "INBOX_RETENTION_DAYS", 30, validate=Range(MIN_INBOX_RETENTION_DAYS, MAX_RETENTION_DAYS)
            ),
            jwt_public_key_file=env.path("JWT_PUBLIC_KEY_FILE", data_dir / "jwt_public.pem"),
            jwt_issuer=env.str("JWT_ISSUER", "linli-gateway"),
            timezone=env.str("LINLI_TIMEZONE", "Asia/Shanghai"),
            log_level=env.str("LOG_LEVEL", "INFO", validate=_log_level),
            log_json=env.bool("LOG_JSON", True),
        )
        env.seal()
    except EnvError as exc:
        raise ConfigError(f"invalid configuration for {service}: {exc}") from exc
    _check(settings)
    return settings


def _log_level(value: str) -> None:
    if value.upper() not in LOG_LEVELS:
        raise ValidationError(f"must be one of {', '.join(LOG_LEVELS)}")


def _check(settings: Settings) -> None:
    problems = []
    scheme = urlparse(settings.database_url).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        problems.append(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
    # One broker, or several (the nodes of one cluster) separated by commas; see `amqp_urls`.
    if not settings.amqp_urls or any(urlparse(url).scheme not in {"amqp", "amqps"} for url in settings.amqp_urls):
        problems.append("AMQP_URL: must start with amqp:// or amqps:// (several brokers: separated by commas)")
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"LINLI_TIMEZONE: unknown time zone {settings.timezone!r}")
    if problems:
        raise ConfigError(f"invalid configuration for {settings.service}: " + "; ".join(problems))
