"""Which access tokens were revoked by logout, as this process knows it.

Checking the database on every proxied request cost more than the rest of the hop together. The
list of revoked, not yet expired tokens is small (access tokens live minutes), so each process
keeps a copy and reloads it at most once a second: a logout takes effect at once in the process
that served it and within a second everywhere else.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select

from linli_gateway.adapters.tables import revoked_access_tokens
from linli_kit.db import Database


class RevokedTokens:
    def __init__(self, database: Database, refresh_seconds: float = 1.0) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._jtis: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def __contains__(self, jti: str) -> bool:
        if time.monotonic() - self._loaded_at > self._refresh_seconds:
            self._reload()
        return jti in self._jtis

    def add(self, jti: str) -> None:
        with self._lock:
            self._jtis = self._jtis | {jti}

    def _reload(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at <= self._refresh_seconds:
                return  # another thread just did
            table = revoked_access_tokens
            with self._database.session() as session:
                rows = session.scalars(select(table.c.jti).where(table.c.expires_at > datetime.now(UTC)))
                self._jtis = frozenset(rows)
            self._loaded_at = time.monotonic()
