"""JSON request bodies without binary floats, repeated keys or lone surrogates.

Every route of the host is a :class:`MoneySafeRoute`: its body is parsed with numbers that have
a fraction or an exponent as ``Decimal`` (so a JSON number never becomes a binary float), and a
body that is not JSON, or repeats a key, becomes a marker that the body models refuse with
:data:`INVALID_JSON_ERROR` or :data:`DUPLICATE_KEY_ERROR`. Refusing it in the model, not here,
keeps the order of the answers: authentication and authorization (dependencies) answer first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeAlias

from fastapi import Request, Response
from fastapi.routing import APIRoute

#: pydantic error types the body models raise for a body that is not JSON, or repeats a key.
INVALID_JSON_ERROR = "fundcore_invalid_json"
DUPLICATE_KEY_ERROR = "fundcore_duplicate_key"

#: A parsed JSON value (``Decimal`` for a number with a fraction or an exponent).
JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | Decimal | bool | None

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class InvalidJson:
    """Stands for a request body that is not valid JSON."""


class DuplicateKeyError(ValueError):
    """Stands for a JSON body in which an object repeats a key (``{"fund_id": 3, "fund_id": 1}``):
    refused rather than letting the last value win silently."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _has_lone_surrogate(value: JsonValue) -> bool:
    """Whether a parsed JSON value holds an unpaired ``\\uD800``-``\\uDFFF`` escape."""
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _object_without_duplicates(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    obj: dict[str, JsonValue] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(key)
        obj[key] = value
    return obj


def parse_body(body: bytes) -> JsonValue | InvalidJson | DuplicateKeyError:
    """The JSON value of a request body, or the marker of why it is not one."""
    try:
        value: JsonValue = json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=Decimal,
            object_pairs_hook=_object_without_duplicates,
        )
        if _has_lone_surrogate(value):
            return InvalidJson()  # a lone "\ud800" escape is JSON but not text
    except DuplicateKeyError as duplicate:
        return duplicate
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Not JSON (or not UTF-8, an integer with thousands of digits, absurd nesting).
        return InvalidJson()
    return value


class _MoneySafeRequest(Request):
    """A request whose ``json()`` is :func:`parse_body` of its body."""

    _parsed: tuple[JsonValue | InvalidJson | DuplicateKeyError] | None = None

    async def json(self) -> JsonValue | InvalidJson | DuplicateKeyError:
        if self._parsed is None:
            self._parsed = (parse_body(await self.body()),)
        return self._parsed[0]


class MoneySafeRoute(APIRoute):
    """A route whose handler reads the body with :func:`parse_body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_MoneySafeRequest(request.scope, request.receive))

        return route_handler
