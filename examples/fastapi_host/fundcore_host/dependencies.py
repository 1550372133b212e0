"""What the routes depend on: the engine, the authenticated (and rate-limited) caller, the
admin check, a path's client id once the caller may use it, the actor of an administrative
change, and the parameters several routes share (fund ids, page sizes and cursors).

The routes' engine is a ``fundcore.aio.Engine`` (:func:`open_engine`): each call is awaited
and runs on the engine's own threads, never on the event loop.

Every dependency is ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, one
more hop per request for work that never blocks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

import fundcore
import fundcore.aio

from . import auth
from .auth import Authenticator, Principal, bearer_scheme
from .auth.accounts import Accounts
from .auth.oidc_login import ProviderLogin
from .config import Settings
from .dispatcher import Dispatcher
from .errors import HostError
from .models import MAX_TEXT_CHARS, QueryInt, Text
from .rate_limit import RateLimiter, anonymous_key, principal_key


@dataclass
class HostState:
    """What the app keeps for its requests (``app.state.host``)."""

    settings: Settings
    rate_limiter: RateLimiter
    authenticator: Authenticator
    engine: fundcore.aio.Engine | None = None
    dispatcher: Dispatcher | None = None
    #: The host's own accounts (routers/account.py).
    accounts: Accounts | None = None
    #: The pages' sign-in through the OpenID Connect provider, when configured.
    provider_login: ProviderLogin | None = None


#: Benchmark switch, read here only: ``1`` has the routes call the blocking engine through
#: Starlette's ``run_in_threadpool``, as the host did before ``fundcore.aio``, so that
#: ``benches/run_all.py`` (rest) compares the two in one run. Not a setting of the host.
BENCH_RUN_IN_THREADPOOL = "FUNDCORE_BENCH_RUN_IN_THREADPOOL"


async def open_engine(settings: Settings, given: fundcore.Engine | None = None) -> fundcore.aio.Engine:
    """The routes' engine: ``given`` on threads of its own (one per database connection),
    left open when the async engine is closed; else one opened on ``settings.store`` without
    blocking the loop, closed with it. Raises the engine's error when the store cannot open."""
    if given is not None:
        engine = fundcore.aio.Engine(given, threads=settings.pool_size, close_engine=False)
    else:
        engine = await settings.open_async_engine()
    if os.environ.get(BENCH_RUN_IN_THREADPOOL) == "1":
        return cast(fundcore.aio.Engine, _RunInThreadpool(engine))
    return engine


class _RunInThreadpool:
    """The benchmark's baseline (:data:`BENCH_RUN_IN_THREADPOOL`): every operation is the
    blocking engine's, awaited through ``run_in_threadpool``."""

    def __init__(self, engine: fundcore.aio.Engine) -> None:
        self._engine = engine
        self.blocking = engine.blocking

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.blocking, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await run_in_threadpool(attribute, *args, **kwargs)

        return call

    async def close(self) -> None:
        await self._engine.close()


def host_state(request: Request) -> HostState:
    """The :class:`HostState` of the app serving ``request``."""
    state = request.app.state.host
    if not isinstance(state, HostState):
        raise TypeError("app.state.host is not set: build the app with fundcore_host.app.create_app")
    return state


async def engine(request: Request) -> fundcore.aio.Engine:
    """The app's async engine (open from startup to shutdown)."""
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
        principal = await auth.authenticate(state.authenticator, credentials, locale)
    except HostError:
        state.rate_limiter.check(anonymous_key(request), locale)
        raise
    state.rate_limiter.check(principal_key(principal), locale)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
EngineDep = Annotated[fundcore.aio.Engine, Depends(engine)]


async def admin(request: Request, principal: PrincipalDep) -> Principal:
    """The caller, when an admin; 403 FORBIDDEN for a client."""
    auth.require_admin(principal, host_state(request).settings.locale)
    return principal


AdminDep = Annotated[Principal, Depends(admin)]


# --------------------------------------------------------------------------- the host's own accounts


async def public_caller(request: Request) -> str:
    """A caller without a token (``/auth/*``): counted by the rate limiter under its peer
    address, as a failed authentication is; 429 past its limit. Returns that address."""
    state = host_state(request)
    state.rate_limiter.check(anonymous_key(request), state.settings.locale)
    return request.client.host if request.client else "unknown"


async def accounts(request: Request) -> Accounts:
    """The app's :class:`~fundcore_host.auth.accounts.Accounts`."""
    found = host_state(request).accounts
    if found is None:
        raise RuntimeError("the accounts are not set up: build the app with fundcore_host.app.create_app")
    return found


PublicCallerAddress = Annotated[str, Depends(public_caller)]
AccountsDep = Annotated[Accounts, Depends(accounts)]

#: Passed to the engine as given: text that is not a client id names no client (404).
ClientIdPath = Annotated[
    str,
    Path(..., max_length=MAX_TEXT_CHARS, description="client id (a UUID)", json_schema_extra={"format": "uuid"}),
]


async def authorized_client(client_id: ClientIdPath, principal: PrincipalDep, engine: EngineDep) -> str:
    """The path's client id once the caller may use it (checked before the body is validated,
    so another client's id answers 404 whatever the rest of the request looks like). Another
    client's id gets the engine's own ``CLIENT_NOT_FOUND`` for that text, in its locale: exactly
    the answer for an id no client has."""
    if not auth.may_act_on(principal, client_id):
        raise fundcore.client_not_found(client_id, engine.locale)
    return client_id


AuthorizedClient = Annotated[str, Depends(authorized_client)]

#: Any integer: one that names no fund is the engine's 404 ``FUND_NOT_FOUND``.
FundIdPath = Annotated[int, Path(description="fund id (see GET /funds)")]


@dataclass(frozen=True)
class Actor:
    """Who makes an administrative change, for its audit event: the token's subject, and the
    request's id (the ``X-Request-ID`` sent, or the one the host generated and echoes)."""

    name: str
    request_id: str | None


def actor_of(request: Request, principal: Principal) -> Actor:
    """``principal`` as the actor of an administrative change made by ``request`` (the JSON
    API's and the pages' changes alike)."""
    request_id = getattr(request.state, "request_id", None)
    return Actor(principal.sub, request_id if isinstance(request_id, str) else None)


async def actor(request: Request, principal: PrincipalDep) -> Actor:
    """The caller as the actor of an administrative change."""
    return actor_of(request, principal)


ActorDep = Annotated[Actor, Depends(actor)]


#: A page size: the engine checks the range (the document states it, from ``fundcore.MAX_PAGE``).
PageSize = Annotated[
    QueryInt,
    Query(
        description=f"page size, 1 to {fundcore.MAX_PAGE}",
        json_schema_extra={"minimum": 1, "maximum": fundcore.MAX_PAGE},
    ),
]


def _cursor_query(of: str) -> Any:
    return Query(
        description=f"exclusive cursor: the `next` of the previous page (the id of {of})",
        json_schema_extra={"format": "uuid"},
    )


# The ``before`` of a page: optional, ``None`` when absent (a query parameter is never null, so
# the document shows only the string). The engine reads it.
TransactionCursor = Annotated[Text | SkipJsonSchema[None], _cursor_query("a transaction")]
ClientCursor = Annotated[Text | SkipJsonSchema[None], _cursor_query("a client")]
AuditEventCursor = Annotated[Text | SkipJsonSchema[None], _cursor_query("an audit event")]
