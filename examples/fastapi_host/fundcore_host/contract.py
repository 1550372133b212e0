"""The REST contract: the request shapes the host checks, and the OpenAPI document built from them.

The engine checks every value it receives and stays the authority on the rules. The OpenAPI
document must admit only requests the server accepts, and the server must refuse the requests
the document does not admit; so the request models check the shapes below before the engine
sees a value. Each shape is a subset of what the engine accepts (the engine also trims names
and emails, which the shapes leave out), and the amounts a fund accepts come from the engine's
own catalogue and initial balance. The patterns use only what JSON Schema (ECMA-262), Python's
``re`` and Rust's ``regex`` read alike: no ``\\d``, ``\\w`` or ``\\s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

import fundcore

from .errors import ENGINE_STATUS, HOST_STATUS, host_message

#: Characters the engine counts as white space and trims (Unicode White_Space), controls aside.
_SPACES = " \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_SPACES_BUT_ASCII = "\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

#: 1 to 100 characters, no control character, at least one that is not white space.
NAME_PATTERN = f"^[{_SPACES}]*[^\\x00-\\x20\\x7f-\\xa0{_SPACES_BUT_ASCII}][^\\x00-\\x1f\\x7f-\\x9f]*$"
NAME_MAX_CHARS = 100
#: A plain address: visible ASCII before one ``@``, a dotted domain of letters, digits and ``-``.
EMAIL_PATTERN = "^[\\x21-\\x3f\\x41-\\x7e]{1,64}@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+$"
EMAIL_MAX_CHARS = 254
#: E.164: ``+``, a non-zero country digit, 8 to 15 digits in all.
PHONE_PATTERN = "^\\+[1-9][0-9]{7,14}$"
#: 1 to 200 visible ASCII characters (inner spaces allowed): what every HTTP stack carries as is.
IDEMPOTENCY_KEY_PATTERN = "^[\\x21-\\x7e](?:[\\x20-\\x7e]{0,198}[\\x21-\\x7e])?$"
IDEMPOTENCY_KEY_MAX_CHARS = 200
#: A UUID in its hyphenated form.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: A decimal amount as text: no sign, no leading zero, at most 2 decimals (the engine checks
#: that it is positive, within its maximum and at least the fund's minimum).
AMOUNT_SYNTAX = "^(?:0|[1-9][0-9]{0,12})(?:\\.[0-9]{1,2})?$"
AMOUNT_MAX_CHARS = 16
#: What ``X-Request-ID`` may be (anything else is replaced by a generated id).
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:\\-]{1,128}$"
#: Money in responses: a decimal string with exactly 2 decimals.
MONEY_PATTERN = "^[0-9]+\\.[0-9]{2}$"
#: The largest fund id.
FUND_ID_MAX = 2**32 - 1
#: Page size of the history: 1 to the engine's maximum.
PAGE_MAX = fundcore.MAX_PAGE


# --------------------------------------------------------------------------- amounts in range


def _group(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def _digit_class(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives matching the digit strings of ``len(low)`` from ``low`` to ``high``."""
    width = len(low)
    if low == high:
        return [low]
    if low == "0" * width and high == "9" * width:
        return ["[0-9]" + (f"{{{width}}}" if width > 1 else "")]
    if width == 1:
        return [_digit_class(int(low), int(high))]
    if low[0] == high[0]:
        return [low[0] + _group(_same_length(low[1:], high[1:]))]
    rest = width - 1
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return [_digit_class(int(low[0]), int(high[0])) + "[0-9]" + (f"{{{rest}}}" if rest > 1 else "")]
    parts = [low[0] + _group(_same_length(low[1:], "9" * rest))]
    if int(high[0]) - int(low[0]) > 1:
        parts.append(_digit_class(int(low[0]) + 1, int(high[0]) - 1) + "[0-9]" + (f"{{{rest}}}" if rest > 1 else ""))
    parts.append(high[0] + _group(_same_length("0" * rest, high[1:])))
    return parts


def _integers(low: int, high: int) -> str:
    """Integers from ``low`` to ``high`` written without leading zeros."""
    alternatives: list[str] = []
    if low == 0:
        alternatives.append("0")
        low = 1
    for width in range(len(str(low)), len(str(high)) + 1):
        first, last = max(low, 10 ** (width - 1)), min(high, 10**width - 1)
        if first <= last:
            alternatives += _same_length(str(first), str(last))
    return _group(alternatives)


def _fraction(low: int, high: int) -> str:
    """The optional fraction of an amount whose cents lie from ``low`` to ``high``."""
    if (low, high) == (0, 99):
        return "(?:\\.[0-9]{1,2})?"
    tenths = [d for d in range(10) if low <= d * 10 <= high]
    alternatives = ([_digit_class(tenths[0], tenths[-1])] if tenths else []) + _same_length(f"{low:02d}", f"{high:02d}")
    fraction = "\\." + _group(alternatives)
    return f"(?:{fraction})?" if low == 0 else fraction


def amount_pattern(minimum: Decimal, maximum: Decimal) -> str:
    """A pattern for the amounts from ``minimum`` to ``maximum`` as decimal text with at most 2
    decimals (the shape of :data:`AMOUNT_SYNTAX`)."""
    low, high = int(minimum * 100), int(maximum * 100)
    if Decimal(low) != minimum * 100 or Decimal(high) != maximum * 100 or not 0 <= low <= high:
        raise ValueError(f"bounds must have at most 2 decimals and {minimum} <= {maximum}")
    (low_units, low_cents), (high_units, high_cents) = divmod(low, 100), divmod(high, 100)
    if low_units == high_units:
        return f"^{_integers(low_units, low_units)}{_fraction(low_cents, high_cents)}$"
    alternatives = [_integers(low_units, low_units) + _fraction(low_cents, 99)]
    if low_units + 1 <= high_units - 1:
        alternatives.append(_integers(low_units + 1, high_units - 1) + _fraction(0, 99))
    alternatives.append(_integers(high_units, high_units) + _fraction(0, high_cents))
    return f"^{_group(alternatives)}$"


def subscribe_body_schema(funds: Iterable[fundcore.Fund], balance_ceiling: Decimal) -> dict[str, Any]:
    """The subscribe body, one branch per fund of the engine's catalogue: an amount from the
    fund's minimum up to ``balance_ceiling`` (no balance is ever higher), or none (the minimum)."""
    branches = []
    for fund in funds:
        minimum = Decimal(fund.minimum)
        amount = {
            "anyOf": [
                {"type": "string", "pattern": amount_pattern(minimum, balance_ceiling), "maxLength": AMOUNT_MAX_CHARS},
                {"type": "integer", "minimum": math.ceil(minimum), "maximum": math.floor(balance_ceiling)},
                {"type": "null"},
            ],
            "description": f"COP, from {minimum:.2f}; omitted or null: the minimum",
        }
        branches.append(
            {
                "type": "object",
                "title": f"fund {fund.id} ({fund.name})",
                "properties": {"fund_id": {"type": "integer", "const": fund.id}, "amount": amount},
                "required": ["fund_id"],
                "additionalProperties": False,
            }
        )
    return {
        "title": "SubscribeRequest",
        "description": (
            "`fund_id` from `GET /funds` and an optional `amount`: a decimal string with at most 2 "
            'decimals (`"80000.50"`) or a JSON integer, at least the fund\'s minimum (JSON floats are '
            "refused). One branch per fund of the catalogue."
        ),
        "anyOf": branches,
        "examples": [{"fund_id": 1, "amount": "80000.00"}, {"fund_id": 3}],
    }


# --------------------------------------------------------------------------- the document

#: Statuses every operation may answer, besides its own.
COMMON_ERRORS = (405, 413, 431, 500)
#: Every error code, by HTTP status.
CODES_BY_STATUS: dict[int, list[str]] = {}
for _code, _status in sorted({**ENGINE_STATUS, **HOST_STATUS}.items()):
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
}

#: The links schemathesis and readers follow from a response to the next operation.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("registerClient", "201"): {
        "getClient": {"operationId": "getClient", "parameters": {"client_id": "$response.body#/id"}},
        "subscribe": {"operationId": "subscribe", "parameters": {"client_id": "$response.body#/id"}},
        "listSubscriptions": {"operationId": "listSubscriptions", "parameters": {"client_id": "$response.body#/id"}},
        "listTransactions": {"operationId": "listTransactions", "parameters": {"client_id": "$response.body#/id"}},
        "listNotifications": {"operationId": "listNotifications", "parameters": {"client_id": "$response.body#/id"}},
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
    409: "refused by the state of the account (balance, subscriptions, idempotency key)",
    413: "body over 64 KiB",
    422: "a malformed request (`errors` names each field) or an amount below the fund's minimum",
    429: "too many requests from this caller",
    431: "request headers over 16 KiB",
    500: "a bug of the host (details in its log, under the request id)",
    503: "the store failed; nothing was changed",
}


def complete_document(
    document: dict[str, Any], engine: fundcore.Engine | None, locale: Literal["es", "en"]
) -> dict[str, Any]:
    """Adds to FastAPI's document what it cannot say by itself: the error responses of every
    operation (code enum and an example per status), the response headers, the links, and the
    subscribe body of the engine's catalogue (when the engine is open)."""
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
        "enum": sorted({**ENGINE_STATUS, **HOST_STATUS}),
        "description": "stable error code; its HTTP status is fixed",
    }
    if engine is not None:
        schemas["SubscribeRequest"] = subscribe_body_schema(engine.funds(), Decimal(engine.initial_balance))
    return document
