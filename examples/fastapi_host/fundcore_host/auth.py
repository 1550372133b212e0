"""Bearer-JWT authentication, authorization rules and a small per-caller rate limiter.

Rules (documented in the README):

* ``GET /health`` and the OpenAPI docs are public; everything else needs
  ``Authorization: Bearer <jwt>`` (HS256, claims ``sub``, ``role`` in {client, admin}, ``exp``).
  A missing, malformed, expired or wrongly signed token is **401 UNAUTHORIZED**.
* An admin may call every endpoint for every client.
* A client may read the fund catalogue and read/act on **its own** client id only
  (``sub`` == ``{id}``). Any other client id answers **404 CLIENT_NOT_FOUND** with exactly the
  engine's message for an unknown client, so a caller cannot learn whether another client exists.
* Endpoints that only an admin may use (``POST /clients``) answer a client with **403 FORBIDDEN**.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import HostError, host_message
from .token import ROLES, TokenVerifier

log = logging.getLogger("fundcore_host.auth")

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="HS256 JWT with claims sub (client id), role (client|admin) and exp.",
)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class RateLimiter:
    """Fixed one-minute windows per key; ``per_minute == 0`` disables it."""

    def __init__(self, per_minute: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, key: str, locale: str = "es") -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            count += 1
            if key not in self._windows and len(self._windows) >= self.max_keys:
                # forget expired windows so the table stays bounded
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window_s}
            self._windows[key] = (start, count)
        if count > self.per_minute:
            retry_after = max(1, int(self.window_s - (now - start)) + 1)
            raise HostError(
                "RATE_LIMITED",
                host_message("RATE_LIMITED", locale),
                headers={"Retry-After": str(retry_after)},
            )


def _unauthorized(locale: str) -> HostError:
    return HostError(
        "UNAUTHORIZED",
        host_message("UNAUTHORIZED", locale),
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    """The authenticated caller; raises 401 (or 429 when a caller keeps failing)."""
    settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    locale = settings.locale
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        limiter.check(f"anon:{_peer(request)}", locale)
        raise _unauthorized(locale)
    try:
        verifier: TokenVerifier = request.app.state.token_verifier
        claims = verifier.verify(credentials.credentials)
    except jwt.PyJWTError as exc:
        limiter.check(f"anon:{_peer(request)}", locale)
        log.info("rejected bearer token: %s", exc.__class__.__name__)
        raise _unauthorized(locale) from None
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub or role not in ROLES:
        limiter.check(f"anon:{_peer(request)}", locale)
        raise _unauthorized(locale)
    principal = Principal(sub=sub, role=role)
    limiter.check(f"{role}:{hashlib.sha256(sub.encode()).hexdigest()[:32]}", locale)
    request.state.principal = principal
    return principal


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def require_admin(request: Request, principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise HostError("FORBIDDEN", host_message("FORBIDDEN", request.app.state.settings.locale))
    return principal


def _normalise_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return value


def client_not_found(client_id: str, locale: str) -> HostError:
    """The same code and message the engine gives for an unknown client id."""
    shown = _normalise_id(client_id)
    message = f"Client {shown} not found" if locale == "en" else f"No existe el cliente {shown}"
    return HostError("CLIENT_NOT_FOUND", message, status=404)


def authorize_client(request: Request, principal: Principal, client_id: str) -> None:
    """Admins pass; a client passes only for its own id, else 404 as if the id did not exist."""
    if principal.is_admin:
        return
    if _normalise_id(principal.sub) != _normalise_id(client_id):
        raise client_not_found(client_id, request.app.state.settings.locale)
