"""Who is signed in, and the tokens that prove it, kept on the server only.

The browser holds one httpOnly cookie: the server-side session's id. The session holds a random
`vault key`; the access and refresh tokens live in the token vault under that key (the session
store's backend: files under LINLI_DATA_DIR, or Redis). Tokens are kept apart from the session so
that two requests of one person at once (a page and an htmx update) cannot write an old pair back
over a refreshed one: the gateway rotates refresh tokens and treats a reused one as stolen, which
would sign the person out.

Refreshing: an access token that expires within a minute is traded for a new pair before the call,
under a lock per vault key (a file lock shared by the gunicorn workers, or a Redis lock), re-reading
the vault inside the lock so that only the first of two racing requests refreshes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt
from cachelib import FileSystemCache
from flask import current_app, g, redirect, request, session, url_for
from linli_web.gateway_client import ApiError, ApiResponse, GatewayClient
from linli_web.i18n import api_locale

REFRESH_MARGIN_SECONDS = 60
# The gateway's refresh tokens live 30 days; a vault entry need not outlive them.
VAULT_TTL_SECONDS = 31 * 24 * 3600


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_at: float

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> TokenPair:
        # The token's own `exp` is the truth; expires_in is the fallback.
        try:
            exp = float(jwt.decode(body["access_token"], options={"verify_signature": False})["exp"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            exp = time.time() + float(body.get("expires_in") or 300)
        return cls(body["access_token"], body["refresh_token"], exp)

    def fresh(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.access_expires_at - REFRESH_MARGIN_SECONDS


class TokenVault:
    """Token pairs by vault key, in files (one per key, written atomically) or Redis."""

    def __init__(self, data_dir: Path, redis_client: Any = None) -> None:
        self.redis = redis_client
        self.lock_dir = data_dir / "web-locks"
        if redis_client is None:
            self.cache = FileSystemCache(str(data_dir / "web-tokens"), threshold=0, mode=0o600)
            self.lock_dir.mkdir(parents=True, exist_ok=True)

    def _name(self, key: str) -> str:
        return "linli-web:tokens:" + hashlib.sha256(key.encode()).hexdigest()

    def get(self, key: str) -> TokenPair | None:
        if self.redis is not None:
            raw = self.redis.hgetall(self._name(key))
            if not raw:
                return None
            raw = {k.decode(): v.decode() for k, v in raw.items()}
            return TokenPair(raw["access_token"], raw["refresh_token"], float(raw["access_expires_at"]))
        value = self.cache.get(self._name(key))
        return TokenPair(**value) if value else None

    def put(self, key: str, pair: TokenPair) -> None:
        values = {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "access_expires_at": pair.access_expires_at,
        }
        if self.redis is not None:
            name = self._name(key)
            with self.redis.pipeline() as pipe:
                pipe.hset(name, mapping={k: str(v) for k, v in values.items()})
                pipe.expire(name, VAULT_TTL_SECONDS)
                pipe.execute()
        else:
            self.cache.set(self._name(key), values, timeout=VAULT_TTL_SECONDS)

    def delete(self, key: str) -> None:
        if self.redis is not None:
            self.redis.delete(self._name(key))
        else:
            self.cache.delete(self._name(key))

    def remember(self, key: str, value: str, ttl: int = 24 * 3600) -> None:
        """A small fact for a while (e.g. which issue a report draft became), shared by the workers."""
        if self.redis is not None:
            self.redis.set(self._name("memo:" + key), value, ex=ttl)
        else:
            self.cache.set(self._name("memo:" + key), value, timeout=ttl)

    def recall(self, key: str) -> str | None:
        if self.redis is not None:
            found = self.redis.get(self._name("memo:" + key))
            return found.decode() if found else None
        return self.cache.get(self._name("memo:" + key))

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Held while refreshing: by one request of one person at a time, across processes."""
        if self.redis is not None:
            with self.redis.lock(self._name(key) + ":lock", timeout=30, blocking_timeout=30):
                yield
            return
        path = self.lock_dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            path.unlink()


class SignedOut(Exception):
    """The person's tokens are gone or no longer accepted: they must sign in again."""


def _gateway() -> GatewayClient:
    return current_app.extensions["linli_web.gateway"]


def _vault() -> TokenVault:
    return current_app.extensions["linli_web.vault"]


def _request_id() -> str | None:
    return getattr(g, "request_id", None)


CLIENT_HEADER = "X-Linli-Client"


def client_headers() -> dict[str, str]:
    """Who this page is for: the reader's language (so the API's messages and labels read like the
    page), and, when the gateway passed the page request on, the person's address as it sealed it,
    handed back so the gateway counts its per-client limits per person and not per web process."""
    sealed = request.headers.get(CLIENT_HEADER)
    # The reader's language, for what the API words (computed here: `gather` calls from other threads).
    headers = {"Accept-Language": api_locale()}
    return headers | {CLIENT_HEADER: sealed} if sealed else headers


def sign_in(answer: dict[str, Any]) -> None:
    """Keep a login's (or refresh's) answer: tokens in the vault, who it is in the session."""
    old = session.get("vault_key")
    if old:
        _vault().delete(old)
    # A new session id at sign-in, so a session id planted before it is worth nothing (fixation).
    keep = {k: session[k] for k in ("locale",) if k in session}
    session.clear()
    session["_"] = 1  # regenerate() only renews a session that holds something
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    session.update(keep)
    key = secrets.token_urlsafe(32)
    _vault().put(key, TokenPair.from_api(answer))
    session["vault_key"] = key
    session["user"] = _user_summary(answer["user"])
    session.permanent = True


def _user_summary(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "display_name": user.get("display_name") or "",
        "role": user.get("role") or "resident",
        "community_ids": list(user.get("community_ids") or []),
        "street_id": user.get("street_id"),
        "locale": user.get("locale") or "zh-CN",
    }


def sign_out() -> None:
    key = session.get("vault_key")
    if key:
        pair = _vault().get(key)
        if pair is not None:
            with contextlib.suppress(ApiError):
                _gateway().request(
                    "POST",
                    "/api/v1/auth/logout",
                    token=pair.access_token,
                    json_body={"refresh_token": pair.refresh_token},
                    request_id=_request_id(),
                )
        _vault().delete(key)
    keep = {k: session[k] for k in ("locale",) if k in session}
    session.clear()
    session.update(keep)


def current_user() -> dict[str, Any] | None:
    return session.get("user") if session.get("vault_key") else None


def access_token() -> str:
    """A valid access token of the signed-in person, refreshed first when it is about to expire."""
    key = session.get("vault_key")
    if not key:
        raise SignedOut()
    vault = _vault()
    pair = vault.get(key)
    if pair is None:
        raise SignedOut()
    if pair.fresh():
        return pair.access_token
    return _refresh(key, stale=pair.access_token)


def _refresh(key: str, *, stale: str) -> str:
    vault = _vault()
    with vault.lock(key):
        pair = vault.get(key)
        if pair is None:
            raise SignedOut()
        if pair.access_token != stale and pair.fresh():
            return pair.access_token  # another request refreshed while this one waited
        try:
            answer = (
                _gateway()
                .request(
                    "POST",
                    "/api/v1/auth/refresh",
                    json_body={"refresh_token": pair.refresh_token},
                    request_id=_request_id(),
                )
                .data
            )
        except ApiError as error:
            if error.status in (400, 401, 403, 422):
                vault.delete(key)
                raise SignedOut() from error
            raise
        new = TokenPair.from_api(answer)
        vault.put(key, new)
        session["user"] = _user_summary(answer["user"])
        return new.access_token


class Api:
    """The signed-in person's calls to the gateway, as `g.api` on every request. `waited` is the time
    the request spent waiting for the gateway (reported in the Server-Timing header)."""

    def __init__(self, gateway: GatewayClient) -> None:
        self.gateway = gateway
        self.waited = 0.0

    def call(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        started = time.perf_counter()
        try:
            return self._call(method, path, **kwargs)
        finally:
            self.waited += time.perf_counter() - started

    def _call(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        token = access_token()
        try:
            return self.gateway.request(
                method, path, token=token, request_id=_request_id(), headers=client_headers(), **kwargs
            )
        except ApiError as error:
            if error.status != 401:
                raise
            # Revoked or expired in flight: nothing happened on the server; refresh once and retry.
            fresh = _refresh(session["vault_key"], stale=token)
            try:
                return self.gateway.request(
                    method, path, token=fresh, request_id=_request_id(), headers=client_headers(), **kwargs
                )
            except ApiError as again:
                if again.status == 401:
                    _vault().delete(session["vault_key"])
                    raise SignedOut() from again
                raise

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params).data

    def page(self, path: str, **params: Any) -> tuple[list[Any], int]:
        """A list and its total (from X-Pagination)."""
        answer = self.call("GET", path, params=params)
        items = answer.data or []
        return items, answer.total if answer.total is not None else len(items)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json_body=body or {}).data

    def put(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("PUT", path, json_body=body or {}).data

    def patch(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("PATCH", path, json_body=body or {}).data

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path).data

    def gather(self, *calls: Callable[[Api], Any]) -> list[Any]:
        """Independent reads at once; each result is a value or the ApiError it raised. The token is
        made fresh first, here, in the request's context (the calls run on other threads)."""
        token = access_token()
        request_id = _request_id()
        headers = client_headers()
        gateway = self.gateway

        class _Bound:
            def get(self, path: str, **params: Any) -> Any:
                return gateway.request(
                    "GET", path, token=token, params=params, request_id=request_id, headers=headers
                ).data

            def page(self, path: str, **params: Any) -> tuple[list[Any], int]:
                answer = gateway.request(
                    "GET", path, token=token, params=params, request_id=request_id, headers=headers
                )
                items = answer.data or []
                return items, answer.total if answer.total is not None else len(items)

        bound = _Bound()
        started = time.perf_counter()
        results = gateway.gather([lambda c=c: c(bound) for c in calls])
        self.waited += time.perf_counter() - started
        if any(isinstance(r, ApiError) and r.status == 401 for r in results):
            raise SignedOut()
        return results


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site may follow a sign-in (no open redirect)."""
    if not target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped
