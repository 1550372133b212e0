"""``GET /funds``: the engine's fund catalogue."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..dependencies import EngineDep, PrincipalDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import FundList, FundOut, wire_forms

router = APIRouter(route_class=MoneySafeRoute, tags=["funds"])


@router.get(
    "/funds",
    summary="The fund catalogue",
    operation_id="listFunds",
    responses=error_responses(401, 429, 503),
)
async def list_funds(principal: PrincipalDep, engine: EngineDep) -> list[FundOut]:
    funds = await run_in_threadpool(engine.funds)
    return FundList.validate_python(wire_forms(funds))
