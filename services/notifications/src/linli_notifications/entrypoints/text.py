"""Text the HTTP layer accepts: PostgreSQL cannot store a NUL character in a text column (the insert
fails, which would be a 500), so an input carrying one is refused with a 422 naming its field."""

from __future__ import annotations

from marshmallow import ValidationError


def no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")
