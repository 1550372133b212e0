"""``GET /clients/{client_id}/transactions``: the history, newest first, a page at a time,
optionally of one kind and one fund; ``GET /clients/{client_id}/statement``: the account over a
date range."""

from __future__ import annotations

import datetime
import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BeforeValidator
from pydantic.json_schema import SkipJsonSchema

from ..dependencies import AuthorizedClient, EngineDep, PageSize, TransactionCursor
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import QueryInt, StatementOut, Text, TransactionPage

router = APIRouter(route_class=MoneySafeRoute, tags=["transactions"])

# The engine reads both filters (an unknown kind is its VALIDATION_ERROR on `kind`, a fund id
# that names no fund its FUND_NOT_FOUND).
KindFilter = Annotated[
    Text | SkipJsonSchema[None],
    Query(
        description="only transactions of this kind",
        json_schema_extra={"enum": ["subscription", "cancellation"]},
    ),
]
FundFilter = Annotated[QueryInt | SkipJsonSchema[None], Query(description="only transactions on this fund")]


def _not_a_number(value: object) -> object:
    # pydantic's lax datetimes read a number as Unix time ("0" would be 1970); the document says
    # date-time.
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+(\.[0-9]*)?", value.strip()):
        raise ValueError("an RFC 3339 date-time with a UTC offset is expected")
    return value


#: RFC 3339 / ISO 8601 with a UTC offset: a time without one names no instant.
Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
RangeStart = Annotated[
    Instant | SkipJsonSchema[None],
    Query(alias="from", description="the range's start, included (default: the client's registration)"),
]
RangeEnd = Annotated[
    Instant | SkipJsonSchema[None],
    Query(alias="to", description="the range's end, excluded (default: now)"),
]


@router.get(
    "/clients/{client_id}/transactions",
    summary="Transaction history, newest first, paginated, optionally of one kind and fund",
    operation_id="listTransactions",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def list_transactions(
    client_id: AuthorizedClient,
    engine: EngineDep,
    limit: PageSize = 50,
    before: TransactionCursor = None,
    kind: KindFilter = None,
    fund_id: FundFilter = None,
) -> TransactionPage:
    page = await engine.history_page(
        client_id,
        limit,
        before,
        kind=kind,  # type: ignore[arg-type]  # the engine decides the kind
        fund_id=fund_id,
    )
    return TransactionPage.model_validate(page.to_dict())


@router.get(
    "/clients/{client_id}/statement",
    summary="The account over a date range, with the balance and invested amount after each transaction",
    description=(
        "Transactions with `from <= created_at < to`, oldest first; `invested_after` is the sum of "
        "the client's active subscriptions right after each (with `balance_after`, the initial balance). "
        "From the registration to now (the defaults) it charts the balance and the invested amount. "
        "`from` after `to` is the engine's `VALIDATION_ERROR` on `from`."
    ),
    operation_id="getStatement",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_statement(
    client_id: AuthorizedClient,
    engine: EngineDep,
    start: RangeStart = None,
    end: RangeEnd = None,
) -> StatementOut:
    if start is None:
        start = (await engine.client(client_id)).created_at
    if end is None:
        end = datetime.datetime.now(datetime.UTC)
    return StatementOut.from_record(await engine.statement(client_id, start, end))
