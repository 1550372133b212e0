"""A client's subscriptions: list, subscribe (apertura) and cancel (cancelación)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic.json_schema import SkipJsonSchema

import fundcore

from ..dependencies import AuthorizedClient, EngineDep, FundIdPath
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..logs import printable
from ..models import SubscribeRequest, SubscriptionList, SubscriptionOut, TransactionOut, wire_forms

log = logging.getLogger("fundcore_host")

router = APIRouter(route_class=MoneySafeRoute, tags=["subscriptions"])

#: Optional: ``None`` when absent (a header is never null, so the document shows only the string).
#: Passed to the engine as sent (request headers are capped in all by the middleware).
IdempotencyKey = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="Idempotency-Key",
        description=(
            f"optional, 1 to {fundcore.MAX_IDEMPOTENCY_KEY_CHARS} characters, no control characters; a repeated "
            "request with the same key returns the original transaction"
        ),
        json_schema_extra={"minLength": 1, "maxLength": fundcore.MAX_IDEMPOTENCY_KEY_CHARS},
    ),
]


@router.get(
    "/clients/{client_id}/subscriptions",
    summary="The client's active subscriptions",
    operation_id="listSubscriptions",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def list_subscriptions(client_id: AuthorizedClient, engine: EngineDep) -> list[SubscriptionOut]:
    subscriptions = await engine.subscriptions(client_id)
    return SubscriptionList.validate_python(wire_forms(subscriptions))


@router.post(
    "/clients/{client_id}/subscriptions",
    status_code=201,
    summary="Subscribe to a fund (apertura)",
    operation_id="subscribe",
    responses=error_responses(401, 404, 409, 422, 429, 503),
)
async def subscribe(
    client_id: AuthorizedClient,
    body: SubscribeRequest,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> TransactionOut:
    tx = await engine.subscribe(client_id, body.fund_id, body.amount, idempotency_key=idempotency_key)
    log.info("client %s subscribed to fund %s: transaction %s", printable(client_id), body.fund_id, tx.id)
    return TransactionOut.from_record(tx)


@router.delete(
    "/clients/{client_id}/subscriptions/{fund_id}",
    summary="Cancel a subscription (cancelación); refunds the subscribed amount",
    operation_id="cancelSubscription",
    responses=error_responses(401, 404, 409, 422, 429, 503),
)
async def cancel(
    client_id: AuthorizedClient,
    fund_id: FundIdPath,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> TransactionOut:
    tx = await engine.cancel(client_id, fund_id, idempotency_key=idempotency_key)
    log.info("client %s cancelled fund %s: transaction %s", printable(client_id), fund_id, tx.id)
    return TransactionOut.from_record(tx)
