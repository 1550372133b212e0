"""The operator's view of the outbox and the ledger (admins): ``GET /outbox`` (how it stands),
``GET /outbox/failed`` (the failed notifications, newest first), ``POST /outbox/retry`` (queue
them again) and ``GET /ledger/check`` (the ledger check on the live store)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic.json_schema import SkipJsonSchema

from ..dependencies import ActorDep, AdminDep, EngineDep, PageSize
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..logs import printable
from ..models import MAX_QUERY_INT, LedgerReportOut, NotificationPage, OutboxStateOut, QueryInt, RetryReport, Text

log = logging.getLogger("fundcore_host")

router = APIRouter(route_class=MoneySafeRoute, tags=["operations"])

RetryLimit = Annotated[
    QueryInt,
    Query(
        description="requeue at most this many failed notifications (0 or less: none)",
        json_schema_extra={"minimum": -MAX_QUERY_INT, "maximum": MAX_QUERY_INT},
    ),
]
# As the other pages' cursors (dependencies.py); the engine reads it.
NotificationCursor = Annotated[
    Text | SkipJsonSchema[None],
    Query(
        description="exclusive cursor: the `next` of the previous page (the id of a notification)",
        json_schema_extra={"format": "uuid"},
    ),
]


@router.get(
    "/outbox",
    summary="How the outbox stands (admin only): entries by status, the oldest pending one's time and age",
    operation_id="getOutboxState",
    responses=error_responses(401, 403, 429, 503),
)
async def outbox_state(admin: AdminDep, engine: EngineDep) -> OutboxStateOut:
    return OutboxStateOut.from_record(await engine.outbox_state())


@router.get(
    "/outbox/failed",
    summary="Failed notifications of every client (admin only), newest first, paginated",
    description="Each with its `last_error`, `attempts`, `client_id`, `channel` and `recipient`.",
    operation_id="listFailedNotifications",
    responses=error_responses(401, 403, 422, 429, 503),
)
async def failed_notifications(
    admin: AdminDep,
    engine: EngineDep,
    limit: PageSize = 50,
    before: NotificationCursor = None,
) -> NotificationPage:
    page = await engine.failed_notifications(limit, before)
    return NotificationPage.model_validate(page.to_dict())


@router.post(
    "/outbox/retry",
    summary="Put failed notifications back in the queue (admin only), due now with no attempts",
    operation_id="retryFailedNotifications",
    responses=error_responses(401, 403, 422, 429, 503),
)
async def retry_failed(admin: AdminDep, actor: ActorDep, engine: EngineDep, limit: RetryLimit = 100) -> RetryReport:
    requeued = await engine.retry_failed_notifications(limit)
    log.info("%d failed notifications requeued by %s", requeued, printable(actor.name))
    return RetryReport(requeued=requeued)


@router.get(
    "/ledger/check",
    summary="Check the ledger's invariants on the live store (admin only)",
    description=(
        "Every client read whole (balance >= 0, balance + active subscriptions = the initial balance, "
        "the history's replay, outbox entries, idempotency records): a violation listed is real. "
        "Reads every client: an operator's call, not a health check."
    ),
    operation_id="checkLedger",
    responses=error_responses(401, 403, 429, 503),
)
async def check_ledger(admin: AdminDep, engine: EngineDep) -> LedgerReportOut:
    return LedgerReportOut.from_record(await engine.verify_ledger())
