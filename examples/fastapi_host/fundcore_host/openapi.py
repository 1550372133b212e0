"""The OpenAPI document: what FastAPI cannot say by itself about the routes.

The document states the engine's rules on each value a request carries (models.py builds them
from ``fundcore``'s constants; the page sizes come from ``fundcore.MAX_PAGE``), so a request it
admits is never refused as invalid; the engine still decides every value, and a request the
document does not admit is answered with a documented 422 in the envelope, in the engine's words.

This module adds the error responses of every operation (each status with its codes, from
``fundcore.ERROR_CODES`` and the host's own, and an example: the host's own text, or one an
engine wrote in a child process, so that building the document runs no operation in the serving
process and adds nothing to its ``/metrics``), the schema of the ``Idempotency-Key`` header, the
response headers and the links between operations.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import fundcore

from .errors import HOST_STATUS, host_message
from .middleware import MAX_BODY_BYTES, MAX_HEADER_BYTES, REQUEST_ID_PATTERN
from .models import IDEMPOTENCY_KEY_SCHEMA

log = logging.getLogger("fundcore_host")

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
    ("listFunds", "200"): {
        "getFund": {"operationId": "getFund", "parameters": {"fund_id": "$response.body#/0/id"}},
    },
    ("createFund", "201"): {
        "getFund": {"operationId": "getFund", "parameters": {"fund_id": "$response.body#/id"}},
        "updateFund": {"operationId": "updateFund", "parameters": {"fund_id": "$response.body#/id"}},
    },
    ("updateFund", "200"): {
        "getFund": {"operationId": "getFund", "parameters": {"fund_id": "$response.body#/id"}},
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


#: The client id of the example of a 404: one no client has.
UNKNOWN_CLIENT_ID = "0190b2a4-7c1e-7000-8000-000000000000"


def _engine_refusals(locale: str) -> dict[int, tuple[str, str]]:
    """The engine's refusals shown as examples, by status: ``(code, message)``, made on a
    temporary store. Runs in a child process (:func:`_engine_examples`), where it is sent as
    source: self-contained."""
    from decimal import Decimal

    import fundcore

    refusals: dict[int, tuple[str, str]] = {}
    with fundcore.Engine(locale=locale) as engine:  # type: ignore[arg-type]
        client = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
        engine.subscribe(client.id, 1, Decimal("80000"))
        # 409: the balance left after fund 1 does not cover fund 4; 422: below fund 2's minimum
        for status, fund_id, amount in ((409, 4, Decimal("450000")), (422, 2, Decimal("100000"))):
            try:
                engine.subscribe(client.id, fund_id, amount)
            except fundcore.FundcoreError as error:
                refusals[status] = (error.code, error.message)
    return refusals


@functools.cache
def _engine_examples(locale: str) -> dict[int, tuple[str, str]]:
    """:func:`_engine_refusals`, run by this interpreter in a child process with the same
    ``fundcore``: run here, its operations would be counted by this process's metrics recorder
    (``fundcore.enable_metrics()``) and ``/metrics`` would show them as served traffic. Once per
    process and locale; ``{}`` (and a warning) when the child fails."""
    script = "\n".join(
        [inspect.getsource(_engine_refusals), "import json, sys", "print(json.dumps(_engine_refusals(sys.argv[1])))"]
    )
    package_root = str(Path(fundcore.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, locale],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return {int(status): (code, message) for status, (code, message) in json.loads(done.stdout).items()}
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        log.warning(
            "the OpenAPI document shows no example of the engine's refusals: %s %s",
            error,
            getattr(error, "stderr", "") or "",
        )
        return {}


def _error_examples(locale: Literal["es", "en"]) -> dict[int, dict[str, Any]]:
    """One real envelope per status: the host's texts from the host, the engine's
    ``CLIENT_NOT_FOUND`` from ``fundcore.client_not_found`` (no store, no operation) and its
    other refusals from an engine in a child process (:func:`_engine_examples`)."""
    made = {code: host_message(code, locale) for code in EXAMPLE_CODE.values() if code in HOST_STATUS}
    not_found = fundcore.client_not_found(UNKNOWN_CLIENT_ID, locale)
    made[not_found.code] = not_found.message
    shown = dict(EXAMPLE_CODE)
    for status, (code, message) in _engine_examples(locale).items():
        shown[status], made[code] = code, message
    made["STORAGE_ERROR"] = "(the engine's message: the store failed and nothing was changed)"
    return {
        status: {
            "status": "error",
            "code": code,
            "message": made.get(code, f"(the engine's message for {code})"),
            "errors": None,
        }
        for status, code in shown.items()
    }


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


#: Keywords whose numbers FastAPI's OpenAPI models read as floats (``maximum: 200.0``).
_NUMBER_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})


def _whole_bounds(node: object) -> None:
    """Writes the whole numbers of :data:`_NUMBER_KEYWORDS` as integers, as the models state
    them (``MAX_AMOUNT`` is ``1000000000000``, not ``1000000000000.0``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NUMBER_KEYWORDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _whole_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _whole_bounds(item)


def complete_document(document: dict[str, Any], locale: Literal["es", "en"]) -> dict[str, Any]:
    """Adds to FastAPI's document what it cannot say by itself: the error responses of every
    operation (code enum and an example per status), the schema of the ``Idempotency-Key``
    header, the response headers and the links."""
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
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
                    parameter["schema"] = dict(IDEMPOTENCY_KEY_SCHEMA)
    _whole_bounds(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorEnvelope"]["properties"]["code"] = {
        "type": "string",
        "enum": sorted({**fundcore.ERROR_CODES, **HOST_STATUS}),
        "description": "stable error code; its HTTP status is fixed",
    }
    return document
