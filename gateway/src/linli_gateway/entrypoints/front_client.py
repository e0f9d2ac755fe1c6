"""Who is behind the web front's calls: the address of the person whose page the front is making.

Every call the front makes comes from the front's own address, so a limit counted by address would
count the whole city as one caller. Believing an `X-Forwarded-For` from the front would let anyone
who reaches the gateway claim any address. Instead the gateway itself tells the front who asked:
when it passes a page request to the front it adds `X-Linli-Client`, the caller's address sealed
with a key only gateway processes hold (derived from the token signing key) and valid for a few
minutes; the front hands that value back on the calls it makes for that page, and the gateway counts
them against the sealed address. A browser never sees the value, and one it makes up does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Linli-Client"
VALID_SECONDS = 600


class ClientSeal:
    def __init__(self, signing_key_pem: str, *, valid_seconds: int = VALID_SECONDS) -> None:
        self._key = hashlib.sha256(b"linli front client address\0" + signing_key_pem.encode()).digest()
        self._valid = valid_seconds

    def seal(self, address: str, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self._valid)
        body = f"{address}|{expires}"
        return f"{body}|{self._mac(body)}"

    def open(self, value: str, *, now: float | None = None) -> str | None:
        """The sealed address, or None when the value is not one this gateway sealed or has expired."""
        body, sep, mac = value.rpartition("|")
        address, sep_expiry, expiry = body.rpartition("|")
        if not (sep and sep_expiry) or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            expires = int(expiry)
        except ValueError:
            return None
        if expires < (time.time() if now is None else now):
            return None
        return address or None

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
