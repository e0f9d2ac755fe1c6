"""Photos from phones: any image Pillow can read, HEIC/HEIF from iPhones included (pillow-heif), is
turned upright (EXIF), reduced to at most 1600 px and saved as JPEG, which the issues API accepts
(JPEG or PNG, 5 MB at most). Location and other EXIF data are dropped: a photo of a hazard need not
tell where someone lives."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC support; without the wheel, iPhone photos are refused with a clear message
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - pillow-heif is a dependency
    HEIF = False

MAX_SIDE = 1600
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding


class PhotoError(ValueError):
    pass


def to_jpeg(data: bytes) -> bytes:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise PhotoError("too large")
        image = ImageOps.exif_transpose(image)
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PhotoError("not an image") from exc
    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


class Uploads:
    """Resized photos waiting for their report to be sent (files under LINLI_DATA_DIR/web-uploads)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def keep(self, jpeg: bytes) -> str:
        name = secrets.token_urlsafe(16) + ".jpg"
        (self.root / name).write_bytes(jpeg)
        return name

    def path(self, name: str) -> Path | None:
        if not name or "/" in name or name.startswith("."):
            return None
        path = self.root / name
        return path if path.is_file() else None

    def drop(self, name: str) -> None:
        path = self.path(name)
        if path is not None:
            path.unlink(missing_ok=True)
