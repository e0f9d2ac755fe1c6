"""The service's own settings (providers, limits), read from the environment beside the kit's.

Provider endpoints default to the real providers' URLs; tests point them at loopback servers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from linli_kit.config import ConfigError

if TYPE_CHECKING:
    from linli_notifications.adapters.providers.webpush import VapidKeys


@dataclass(frozen=True)
class Limits:
    # Alibaba Cloud refuses more than 1 message a minute, 5 an hour, 10 a day to one number for the
    # same signature by default; stay at or below them and defer, rather than be refused.
    per_phone_minute: int = 1
    per_phone_hour: int = 5
    per_phone_day: int = 10
    provider_per_second: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Retention:
    """How long personal data of this service is kept (README, "What is kept, and how long")."""

    # A delivery's phone number (and its attempts' provider messages, which may quote it): after
    # this, the number is cleared and only its mask (138****8000) kept. At least 2 days: the
    # per-number caps count the last day, and SMS receipts come within 72 hours.
    sms_address_days: float = 30.0
    receipts_days: float = 30.0  # provider receipts (Alibaba Cloud's carry the phone number)
    read_notifications_days: float = 180.0  # inbox entries the person has read
    interval_seconds: float = 3600.0  # how often the worker prunes
    batch: int = 500  # rows per (short) transaction


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
    retention: Retention = field(default_factory=Retention)
    # Web Push: the push services' hosts a subscription's endpoint may be on (host or `.suffix`).
    webpush_endpoint_hosts: tuple[str, ...] = ()
    webpush_ttl_seconds: int = 86400

    @property
    def sms_body_limit(self) -> int | None:
        """The most characters of free text one SMS template variable may carry, when a provider
        of pre-approved templates (Alibaba Cloud) may send the SMS; None when any length goes."""
        from linli_notifications.domain.templates import MAX_PARAM_LENGTH

        return MAX_PARAM_LENGTH if "aliyun" in self.sms_providers else None

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

    def at_least(name: str, default: float, minimum: float) -> float:
        value = number(name, default)
        if value < minimum:
            raise ConfigError(f"{name}: at least {minimum:g}")
        return value

    rates = {}
    for provider in ("aliyun", "twilio", "jpush", "fcm", "webpush", "log"):
        key = f"{provider.upper()}_RATE_PER_SECOND"
        if key in env:
            rates[provider] = number(key, 0)
    defaults = {"aliyun": 500.0, "twilio": 50.0, "jpush": 500.0, "fcm": 500.0, "webpush": 500.0}
    from linli_notifications.adapters.providers.webpush import DEFAULT_ENDPOINT_HOSTS

    hosts = env.get("WEBPUSH_ENDPOINT_HOSTS")
    endpoint_hosts = (
        tuple(h.strip().lower() for h in hosts.split(",") if h.strip()) if hosts is not None else DEFAULT_ENDPOINT_HOSTS
    )
    return NotificationConfig(
        sms_providers=providers("SMS_PROVIDERS", {"log", "aliyun", "twilio"}),
        push_providers=providers("PUSH_PROVIDERS", {"log", "jpush", "fcm", "webpush"}),
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
        retention=Retention(
            sms_address_days=at_least("RETENTION_SMS_ADDRESS_DAYS", 30, 2),
            receipts_days=at_least("RETENTION_RECEIPTS_DAYS", 30, 2),
            read_notifications_days=at_least("RETENTION_READ_NOTIFICATIONS_DAYS", 180, 1),
            interval_seconds=at_least("RETENTION_INTERVAL_SECONDS", 3600, 1),
            batch=int(at_least("RETENTION_BATCH", 500, 1)),
        ),
        webpush_endpoint_hosts=endpoint_hosts,
        webpush_ttl_seconds=int(at_least("WEBPUSH_TTL_SECONDS", 86400, 0)),
    )


_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")


def load_vapid(config: NotificationConfig) -> VapidKeys:
    """The VAPID key pair and subject of the `webpush` provider, checked: `VAPID_PRIVATE_KEY` (PEM,
    or the raw 32-octet key in base64url as `npx web-push generate-vapid-keys` prints it) or
    `VAPID_PRIVATE_KEY_FILE` (a file holding either); `VAPID_PUBLIC_KEY`, when given, must be that
    key's public half (base64url); `VAPID_SUBJECT` a `mailto:` address or an `https:` URL."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from linli_notifications.adapters.providers.webpush import VapidKeys, b64url_decode

    text, path = config.get("VAPID_PRIVATE_KEY"), config.get("VAPID_PRIVATE_KEY_FILE")
    if text and path:
        raise ConfigError("VAPID_PRIVATE_KEY and VAPID_PRIVATE_KEY_FILE: set one, not both")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"VAPID_PRIVATE_KEY_FILE: cannot read {path} ({exc.strerror})") from exc
    if not text or not text.strip():
        raise ConfigError(
            "VAPID_PRIVATE_KEY or VAPID_PRIVATE_KEY_FILE must be set for the webpush provider "
            "(`linli-notifications vapid-keys` makes a key pair)"
        )
    text = text.strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("not 32 octets")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError) as exc:
        raise ConfigError("VAPID private key: not a P-256 key (PEM, or 32 octets in base64url)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("VAPID private key: must be an elliptic-curve key on P-256")
    subject = (config.get("VAPID_SUBJECT") or "").strip()
    if not _SUBJECT.match(subject):
        raise ConfigError(
            "VAPID_SUBJECT must be a mailto: address or an https: URL where push services can reach "
            "the platform's operator"
        )
    keys = VapidKeys(key, subject)
    public = (config.get("VAPID_PUBLIC_KEY") or "").strip()
    if public and public.rstrip("=") != keys.public_key:
        raise ConfigError("VAPID_PUBLIC_KEY is not the public key of the VAPID private key")
    return keys


ALIYUN_BASE_LOCALE = "zh-CN"  # its template serves a locale that has none of its own
_TEMPLATE_CODE = re.compile(r"^SMS_[0-9]+$")


@dataclass(frozen=True)
class AliyunTemplates:
    """What an Alibaba Cloud account had approved: a template code per kind and locale, a
    signature name per locale (README: "Alibaba Cloud SMS")."""

    codes: dict[str, dict[str, str]]  # kind -> locale -> template code
    sign_names: dict[str, str]  # locale -> signature; "" for the default

    def code(self, kind: str, locale: str) -> str | None:
        by_locale = self.codes.get(kind) or {}
        return by_locale.get(locale) or by_locale.get(ALIYUN_BASE_LOCALE)

    def sign_name(self, locale: str) -> str:
        return self.sign_names.get(locale) or self.sign_names[""]


def _env_suffix(locale: str) -> str:
    return locale.upper().replace("-", "_")


def load_aliyun_templates(config: NotificationConfig) -> AliyunTemplates:
    """`ALIYUN_SMS_TEMPLATES` (JSON, or the path of a JSON file) and `ALIYUN_SMS_SIGN_NAME[_<LOCALE>]`,
    checked: every kind of message needs a template for zh-CN (the one other locales fall back
    to); an unknown kind or locale, or a code that is not an Alibaba Cloud code, is refused."""
    from linli_notifications.domain.templates import LOCALES, TEMPLATES

    raw = config.get("ALIYUN_SMS_TEMPLATES") or ""
    if not raw.strip():
        raise ConfigError(
            "ALIYUN_SMS_TEMPLATES must be set for the aliyun SMS provider: the template code approved for "
            f"each kind of message (missing: {', '.join(sorted(TEMPLATES))})"
        )
    text = raw
    if not raw.lstrip().startswith("{"):
        try:
            text = Path(raw.strip()).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"ALIYUN_SMS_TEMPLATES: cannot read {raw.strip()} ({exc.strerror})") from exc
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"ALIYUN_SMS_TEMPLATES: not JSON ({exc})") from exc
    if not isinstance(given, dict):
        raise ConfigError('ALIYUN_SMS_TEMPLATES: expected {"<kind>": "SMS_..." or {"<locale>": "SMS_..."}}')
    codes: dict[str, dict[str, str]] = {}
    problems = []
    for kind, value in given.items():
        if kind not in TEMPLATES:
            problems.append(f"unknown kind {kind!r}")
            continue
        by_locale = value if isinstance(value, dict) else {ALIYUN_BASE_LOCALE: value}
        for locale, code in by_locale.items():
            if locale not in LOCALES:
                problems.append(f"{kind}: unknown locale {locale!r} (choose from {', '.join(LOCALES)})")
            elif not isinstance(code, str) or not _TEMPLATE_CODE.match(code):
                problems.append(f"{kind} ({locale}): {code!r} is not a template code (SMS_ and digits)")
            else:
                codes.setdefault(kind, {})[locale] = code
    missing = sorted(k for k in TEMPLATES if ALIYUN_BASE_LOCALE not in codes.get(k, {}))
    if missing:
        problems.append(f"no {ALIYUN_BASE_LOCALE} template for {', '.join(missing)}")
    if problems:
        raise ConfigError("ALIYUN_SMS_TEMPLATES: " + "; ".join(problems))
    sign_names = {"": config.require("ALIYUN_SMS_SIGN_NAME")}
    for locale in LOCALES:
        name = config.get(f"ALIYUN_SMS_SIGN_NAME_{_env_suffix(locale)}")
        if name:
            sign_names[locale] = name
    return AliyunTemplates(codes, sign_names)


def check_settings(_settings: object = None) -> NotificationConfig:
    """The service's own settings, for `check-config` and the worker's start: providers named in
    SMS_PROVIDERS / PUSH_PROVIDERS must be complete (Alibaba Cloud: a template for every message)."""
    config = load_config()
    build_providers(config)
    return config


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
    from linli_notifications.adapters.providers.webpush import WebPush
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
            load_aliyun_templates(config),
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
    if "webpush" in config.push_providers:
        built["webpush"] = WebPush(load_vapid(config), config.webpush_endpoint_hosts, config.webpush_ttl_seconds)
    return built
