"""The tokens the gateway hands the services: the caller's identity, for one service only.

A person's access token names the gateway as its audience; no service accepts it. For each request
it forwards, the gateway (having checked the caller's token, revocations included) signs a token
with the same identity and scope for that one service (`aud`), living at most a few minutes and no
longer than the caller's own. Signing costs about a millisecond, so each is kept and reused for the
same session and service until shortly before it expires.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from linli_kit.auth import Principal, TokenSigner

SERVICE_TOKEN_TTL = timedelta(minutes=5)
REUSE_MARGIN = timedelta(seconds=30)
MINIMUM_TTL = timedelta(seconds=15)
KEPT = 10_000
# Claims that describe the caller's own token, not their identity: not carried over.
_OWN_CLAIMS = frozenset({"iat_ms"})


class ServiceTokens:
    def __init__(self, signer: TokenSigner, ttl: timedelta = SERVICE_TOKEN_TTL) -> None:
        self._signer = signer
        self._ttl = ttl
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], tuple[str, datetime]] = OrderedDict()

    def for_service(self, principal: Principal, service: str, expires_at: datetime, session: str) -> str:
        """A token for `service` standing for `principal`, expiring by `expires_at` at the latest.
        `session`: what identifies the caller's credential (its token id, or API key id)."""
        now = datetime.now(UTC)
        key = (session, service)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[1] - REUSE_MARGIN > now:
                return kept[0]
        # Never less than a few seconds: the caller's token may be a moment past its expiry (leeway).
        lifetime = max(min(expires_at - now, self._ttl), MINIMUM_TTL)
        token = self._signer.sign(
            user_id=principal.user_id,
            role=principal.role,
            street_id=principal.street_id,
            community_ids=principal.community_ids,
            organisation_id=principal.organisation_id,
            ttl=lifetime,
            extra={k: v for k, v in principal.extra.items() if k not in _OWN_CLAIMS},
            audience=service,
        )
        with self._lock:
            self._kept[key] = (token, now + lifetime)
            self._kept.move_to_end(key)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return token
