"""Photos decoded and re-encoded with Pillow (HEIC/HEIF from iPhones through pillow-heif).

What is stored is never the bytes a phone sent: the image is decoded, turned upright by its EXIF
orientation and encoded afresh without any metadata, so GPS coordinates, the camera's serial
number, the owner's name and every other EXIF, XMP or IPTC field are gone from what is kept and
served. A thumbnail is made at the same time.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from linli_issues.domain.photos import MAX_PIXELS, PreparedPhoto, check_size, photo_kind, thumbnail_box
from linli_kit.errors import Invalid, Text

register_heif_opener()

# Pillow's own decompression-bomb limit is a warning below twice the limit: errors here instead.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _refused(why: Text) -> Invalid:
    return Invalid("photo refused: {why}", fields={"photo": [why]}, why=why)


def _flattened(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency painted on white (a screenshot's clear corners stay light)."""
    if image.mode in ("RGB", "L"):
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGB", image.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _encoded(image: Image.Image, content_type: str) -> bytes:
    out = io.BytesIO()
    if content_type == "image/png":
        # No `pnginfo`, no `exif`: Pillow writes only the pixels.
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def prepare_photo(content: bytes, *, max_bytes: int, thumbnail_side: int) -> PreparedPhoto:
    """The photo to store (re-encoded, metadata gone) and its thumbnail, or Invalid naming `photo`."""
    check_size(content, max_bytes=max_bytes)
    kind = photo_kind(content)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
            if image.width * image.height > MAX_PIXELS:
                raise _refused(Text("more than {millions} million pixels", millions=MAX_PIXELS // 1_000_000))
            image.load()
            image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refused(Text("more than {millions} million pixels", millions=MAX_PIXELS // 1_000_000)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # A HEIC or JPEG cut short, a PNG with a broken chunk: recognised, but not readable.
        raise _refused(Text("not a readable {kind} image", kind=kind.label)) from exc
    content_type = "image/png" if kind.content_type == "image/png" else "image/jpeg"
    if content_type == "image/png":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
    else:
        image = _flattened(image)
    stored = _encoded(image, content_type)
    small = _flattened(image.copy())
    small.thumbnail(thumbnail_box(thumbnail_side))
    return PreparedPhoto(
        content_type=content_type,
        content=stored,
        width=image.width,
        height=image.height,
        thumbnail=_encoded(small, "image/jpeg"),
    )
