"""Photos residents attach: JPEG or PNG, recognised by their content, never by name or header."""

from __future__ import annotations

import struct

from linli_kit.errors import Invalid, Text

MAX_PHOTO_BYTES = 5 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def photo_type(content: bytes, *, max_bytes: int = MAX_PHOTO_BYTES) -> str:
    """The MIME type of a valid photo, or Invalid naming the `photo` field."""
    if not content:
        raise Invalid("empty photo", fields={"photo": ["the file is empty"]})
    if len(content) > max_bytes:
        raise Invalid(
            "photo too large",
            fields={"photo": [Text("larger than {megabytes} MB", megabytes=max_bytes // (1024 * 1024))]},
        )
    if content.startswith(PNG_SIGNATURE):
        # The first chunk must be a 13-byte IHDR with non-zero dimensions.
        if len(content) >= 33 and content[12:16] == b"IHDR" and struct.unpack(">I", content[8:12])[0] == 13:
            width, height = struct.unpack(">II", content[16:24])
            if width and height:
                return "image/png"
        raise Invalid("broken PNG", fields={"photo": ["not a readable PNG image"]})
    if content.startswith(b"\xff\xd8\xff"):
        # A JPEG ends with the end-of-image marker (some cameras pad a few bytes after it).
        if b"\xff\xd9" in content[-64:]:
            return "image/jpeg"
        raise Invalid("broken JPEG", fields={"photo": ["not a complete JPEG image"]})
    raise Invalid("not a photo", fields={"photo": ["only JPEG and PNG images are accepted"]})


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}
