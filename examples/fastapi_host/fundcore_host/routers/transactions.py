"""``GET /clients/{client_id}/transactions``: the history, newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

import fundcore

from ..dependencies import AuthorizedClient, EngineDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import QueryInt, Text, TransactionPage

router = APIRouter(route_class=MoneySafeRoute, tags=["transactions"])

#: The engine checks the range (the document states it, from ``fundcore.MAX_PAGE``).
PageSize = Annotated[
    QueryInt,
    Query(
        description=f"page size, 1 to {fundcore.MAX_PAGE}",
        json_schema_extra={"minimum": 1, "maximum": fundcore.MAX_PAGE},
    ),
]
#: Optional: ``None`` when absent (a query parameter is never null, so the document shows only the string).
Cursor = Annotated[
    Text | SkipJsonSchema[None],
    Query(
        description="exclusive cursor: the `next` of the previous page (a transaction id)",
        json_schema_extra={"format": "uuid"},
    ),
]


@router.get(
    "/clients/{client_id}/transactions",
    summary="Transaction history, newest first, paginated",
    operation_id="listTransactions",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def list_transactions(
    client_id: AuthorizedClient,
    engine: EngineDep,
    limit: PageSize = 50,
    before: Cursor = None,
) -> TransactionPage:
    page = await run_in_threadpool(engine.history_page, client_id, limit, before)
    return TransactionPage.model_validate(page.to_dict())
