"""``GET /audit``: the audit trail of administrative changes, newest first (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import AdminDep, AuditEventCursor, EngineDep, PageSize
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import AuditEventPage

router = APIRouter(route_class=MoneySafeRoute, tags=["audit"])


@router.get(
    "/audit",
    summary="The audit trail (admin only): who changed what, newest first, paginated",
    operation_id="listAuditEvents",
    responses=error_responses(401, 403, 422, 429, 503),
)
async def list_audit_events(
    admin: AdminDep,
    engine: EngineDep,
    limit: PageSize = 50,
    before: AuditEventCursor = None,
) -> AuditEventPage:
    page = await engine.audit_events(limit, before)
    return AuditEventPage.model_validate(page.to_dict())
