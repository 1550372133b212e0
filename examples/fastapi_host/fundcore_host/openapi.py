"""The OpenAPI document: what FastAPI cannot say by itself about the routes.

The request models check only types and size caps; the engine decides every value (an amount, an
id, a name, a page size, ...) and its refusal is the answer. So the document states the engine's
rules where ``fundcore`` exposes them (``MAX_PAGE``, ``CHANNELS``, the limits in the field
descriptions) and admits anything of the right type otherwise: a value it admits and the engine
refuses is answered with a documented 422 in the envelope, in the engine's words.

This module adds the error responses of every operation (each status with its codes, from
``fundcore.ERROR_CODES`` and the host's own, and an example made by an engine), the response
headers and the links between operations.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import fundcore

from .errors import HOST_STATUS, host_message
from .middleware import MAX_BODY_BYTES, MAX_HEADER_BYTES, REQUEST_ID_PATTERN

#: Statuses every operation may answer, besides its own.
COMMON_ERRORS = (405, 413, 431, 500)
#: Every error code, by HTTP status.
CODES_BY_STATUS: dict[int, list[str]] = {}
for _code, _status in sorted({**fundcore.ERROR_CODES, **HOST_STATUS}.items()):
    CODES_BY_STATUS.setdefault(_status, []).append(_code)
#: The example code shown for each status.
EXAMPLE_CODE = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "CLIENT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "INSUFFICIENT_BALANCE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BELOW_MINIMUM",
    429: "RATE_LIMITED",
    431: "REQUEST_HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "STORAGE_ERROR",
}

_REQUEST_ID_HEADER = {
    "description": "the request's id: the `X-Request-ID` sent (if it matched the pattern) or a generated one",
    "required": True,
    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
}
_STATUS_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "always `Bearer`",
            "required": True,
            "schema": {"type": "string", "enum": ["Bearer"]},
        }
    },
    405: {"Allow": {"description": "every method of the path", "required": True, "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "seconds until the caller's window ends",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": (
                "seconds to wait before trying again (after `OUTCOME_UNKNOWN`, the same request with the "
                "same `Idempotency-Key`)"
            ),
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

#: The links schemathesis and readers follow from a response to the next operation.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("registerClient", "201"): {
        "getClient": {"operationId": "getClient", "parameters": {"client_id": "$response.body#/id"}},
        "subscribe": {"operationId": "subscribe", "parameters": {"client_id": "$response.body#/id"}},
        "listSubscriptions": {"operationId": "listSubscriptions", "parameters": {"client_id": "$response.body#/id"}},
        "listTransactions": {"operationId": "listTransactions", "parameters": {"client_id": "$response.body#/id"}},
        "listNotifications": {"operationId": "listNotifications", "parameters": {"client_id": "$response.body#/id"}},
        "updateClient": {"operationId": "updateClient", "parameters": {"client_id": "$response.body#/id"}},
    },
    ("updateClient", "200"): {
        "getClient": {"operationId": "getClient", "parameters": {"client_id": "$response.body#/id"}},
        "subscribe": {"operationId": "subscribe", "parameters": {"client_id": "$response.body#/id"}},
    },
    ("createFund", "201"): {
        "updateFund": {"operationId": "updateFund", "parameters": {"fund_id": "$response.body#/id"}},
    },
    ("subscribe", "201"): {
        "cancelSubscription": {
            "operationId": "cancelSubscription",
            "parameters": {"client_id": "$response.body#/client_id", "fund_id": "$response.body#/fund_id"},
        },
        "listTransactions": {
            "operationId": "listTransactions",
            "parameters": {"client_id": "$response.body#/client_id"},
        },
        "listNotifications": {
            "operationId": "listNotifications",
            "parameters": {"client_id": "$response.body#/client_id"},
        },
    },
    ("cancelSubscription", "200"): {
        "getClient": {"operationId": "getClient", "parameters": {"client_id": "$response.body#/client_id"}},
        "subscribe": {"operationId": "subscribe", "parameters": {"client_id": "$response.body#/client_id"}},
    },
}


def _error_examples(locale: Literal["es", "en"]) -> dict[int, dict[str, Any]]:
    """One real envelope per status: host texts from the host, engine texts from an engine."""
    examples = {
        status: {"status": "error", "code": code, "message": host_message(code, locale), "errors": None}
        for status, code in EXAMPLE_CODE.items()
        if code in HOST_STATUS
    }
    with fundcore.Engine(locale=locale) as engine:
        client = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
        engine.subscribe(client.id, 1, Decimal("80000"))
        for status, call in (
            (404, lambda: engine.client("0190b2a4-7c1e-7000-8000-000000000000")),
            (409, lambda: engine.subscribe(client.id, 4, Decimal("450000"))),  # after fund 1 below
            (422, lambda: engine.subscribe(client.id, 2, Decimal("100000"))),
        ):
            try:
                call()
            except fundcore.FundcoreError as error:
                examples[status] = {"status": "error", "code": error.code, "message": error.message, "errors": None}
    examples[503] = {
        "status": "error",
        "code": "STORAGE_ERROR",
        "message": "(the engine's message: the store failed and nothing was changed)",
        "errors": None,
    }
    return examples


def _error_response(status: int, description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": _REQUEST_ID_HEADER, **_STATUS_HEADERS.get(status, {})},
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/ErrorEnvelope"},
                        {"properties": {"code": {"enum": CODES_BY_STATUS[status]}}},
                    ]
                },
                "example": example,
            }
        },
    }


_DESCRIPTIONS = {
    401: "missing, malformed, expired or wrongly signed token",
    403: "admins only",
    404: "no such client (or another client's id), fund or route",
    405: "method not allowed on this path",
    409: (
        "refused by the state of the account (balance, subscriptions, idempotency key) or of the catalogue "
        "(a fund closed to new subscriptions, a fund id already taken)"
    ),
    413: f"body over {MAX_BODY_BYTES // 1024} KiB",
    422: (
        "a value the engine refuses (`VALIDATION_ERROR`: `errors` names the field; `BELOW_MINIMUM`), or a "
        "request whose types do not fit (`errors` names each field)"
    ),
    429: "too many requests from this caller",
    431: f"request headers over {MAX_HEADER_BYTES // 1024} KiB",
    500: "a bug of the host (details in its log, under the request id)",
    503: (
        "the store failed or cannot be reached: nothing was changed (`STORAGE_ERROR`), or a change was sent and "
        "its outcome could not be learned in time (`OUTCOME_UNKNOWN`: it may have been saved; repeat the request "
        "with the same `Idempotency-Key`)"
    ),
}


def complete_document(document: dict[str, Any], locale: Literal["es", "en"]) -> dict[str, Any]:
    """Adds to FastAPI's document what it cannot say by itself: the error responses of every
    operation (code enum and an example per status), the response headers and the links."""
    examples = _error_examples(locale)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status in COMMON_ERRORS:
                responses.setdefault(str(status), {})
            for key, response in list(responses.items()):
                status = int(key)
                if status >= 400:
                    responses[key] = _error_response(status, _DESCRIPTIONS[status], examples[status])
                else:
                    response.setdefault("headers", {})["X-Request-ID"] = _REQUEST_ID_HEADER
                    links = LINKS.get((operation.get("operationId", ""), key))
                    if links:
                        response["links"] = links
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorEnvelope"]["properties"]["code"] = {
        "type": "string",
        "enum": sorted({**fundcore.ERROR_CODES, **HOST_STATUS}),
        "description": "stable error code; its HTTP status is fixed",
    }
    return document
