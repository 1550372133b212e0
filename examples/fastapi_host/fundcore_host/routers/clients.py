"""Clients: ``POST /clients`` and ``GET /clients`` (admins), ``GET /clients/{client_id}`` and
``PATCH /clients/{client_id}`` (admins, or the client itself; a change is recorded in the audit
trail)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ..dependencies import ActorDep, AdminDep, AuthorizedClient, ClientCursor, EngineDep, PageSize
from ..errors import error_responses
from ..json_body import MoneySafeRoute
from ..logs import printable
from ..models import ClientOut, ClientPage, RegisterClientRequest, UpdateClientRequest

log = logging.getLogger("fundcore_host")

router = APIRouter(route_class=MoneySafeRoute, tags=["clients"])


@router.post(
    "/clients",
    status_code=201,
    summary="Register a client (admin only); starts with the configured initial balance",
    operation_id="registerClient",
    responses=error_responses(401, 403, 422, 429, 503),
)
async def register_client(body: RegisterClientRequest, principal: AdminDep, engine: EngineDep) -> ClientOut:
    # The channel goes to the engine as sent, which decides it (a name it does not know is its
    # VALIDATION_ERROR); the stub types the parameter as the names it accepts.
    channel = body.channel
    client = await engine.register_client(
        body.name,
        body.email,
        body.phone,
        channel,  # type: ignore[arg-type]
    )
    log.info("registered client %s", client.id)
    return ClientOut.from_record(client)


@router.get(
    "/clients/{client_id}",
    summary="A client, with its available balance",
    operation_id="getClient",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_client(client_id: AuthorizedClient, engine: EngineDep) -> ClientOut:
    client = await engine.client(client_id)
    return ClientOut.from_record(client)


@router.get(
    "/clients",
    summary="The clients (admin only), newest first, paginated",
    operation_id="listClients",
    responses=error_responses(401, 403, 422, 429, 503),
)
async def list_clients(
    admin: AdminDep,
    engine: EngineDep,
    limit: PageSize = 50,
    before: ClientCursor = None,
) -> ClientPage:
    page = await engine.clients(limit, before)
    return ClientPage.model_validate(page.to_dict())


@router.patch(
    "/clients/{client_id}",
    summary="Change a client's contact data or channel (admin, or the client itself)",
    description=(
        "Validated as when registering. Notifications created afterwards use the new channel and "
        "address; those already queued keep theirs. A body without any field is the engine's "
        "`VALIDATION_ERROR` on `changes`."
    ),
    operation_id="updateClient",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def update_client(
    client_id: AuthorizedClient, body: UpdateClientRequest, actor: ActorDep, engine: EngineDep
) -> ClientOut:
    # The channel goes to the engine as sent (see register_client).
    channel = body.channel
    client = await engine.update_client(
        client_id,
        name=body.name,
        email=body.email,
        phone=body.phone,
        channel=channel,  # type: ignore[arg-type]
        actor=actor.name,
        request_id=actor.request_id,
    )
    log.info("client %s updated by %s", client.id, printable(actor.name))
    return ClientOut.from_record(client)
