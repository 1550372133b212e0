"""What the routes depend on: the engine, the authenticated (and rate-limited) caller, the
admin check, a path's client id once the caller may use it, the actor of an administrative
change, and the parameters several routes share (fund ids, page sizes and cursors).

Every dependency is ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, one
more hop per request for work that never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic.json_schema import SkipJsonSchema

import fundcore

from . import auth
from .auth import Principal, bearer_scheme
from .config import Settings
from .dispatcher import Dispatcher
from .errors import HostError
from .models import MAX_TEXT_CHARS, QueryInt, Text
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


async def actor(request: Request, principal: PrincipalDep) -> Actor:
    """The caller as the actor of an administrative change."""
    request_id = getattr(request.state, "request_id", None)
    return Actor(principal.sub, request_id if isinstance(request_id, str) else None)


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
