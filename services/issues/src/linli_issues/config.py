"""Settings of the issues service beyond the shared ones, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    photos: PhotoStorageConfig = field(default_factory=lambda: PhotoStorageConfig())


PHOTO_STORAGES = ("local", "s3")


@dataclass(frozen=True)
class PhotoStorageConfig:
    """Where photo files go (PHOTO_STORAGE): `local`, a folder under LINLI_DATA_DIR, or `s3`, a bucket
    of an S3-compatible object store."""

    storage: str = "local"
    max_bytes: int = 5 * 1024 * 1024
    thumbnail_side: int = 320
    s3_bucket: str = ""
    s3_endpoint_url: str | None = None  # None: AWS itself
    s3_access_key_id: str | None = None  # None: boto3's own lookup (instance role, ~/.aws)
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = "photos/"


def load_photo_storage_config() -> PhotoStorageConfig:
    env = os.environ
    storage = env.get("PHOTO_STORAGE", "local").strip().lower() or "local"
    if storage not in PHOTO_STORAGES:
        raise ConfigError(f"PHOTO_STORAGE must be one of {', '.join(PHOTO_STORAGES)}; got {storage!r}")
    try:
        max_mb = float(env.get("PHOTO_MAX_MB", "5"))
        side = int(env.get("PHOTO_THUMBNAIL_PX", "320"))
    except ValueError as exc:
        raise ConfigError(f"PHOTO_MAX_MB must be a number and PHOTO_THUMBNAIL_PX a whole number: {exc}") from exc
    if not (0 < max_mb <= 50 and 32 <= side <= 2048):
        raise ConfigError("PHOTO_MAX_MB must be between 0 and 50 and PHOTO_THUMBNAIL_PX between 32 and 2048")
    endpoint = env.get("PHOTO_S3_ENDPOINT_URL", "").strip() or None
    if endpoint is not None:
        parsed = urlparse(endpoint)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError(f"PHOTO_S3_ENDPOINT_URL must be an http(s) URL, e.g. http://minio:9000; got {endpoint!r}")
    bucket = env.get("PHOTO_S3_BUCKET", "").strip()
    if storage == "s3" and not bucket:
        raise ConfigError("PHOTO_STORAGE=s3 needs PHOTO_S3_BUCKET (the bucket must exist)")
    key_id = env.get("PHOTO_S3_ACCESS_KEY_ID", "").strip() or None
    secret = env.get("PHOTO_S3_SECRET_ACCESS_KEY", "").strip() or None
    if (key_id is None) != (secret is None):
        raise ConfigError("set PHOTO_S3_ACCESS_KEY_ID and PHOTO_S3_SECRET_ACCESS_KEY together (or neither)")
    prefix = env.get("PHOTO_S3_PREFIX", "photos/").strip().lstrip("/")
    return PhotoStorageConfig(
        storage=storage,
        max_bytes=int(max_mb * 1024 * 1024),
        thumbnail_side=side,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
        s3_region=env.get("PHOTO_S3_REGION", "").strip() or "us-east-1",
        s3_prefix=prefix,
    )


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
        auto_close_after=timedelta(days=days),
        deadline_check_seconds=interval,
        open311_public_url=public_url,
        photos=load_photo_storage_config(),
    )
