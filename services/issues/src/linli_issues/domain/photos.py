"""Photos residents attach: JPEG, PNG or HEIC/HEIF (iPhones), recognised by their content, never by
name or header. What is kept is re-encoded (adapters/images.py): JPEG and HEIC as JPEG, PNG as PNG,
with no metadata, plus a JPEG thumbnail."""

from __future__ import annotations

from dataclasses import dataclass

from linli_kit.errors import Invalid, Text

MAX_PHOTO_BYTES = 5 * 1024 * 1024
# Decoded size refused beyond this (a small file can unpack to gigabytes: a decompression bomb).
MAX_PIXELS = 60_000_000
THUMBNAIL_SIDE = 320  # px, the longer side of a thumbnail
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ISO base media "ftyp" brands of HEIF still images (HEVC-coded: iPhones since iOS 11).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}


@dataclass(frozen=True)
class PhotoKind:
    content_type: str  # as sent (HEIC is stored as JPEG)
    label: str  # for messages


PNG = PhotoKind("image/png", "PNG")
JPEG = PhotoKind("image/jpeg", "JPEG")
HEIF = PhotoKind("image/heif", "HEIC/HEIF")


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to store: re-encoded without metadata, and its thumbnail (JPEG)."""

    content_type: str
    content: bytes
    width: int
    height: int
    thumbnail: bytes


def check_size(content: bytes, *, max_bytes: int = MAX_PHOTO_BYTES) -> None:
    if not content:
        raise Invalid("empty photo", fields={"photo": ["the file is empty"]})
    if len(content) > max_bytes:
        megabytes = f"{max_bytes / (1024 * 1024):g}"
        raise Invalid("photo too large", fields={"photo": [Text("larger than {megabytes} MB", megabytes=megabytes)]})


def photo_kind(content: bytes) -> PhotoKind:
    """Which of the accepted formats the bytes claim to be, or Invalid naming the `photo` field."""
    if content.startswith(PNG_SIGNATURE):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content[4:8] == b"ftyp" and content[8:12] in HEIF_BRANDS:
        return HEIF
    raise Invalid("not a photo", fields={"photo": ["only JPEG, PNG and HEIC/HEIF images are accepted"]})


def thumbnail_box(side: int = THUMBNAIL_SIDE) -> tuple[int, int]:
    return side, side
