"""Who a rate limit counts, from verified identities only, and the limiter that counts it.

A limit is only as good as its key. The per-client key is a verified API key's id (looked up and
its secret checked, remembered for a short while), else the caller's address as the gateway sees it
(behind `TRUSTED_PROXIES` proxies, the address they report). A key someone made up counts against
their address, like no key. The per-account key is the subject of a verified token (signature,
issuer, expiry, revocation), else the per-client key: a forged token naming someone else counts
against the forger, never against the one it names.

Counts live where `RATELIMIT_STORAGE_URI` says (else `REDIS_URL`, else the process's memory): with
several gunicorn workers or gateway processes, only a shared store (Redis) makes a limit hold for
all of them together.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits.storage import MemoryStorage

from linli_gateway.domain.accounts import AccountError
from linli_gateway.entrypoints import front_client
from linli_gateway.service_layer.accounts import verify_api_key
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_gateway.settings import GatewaySettings
from linli_kit.errors import ServiceError
from linli_kit.web import current_principal

log = logging.getLogger(__name__)
_PROBES = {"/healthz", "/readyz", "/metrics"}
# The web front's files (versioned, cached by browsers): a page needs a dozen, and counting them
# would spend a household's limit on stylesheets.
_FRONT_FILES = ("/static/",)
API_KEY_MEMORY_SECONDS = 30.0
API_KEY_MEMORY_SIZE = 4096


class VerifiedApiKeys:
    """Presented API keys already checked (valid or not), for a short while: checking each one costs
    a database read and a hash. Revoking a key takes effect for limits within that while (for access
    at once: the proxy checks the key again before it exchanges it)."""

    def __init__(self, verify: Callable[[str], str | None], ttl: float = API_KEY_MEMORY_SECONDS) -> None:
        self._verify = verify
        self._ttl = ttl
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def key_id(self, presented: str) -> str | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            known = self._known.get(digest)
            if known is not None and known[1] > now:
                return known[0]
        key_id = self._verify(presented)
        with self._lock:
            self._known[digest] = (key_id, now + self._ttl)
            self._known.move_to_end(digest)
            while len(self._known) > API_KEY_MEMORY_SIZE:
                self._known.popitem(last=False)
        return key_id


def presented_api_key() -> str | None:
    key = request.headers.get("X-API-Key") or request.args.get("api_key")
    if not key and request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        request.get_data(cache=True)  # keep the body whole for forwarding
        key = request.form.get("api_key")
    return key or None


def client_address() -> str:
    """The caller's address: the peer, or what the trusted proxies in front report (ProxyFix); for
    the web front's calls, the person the front is serving (see `front_client`)."""
    sealed = request.headers.get(front_client.HEADER)
    if sealed:
        address = current_app.extensions["linli.client_seal"].open(sealed)
        if address:
            return address
    return request.remote_addr or "unknown"


def client_key() -> str:
    """Who a per-client limit counts: a verified API key, else the caller's address."""
    presented = presented_api_key()
    if presented:
        key_id = current_app.extensions["linli.api_keys"].key_id(presented)
        if key_id is not None:
            return "key:" + key_id
    return "ip:" + client_address()


def account_key() -> str:
    """Who a per-account limit counts: the subject of a verified token, else the client."""
    if request.headers.get("Authorization"):
        try:
            principal = current_principal(required=False)
        except ServiceError:
            principal = None  # the request is answered 401 later; it counts against the client
        if principal is not None:
            return f"account:{principal.role}:{principal.user_id}"
    return "anonymous:" + client_key()


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory counts, with what has expired swept once a second by one long-lived thread.
    The library's own storage starts a new thread (a `Timer` of 10 ms) on almost every request it
    counts, to drop expired entries: a thread start per request was a tenth of a proxied request's
    time. Only the sweeping changes: whether a request is within its limit is decided from the
    entries' own times, as before (expired entries are never counted, swept or not)."""

    STORAGE_SCHEME = ["linli-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._stopped = threading.Event()
        threading.Thread(target=self._sweep, name="rate-limit-sweeper", daemon=True).start()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the library's private hook
        """Nothing to schedule: the sweeper runs anyway."""

    def _sweep(self) -> None:
        while not self._stopped.wait(self.SWEEP_SECONDS):
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._stopped.set()


def storage_uri(settings: GatewaySettings) -> str:
    return settings.ratelimit_storage_uri or settings.redis_url or "linli-memory://"


def install(app: Flask, settings: GatewaySettings, workers: int) -> Limiter:
    database = app.extensions["linli.database"]

    def verify(presented: str) -> str | None:
        try:
            return verify_api_key(GatewayUnitOfWork(database), presented)
        except AccountError:
            return None

    app.extensions["linli.api_keys"] = VerifiedApiKeys(verify)
    uri = storage_uri(settings)
    if uri.startswith(("memory://", "linli-memory://")) and workers > 1:
        log.warning(
            "rate limits are counted in each of the %d workers' memory: set RATELIMIT_STORAGE_URI "
            "(or REDIS_URL) to a Redis the workers share, or a client gets %d times the limit",
            workers,
            workers,
        )
    _keep_own_retry_after(app)
    limiter = Limiter(
        key_func=client_key,
        app=app,
        storage_uri=uri,
        key_prefix=settings.ratelimit_key_prefix,
        headers_enabled=True,
        default_limits=[settings.client_rate_limit],
        default_limits_exempt_when=lambda: request.path in _PROBES or request.path.startswith(_FRONT_FILES),
        strategy="moving-window",
        # Redis unreachable: count in this process meanwhile, rather than answer 500 or count nothing.
        in_memory_fallback_enabled=True,
    )

    @app.after_request
    def _remember_own_retry_after(response: Response) -> Response:
        # Registered after the limiter's hook, so it runs before it (Flask runs them in reverse).
        g.linli_own_retry_after = response.headers.get("Retry-After")
        return response

    return limiter


def _keep_own_retry_after(app: Flask) -> None:
    """Flask-Limiter writes Retry-After on every answer as the time until its window resets (up to a
    minute), over a 503's own "1 s" (hashing pool full, circuit open). Only a 429 is about the limit:
    any other answer keeps the header it was given, or has none. Registered before the limiter so
    that it runs after it."""

    @app.after_request
    def _restore(response: Response) -> Response:
        if response.status_code == 429:
            return response
        own = g.pop("linli_own_retry_after", None)
        if own is None:
            response.headers.pop("Retry-After", None)
        else:
            response.headers["Retry-After"] = own
        return response
