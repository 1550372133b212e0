"""The fundcore REST host (docs/apis.md#rest): :func:`create_app` builds the FastAPI app.

Run it with ``python -m fundcore_host.serve`` (see serve.py: it opens the store first and caps
request heads on the wire), or ``uvicorn --factory fundcore_host.app:create_app`` (from
``examples/fastapi_host``). Nothing is built at import: settings are read and the store is
opened by the app's startup. Tests pass their own settings, engine and notifier.

The parts: ``routers/`` (the endpoints by area), ``models.py`` (request and response bodies),
``dependencies.py`` (engine, caller, authorization), ``middleware.py`` (request ids, access
log, size limits), ``metrics.py`` (``GET /metrics``), ``errors.py`` (the error envelope and the exception handlers),
``openapi.py`` (what the OpenAPI document adds to FastAPI's: error responses, headers, links).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

import fundcore

from . import openapi
from .auth import build_authenticator
from .auth.accounts import Accounts
from .auth.oidc_login import provider_login
from .config import Settings
from .dependencies import HostState, host_state, open_engine
from .dispatcher import Dispatcher
from .errors import install_exception_handlers
from .logs import configure_logging, printable
from .metrics import HostMetrics
from .middleware import RequestContextMiddleware
from .notifiers import build_notifier
from .pages import install_pages
from .rate_limit import RateLimiter
from .routers import ROUTERS
from .routers import account as account_routes

log = logging.getLogger("fundcore_host")

#: Every router the app includes: the API's, and the host's own accounts (``/auth/*``).
APP_ROUTERS = (*ROUTERS, account_routes.router)

#: Where the Swagger UI files of /docs are served from.
DOCS_ASSETS_URL = "/docs-assets"

DESCRIPTION = """
REST host for the **fundcore** engine: fund subscriptions and cancellations for an asset
manager's clients, with email/SMS notifications sent after each change commits.

* Authenticate with `Authorization: Bearer <jwt>`: the host's own token (HS256; claims `sub`,
  `role` = `client` or `admin`, `exp`), or one of the configured OpenID Connect provider (RS256
  or ES256, its role and client-id claims as configured). Admins may do everything; a client
  only reads and acts on its own id (another client's id answers 404 `CLIENT_NOT_FOUND`, as if
  it did not exist), which includes changing its own contact data and channel. Registering and
  listing clients, changing the fund catalogue and reading the audit trail are for admins (403
  `FORBIDDEN` for a client).
* Every administrative change (`POST /funds`, `PATCH /funds/{fund_id}`,
  `PATCH /clients/{client_id}`) is recorded in the audit trail (`GET /audit`) with the token's
  subject as its actor and the request's `X-Request-ID` as its request id.
* Money is a JSON string with 2 decimals (`"75000.00"`). Requests may send a string or an
  integer; JSON floats such as `80000.5` are refused with `VALIDATION_ERROR`.
* The host checks the types of a request; the engine decides every value, with the same answer
  as the Python package: a value it refuses is 422 `VALIDATION_ERROR` naming the field (or
  `BELOW_MINIMUM`), an id that names nothing 404.
* Every error is `{"status": "error", "code", "message", "errors"}`; each response below lists
  the codes of its status. A JSON body that repeats a key is refused.
* Send `X-Request-ID` to correlate logs; every response echoes it (one is generated if absent).
* Every `GET` also answers `HEAD`. Bodies are limited to 64 KiB, request headers to 16 KiB.
"""


def create_app(
    settings: Settings | None = None,
    engine: fundcore.Engine | None = None,
    notifier: fundcore.Notifier | None = None,
    *,
    start_dispatcher: bool = True,
) -> FastAPI:
    """Build the app.

    ``settings``: default :meth:`Settings.from_env` (the ``FUNDCORE_*`` variables).
    ``engine``: an open ``fundcore.Engine``, called on threads of the app's
    ``fundcore.aio.Engine`` and left open at shutdown (default: one opened on ``settings.store``
    at startup, without blocking the loop, and closed at shutdown).
    ``notifier``: what delivers notifications (default: SMTP and the SMS gateway of the settings).
    ``start_dispatcher``: run the background notification dispatcher.
    """
    settings = settings or Settings.from_env()
    state = HostState(
        settings=settings,
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        authenticator=build_authenticator(settings),
    )
    state.provider_login = provider_login(settings, state.authenticator)
    metrics = HostMetrics()
    startup_failures: list[Exception] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        if not fundcore.enable_metrics():
            log.warning("another metrics recorder is installed in this process: /metrics shows no engine metrics")
        try:
            opened = await open_engine(settings, engine)
        except fundcore.FundcoreError as error:
            # e.g. the store is open in another process: one line, the engine's own words; the
            # middleware keeps the traceback out of the server's "startup failed" report
            log.error("cannot start: %s", printable(settings.redact(error.message)))
            startup_failures.append(error)
            raise
        settings.warn_about_local_defaults()
        dispatcher = Dispatcher(
            opened.blocking,  # on a thread of its own
            notifier if notifier is not None else build_notifier(settings.smtp, settings.sms),
            interval_ms=settings.dispatch_interval_ms,
            batch=settings.dispatch_batch,
            redact=settings.redact,
        )
        state.engine, state.dispatcher = opened, dispatcher
        # the host's own accounts: their store is opened at its first use
        state.accounts = Accounts.from_settings(settings)
        log.info("accounts: %s", state.accounts.store.label)
        if start_dispatcher:
            dispatcher.start()
        metrics.start_mirroring()
        store = settings.store_label if engine is None else "provided engine"
        log.info("fundcore host ready (store: %s, pid %d)", store, os.getpid())
        try:
            yield
        finally:
            dispatcher.stop()
            metrics.stop_mirroring()
            accounts, state.accounts = state.accounts, None
            if accounts is not None:
                try:
                    await asyncio.to_thread(accounts.close)
                except Exception:
                    log.exception("closing the account store at shutdown failed")
            try:
                try:
                    await opened.flush()
                finally:
                    # stops its threads; an engine opened here releases the store's directory lock
                    await opened.close()
            except Exception:
                log.exception("closing the store at shutdown failed")

    app = FastAPIOffline(
        title="fundcore REST host",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # Swagger UI's files come from the host itself (fastapi-offline ships them), so the
        # docs work without a network; no online validator badge either.
        static_url=DOCS_ASSETS_URL,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.host = state
    app.state.metrics = metrics
    for router in APP_ROUTERS:
        app.include_router(router)

    async def prometheus_metrics(request: Request) -> Response:
        """The Prometheus text format (fundcore_host/metrics.py); no token, as scrapers expect."""
        await metrics.refresh_outbox(host_state(request).engine)
        # the text, and in multiprocess mode the other workers' files: off the loop, not on
        # the engine's threads
        body = await run_in_threadpool(metrics.scrape)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", prometheus_metrics, methods=["GET"], include_in_schema=False)
    install_exception_handlers(app, settings.locale, [route for router in APP_ROUTERS for route in router.routes])
    install_pages(app)
    app.add_middleware(
        RequestContextMiddleware,
        locale=lambda: settings.locale,
        startup_failures=startup_failures,
        on_response=metrics.observe_request,
    )

    def document() -> dict[str, Any]:
        """FastAPI's document completed by :mod:`fundcore_host.openapi` (built once)."""
        if app.openapi_schema is None:
            app.openapi_schema = openapi.complete_document(FastAPI.openapi(app), settings.locale)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app
