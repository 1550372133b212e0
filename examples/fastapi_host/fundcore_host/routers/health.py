"""``GET /health``: the liveness probe (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from ..json_body import MoneySafeRoute
from ..models import Health

router = APIRouter(route_class=MoneySafeRoute, tags=["service"])


@router.get("/health", summary="Liveness probe (no auth)", operation_id="health")
async def health() -> Health:
    return Health()
