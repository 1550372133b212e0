"""``GET /clients/{client_id}/transactions``: the history, newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from .. import contract
from ..dependencies import AuthorizedClient, EngineDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import TransactionPage

router = APIRouter(route_class=MoneySafeRoute, tags=["transactions"])

PageSize = Annotated[int, Query(ge=1, le=contract.PAGE_MAX, description=f"page size, 1 to {contract.PAGE_MAX}")]
#: Optional: ``None`` when absent (a query parameter is never null, so the document shows only the string).
Cursor = Annotated[
    Annotated[str, StringConstraints(pattern=contract.UUID_PATTERN)] | SkipJsonSchema[None],
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
