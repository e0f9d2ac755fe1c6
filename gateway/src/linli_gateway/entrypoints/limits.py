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
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import NoScriptError
from werkzeug.exceptions import TooManyRequests
from werkzeug.http import parse_date

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
# The environ key under which the fast path (fast_proxy.py) hands over a request it already counted
# (`RateLimits.count`'s result): counted once, whoever answers it. No caller can set it.
COUNTED_ON_THE_FAST_PATH = "linli.rate_limit.counted"


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


class _Rule:
    """A limit (one or more items, e.g. "10/second;300/minute") and who it counts."""

    __slots__ = ("items", "key", "methods")

    def __init__(self, limit: str, key: Callable[[], str], methods: frozenset[str] | None = None) -> None:
        # In the order Flask-Limiter checked them (shortest window first); the first is the one the
        # headers describe while none is exceeded.
        self.items: tuple[RateLimitItem, ...] = tuple(sorted(parse_many(limit)))
        self.key = key
        self.methods = methods


class RateLimits:
    """The gateway's rate limits, counted as Flask-Limiter counted them (same moving windows, same
    storage keys, same X-RateLimit-* headers and 429s), at a fraction of its cost per request.

    Which limit a request counts against is known from its endpoint alone: the account limit for
    the proxied routes, the sign-in limit for the auth blueprint's POSTs, else the per-client
    default (none for probes, the front's files and requests no route matched). Flask-Limiter
    found that out again on every request through its generic machinery (limit sets resolved,
    filtered, merged, exemptions of every kind looked up, a context object behind a proxy), which
    was about a quarter of the gateway's own Python time on a proxied request.

    Storage: `storage_uri`; when it fails (Redis unreachable), the counting goes on in this
    process's memory and the store is tried again after 1, 2, 4, ... 32 s, as Flask-Limiter's
    in-memory fallback did."""

    BACKOFF_STEPS = 5  # Flask-Limiter's MAX_BACKEND_CHECKS

    def __init__(self, storage_uri: str, key_prefix: str, default: _Rule, exempt: Callable[[], bool]) -> None:
        self.storage: Storage = storage_from_string(storage_uri)
        self._counter = MovingWindowRateLimiter(self.storage)
        self._fallback: MovingWindowRateLimiter | None = None
        self._dead = False
        self._checks = 0
        self._last_check = 0.0
        self._lock = threading.Lock()
        self._prefix = key_prefix
        self._default = default
        self._exempt = exempt
        self._by_endpoint: dict[str, _Rule] = {}
        self._by_blueprint: dict[str, _Rule] = {}

    def limit_endpoint(self, endpoint: str, limit: str, key: Callable[[], str]) -> None:
        """`endpoint` counts against `limit` (keyed by `key`) instead of the default."""
        self._by_endpoint[endpoint] = _Rule(limit, key)

    def limit_blueprint(self, blueprint: str, limit: str, key: Callable[[], str], methods: list[str]) -> None:
        """The blueprint's `methods` count against `limit` instead of the default (its other
        methods keep the default)."""
        self._by_blueprint[blueprint] = _Rule(limit, key, frozenset(m.upper() for m in methods))

    def rule_for(self, endpoint: str, method: str) -> _Rule | None:
        rule = self._by_endpoint.get(endpoint)
        if rule is not None:
            return rule
        blueprint, dot, _ = endpoint.rpartition(".")
        if dot:
            rule = self._by_blueprint.get(blueprint)
            if rule is not None and rule.methods is not None and method in rule.methods:
                return rule
        return None if self._exempt() else self._default

    def check(self) -> None:
        """Count this request; 429 when one of its limit's items is exceeded. Remembers what the
        answer's headers say about the item they describe (counted and read in one go)."""
        counted = request.environ.get(COUNTED_ON_THE_FAST_PATH)
        if counted is None:
            endpoint = request.endpoint
            if not endpoint:
                return  # nothing matched (Flask-Limiter exempted these too)
            rule = self.rule_for(endpoint, request.method)
            if rule is None:
                return
            counted = self.count(rule, rule.key(), endpoint)
        # Else the fast path (fast_proxy.py) counted this request before handing it over: once.
        within, g.linli_rate_limit = counted
        if not within:
            raise TooManyRequests(description=str(g.linli_rate_limit[0]))

    def count(self, rule: _Rule, key: str, endpoint: str) -> tuple[bool, tuple[RateLimitItem, float, int]]:
        """Count a request of `key` at `endpoint` against `rule`: whether it is within every item,
        and what the answer's headers say (the first item exceeded, else the first item)."""
        args = (self._prefix, key, endpoint) if self._prefix else (key, endpoint)
        first = None
        for item in rule.items:
            counted, reset, remaining = self._count(item, args)
            first = first or (item, reset, remaining)
            if not counted:
                log.info("ratelimit %s (%s) exceeded at endpoint: %s", item, key, endpoint)
                return False, (item, reset, remaining)
        assert first is not None
        return True, first

    def add_headers(self, response: Response) -> Response:
        """X-RateLimit-Limit, -Remaining and -Reset of the limit this request counted against; on a
        429, Retry-After: when that limit lets the next one through (or the answer's own, if later).
        Any other answer keeps its own Retry-After (a 503's "1 s"), or has none."""
        counted = g.pop("linli_rate_limit", None)
        if counted is None:
            return response
        item, reset, remaining = counted
        reset_at = int(reset + 1)
        headers = response.headers
        headers.add("X-RateLimit-Limit", str(item.amount))
        headers.add("X-RateLimit-Remaining", str(remaining))
        headers.add("X-RateLimit-Reset", str(reset_at))
        if response.status_code == 429:
            own = headers.get("Retry-After")
            if own is not None:
                reset_at = max(_retry_after_epoch(own), reset_at)
            headers["Retry-After"] = str(int(reset_at - time.time()))
        return response

    def _count(self, item: RateLimitItem, args: tuple[str, ...]) -> tuple[bool, float, int]:
        """Count one request against `item`: whether it was within the limit, and then the window's
        reset time and what remains in it."""
        counter = self._current()
        try:
            return _hit_and_read(counter, item, args)
        except Exception:
            if counter is not self._counter:
                raise
            self._storage_failed()
            return _hit_and_read(self._current(), item, args)

    def _storage_failed(self) -> None:
        with self._lock:
            if not self._dead:
                log.warning("Rate limit storage unreachable - falling back to in-memory storage")
                self._dead = True
                if self._fallback is None:
                    self._fallback = MovingWindowRateLimiter(SweptMemoryStorage())

    def _current(self) -> MovingWindowRateLimiter:
        if not self._dead:
            return self._counter
        if self._time_to_try_storage() and self.storage.check():
            log.info("Rate limit storage recovered")
            with self._lock:
                self._dead = False
                self._checks = 0
            return self._counter
        assert self._fallback is not None
        return self._fallback

    def _time_to_try_storage(self) -> bool:
        with self._lock:
            if self._checks > self.BACKOFF_STEPS:
                self._checks = 0
            if time.time() - self._last_check > 2**self._checks:
                self._last_check = time.time()
                self._checks += 1
                return True
            return False


def _hit_and_read(
    counter: MovingWindowRateLimiter, item: RateLimitItem, args: tuple[str, ...]
) -> tuple[bool, float, int]:
    """`counter.hit` then `counter.get_window_stats`; on a plain Redis, both of limits' own scripts
    sent in one round trip (a pipeline of their EVALSHAs) instead of two."""
    storage = counter.storage
    if type(storage) is RedisStorage:
        key = storage.prefixed_key(item.key_for(*args))
        expiry = item.get_expiry()
        now = time.time()
        pipe = storage.get_connection().pipeline(transaction=False)
        pipe.evalsha(storage.lua_acquire_moving_window.sha, 1, key, now, item.amount, expiry, 1)
        pipe.evalsha(storage.lua_moving_window.sha, 1, key, now - expiry, item.amount)
        acquired, window = pipe.execute(raise_on_error=False)
        # A script Redis does not hold (a new or flushed Redis) did nothing: limits' own calls below
        # load it and do that part. Anything else went wrong with the store.
        if isinstance(acquired, Exception) and not isinstance(acquired, NoScriptError):
            raise acquired
        if isinstance(window, Exception) and not isinstance(window, NoScriptError):
            raise window
        counted = counter.hit(item, *args) if isinstance(acquired, NoScriptError) else bool(acquired)
        if isinstance(window, NoScriptError) or isinstance(acquired, NoScriptError):
            reset, remaining = counter.get_window_stats(item, *args)
            return counted, reset, remaining
        start, entries = (float(window[0]), int(window[1])) if window else (now, 0)
        return counted, start + expiry, item.amount - entries
    counted = counter.hit(item, *args)
    reset, remaining = counter.get_window_stats(item, *args)
    return counted, reset, remaining


def _retry_after_epoch(value: str) -> float:
    """A Retry-After (seconds, or an HTTP date) as the time it names."""
    when = parse_date(value)
    if when is not None:
        return when.timestamp()
    try:
        return time.time() + int(value)
    except ValueError:
        return 0.0


def _exempt_from_default() -> bool:
    path = request.path
    return path in _PROBES or path.startswith(_FRONT_FILES)


def install(app: Flask, settings: GatewaySettings, workers: int) -> RateLimits:
    """The per-client default limit on every route; `limit_endpoint` and `limit_blueprint` of the
    result set the others."""
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
    limits = RateLimits(
        uri,
        settings.ratelimit_key_prefix,
        default=_Rule(settings.client_rate_limit, client_key),
        exempt=_exempt_from_default,
    )
    app.extensions["linli.rate_limits"] = limits
    app.before_request(limits.check)
    app.after_request(limits.add_headers)
    return limits
