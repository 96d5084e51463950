"""The caller: an Authorization header → a verified Principal (role + claims), or a 401.

Tokens are Supabase-compatible JWTs, verified with PyJWT: HS256 with JWT_SECRET, RS256/ES256
with keys from a JWKS file or URL (fetched, cached, refetched when a token names an unknown
key). No header means the role `anon`; a header that does not verify is an error, never anon.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jwt
import orjson

from service.settings import DEFAULT_JWT_SECRET, Settings

_SECRET_ALGORITHMS = ["HS256", "HS384", "HS512"]
_KEY_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_REQUIRED_CLAIMS = ["exp"]


@dataclass(frozen=True)
class Principal:
    role: str
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.role == "anon"

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None

    @cached_property
    def claims_json(self) -> str:
        # cached: a verified Principal serves every request with its token (see Authenticator)
        return orjson.dumps(self.claims).decode() if self.claims else ""


ANONYMOUS = Principal(role="anon")


class InvalidToken(Exception):
    """The request carried credentials that do not verify: HTTP 401."""


class Authenticator:
    # Verifying a token costs ~100 µs of PyJWT; a client sends the same one for many requests.
    # A verified token is remembered until it expires, at most this long (so a key withdrawn
    # from the JWKS stops working soon after), for at most this many tokens.
    _CACHE_SECONDS = 60.0
    _CACHE_SIZE = 10_000

    def __init__(self, settings: Settings) -> None:
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.role_claim = tuple(settings.jwt_role_claim)
        self.leeway = settings.jwt_leeway_seconds
        self.allowed_roles = set(settings.jwt_allowed_roles)
        secret = settings.jwt_secret.get_secret_value()
        has_keys = bool(settings.jwt_jwks_url or settings.jwt_jwks_file)
        # With keys configured, the development secret must not also open the door.
        self.secret = None if has_keys and secret == DEFAULT_JWT_SECRET else secret
        self.keys = _KeySource(settings) if has_keys else None

    async def principal(self, authorization: str | None) -> Principal:
        if authorization is None:
            return ANONYMOUS
        now = time.time()
        cached = self._verified.get(authorization)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self._principal(authorization)
        expires = float(principal.claims.get("exp", now)) + self.leeway
        self._verified[authorization] = (principal, min(expires, now + self._CACHE_SECONDS))
        if len(self._verified) > self._CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _principal(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("expected `Authorization: Bearer <token>`")
        claims = await self.verify(token.strip())
        role = claim_at(claims, self.role_claim) or "authenticated"
        if not isinstance(role, str):
            raise InvalidToken(f"the role claim ({'.'.join(self.role_claim)}) is not a string")
        if role not in self.allowed_roles:
            raise InvalidToken(f"role {role!r} is not allowed")
        # Supabase's anon key has no subject; every other role acts as a user, whose id
        # (auth.users.id, what auth.uid() returns) is a UUID.
        subject = claims.get("sub")
        if role != "anon" and not subject:
            raise InvalidToken("token has no subject (`sub`)")
        if subject is not None and not _is_uuid(subject):
            raise InvalidToken("token subject (`sub`) is not a user id (a UUID)")
        return Principal(role=role, claims=claims)

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        algorithm = header.get("alg")
        if algorithm in _SECRET_ALGORITHMS and self.secret is not None:
            key: Any = self.secret
            algorithms = _SECRET_ALGORITHMS
        elif algorithm in _KEY_ALGORITHMS and self.keys is not None:
            key = await self.keys.key_for(header.get("kid"))
            algorithms = _KEY_ALGORITHMS
        else:
            raise InvalidToken("token algorithm not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "require": _REQUIRED_CLAIMS + (["iss"] if self.issuer else []),
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as missing:
            raise InvalidToken(f"token has no `{missing.claim}` claim") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        return claims


class _KeySource:
    """Public keys by key id, from a JWKS file or URL; refetched when an unknown kid appears."""

    # Don't let a stream of tokens with made-up key ids turn into a stream of fetches.
    _MIN_REFRESH_SECONDS = 1.0
    # Keys removed from the set (revoked) stop working within this time.
    _MAX_AGE_SECONDS = 600.0

    def __init__(self, settings: Settings) -> None:
        self.url = settings.jwt_jwks_url
        self.file = settings.jwt_jwks_file
        self.keys: dict[str | None, Any] = {}
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        if kid in self.keys:
            return self.keys[kid]
        async with self.lock:
            if (
                kid not in self.keys
                and time.monotonic() - self.fetched_at > self._MIN_REFRESH_SECONDS
            ):
                await self._load()
        if kid in self.keys:
            return self.keys[kid]
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        raise InvalidToken("token signed with an unknown key")

    async def _load(self) -> None:
        self.fetched_at = time.monotonic()
        try:
            if self.file is not None:
                document = self.file.read_bytes()
            else:
                assert self.url is not None
                document = await asyncio.to_thread(_fetch, self.url)
            key_set = jwt.PyJWKSet.from_json(document.decode())
        except (OSError, jwt.PyJWTError, ValueError):
            # The key source is down: existing keys keep working, new ones wait for it.
            return
        self.keys = {k.key_id: k.key for k in key_set.keys}


def claim_at(claims: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The claim a path of keys names in nested claims (JWT_ROLE_CLAIM), or None."""
    value: Any = claims
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _fetch(url: str) -> bytes:
    # PyJWT's own JWKS client fetches the same way (urllib); we keep our cache above it.
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def issue_token(
    settings: Settings, *, sub: str, email: str | None, role: str, ttl_seconds: int
) -> str:
    """A development token signed with JWT_SECRET (what `service token` prints)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_seconds}
    *parents, last = settings.jwt_role_claim  # where the service reads the role back
    place = claims
    for key in parents:
        place = place.setdefault(key, {})
    place[last] = role
    if email:
        claims["email"] = email
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
