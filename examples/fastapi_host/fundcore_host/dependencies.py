"""What the routes depend on: the engine, the authenticated (and rate-limited) caller, the
admin check, and a path's client id once the caller may use it.

Every dependency is ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, one
more hop per request for work that never blocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

import fundcore

from . import auth
from .auth import Principal, bearer_scheme
from .config import Settings
from .dispatcher import Dispatcher
from .errors import HostError
from .models import MAX_TEXT_CHARS
from .rate_limit import RateLimiter, anonymous_key, principal_key
from .token import TokenVerifier


@dataclass
class HostState:
    """What the app keeps for its requests (``app.state.host``)."""

    settings: Settings
    rate_limiter: RateLimiter
    token_verifier: TokenVerifier
    engine: fundcore.Engine | None = None
    dispatcher: Dispatcher | None = None
    #: An engine of the same locale with no clients, opened on first use (see :meth:`unknown_client`).
    _without_clients: fundcore.Engine | None = field(default=None, repr=False)
    _without_clients_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def unknown_client(self, client_id: str) -> fundcore.FundcoreError:
        """What the engine answers for ``client_id`` when no client has it: its own
        ``CLIENT_NOT_FOUND``, asked of an engine without clients (so another client's id gets
        exactly the answer of an id that does not exist, in the engine's words and locale)."""
        if self.engine is None:
            raise RuntimeError("the engine is not open: the app has not started")
        with self._without_clients_lock:
            if self._without_clients is None:
                self._without_clients = fundcore.Engine(locale=self.engine.locale)
            without_clients = self._without_clients
        try:
            without_clients.client(client_id)
        except fundcore.NotFoundError as not_found:
            return not_found
        raise RuntimeError(f"an engine without clients found client {client_id!r}")

    def close_engine_without_clients(self) -> None:
        """Closes the engine of :meth:`unknown_client` (its temporary store is deleted)."""
        with self._without_clients_lock:
            if self._without_clients is not None:
                self._without_clients.close()
                self._without_clients = None


def host_state(request: Request) -> HostState:
    """The :class:`HostState` of the app serving ``request``."""
    state = request.app.state.host
    if not isinstance(state, HostState):
        raise TypeError("app.state.host is not set: build the app with fundcore_host.app.create_app")
    return state


async def engine(request: Request) -> fundcore.Engine:
    """The app's engine (open from startup to shutdown)."""
    opened = host_state(request).engine
    if opened is None:
        raise RuntimeError("the engine is not open: the app has not started")
    return opened


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The authenticated caller, counted by the rate limiter: 401 for a bad token, 429 (before
    the 401) for a caller past its limit; a failed authentication counts against the peer
    address."""
    state = host_state(request)
    locale = state.settings.locale
    try:
        principal = auth.authenticate(state.token_verifier, credentials, locale)
    except HostError:
        state.rate_limiter.check(anonymous_key(request), locale)
        raise
    state.rate_limiter.check(principal_key(principal), locale)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
EngineDep = Annotated[fundcore.Engine, Depends(engine)]


async def admin(request: Request, principal: PrincipalDep) -> Principal:
    """The caller, when an admin; 403 FORBIDDEN for a client."""
    auth.require_admin(principal, host_state(request).settings.locale)
    return principal


AdminDep = Annotated[Principal, Depends(admin)]

#: Passed to the engine as given: text that is not a client id names no client (404).
ClientIdPath = Annotated[
    str,
    Path(..., max_length=MAX_TEXT_CHARS, description="client id (a UUID)", json_schema_extra={"format": "uuid"}),
]


async def authorized_client(client_id: ClientIdPath, request: Request, principal: PrincipalDep) -> str:
    """The path's client id once the caller may use it (checked before the body is validated,
    so another client's id answers 404 whatever the rest of the request looks like)."""
    if not auth.may_act_on(principal, client_id):
        raise await run_in_threadpool(host_state(request).unknown_client, client_id)
    return client_id


AuthorizedClient = Annotated[str, Depends(authorized_client)]
