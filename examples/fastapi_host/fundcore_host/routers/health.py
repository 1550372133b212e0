"""``GET /health``, the liveness probe, and ``GET /ready``, the readiness probe (both without
authentication or rate limit, for orchestrators and load balancers).

``/health`` answers as long as the process serves requests and never touches the store: a
liveness probe that failed while the database is down would have the orchestrator restart
healthy hosts for nothing. ``/ready`` reads the fund catalogue (one cheap query, bounded by the
engine's operation timeout, off the event loop as every engine call): 200 while the store
answers, 503 ``STORAGE_ERROR`` (with ``Retry-After``) while it cannot, so a load balancer sends
traffic only to hosts that can serve it.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import EngineDep
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..models import Health, Ready

router = APIRouter(route_class=MoneySafeRoute, tags=["service"])


@router.get("/health", summary="Liveness probe (no auth; never touches the store)", operation_id="health")
async def health() -> Health:
    return Health()


@router.get(
    "/ready",
    summary="Readiness probe (no auth): 200 while the store answers, 503 while it cannot",
    operation_id="ready",
    responses=error_responses(503),
)
async def ready(engine: EngineDep) -> Ready:
    await engine.funds()  # a store failure is the 503 envelope (errors.py)
    return Ready()
