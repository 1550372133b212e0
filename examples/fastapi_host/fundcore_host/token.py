"""The host's own bearer tokens: HS256 JWTs signed with the shared secret FUNDCORE_JWT_SECRET,
with ``sub`` (client id, or any id for an admin), ``role`` and ``exp``.

``python -m fundcore_host.token`` mints one for scripts and tests (it reads FUNDCORE_JWT_SECRET
like the server does). It is not a sign-in: people sign in through the OpenID Connect provider
(README: Signing in with an OpenID Connect provider) or the host's accounts::

    python -m fundcore_host.token --role admin
    python -m fundcore_host.token --role client --sub 0190f0c2-...-client-id --ttl 3600
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Literal, TypeGuard

import jwt

ALGORITHM = "HS256"
Role = Literal["client", "admin"]
ROLES: tuple[Role, ...] = ("client", "admin")
LEEWAY_S = 5
#: A token's claims (a JSON object).
Claims = dict[str, object]


def is_role(value: object) -> TypeGuard[Role]:
    """Whether ``value`` is one of :data:`ROLES`."""
    return value in ROLES


def make_token(secret: str, sub: str, role: str, ttl_s: int = 3600, now: float | None = None) -> str:
    """A signed token for ``sub`` with ``role``, valid for ``ttl_s`` seconds."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not sub:
        raise ValueError("sub must not be empty")
    issued = int(now if now is not None else time.time())
    claims: Claims = {"sub": sub, "role": role, "iat": issued, "exp": issued + int(ttl_s)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Claims:
    """Verify signature and expiry; ``sub``, ``role`` and ``exp`` are required. Raises jwt.PyJWTError."""
    claims: Claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "role", "exp"]},
        leeway=LEEWAY_S,
    )
    return claims


class TokenVerifier:
    """Verifies tokens with one secret, remembering the ones already verified.

    A caller sends the same token on every request; a remembered token costs a dict lookup
    instead of a base64 decode, an HMAC and a JSON parse. Its expiry is checked on every use,
    exactly as ``decode_token`` checks it, and the table is bounded.
    """

    def __init__(self, secret: str, max_entries: int = 10_000) -> None:
        self._secret = secret
        self._max_entries = max_entries
        self._verified: dict[str, tuple[float, Claims]] = {}  # token -> (exp, claims)

    def remembers(self, token: str) -> bool:
        """Whether ``token`` was verified before and is still remembered (expired or not)."""
        return token in self._verified

    def verify(self, token: str) -> Claims:
        """The token's claims; raises jwt.PyJWTError like ``decode_token``."""
        remembered = self._verified.get(token)
        if remembered is not None:
            expires, claims = remembered
            if expires > time.time() - LEEWAY_S:
                return claims
            self._verified.pop(token, None)
        claims = decode_token(self._secret, token)
        expires_at = claims.get("exp")
        if not isinstance(expires_at, (int, float)):
            return claims  # not remembered: its expiry could not be rechecked
        if len(self._verified) >= self._max_entries:
            self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
        self._verified[token] = (float(expires_at), claims)
        return claims


#: What the command says about itself: in its help, and on stderr with every token it prints.
NOT_A_SIGN_IN = (
    "mints a token with the shared secret (FUNDCORE_JWT_SECRET) for scripts and tests; this is not a "
    "sign-in: people sign in through the OpenID Connect provider or the host's accounts"
)


def main(argv: list[str] | None = None) -> int:
    from .config import Settings

    parser = argparse.ArgumentParser(
        prog="python -m fundcore_host.token",
        description=(
            "Print a bearer token for the fundcore REST host, signed with the shared secret "
            "FUNDCORE_JWT_SECRET, for scripts and tests. This is not a sign-in: people sign in "
            "through the OpenID Connect provider (FUNDCORE_OIDC_ISSUER) or the host's accounts."
        ),
    )
    parser.add_argument("--role", choices=ROLES, default="admin")
    parser.add_argument("--sub", help="client id (required for --role client); default 'admin' for admins")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    if args.role == "client" and not args.sub:
        parser.error("--sub CLIENT_ID is required with --role client")
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    settings = Settings.from_env()
    if settings.jwt_secret_is_default:
        print("warning: FUNDCORE_JWT_SECRET is not set; signing with the local development secret", file=sys.stderr)
    token = make_token(settings.jwt_secret.get_secret_value(), args.sub or "admin", args.role, args.ttl)
    print(f"fundcore_host.token {NOT_A_SIGN_IN}", file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
