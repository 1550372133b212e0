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
import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

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
    """Fixed windows per caller key; ``per_minute == 0`` disables it.

    Each request costs the same whatever the number of callers, and at most ``max_keys``
    callers are tracked. Windows are kept in the order they started (a caller whose window
    ended gets a new one at the end), so the windows that ended are always at the front: each
    check drops at most two of them, and a full table drops its oldest window to make room (that
    caller simply starts a new window). ``work`` counts the entries looked at, for tests.
    """

    #: Ended windows dropped from the front per check (two: faster than one is added).
    DROP_PER_CHECK = 2

    def __init__(
        self,
        per_minute: int,
        window_s: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys <= 0:
            raise ValueError("max_keys must be positive")
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_keys = max_keys
        self.work = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # key -> [start, count]

    def __len__(self) -> int:
        return len(self._windows)

    def _hit(self, key: str, now: float) -> tuple[float, float]:
        windows = self._windows
        for _ in range(self.DROP_PER_CHECK):
            if not windows:
                break
            self.work += 1
            _, (oldest_start, _) = next(iter(windows.items()))
            if now - oldest_start < self.window_s:
                break
            windows.popitem(last=False)
        self.work += 1
        entry = windows.get(key)
        if entry is not None and now - entry[0] >= self.window_s:
            entry[0], entry[1] = now, 0
            windows.move_to_end(key)  # keeps the table in window-start order
        elif entry is None:
            if len(windows) >= self.max_keys:
                self.work += 1
                windows.popitem(last=False)
            entry = windows[key] = [now, 0]
        entry[1] += 1
        return entry[0], entry[1]

    def check(self, key: str, locale: str = "es") -> None:
        """Count a request of ``key``; raises 429 RATE_LIMITED past ``per_minute`` in its window."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            start, count = self._hit(key, now)
        if count > self.per_minute:
            retry_after = max(1, math.ceil(self.window_s - (now - start)))
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
