"""The fundcore REST host (docs/apis.md#rest) on FastAPI.

Run it with ``python -m fundcore_host.serve`` (see serve.py: it opens the store first and caps
request heads on the wire), or ``uvicorn fundcore_host.app:app`` (from ``examples/fastapi_host``),
or build one with :func:`create_app` (tests pass their own engine and notifier).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, AsyncIterator, Callable, Literal

import fundcore
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import contract
from .auth import Principal, RateLimiter, authorize_client, current_principal, require_admin
from .token import TokenVerifier
from .config import Settings
from .dispatcher import Dispatcher
from .errors import (
    ErrorEnvelope,
    HostError,
    engine_error_response,
    envelope,
    field_name,
    host_message,
)
from .logs import configure_logging, printable, request_id_var
from .notifiers import build_notifier

log = logging.getLogger("fundcore_host")
access_log = logging.getLogger("fundcore_host.access")

#: Where the Swagger UI files of /docs are served from.
DOCS_ASSETS_URL = "/docs-assets"
#: Request bodies above this answer 413 PAYLOAD_TOO_LARGE.
MAX_BODY_BYTES = 64 * 1024
#: Request headers above this in all (names, values and their separators, as sent) answer 431
#: REQUEST_HEADERS_TOO_LARGE. `fundcore_host.serve` also stops reading a request head past
#: about this size, so an 8 MB header is never read into memory.
MAX_HEADER_BYTES = 16 * 1024
_REQUEST_ID_RE = re.compile(contract.REQUEST_ID_PATTERN[1:-1])


# --------------------------------------------------------------------------- JSON without floats


class _MoneySafeRequest(Request):
    """Parses JSON bodies with numbers that have a fraction or exponent as ``Decimal``.

    So a JSON number never becomes a binary float: the request models take a whole one as an
    integer and refuse one with a fraction (cents travel as a string such as ``"80000.50"``).
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(
                    body.decode("utf-8"),
                    parse_float=Decimal,
                    parse_constant=Decimal,
                    object_pairs_hook=_object_without_duplicates,
                )
                if _has_lone_surrogate(self._json):
                    self._json = InvalidJson()  # a lone "\ud800" escape is JSON but not text
            except DuplicateKey as duplicate:
                self._json = duplicate
            except (UnicodeDecodeError, ValueError, RecursionError):
                # Not JSON (or not UTF-8, an integer with thousands of digits, absurd nesting).
                self._json = InvalidJson()
            # Either marker is handed to the body model, which refuses it: that error is raised
            # after the dependencies ran, so authentication and authorization still answer first.
        return self._json


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds an unpaired ``\\uD800``-``\\uDFFF`` escape."""
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class InvalidJson:
    """Stands for a request body that is not valid JSON."""


class DuplicateKey(ValueError):
    """Stands for a JSON body in which an object repeats a key (``{"fund_id": 3, "fund_id": 1}``):
    refused rather than letting the last value win silently."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


class MoneySafeRoute(APIRoute):
    def get_route_handler(self) -> Callable[..., Any]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Any:
            return await handler(_MoneySafeRequest(request.scope, request.receive))

        return route_handler


# --------------------------------------------------------------------------- request models

_FRACTION_MESSAGE = (
    "JSON numbers with a fraction are not accepted; "
    'send money as a string with up to 2 decimals, e.g. "80000.50", or as a whole number'
)


def _refuse_invalid_json(value: Any) -> Any:
    if isinstance(value, InvalidJson):
        raise PydanticCustomError(INVALID_JSON_ERROR, "invalid JSON body")
    if isinstance(value, DuplicateKey):
        raise PydanticCustomError(DUPLICATE_KEY_ERROR, "duplicate key {key}", {"key": value.key})
    return value


#: pydantic error types the body models raise for a body that is not JSON, or repeats a key.
INVALID_JSON_ERROR = "fundcore_invalid_json"
DUPLICATE_KEY_ERROR = "fundcore_duplicate_key"


def _whole_json_number(value: Any, field: str | None) -> Any:
    """A JSON number written with a fraction or an exponent arrives as ``Decimal`` (never a
    binary float). JSON Schema counts ``80000.0`` and ``8e4`` as integers, and so does the
    host (exactly: they are decimals); one with a non-zero fraction is refused."""
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value() and value.adjusted() <= 18:
            return int(value)
        if field == "amount":
            raise ValueError(_FRACTION_MESSAGE)
        raise ValueError("JSON numbers with a fraction are not accepted for this field")
    return value


class RegisterClientRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
            ]
        },
    )

    name: StrictStr = Field(
        ..., max_length=contract.NAME_MAX_CHARS, pattern=contract.NAME_PATTERN,
        description="1 to 100 characters, no control characters",
    )
    email: StrictStr = Field(..., max_length=contract.EMAIL_MAX_CHARS, pattern=contract.EMAIL_PATTERN)
    phone: StrictStr = Field(..., pattern=contract.PHONE_PATTERN, description="E.164, e.g. +573001234567")
    channel: Literal["email", "sms"] = Field(..., description="where notifications go: the email or the phone")

    @model_validator(mode="before")
    @classmethod
    def _valid_json(cls, value: Any) -> Any:
        return _refuse_invalid_json(value)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        return _whole_json_number(value, info.field_name)


class SubscribeRequest(BaseModel):
    """The document shows this body per fund of the catalogue (`contract.subscribe_body_schema`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"fund_id": 1, "amount": "80000.00"}, {"fund_id": 3}]},
    )

    fund_id: StrictInt = Field(..., ge=0, le=contract.FUND_ID_MAX, description="fund id (see GET /funds)")
    amount: Annotated[
        StrictStr, Field(max_length=contract.AMOUNT_MAX_CHARS, pattern=contract.AMOUNT_SYNTAX)
    ] | Annotated[StrictInt, Field(ge=0, le=10**15)] | None = Field(
        None,
        description=(
            "COP amount as a decimal string (at most 2 decimals) or a JSON integer; "
            "JSON floats are refused. Omitted: the fund's minimum."
        ),
        examples=["80000.00"],
    )

    @model_validator(mode="before")
    @classmethod
    def _valid_json(cls, value: Any) -> Any:
        return _refuse_invalid_json(value)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        return _whole_json_number(value, info.field_name)

    def amount_decimal(self) -> Decimal | None:
        if self.amount is None:
            return None
        return Decimal(str(self.amount))


# --------------------------------------------------------------------------- response models (docs)

Money = Annotated[str, Field(pattern=contract.MONEY_PATTERN, examples=["75000.00"])]
FundId = Annotated[int, Field(ge=0, le=contract.FUND_ID_MAX)]
Channel = Literal["email", "sms"]


class FundOut(BaseModel):
    id: FundId
    name: str
    minimum: Money
    category: Literal["FPV", "FIC"]
    active: bool


class ClientOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    phone: str
    channel: Channel
    balance: Money
    created_at: datetime


class SubscriptionOut(BaseModel):
    client_id: uuid.UUID
    fund_id: FundId
    fund_name: str
    amount: Money
    transaction_id: uuid.UUID
    subscribed_at: datetime


class TransactionOut(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    fund_id: FundId
    fund_name: str
    kind: Literal["subscription", "cancellation"]
    amount: Money
    balance_after: Money
    created_at: datetime
    idempotency_key: str | None = None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next: uuid.UUID | None = Field(None, description="pass as `before` for the next page; null on the last page")


class NotificationOut(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    transaction_id: uuid.UUID
    channel: Channel
    recipient: str
    subject: str
    body: str
    status: Literal["pending", "delivered", "failed"]
    attempts: Annotated[int, Field(ge=0)]
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = Field(None, description="when a pending entry is tried again")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorEnvelope} for status in statuses}


# --------------------------------------------------------------------------- middleware


class RequestContextMiddleware:
    """Request ids, access log, size limits, HEAD, and the last-resort 500 envelope.

    Accepts a sane ``X-Request-ID`` or generates one, echoes it on every response (errors too)
    and logs one access line per request. Request headers over :data:`MAX_HEADER_BYTES` answer
    431 and bodies over :data:`MAX_BODY_BYTES` 413, both in the envelope. ``HEAD`` is served as
    ``GET`` without the body. An exception that escapes the app becomes a 500 ``INTERNAL_ERROR``
    envelope (when no response has started).
    """

    def __init__(self, app: ASGIApp, locale: Callable[[], str], startup_failures: list[Exception]) -> None:
        self.app = app
        self.locale = locale
        self.startup_failures = startup_failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._quiet_startup_failure(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 0, "started": False}
        head = scope.get("method") == "HEAD"
        # RFC 9110 §9.3.2: HEAD is GET without the content (same status and headers).
        app_scope = {**scope, "method": "GET"} if head else scope

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        header_bytes = sum(len(key) + len(value) + 4 for key, value in scope.get("headers", []))
        too_large = False
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_large = int(value) > MAX_BODY_BYTES
                except ValueError:
                    too_large = False

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    # FastAPI re-raises HTTPException while reading a body; the handler renders it
                    raise HTTPException(status_code=413)
            return message

        try:
            if header_bytes > MAX_HEADER_BYTES:
                response = envelope(
                    431, "REQUEST_HEADERS_TOO_LARGE", host_message("REQUEST_HEADERS_TOO_LARGE", self.locale()),
                    headers={"Connection": "close"},
                )
                await response(app_scope, receive, send_with_id)
            elif too_large:
                response = envelope(413, "PAYLOAD_TOO_LARGE", host_message("PAYLOAD_TOO_LARGE", self.locale()))
                await response(app_scope, receive, send_with_id)
            else:
                await self.app(app_scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled error serving %s", _request_line(scope))
            if status_holder["started"]:
                raise
            response = envelope(500, "INTERNAL_ERROR", host_message("INTERNAL_ERROR", self.locale()))
            await response(app_scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s -> %d in %.1f ms pid=%d ua=%s",
                _request_line(scope), status_holder["status"], (time.perf_counter() - started) * 1000, os.getpid(),
                printable(_header(scope, b"user-agent") or "-"),
            )
            request_id_var.reset(token)


    def _quiet_startup_failure(self, send: Send) -> Send:
        """A startup failure already logged in one line is reported to the server without the
        traceback Starlette attaches (the server prints that message)."""

        async def quiet_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.startup_failures:
                message = {**message, "message": ""}
            await send(message)

        return quiet_send


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _request_line(scope: Scope) -> str:
    """``METHOD /path?query`` for a log line, every part escaped (the path arrives
    percent-decoded, so ``%0A`` is a real newline here)."""
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope.get("path", "") + (f"?{query}" if query else "")
    return f"{printable(scope.get('method', '-'))} {printable(target)}"


# --------------------------------------------------------------------------- exception handlers


def _validation_response(exc: RequestValidationError, locale: str) -> JSONResponse:
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind in ("json_invalid", INVALID_JSON_ERROR):
            name, text = "body", host_message("BAD_JSON", locale)
        elif kind == DUPLICATE_KEY_ERROR:
            name, text = str(err.get("ctx", {}).get("key", "body")), host_message("DUPLICATE_KEY", locale)
        elif kind == "string_pattern_mismatch":
            # pydantic's text would quote the whole pattern; the document states it
            name, text = field_name(loc), host_message("FORMAT", locale)
        else:
            name = field_name(loc)
            text = str(err.get("msg", "invalid"))
            if text.startswith("Value error, "):
                text = text[len("Value error, "):]
        errors.setdefault(name, text)
    return envelope(422, "VALIDATION_ERROR", host_message("VALIDATION_ERROR", locale), errors or None)


_HTTP_CODES = {
    400: ("VALIDATION_ERROR", 422),
    401: ("UNAUTHORIZED", 401),
    403: ("FORBIDDEN", 403),
    404: ("NOT_FOUND", 404),
    405: ("METHOD_NOT_ALLOWED", 405),
    413: ("PAYLOAD_TOO_LARGE", 413),
    415: ("UNSUPPORTED_MEDIA_TYPE", 415),
    422: ("VALIDATION_ERROR", 422),
    429: ("RATE_LIMITED", 429),
}


def _install_handlers(app: FastAPI, settings: Settings) -> None:
    locale = settings.locale

    @app.exception_handler(fundcore.FundcoreError)
    async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
        response = engine_error_response(exc)
        if response.status_code >= 500:
            log.error(
                "engine error %s: %s", printable(getattr(exc, "code", "?")), printable(getattr(exc, "message", exc))
            )
        return response

    @app.exception_handler(HostError)
    async def _host_error(request: Request, exc: HostError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message or host_message(exc.code, locale), exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc, locale)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code in _HTTP_CODES:
            code, status = _HTTP_CODES[exc.status_code]
            message = host_message(code, locale)
        elif exc.status_code >= 500:
            code, status, message = "INTERNAL_ERROR", 500, host_message("INTERNAL_ERROR", locale)
        else:
            code, status, message = "BAD_REQUEST", exc.status_code, str(exc.detail)
        if status == 405:
            # Starlette names only the methods of the first route matching the path.
            headers["Allow"] = allowed_methods(request.app, request.scope)
        return envelope(status, code, message, None, headers)


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method of every route whose path matches the request (RFC 9110 §15.5.6), HEAD
    wherever GET is, as the ``Allow`` header of a 405."""
    methods: set[str] = set()
    # inside a Mount the scope's root_path includes the mount's prefix: match from the top
    scope = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match == Match.NONE:
            continue
        route_methods = getattr(route, "methods", None)
        methods.update(route_methods if route_methods is not None else ("GET",))  # a Mount: static files
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


# --------------------------------------------------------------------------- the app


async def _engine(request: Request) -> Any:
    # async: FastAPI runs plain-def dependencies in its threadpool, a hop each request
    return request.app.state.engine


def _created(content: Any) -> JSONResponse:
    return JSONResponse(status_code=201, content=content)


def _ok(content: Any) -> JSONResponse:
    return JSONResponse(status_code=200, content=content)


ClientIdPath = Annotated[
    str,
    Path(..., max_length=100, description="client id (a UUID)", json_schema_extra={"format": "uuid"}),
]
IdempotencyKey = Annotated[
    str,  # optional (default None); not `str | None`: a header is never null
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=contract.IDEMPOTENCY_KEY_MAX_CHARS,
        pattern=contract.IDEMPOTENCY_KEY_PATTERN,
        description=(
            "optional, 1 to 200 visible ASCII characters; a repeated request with the same key "
            "returns the original transaction"
        ),
    ),
]
EngineDep = Annotated[Any, Depends(_engine)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def _authorized_client(client_id: ClientIdPath, request: Request, principal: PrincipalDep) -> str:
    """The path's client id once the caller may use it (checked before the body is validated,
    so another client's id answers 404 whatever the rest of the request looks like)."""
    authorize_client(request, principal, client_id)
    return client_id


AuthorizedClient = Annotated[str, Depends(_authorized_client)]

DESCRIPTION = """
REST host for the **fundcore** engine: fund subscriptions and cancellations for an asset
manager's clients, with email/SMS notifications sent after each change commits.

* Authenticate with `Authorization: Bearer <jwt>` (HS256; claims `sub`, `role` = `client` or
  `admin`, `exp`). Admins may do everything; a client only reads and acts on its own id
  (another client's id answers 404 `CLIENT_NOT_FOUND`, as if it did not exist).
* Money is a JSON string with 2 decimals (`"75000.00"`). Requests may send a string or an
  integer; JSON floats such as `80000.5` are refused with `VALIDATION_ERROR`. The subscribe
  body lists, per fund, the amounts it accepts.
* Every error is `{"status": "error", "code", "message", "errors"}`; each response below lists
  the codes of its status. A JSON body that repeats a key is refused.
* Send `X-Request-ID` to correlate logs; every response echoes it (one is generated if absent).
* Every `GET` also answers `HEAD`. Bodies are limited to 64 KiB, request headers to 16 KiB.
"""


def create_app(
    settings: Settings | None = None,
    engine: Any | None = None,
    notifier: Any | None = None,
    *,
    start_dispatcher: bool | None = None,
) -> FastAPI:
    """Build the app.

    ``engine``: an open ``fundcore.Engine`` (default: opened on ``settings.store`` at startup).
    ``notifier``: the object whose ``send`` delivers notifications (default: SMTP/SMS from settings).
    ``start_dispatcher``: run the background dispatcher (default ``settings.dispatch_enabled``).
    """
    settings = settings or Settings.from_env()
    run_dispatcher = settings.dispatch_enabled if start_dispatcher is None else start_dispatcher
    startup_failures: list[Exception] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        owned = engine is None
        try:
            eng = engine if engine is not None else fundcore.Engine(settings.store, **settings.engine_kwargs())
        except fundcore.FundcoreError as error:
            # e.g. the store is open in another process: one line, the engine's own words; the
            # middleware keeps the traceback out of the server's "startup failed" report
            log.error("cannot start: %s", printable(settings.redact(str(getattr(error, "message", error)))))
            startup_failures.append(error)
            raise
        settings.warn_about_local_defaults()
        app.state.engine = eng
        app.state.notifier = notifier if notifier is not None else build_notifier(settings.smtp, settings.sms)
        app.state.dispatcher = Dispatcher(
            eng, app.state.notifier, interval_ms=settings.dispatch_interval_ms, batch=settings.dispatch_batch
        )
        if run_dispatcher:
            app.state.dispatcher.start()
        log.info(
            "fundcore host ready (store: %s, pid %d)", settings.store_label if owned else "provided engine", os.getpid()
        )
        try:
            yield
        finally:
            app.state.dispatcher.stop()
            try:
                eng.flush()
                if owned and hasattr(eng, "close"):
                    eng.close()  # releases the store's directory lock
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
    app.router.route_class = MoneySafeRoute
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.token_verifier = TokenVerifier(settings.jwt_secret)
    _install_handlers(app, settings)
    app.add_middleware(RequestContextMiddleware, locale=lambda: settings.locale, startup_failures=startup_failures)
    _add_routes(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            engine_now = getattr(app.state, "engine", None)
            document = contract.complete_document(FastAPI.openapi(app), engine_now, settings.locale)
            if engine_now is None:
                app.openapi_schema = None  # built again once the engine is open
            return document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _add_routes(app: FastAPI) -> None:
    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness probe (no auth)",
             operation_id="health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/funds",
        response_model=list[FundOut],
        tags=["funds"],
        summary="The fund catalogue",
        operation_id="listFunds",
        responses=_errors(401, 429, 503),
    )
    def list_funds(principal: PrincipalDep, engine: EngineDep) -> JSONResponse:
        return _ok([f.to_dict() for f in engine.funds()])

    @app.post(
        "/clients",
        status_code=201,
        response_model=ClientOut,
        tags=["clients"],
        summary="Register a client (admin only); starts with the configured initial balance",
        operation_id="registerClient",
        responses=_errors(401, 403, 422, 429, 503),
    )
    def register_client(
        body: RegisterClientRequest,
        principal: Annotated[Principal, Depends(require_admin)],
        engine: EngineDep,
    ) -> JSONResponse:
        client = engine.register_client(body.name, body.email, body.phone, channel=body.channel)
        log.info("registered client %s", client.id)
        return _created(client.to_dict())

    @app.get(
        "/clients/{client_id}",
        response_model=ClientOut,
        tags=["clients"],
        summary="A client, with its available balance",
        operation_id="getClient",
        responses=_errors(401, 404, 422, 429, 503),
    )
    def get_client(client_id: AuthorizedClient, engine: EngineDep) -> JSONResponse:
        return _ok(engine.client(client_id).to_dict())

    @app.get(
        "/clients/{client_id}/subscriptions",
        response_model=list[SubscriptionOut],
        tags=["subscriptions"],
        summary="The client's active subscriptions",
        operation_id="listSubscriptions",
        responses=_errors(401, 404, 422, 429, 503),
    )
    def list_subscriptions(client_id: AuthorizedClient, engine: EngineDep) -> JSONResponse:
        return _ok([s.to_dict() for s in engine.subscriptions(client_id)])

    @app.post(
        "/clients/{client_id}/subscriptions",
        status_code=201,
        response_model=TransactionOut,
        tags=["subscriptions"],
        summary="Subscribe to a fund (apertura)",
        operation_id="subscribe",
        responses=_errors(401, 404, 409, 422, 429, 503),
    )
    def subscribe(
        client_id: AuthorizedClient,
        body: SubscribeRequest,
        engine: EngineDep,
        idempotency_key: IdempotencyKey = None,  # type: ignore[assignment]
    ) -> JSONResponse:
        tx = engine.subscribe(client_id, body.fund_id, body.amount_decimal(), idempotency_key=idempotency_key)
        log.info("client %s subscribed to fund %s: transaction %s", printable(client_id), body.fund_id, tx.id)
        return _created(tx.to_dict())

    @app.delete(
        "/clients/{client_id}/subscriptions/{fund_id}",
        response_model=TransactionOut,
        tags=["subscriptions"],
        summary="Cancel a subscription (cancelación); refunds the subscribed amount",
        operation_id="cancelSubscription",
        responses=_errors(401, 404, 409, 422, 429, 503),
    )
    def cancel(
        client_id: AuthorizedClient,
        fund_id: Annotated[int, Path(ge=0, le=contract.FUND_ID_MAX, description="fund id (see GET /funds)")],
        engine: EngineDep,
        idempotency_key: IdempotencyKey = None,  # type: ignore[assignment]
    ) -> JSONResponse:
        tx = engine.cancel(client_id, fund_id, idempotency_key=idempotency_key)
        log.info("client %s cancelled fund %s: transaction %s", printable(client_id), fund_id, tx.id)
        return _ok(tx.to_dict())

    @app.get(
        "/clients/{client_id}/transactions",
        response_model=TransactionPage,
        tags=["transactions"],
        summary="Transaction history, newest first, paginated",
        operation_id="listTransactions",
        responses=_errors(401, 404, 422, 429, 503),
    )
    def list_transactions(
        client_id: AuthorizedClient,
        engine: EngineDep,
        limit: Annotated[
            int, Query(ge=1, le=contract.PAGE_MAX, description=f"page size, 1 to {contract.PAGE_MAX}")
        ] = 50,
        before: Annotated[
            str,  # optional (default None); not `str | None`: a query parameter is never null
            Query(
                pattern=contract.UUID_PATTERN,
                description="exclusive cursor: the `next` of the previous page (a transaction id)",
                json_schema_extra={"format": "uuid"},
            ),
        ] = None,  # type: ignore[assignment]
    ) -> JSONResponse:
        items = [t.to_dict() for t in engine.history(client_id, limit=limit, before=before)]
        next_cursor = items[-1]["id"] if len(items) == limit and items else None
        return _ok({"items": items, "next": next_cursor})

    @app.get(
        "/clients/{client_id}/notifications",
        response_model=list[NotificationOut],
        tags=["notifications"],
        summary="The client's notification outbox entries, newest first",
        operation_id="listNotifications",
        responses=_errors(401, 404, 422, 429, 503),
    )
    def list_notifications(client_id: AuthorizedClient, engine: EngineDep) -> JSONResponse:
        return _ok([n.to_dict() for n in engine.notifications(client_id)])


def __getattr__(name: str) -> Any:
    """``uvicorn fundcore_host.app:app``: the app with settings from the environment (built on
    first use, so importing this module reads no environment; the store opens at startup)."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
