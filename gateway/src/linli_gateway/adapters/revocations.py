"""Which access tokens are revoked, as this process knows it: those logged out one by one, and every
token of an account issued before its sessions ended (disabled, password reset, logged out
everywhere).

Checking the database on every proxied request cost more than the rest of the hop together. Both
lists are small (access tokens live minutes, and only the accounts whose sessions ended within an
access token's lifetime are kept), so each process keeps a copy and reloads it at most once a
second: a revocation takes effect at once in the process that made it and within a second in every
other worker and gateway process.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from linli_gateway.adapters.tables import revoked_access_tokens, users
from linli_kit.db import Database


class RevokedTokens:
    def __init__(
        self, database: Database, refresh_seconds: float = 1.0, token_lifetime: timedelta = timedelta(hours=1)
    ) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        # Sessions that ended longer ago than the longest token lives need no remembering.
        self._lifetime = token_lifetime + timedelta(minutes=1)
        self._lock = threading.Lock()
        self._jtis: frozenset[str] = frozenset()
        self._not_before: dict[str, int] = {}  # account -> milliseconds since the epoch
        self._loaded_at = float("-inf")

    def __contains__(self, jti: str) -> bool:
        self._fresh()
        return jti in self._jtis

    def add(self, jti: str) -> None:
        with self._lock:
            self._jtis = self._jtis | {jti}

    def session_ended(self, user_id: str, issued_ms: object) -> bool:
        """Was a token of `user_id` issued (`iat_ms`) before the account's sessions ended? A token
        that does not say when it was issued counts as before."""
        self._fresh()
        ended = self._not_before.get(user_id)
        if ended is None:
            return False
        return not isinstance(issued_ms, int) or issued_ms < ended

    def end_sessions(self, user_id: str, when: datetime) -> None:
        with self._lock:
            self._not_before = {**self._not_before, user_id: _ms(when)}

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self._refresh_seconds:
            self._reload()

    def _reload(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at <= self._refresh_seconds:
                return  # another thread just did
            now = datetime.now(UTC)
            with self._database.session() as session:
                table = revoked_access_tokens
                self._jtis = frozenset(session.scalars(select(table.c.jti).where(table.c.expires_at > now)))
                ended = session.execute(
                    select(users.c.id, users.c.tokens_not_before).where(
                        users.c.tokens_not_before > now - self._lifetime
                    )
                )
                self._not_before = {user_id: _ms(when) for user_id, when in ended}
            self._loaded_at = time.monotonic()


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
