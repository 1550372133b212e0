"""Bearer-JWT authentication and the authorization rules (the rate limit is ``rate_limit.py``).

Rules (documented in the README):

* ``GET /health``, ``GET /ready``, ``GET /metrics`` and the OpenAPI docs are public; everything
  else needs ``Authorization: Bearer <jwt>`` (HS256, claims ``sub``, ``role`` in {client, admin}, ``exp``).
  A missing, malformed, expired or wrongly signed token is **401 UNAUTHORIZED**.
* An admin may call every endpoint for every client.
* A client may read the fund catalogue and read/act on **its own** client id only
  (``sub`` == ``{id}``), its contact data and channel included. Any other client id answers
  **404 CLIENT_NOT_FOUND**, the engine's own answer for an unknown client
  (``fundcore.client_not_found``), so a caller cannot learn whether another client exists.
* Endpoints that only an admin may use (``POST /clients``, ``GET /clients``, ``POST /funds``,
  ``PATCH /funds/{id}``, ``GET /audit``) answer a client with **403 FORBIDDEN**.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import jwt
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import HostError, host_message
from .token import Role, TokenVerifier, is_role

log = logging.getLogger("fundcore_host.auth")

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="HS256 JWT with claims sub (client id), role (client|admin) and exp.",
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the token's subject and role."""

    sub: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _unauthorized(locale: str) -> HostError:
    return HostError(
        "UNAUTHORIZED",
        host_message("UNAUTHORIZED", locale),
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate(verifier: TokenVerifier, credentials: HTTPAuthorizationCredentials | None, locale: str) -> Principal:
    """The caller a bearer token names; raises 401 UNAUTHORIZED for a missing, malformed,
    expired or wrongly signed token, or one without a usable ``sub`` and ``role``."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized(locale)
    try:
        claims = verifier.verify(credentials.credentials)
    except jwt.PyJWTError as exc:
        log.info("rejected bearer token: %s", exc.__class__.__name__)
        raise _unauthorized(locale) from None
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub or not is_role(role):
        raise _unauthorized(locale)
    return Principal(sub=sub, role=role)


def require_admin(principal: Principal, locale: str) -> None:
    """Only an admin passes; a client gets 403 FORBIDDEN."""
    if not principal.is_admin:
        raise HostError("FORBIDDEN", host_message("FORBIDDEN", locale))


def _same_uuid(a: str, b: str) -> bool:
    """Whether two texts spell the same UUID (``a == b`` when either is not one). Only for
    authorization: the engine still reads the path's id, and refuses one it cannot."""
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a == b


def may_act_on(principal: Principal, client_id: str) -> bool:
    """Admins may act on every client id; a client only on its own."""
    return principal.is_admin or _same_uuid(principal.sub, client_id)
