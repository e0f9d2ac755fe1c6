"""The service's own settings (providers, limits), read from the environment beside the kit's.

Provider endpoints default to the real providers' URLs; tests point them at loopback servers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from linli_kit.config import ConfigError


@dataclass(frozen=True)
class Limits:
    # Alibaba Cloud refuses more than 1 message a minute, 5 an hour, 10 a day to one number for the
    # same signature by default; stay at or below them and defer, rather than be refused.
    per_phone_minute: int = 1
    per_phone_hour: int = 5
    per_phone_day: int = 10
    provider_per_second: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationConfig:
    sms_providers: tuple[str, ...] = ("log",)
    push_providers: tuple[str, ...] = ("log",)
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    max_attempts: int = 6
    retry_first_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    lease_seconds: float = 120.0
    unknown_check_delay_seconds: float = 20.0
    claim_batch: int = 1000
    concurrency: int = 16  # provider calls in flight at once
    delivery_interval_seconds: float = 0.2
    reminder_interval_seconds: float = 15.0
    push_receipt_interval_seconds: float = 300.0  # how often JPush's Report API is asked

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.env.get(name, default)

    def require(self, name: str) -> str:
        value = self.env.get(name)
        if not value:
            raise ConfigError(f"{name} must be set for the providers configured")
        return value


def load_config(environ: dict[str, str] | None = None) -> NotificationConfig:
    env = dict(os.environ if environ is None else environ)

    def providers(name: str, allowed: set[str]) -> tuple[str, ...]:
        chosen = tuple(p.strip() for p in env.get(name, "log").split(",") if p.strip())
        unknown = [p for p in chosen if p not in allowed]
        if unknown or not chosen:
            raise ConfigError(f"{name}: unknown providers {unknown} (choose from {sorted(allowed)})")
        return chosen

    def number(name: str, default: float) -> float:
        try:
            return float(env.get(name, default))
        except ValueError as exc:
            raise ConfigError(f"{name}: not a number") from exc

    rates = {}
    for provider in ("aliyun", "twilio", "jpush", "fcm", "log"):
        key = f"{provider.upper()}_RATE_PER_SECOND"
        if key in env:
            rates[provider] = number(key, 0)
    defaults = {"aliyun": 500.0, "twilio": 50.0, "jpush": 500.0, "fcm": 500.0}
    return NotificationConfig(
        sms_providers=providers("SMS_PROVIDERS", {"log", "aliyun", "twilio"}),
        push_providers=providers("PUSH_PROVIDERS", {"log", "jpush", "fcm"}),
        env=env,
        limits=Limits(
            per_phone_minute=int(number("SMS_PER_PHONE_PER_MINUTE", 1)),
            per_phone_hour=int(number("SMS_PER_PHONE_PER_HOUR", 5)),
            per_phone_day=int(number("SMS_PER_PHONE_PER_DAY", 10)),
            provider_per_second={**defaults, **rates},
        ),
        max_attempts=int(number("DELIVERY_MAX_ATTEMPTS", 6)),
        retry_first_seconds=number("DELIVERY_RETRY_FIRST_SECONDS", 30),
        retry_cap_seconds=number("DELIVERY_RETRY_CAP_SECONDS", 3600),
        lease_seconds=number("DELIVERY_LEASE_SECONDS", 120),
        unknown_check_delay_seconds=number("DELIVERY_UNKNOWN_CHECK_SECONDS", 20),
        claim_batch=int(number("DELIVERY_CLAIM_BATCH", 1000)),
        concurrency=max(1, int(number("DELIVERY_CONCURRENCY", 16))),
        delivery_interval_seconds=number("DELIVERY_INTERVAL_SECONDS", 0.2),
        reminder_interval_seconds=number("REMINDER_INTERVAL_SECONDS", 15),
        push_receipt_interval_seconds=number("PUSH_RECEIPT_INTERVAL_SECONDS", 300),
    )


def build_providers(config: NotificationConfig) -> dict[str, object]:
    """Provider instances by name, for every provider named in the channel lists."""
    from linli_notifications.adapters.providers.aliyun import DEFAULT_ENDPOINT as ALIYUN_URL
    from linli_notifications.adapters.providers.aliyun import AliyunSms
    from linli_notifications.adapters.providers.fcm import DEFAULT_BASE_URL as FCM_URL
    from linli_notifications.adapters.providers.fcm import DEFAULT_TOKEN_URI, FirebaseMessaging
    from linli_notifications.adapters.providers.jpush import DEFAULT_ENDPOINT as JPUSH_URL
    from linli_notifications.adapters.providers.jpush import DEFAULT_REPORT_ENDPOINT as JPUSH_REPORT_URL
    from linli_notifications.adapters.providers.jpush import JPush
    from linli_notifications.adapters.providers.log import LogProvider
    from linli_notifications.adapters.providers.twilio import DEFAULT_BASE_URL as TWILIO_URL
    from linli_notifications.adapters.providers.twilio import TwilioSms
    from linli_notifications.domain.model import Channel

    built: dict[str, object] = {}
    if "log" in config.sms_providers:
        # Only where no SMS can really go out (the local platform) are one-time codes shown.
        built["log:sms"] = LogProvider(Channel.SMS, show_codes=config.sms_providers == ("log",))
    if "log" in config.push_providers:
        built["log:push"] = LogProvider(Channel.PUSH)
    if "aliyun" in config.sms_providers:
        built["aliyun"] = AliyunSms(
            config.require("ALIYUN_ACCESS_KEY_ID"),
            config.require("ALIYUN_ACCESS_KEY_SECRET"),
            config.get("ALIYUN_SMS_SIGN_NAME", "邻里"),
            config.get("ALIYUN_SMS_ENDPOINT", ALIYUN_URL),
        )
    if "twilio" in config.sms_providers:
        built["twilio"] = TwilioSms(
            config.require("TWILIO_ACCOUNT_SID"),
            config.require("TWILIO_AUTH_TOKEN"),
            config.require("TWILIO_FROM_NUMBER"),
            config.get("TWILIO_BASE_URL", TWILIO_URL),
            config.get("TWILIO_STATUS_CALLBACK_URL"),
        )
    if "jpush" in config.push_providers:
        built["jpush"] = JPush(
            config.require("JPUSH_APP_KEY"),
            config.require("JPUSH_MASTER_SECRET"),
            config.get("JPUSH_ENDPOINT", JPUSH_URL),
            apns_production=config.get("JPUSH_APNS_PRODUCTION", "true") == "true",
            report_endpoint=config.get("JPUSH_REPORT_ENDPOINT", JPUSH_REPORT_URL),
        )
    if "fcm" in config.push_providers:
        account = json.loads(config.get("FCM_SERVICE_ACCOUNT_JSON") or "{}")
        built["fcm"] = FirebaseMessaging(
            config.get("FCM_PROJECT_ID") or account.get("project_id") or config.require("FCM_PROJECT_ID"),
            config.get("FCM_CLIENT_EMAIL") or account.get("client_email") or config.require("FCM_CLIENT_EMAIL"),
            config.get("FCM_PRIVATE_KEY") or account.get("private_key") or config.require("FCM_PRIVATE_KEY"),
            config.get("FCM_TOKEN_URI") or account.get("token_uri") or DEFAULT_TOKEN_URI,
            config.get("FCM_BASE_URL", FCM_URL),
        )
    return built
