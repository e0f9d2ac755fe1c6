"""Identity (DESIGN section 4): RS256 access tokens, roles and community scope. No framework here."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from cryptography.hazmat.primitives import serialization

from linli_kit.errors import Forbidden, Unauthorized


class Role(StrEnum):
    RESIDENT = "resident"
    COMMUNITY_STAFF = "community_staff"
    PROPERTY_MANAGER = "property_manager"
    AGENCY = "agency"
    STREET_OFFICIAL = "street_official"
    CITY_ADMIN = "city_admin"
    # A third-party client (city hotline, Open311 app) acting with an API key the gateway issued;
    # the gateway exchanges the key for a short-lived token carrying the key's scope.
    API_CLIENT = "api_client"


_STANDARD_CLAIMS = frozenset(
    {"iss", "sub", "aud", "role", "street_id", "community_ids", "iat", "exp", "jti", "typ", "organisation_id"}
)
STAFF_ROLES = frozenset({Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN})
# How many verified tokens a verifier remembers (the most recently used): a process's callers of
# the last minutes, at a few hundred bytes each.
VERIFIED_TOKENS_KEPT = 10_000


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    street_id: str | None = None
    community_ids: tuple[str, ...] = ()
    token_id: str | None = None
    # The property company (property_manager) or bureau (agency) the account acts for.
    organisation_id: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # When the token it was read from expires (None for a principal made in code).
    expires_at: datetime | None = field(default=None, compare=False)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def can_access_community(self, community_id: str, street_of: Callable[[str], str | None]) -> bool:
        """Whether this principal's scope covers `community_id` (street looked up in the replica)."""
        if self.role == Role.CITY_ADMIN:
            return True
        if self.role == Role.STREET_OFFICIAL:
            return self.street_id is not None and street_of(community_id) == self.street_id
        return community_id in self.community_ids

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden("role {role} may not do this", role=self.role.value)

    def require_community(self, community_id: str, street_of: Callable[[str], str | None]) -> None:
        if not self.can_access_community(community_id, street_of):
            raise Forbidden("outside your community scope")


class TokenVerifier:
    """Checks an access token. With an `audience` (a service checks its own name), a token that
    names its audiences (`aud`) must name this one: a token the gateway made for one service is
    refused by every other. A token naming no audience is accepted, as before audiences existed."""

    def __init__(
        self,
        public_key: str,
        *,
        issuer: str,
        leeway_seconds: int = 10,
        audience: str | None = None,
        remembered: int = VERIFIED_TOKENS_KEPT,
    ) -> None:
        # Parsed once: PyJWT would otherwise parse the PEM text again for every request.
        self._public_key = serialization.load_pem_public_key(public_key.encode())
        self._issuer = issuer
        self._leeway = leeway_seconds
        self.audience = audience
        # Tokens whose every check passed, by their exact text: a caller sends the same token with
        # each request for its whole life, and checking it again (the RSA signature, PyJWT's
        # character-by-character base64 check, the claims) is most of what a proxied request
        # costs the gateway. The same bytes verify the same way; only time changes the answer, so
        # a remembered token is still refused once it expires. Failures are not remembered.
        self._remembered = remembered
        # Each with the instant past which it is refused (its expiry and the leeway), reckoned once.
        self._verified: OrderedDict[str, tuple[Principal, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        with self._lock:
            known = self._verified.get(token)
            if known is not None:
                self._verified.move_to_end(token)
        if known is not None:
            principal, refused_after = known
            if datetime.now(UTC) <= refused_after:
                return principal
            with self._lock:
                self._verified.pop(token, None)
            raise Unauthorized("token expired")
        principal = self._check(token)
        if self._remembered:
            assert principal.expires_at is not None
            remembered = (principal, principal.expires_at + timedelta(seconds=self._leeway))
            with self._lock:
                self._verified[token] = remembered
                while len(self._verified) > self._remembered:
                    self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> Principal:
        try:
            # The algorithm list is fixed: a token that names another (HS256 with the public key
            # as secret, or "none") is refused, whatever its header says.
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "role", "jti"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("invalid token: {exc}", exc=exc) from exc
        audiences = claims.get("aud")
        if audiences is not None and self.audience is not None:
            named = [audiences] if isinstance(audiences, str) else audiences
            if not isinstance(named, list) or self.audience not in named:
                raise Unauthorized("token not meant for {audience}", audience=self.audience)
        if claims.get("typ", "access") != "access":
            raise Unauthorized("not an access token")
        try:
            role = Role(claims["role"])
        except ValueError as exc:
            raise Unauthorized("unknown role in token") from exc
        return Principal(
            user_id=str(claims["sub"]),
            role=role,
            street_id=claims.get("street_id"),
            community_ids=tuple(claims.get("community_ids") or ()),
            token_id=claims.get("jti"),
            organisation_id=claims.get("organisation_id"),
            extra={k: v for k, v in claims.items() if k not in _STANDARD_CLAIMS},
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )


class TokenSigner:
    """Signs access tokens. Only the gateway holds the private key; tests use a throwaway one."""

    def __init__(self, private_key: str, *, issuer: str, ttl: timedelta = timedelta(minutes=15)) -> None:
        self._private_key = serialization.load_pem_private_key(private_key.encode(), password=None)
        self._issuer = issuer
        self.ttl = ttl

    def sign(
        self,
        *,
        user_id: str,
        role: Role | str,
        street_id: str | None = None,
        community_ids: Iterable[str] = (),
        organisation_id: str | None = None,
        ttl: timedelta | None = None,
        extra: dict[str, object] | None = None,
        audience: str | list[str] | None = None,
    ) -> str:
        """`audience`: who may accept the token (`aud`); none: any verifier of this issuer."""
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "iss": self._issuer,
            "sub": user_id,
            "role": str(Role(role)),
            "street_id": street_id,
            "community_ids": list(community_ids),
            "iat": now,
            "exp": now + (ttl or self.ttl),
            "jti": str(uuid.uuid4()),
            "typ": "access",
        }
        if organisation_id is not None:
            claims["organisation_id"] = organisation_id
        claims.update(extra or {})
        if audience is not None:
            claims["aud"] = audience
        return jwt.encode(claims, self._private_key, algorithm="RS256")
