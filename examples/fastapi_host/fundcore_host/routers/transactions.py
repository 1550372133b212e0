"""``GET /clients/{client_id}/transactions``: the history, newest first, a page at a time."""

from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import AuthorizedClient, EngineDep, PageSize, TransactionCursor
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import TransactionPage

router = APIRouter(route_class=MoneySafeRoute, tags=["transactions"])


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
    before: TransactionCursor = None,
) -> TransactionPage:
    page = await engine.history_page(client_id, limit, before)
    return TransactionPage.model_validate(page.to_dict())
