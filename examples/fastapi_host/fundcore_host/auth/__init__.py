"""Bearer-JWT authentication and the authorization rules (the rate limit is ``rate_limit.py``).

Rules (documented in the README):

* ``GET /health``, ``GET /ready``, ``GET /metrics`` and the OpenAPI docs are public; everything
  else needs ``Authorization: Bearer <jwt>``: the host's own HS256 token (claims ``sub``,
  ``role`` in {client, admin}, ``exp``; :mod:`.shared_secret`), or a token of the configured
  OpenID Connect provider (:mod:`.oidc`); the token's issuer decides which (:mod:`.bearer`).
  A missing, malformed, expired or wrongly signed token is **401 UNAUTHORIZED**; the log says
  only the reason class, never the token.
* An admin may call every endpoint for every client.
* A client may read the fund catalogue and read/act on **its own** client id only
  (``sub`` == ``{id}``), its contact data and channel included. Any other client id answers
  **404 CLIENT_NOT_FOUND**, the engine's own answer for an unknown client
  (``fundcore.client_not_found``), so a caller cannot learn whether another client exists.
* Endpoints that only an admin may use (``POST /clients``, ``GET /clients``, ``POST /funds``,
  ``PATCH /funds/{id}``, ``GET /audit``) answer a client with **403 FORBIDDEN**.

The package: ``principal.py`` (the caller, the refusal), ``shared_secret.py`` (the host's HS256
tokens), ``oidc.py`` (the provider's tokens and keys), ``bearer.py`` (which verifier a token goes to).
"""

from __future__ import annotations

import logging
import uuid

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import HostError, host_message
from .bearer import Authenticator, build_authenticator
from .principal import Principal, TokenRefusedError

__all__ = [
    "Principal",
    "TokenRefusedError",
    "Authenticator",
    "build_authenticator",
    "bearer_scheme",
    "authenticate",
    "require_admin",
    "may_act_on",
]

log = logging.getLogger("fundcore_host.auth")

bearer_scheme = HTTPBearer(
    auto_error=False,
    description=(
        "JWT: the host's own (HS256 with claims sub (client id), role (client|admin) and exp), or one "
        "of the configured OpenID Connect provider (RS256/ES256; roles and client id from its claims)."
    ),
)


def _unauthorized(locale: str) -> HostError:
    return HostError(
        "UNAUTHORIZED",
        host_message("UNAUTHORIZED", locale),
        headers={"WWW-Authenticate": "Bearer"},
    )


async def authenticate(
    authenticator: Authenticator, credentials: HTTPAuthorizationCredentials | None, locale: str
) -> Principal:
    """The caller a bearer token names; raises 401 UNAUTHORIZED for a missing, malformed,
    expired or wrongly signed token, or one without a usable subject and role. A refusal is
    logged with its reason class only."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized(locale)
    try:
        return await authenticator.principal(credentials.credentials)
    except TokenRefusedError as refused:
        log.info("rejected bearer token: %s (%s)", refused.reason, refused.verifier)
        raise _unauthorized(locale) from None


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
