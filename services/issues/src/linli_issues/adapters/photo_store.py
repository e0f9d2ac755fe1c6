"""Where photo files live: a local folder (the default) or an S3-compatible object store (MinIO,
Ceph, Aliyun OSS, AWS S3), chosen by settings (config.py). The database keeps only the names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from linli_issues.config import PhotoStorageConfig


class PhotoMissing(LookupError):
    """A name the database knows whose file is gone (deleted by hand, a bucket emptied)."""


class PhotoStore(Protocol):
    def put(self, name: str, content: bytes, content_type: str) -> None: ...

    def get(self, name: str) -> bytes:
        """The file's bytes, or PhotoMissing."""
        ...

    def delete(self, name: str) -> None:
        """Gone (already gone is fine)."""
        ...


def _safe(name: str) -> str:
    # Names are made here (ids and fixed suffixes); anything else is a programming error.
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a photo file name: {name!r}")
    return name


class LocalFolderStore:
    """Files in one folder (<data_dir>/photos), written under a temporary name then renamed, so a
    crash never leaves half a file under a real name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, name: str, content: bytes, content_type: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{_safe(name)}.part"
        temporary.write_bytes(content)
        os.replace(temporary, self.folder / name)

    def get(self, name: str) -> bytes:
        try:
            return (self.folder / _safe(name)).read_bytes()
        except FileNotFoundError as exc:
            raise PhotoMissing(name) from exc

    def delete(self, name: str) -> None:
        (self.folder / _safe(name)).unlink(missing_ok=True)


class S3Store:
    """Objects `<prefix><name>` in one bucket of an S3-compatible store (boto3). The bucket is made
    by whoever runs the store; it is not created here (a typo would otherwise make a new one)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str,
        prefix: str = "photos/",
    ) -> None:
        import boto3  # only a deployment that stores photos in S3 needs it loaded
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            # Path-style addressing: MinIO and most self-hosted stores have no per-bucket host names.
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def put(self, name: str, content: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + _safe(name), Body=content, ContentType=content_type
        )

    def get(self, name: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _safe(name))
        except self.client.exceptions.NoSuchKey as exc:
            raise PhotoMissing(name) from exc
        return response["Body"].read()

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _safe(name))


def photo_store_from(config: PhotoStorageConfig, data_dir: Path) -> PhotoStore:
    """The store the settings name (config.load_photo_storage_config)."""
    if config.storage == "s3":
        return S3Store(
            bucket=config.s3_bucket,
            endpoint_url=config.s3_endpoint_url,
            access_key_id=config.s3_access_key_id,
            secret_access_key=config.s3_secret_access_key,
            region=config.s3_region,
            prefix=config.s3_prefix,
        )
    return LocalFolderStore(Path(data_dir) / "photos")
