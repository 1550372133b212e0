"""``GET /clients/{client_id}/notifications``: the client's outbox entries."""

from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import AuthorizedClient, EngineDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import NotificationList, NotificationOut, wire_forms

router = APIRouter(route_class=MoneySafeRoute, tags=["notifications"])


@router.get(
    "/clients/{client_id}/notifications",
    summary="The client's notification outbox entries, newest first",
    operation_id="listNotifications",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def list_notifications(client_id: AuthorizedClient, engine: EngineDep) -> list[NotificationOut]:
    notifications = await engine.notifications(client_id)
    return NotificationList.validate_python(wire_forms(notifications))
