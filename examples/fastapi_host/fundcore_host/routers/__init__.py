"""The REST API by area, one ``APIRouter`` each, in the order the document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from . import audit, clients, funds, health, notifications, outbox, subscriptions, transactions

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    funds.router,
    clients.router,
    subscriptions.router,
    transactions.router,
    notifications.router,
    audit.router,
    outbox.router,
)
