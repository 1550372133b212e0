"""The REST error envelope and the exception handlers that write it (docs/errors.md).

Every error response of the host, whoever raised it, has exactly this shape::

    {"status": "error", "code": "<CODE>", "message": "<text>", "errors": {<field>: <text>} | null}

Engine errors keep their code, message and HTTP status (``exc.http_status``, the core's), and a
``VALIDATION_ERROR`` its field and problem (``exc.field``, ``exc.problem``); a 503
(``STORAGE_ERROR``, ``OUTCOME_UNKNOWN``) also has ``Retry-After``. The host's own
failures use ``UNAUTHORIZED`` (401), ``FORBIDDEN`` (403), ``NOT_FOUND`` (404, unknown route),
``METHOD_NOT_ALLOWED`` (405), ``PAYLOAD_TOO_LARGE`` (413), ``RATE_LIMITED`` (429),
``REQUEST_HEADERS_TOO_LARGE`` (431) and ``INTERNAL_ERROR`` (500); a request whose types do not
fit its models is ``VALIDATION_ERROR`` (422) with one entry per offending field in ``errors``.
The host's own accounts add ``INVALID_CREDENTIALS`` and ``INVALID_REFRESH_TOKEN`` (401) and
``ACCOUNT_EXISTS`` (409); their store's failures are the engine's two 503 codes, with the host's
texts (``STORAGE_ERROR``: nothing saved; ``OUTCOME_UNKNOWN``: a sign-up's client was registered and
its account is not complete yet, which the same request repeated completes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

import fundcore

from .json_body import DUPLICATE_KEY_ERROR, INVALID_JSON_ERROR
from .logs import printable

log = logging.getLogger("fundcore_host")

#: Codes and statuses of the host's own failures.
HOST_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "REQUEST_HEADERS_TOO_LARGE": 431,
    "INTERNAL_ERROR": 500,
    # the host's own accounts (routers/account.py)
    "INVALID_CREDENTIALS": 401,
    "INVALID_REFRESH_TOKEN": 401,
    "ACCOUNT_EXISTS": 409,
}

#: The host's own messages, in the engine's locales.
MESSAGES: dict[str, dict[str, str]] = {
    "es": {
        "VALIDATION_ERROR": "La solicitud no es válida",
        "UNAUTHORIZED": "Se requiere un token de acceso válido",
        "FORBIDDEN": "No tiene permiso para realizar esta operación",
        "NOT_FOUND": "El recurso solicitado no existe",
        "METHOD_NOT_ALLOWED": "Método no permitido para este recurso",
        "PAYLOAD_TOO_LARGE": "El cuerpo de la solicitud es demasiado grande",
        "UNSUPPORTED_MEDIA_TYPE": "El cuerpo de la solicitud debe ser JSON",
        "RATE_LIMITED": "Demasiadas solicitudes; intente de nuevo más tarde",
        "REQUEST_HEADERS_TOO_LARGE": "Los encabezados de la solicitud son demasiado grandes",
        "INTERNAL_ERROR": "Error interno del servidor",
        "BAD_JSON": "El cuerpo de la solicitud no es JSON válido",
        "DUPLICATE_KEY": "la clave aparece más de una vez en el cuerpo JSON",
        "INVALID_CREDENTIALS": "El correo o la contraseña no son correctos",
        "INVALID_REFRESH_TOKEN": "El token de renovación no es válido; inicie sesión de nuevo",
        "ACCOUNT_EXISTS": "Ya existe una cuenta con este correo",
        "ACCOUNT_STORE_FAILED": "Las cuentas no están disponibles en este momento; no se guardó nada, intente de nuevo",
        "REGISTRATION_INCOMPLETE": (
            "El cliente quedó registrado pero su cuenta no se pudo completar; repita la solicitud o inicie sesión"
        ),
    },
    "en": {
        "VALIDATION_ERROR": "The request is not valid",
        "UNAUTHORIZED": "A valid access token is required",
        "FORBIDDEN": "You are not allowed to perform this operation",
        "NOT_FOUND": "The requested resource does not exist",
        "METHOD_NOT_ALLOWED": "Method not allowed for this resource",
        "PAYLOAD_TOO_LARGE": "The request body is too large",
        "UNSUPPORTED_MEDIA_TYPE": "The request body must be JSON",
        "RATE_LIMITED": "Too many requests; try again later",
        "REQUEST_HEADERS_TOO_LARGE": "The request headers are too large",
        "INTERNAL_ERROR": "Internal server error",
        "BAD_JSON": "The request body is not valid JSON",
        "DUPLICATE_KEY": "the key appears more than once in the JSON body",
        "INVALID_CREDENTIALS": "The email or the password is not correct",
        "INVALID_REFRESH_TOKEN": "The refresh token is not valid; sign in again",
        "ACCOUNT_EXISTS": "An account with this email exists already",
        "ACCOUNT_STORE_FAILED": "Accounts are not available right now; nothing was saved, try again",
        "REGISTRATION_INCOMPLETE": (
            "The client was registered but its account could not be completed; repeat the request or sign in"
        ),
    },
}


class ErrorEnvelope(BaseModel):
    """Every error response (documented in the OpenAPI schema; each response there adds the
    codes of its status and an example)."""

    status: Literal["error"]
    code: str
    message: str = Field(..., description="in the host's locale")
    errors: dict[str, str] | None = Field(
        ..., description="for VALIDATION_ERROR, each offending field and its problem; else null"
    )


class HostError(Exception):
    """A failure raised by the host itself (auth, rate limit, ...), rendered as the envelope."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.status = status if status is not None else HOST_STATUS.get(code, 500)
        self.message = message
        self.errors = dict(errors) if errors is not None else None
        self.headers = dict(headers) if headers else None
        super().__init__(f"{code}: {message}")


def host_message(code: str, locale: str = "es") -> str:
    table = MESSAGES.get(locale, MESSAGES["es"])
    return table.get(code, MESSAGES["es"].get(code, code))


def envelope(
    status: int,
    code: str,
    message: str,
    errors: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one way the host writes an error response."""
    body = {"status": "error", "code": code, "message": message, "errors": dict(errors) if errors else None}
    return JSONResponse(status_code=status, content=body, headers=dict(headers or {}))


#: ``Retry-After`` of a 503 (``STORAGE_ERROR``, ``OUTCOME_UNKNOWN``): the store failed or could
#: not be reached, so try again shortly; after ``OUTCOME_UNKNOWN`` the same request with the same
#: ``Idempotency-Key`` (docs/errors.md, "What a caller does").
STORE_RETRY_AFTER_S = 1


def engine_error_response(exc: fundcore.FundcoreError) -> JSONResponse:
    """A ``fundcore.FundcoreError`` as the engine says it: its code, message and HTTP status,
    and for a ``VALIDATION_ERROR`` its field with the problem; a 503 says when to try again."""
    errors = {exc.field: exc.problem} if exc.field is not None and exc.problem is not None else None
    headers = {"Retry-After": str(STORE_RETRY_AFTER_S)} if exc.http_status == 503 else None
    return envelope(exc.http_status, exc.code, exc.message, errors, headers)


def field_name(loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into a field name.

    ``("body", "amount")`` -> ``"amount"``, ``("query", "limit")`` -> ``"limit"``,
    ``("header", "Idempotency-Key")`` -> ``"Idempotency-Key"``, ``("body",)`` -> ``"body"``.
    """
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    # pydantic reports the failing branch of a union (e.g. "str", "int"); keep the field.
    parts = [p for p in parts if p not in {"str", "int", "bool", "none", "constrained-str", "constrained-int"}]
    if parts and parts[0] in {"body"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) if parts else "body"


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """The ``responses`` of an operation that may answer these error statuses (the document
    then gets each one's codes and example from ``contract.complete_document``)."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


# --------------------------------------------------------------------------- exception handlers

#: What an HTTP error raised by Starlette or FastAPI becomes: code and status.
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


def validation_response(exc: RequestValidationError, locale: str) -> JSONResponse:
    """A request that does not fit its models: 422 with each offending field's problem."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind in ("json_invalid", INVALID_JSON_ERROR):
            name, text = "body", host_message("BAD_JSON", locale)
        elif kind == DUPLICATE_KEY_ERROR:
            name, text = str(err.get("ctx", {}).get("key", "body")), host_message("DUPLICATE_KEY", locale)
        else:
            name = field_name(loc)
            text = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        errors.setdefault(name, text)
    return envelope(422, "VALIDATION_ERROR", host_message("VALIDATION_ERROR", locale), errors or None)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """Every method of every route whose path matches the request (RFC 9110 §15.5.6), HEAD
    wherever GET is, as the ``Allow`` header of a 405."""
    methods: set[str] = set()
    # inside a Mount the scope's root_path includes the mount's prefix: match from the top
    scope = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    for route in routes:
        if isinstance(route, Mount):
            if route.matches(scope)[0] != Match.NONE:
                methods.add("GET")  # the static files of the docs
        elif isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods.update(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_exception_handlers(app: FastAPI, locale: str, included_routes: Sequence[BaseRoute]) -> None:
    """Every failure a request can meet, rendered as the envelope with its status.

    ``included_routes``: the routes of the routers the app includes (FastAPI keeps an included
    router as one entry of ``app.routes``), for the ``Allow`` header of a 405.
    """

    @app.exception_handler(fundcore.FundcoreError)
    async def engine_error(request: Request, exc: fundcore.FundcoreError) -> JSONResponse:
        response = engine_error_response(exc)
        if response.status_code >= 500:
            log.error("engine error %s: %s", printable(exc.code), printable(exc.message))
        return response

    @app.exception_handler(HostError)
    async def host_error(request: Request, exc: HostError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message or host_message(exc.code, locale), exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc, locale)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
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
            headers["Allow"] = allowed_methods([*app.routes, *included_routes], request.scope)
        return envelope(status, code, message, None, headers)
