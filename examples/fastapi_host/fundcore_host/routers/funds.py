"""The fund catalogue: ``GET /funds`` and ``GET /funds/{fund_id}`` (every caller), ``POST /funds``
and ``PATCH /funds/{fund_id}`` (admins; each change is recorded in the audit trail)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ..dependencies import ActorDep, AdminDep, EngineDep, FundIdPath, PrincipalDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..logs import printable
from ..models import CreateFundRequest, FundList, FundOut, UpdateFundRequest, wire_forms

log = logging.getLogger("fundcore_host")

router = APIRouter(route_class=MoneySafeRoute, tags=["funds"])


@router.get(
    "/funds",
    summary="The fund catalogue",
    operation_id="listFunds",
    responses=error_responses(401, 429, 503),
)
async def list_funds(principal: PrincipalDep, engine: EngineDep) -> list[FundOut]:
    funds = await engine.funds()
    return FundList.validate_python(wire_forms(funds))


@router.get(
    "/funds/{fund_id}",
    summary="A fund of the catalogue",
    description="An id that names no fund is the engine's `FUND_NOT_FOUND`.",
    operation_id="getFund",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_fund(fund_id: FundIdPath, principal: PrincipalDep, engine: EngineDep) -> FundOut:
    fund = await engine.fund(fund_id)
    return FundOut.from_record(fund)


@router.post(
    "/funds",
    status_code=201,
    summary="Add a fund to the catalogue (admin only); it starts active",
    operation_id="createFund",
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
async def create_fund(body: CreateFundRequest, admin: AdminDep, actor: ActorDep, engine: EngineDep) -> FundOut:
    # The category goes to the engine as sent, which decides it; the stub types the parameter
    # as the names it accepts.
    category = body.category
    fund = await engine.create_fund(
        body.id,
        body.name,
        body.minimum,
        category,  # type: ignore[arg-type]
        actor=actor.name,
        request_id=actor.request_id,
    )
    log.info("fund %s created by %s", fund.id, printable(actor.name))
    return FundOut.from_record(fund)


@router.patch(
    "/funds/{fund_id}",
    summary="Change a fund's name, minimum or active flag (admin only)",
    description=(
        "A new minimum applies to subscriptions made afterwards (a cancellation refunds the amount "
        "subscribed); an inactive fund refuses new subscriptions (`FUND_INACTIVE`) and still allows "
        "cancellations. A body without any field is the engine's `VALIDATION_ERROR` on `changes`."
    ),
    operation_id="updateFund",
    responses=error_responses(401, 403, 404, 422, 429, 503),
)
async def update_fund(
    fund_id: FundIdPath, body: UpdateFundRequest, admin: AdminDep, actor: ActorDep, engine: EngineDep
) -> FundOut:
    fund = await engine.update_fund(
        fund_id,
        name=body.name,
        minimum=body.minimum,
        active=body.active,
        actor=actor.name,
        request_id=actor.request_id,
    )
    log.info("fund %s updated by %s", fund.id, printable(actor.name))
    return FundOut.from_record(fund)
