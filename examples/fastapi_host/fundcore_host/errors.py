"""The REST error envelope and the HTTP status of every error code (docs/errors.md).

Every error response of the host, whoever raised it, has exactly this shape::

    {"status": "error", "code": "<CODE>", "message": "<text>", "errors": {<field>: <text>} | null}

Engine errors keep their code and message (docs/errors.md). The host's own failures use
``UNAUTHORIZED`` (401), ``FORBIDDEN`` (403), ``NOT_FOUND`` (404, unknown route),
``METHOD_NOT_ALLOWED`` (405), ``PAYLOAD_TOO_LARGE`` (413), ``RATE_LIMITED`` (429),
``REQUEST_HEADERS_TOO_LARGE`` (431) and ``INTERNAL_ERROR`` (500). Request validation failures
are ``VALIDATION_ERROR`` (422) with one entry per offending field in ``errors``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

#: HTTP status of every engine error code (docs/errors.md).
ENGINE_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "BELOW_MINIMUM": 422,
    "INSUFFICIENT_BALANCE": 409,
    "ALREADY_SUBSCRIBED": 409,
    "NOT_SUBSCRIBED": 409,
    "FUND_INACTIVE": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "CLIENT_NOT_FOUND": 404,
    "FUND_NOT_FOUND": 404,
    "TRANSACTION_NOT_FOUND": 404,
    "STORAGE_ERROR": 503,
}

#: Codes and statuses of the host's own failures.
HOST_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CLIENT_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "REQUEST_HEADERS_TOO_LARGE": 431,
    "INTERNAL_ERROR": 500,
}

#: The host's own messages, in the engine's locales.
MESSAGES: dict[str, dict[str, str]] = {
    "es": {
        "VALIDATION_ERROR": "La solicitud no es válida",
        "UNAUTHORIZED": "Se requiere un token de acceso válido",
        "FORBIDDEN": "No tiene permiso para realizar esta operación",
        "NOT_FOUND": "El recurso solicitado no existe",
        "CLIENT_NOT_FOUND": "Cliente no encontrado",
        "METHOD_NOT_ALLOWED": "Método no permitido para este recurso",
        "PAYLOAD_TOO_LARGE": "El cuerpo de la solicitud es demasiado grande",
        "UNSUPPORTED_MEDIA_TYPE": "El cuerpo de la solicitud debe ser JSON",
        "RATE_LIMITED": "Demasiadas solicitudes; intente de nuevo más tarde",
        "REQUEST_HEADERS_TOO_LARGE": "Los encabezados de la solicitud son demasiado grandes",
        "INTERNAL_ERROR": "Error interno del servidor",
        "BAD_JSON": "El cuerpo de la solicitud no es JSON válido",
        "DUPLICATE_KEY": "la clave aparece más de una vez en el cuerpo JSON",
        "FORMAT": "no tiene el formato aceptado (ver el documento OpenAPI, /openapi.json)",
    },
    "en": {
        "VALIDATION_ERROR": "The request is not valid",
        "UNAUTHORIZED": "A valid access token is required",
        "FORBIDDEN": "You are not allowed to perform this operation",
        "NOT_FOUND": "The requested resource does not exist",
        "CLIENT_NOT_FOUND": "Client not found",
        "METHOD_NOT_ALLOWED": "Method not allowed for this resource",
        "PAYLOAD_TOO_LARGE": "The request body is too large",
        "UNSUPPORTED_MEDIA_TYPE": "The request body must be JSON",
        "RATE_LIMITED": "Too many requests; try again later",
        "REQUEST_HEADERS_TOO_LARGE": "The request headers are too large",
        "INTERNAL_ERROR": "Internal server error",
        "BAD_JSON": "The request body is not valid JSON",
        "DUPLICATE_KEY": "the key appears more than once in the JSON body",
        "FORMAT": "does not have the accepted format (see the OpenAPI document, /openapi.json)",
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
    body: dict[str, Any] = {
        "status": "error",
        "code": code,
        "message": message,
        "errors": dict(errors) if errors else None,
    }
    return JSONResponse(status_code=status, content=jsonable_encoder(body), headers=dict(headers or {}))


def engine_error_response(exc: Exception) -> JSONResponse:
    """Render a ``fundcore.FundcoreError`` with the status of its code (docs/errors.md)."""
    code = str(getattr(exc, "code", "") or "INTERNAL_ERROR")
    message = str(getattr(exc, "message", "") or exc)
    status = ENGINE_STATUS.get(code, 500)
    errors = None
    field = getattr(exc, "field", None)
    if code == "VALIDATION_ERROR" and field:
        name = str(field)
        # the engine's message reads "<field>: <problem>"; the per-field entry keeps the problem
        problem = message[len(name) + 2:] if message.startswith(f"{name}: ") else message
        errors = {name: problem or message}
    return envelope(status, code, message, errors)


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """Turn a pydantic error location into a field name.

    ``("body", "amount")`` -> ``"amount"``, ``("query", "limit")`` -> ``"limit"``,
    ``("header", "Idempotency-Key")`` -> ``"Idempotency-Key"``, ``("body",)`` -> ``"body"``.
    """
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    # pydantic reports the failing branch of a union (e.g. "str", "int"); keep the field.
    parts = [p for p in parts if p not in {"str", "int", "constrained-str", "constrained-int"}]
    if parts and parts[0] in {"body"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) if parts else "body"
