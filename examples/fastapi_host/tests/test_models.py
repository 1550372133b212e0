"""The response models are applied: every handler returns its model, and the model of each
record kind has exactly the fields of the engine's ``to_dict()`` and passes its values on as
the engine wrote them (so a REST answer is the record's own wire form)."""

from __future__ import annotations

import typing
from decimal import Decimal

from conftest import make_engine
from fastapi.routing import APIRoute

import fundcore
from fundcore_host.app import create_app
from fundcore_host.config import Settings
from fundcore_host.models import (
    AuditEventOut,
    AuditEventPage,
    ClientOut,
    ClientPage,
    FundOut,
    LedgerReportOut,
    NotificationOut,
    NotificationPage,
    OutboxStateOut,
    RetryReport,
    StatementOut,
    SubscriptionOut,
    TransactionOut,
    TransactionPage,
    _RecordOut,
)
from fundcore_host.routers import ROUTERS


class RefusingSmsFailingEmail:
    """A notifier that refuses every SMS for good and fails every email for now (so entries
    are left failed, and pending with a ``last_error`` and a ``next_attempt_at``)."""

    def send(self, notification: fundcore.Notification) -> None:
        if notification.channel == "sms":
            raise fundcore.PermanentDeliveryError("no such phone")
        raise RuntimeError("the mail server is down")


class Accepting:
    def send(self, notification: fundcore.Notification) -> None:
        return None


def records_of_every_kind() -> list[tuple[type[_RecordOut], object]]:
    """Real records of every kind and state the API answers with, from a real engine."""
    engine = make_engine(max_attempts=2)
    ana = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    bob = engine.register_client("Bob", "bob@example.com", "+573005550000", channel="sms")
    subscribed = engine.subscribe(ana.id, 1, Decimal("80000.5"), idempotency_key="order-1")
    engine.subscribe(ana.id, 3, None)
    cancelled = engine.cancel(ana.id, 3)
    engine.subscribe(bob.id, 4, "250000")
    engine.dispatch_notifications(RefusingSmsFailingEmail())
    notifications = engine.notifications(ana.id) + engine.notifications(bob.id)
    assert {n.status for n in notifications} == {"pending", "failed"}
    records: list[tuple[type[_RecordOut], object]] = [(FundOut, fund) for fund in engine.funds()]
    records += [(ClientOut, ana), (ClientOut, engine.client(bob.id))]
    records += [(SubscriptionOut, s) for s in engine.subscriptions(ana.id)]
    records += [(TransactionOut, subscribed), (TransactionOut, cancelled)]
    records += [(NotificationOut, n) for n in notifications]
    engine.create_fund(6, "FIC_NUEVO", "100000", "FIC", actor="ops", request_id="req-1")
    engine.update_fund(6, minimum="120000.50", active=False, actor="ops")
    engine.update_client(bob.id, channel="email", name="Roberto", actor=bob.id, request_id="req-2")
    events = engine.audit_events().items
    assert {event.action for event in events} == {"fund_created", "fund_updated", "client_updated"}
    records += [(AuditEventOut, event) for event in events]
    records += [(FundOut, engine.fund(6))]
    delivered = make_engine()
    carla = delivered.register_client("Carla", "carla@example.com", "+573001112233", channel="email")
    delivered.subscribe(carla.id, 2, None)
    delivered.dispatch_notifications(Accepting())
    records += [(NotificationOut, n) for n in delivered.notifications(carla.id)]
    return records


def test_each_model_is_exactly_its_records_wire_form():
    checked = set()
    for model, record in records_of_every_kind():
        wire = record.to_dict()
        assert set(model.model_fields) == set(wire), f"{model.__name__} and {type(record).__name__}.to_dict() differ"
        assert model.from_record(record).model_dump(mode="json") == wire, wire
        checked.add((model, wire.get("status")))
    assert {status for model, status in checked if model is NotificationOut} == {"pending", "failed", "delivered"}


def test_each_page_model_is_exactly_the_engines_page():
    engine = make_engine()
    ana = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    engine.register_client("Bob", "bob@example.com", "+573005550000", channel="sms")
    engine.subscribe(ana.id, 3, None)
    engine.subscribe(ana.id, 1, None)
    engine.update_fund(3, name="FDO_RENOMBRADO", actor="ops")
    engine.update_client(ana.id, phone="+573009999999", actor="ops", request_id="r-1")
    for model, page in [
        (ClientPage, engine.clients(1)),
        (ClientPage, engine.clients()),
        (AuditEventPage, engine.audit_events(1)),
        (AuditEventPage, engine.audit_events()),
        (TransactionPage, engine.history_page(ana.id, 1)),
    ]:
        wire = page.to_dict()
        assert set(model.model_fields) == set(wire)
        assert model.model_validate(wire).model_dump(mode="json") == wire, wire
        assert wire["items"]


def test_every_endpoint_returns_its_response_model():
    """Each handler is annotated with the model it returns (FastAPI validates and serializes
    it); none bypasses the model with a ready-made response."""
    models = {
        AuditEventPage,
        ClientOut,
        ClientPage,
        FundOut,
        LedgerReportOut,
        NotificationOut,
        NotificationPage,
        OutboxStateOut,
        RetryReport,
        StatementOut,
        SubscriptionOut,
        TransactionOut,
        TransactionPage,
    }
    app = create_app(Settings(jwt_secret="x" * 40), engine=make_engine())
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) == 21
    for route in routes:
        returned = typing.get_type_hints(route.endpoint)["return"]
        assert route.response_model == returned, route.path
        assert returned.__name__ in ("Health", "Ready") or returned in models or typing.get_args(returned)[0] in models
    assert app.openapi()["paths"]  # the app builds with these routes
