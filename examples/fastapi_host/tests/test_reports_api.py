"""The JSON API of what the portal and the console read, on both stores: the history filtered
by kind and fund, a client's statement, the outbox (state, failures, retry) and the ledger check
(admins only). PostgreSQL needs ``FUNDCORE_TEST_DATABASE_URL`` (scripts/with-postgres.sh)."""

from __future__ import annotations

import datetime
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from conftest import ADMIN, assert_envelope, bearer, make_engine, register

import fundcore


class Refusing:
    """A notifier that refuses every message for good."""

    def send(self, notification: Any) -> None:
        raise fundcore.PermanentDeliveryError("mailbox unavailable")


@pytest.fixture(params=["sled", "postgres"])
def engine(request: Any) -> Iterator[Any]:
    """A fresh engine on each kind of store (replaces conftest's embedded-only one)."""
    if request.param == "sled":
        yield make_engine()
        return
    server = os.environ.get("FUNDCORE_TEST_DATABASE_URL")
    assert server, "FUNDCORE_TEST_DATABASE_URL is not set: run these tests through scripts/with-postgres.sh"
    name = f"fundcore_reports_{uuid.uuid4().hex}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    eng = make_engine(urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path=f"/{name}")))
    yield eng
    eng.close()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def quiet_api(app_factory: Any) -> Any:
    """The app with a dispatcher that never runs during a test (the test dispatches itself)."""
    return app_factory(notifier=Refusing(), dispatch_interval_ms=3_600_000)


def pages(api: Any, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        r = api.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        if body["next"] is None:
            return items
        assert body["next"] == items[-1]["id"]
        params["before"] = body["next"]


def test_transactions_filtered_by_kind_and_fund_across_pages(quiet_api, engine):
    ana = register(quiet_api)
    engine.subscribe(ana["id"], 2)
    for _ in range(6):
        engine.subscribe(ana["id"], 1)
        engine.subscribe(ana["id"], 3)
        engine.cancel(ana["id"], 1)
        engine.cancel(ana["id"], 3)
    path = f"/clients/{ana['id']}/transactions"
    everything = pages(quiet_api, path, ADMIN, limit=200)
    assert len(everything) == 25
    as_client = bearer(ana["id"])
    for filters in [{"kind": "cancellation"}, {"fund_id": 3}, {"kind": "subscription", "fund_id": 2}]:
        expected = [
            tx
            for tx in everything
            if tx["kind"] == filters.get("kind", tx["kind"]) and tx["fund_id"] == filters.get("fund_id", tx["fund_id"])
        ]
        assert pages(quiet_api, path, as_client, limit=4, **filters) == expected, filters

    assert_envelope(quiet_api.get(path, params={"kind": "refund"}, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert_envelope(quiet_api.get(path, params={"fund_id": 99}, headers=ADMIN), 404, "FUND_NOT_FOUND")


def test_a_statement_for_a_date_range(quiet_api, engine):
    ana = register(quiet_api)
    txs = [
        engine.subscribe(ana["id"], 1, Decimal("80000")),
        engine.subscribe(ana["id"], 3, Decimal("60000")),
        engine.cancel(ana["id"], 1),
    ]
    path = f"/clients/{ana['id']}/statement"
    r = quiet_api.get(
        path,
        params={"from": txs[1].created_at.isoformat(), "to": txs[2].created_at.isoformat()},
        headers=bearer(ana["id"]),
    )
    assert r.status_code == 200, r.text
    statement = r.json()
    assert statement["from"] == txs[1].to_dict()["created_at"]
    assert statement["to"] == txs[2].to_dict()["created_at"]
    assert (statement["opening_balance"], statement["opening_invested"]) == ("420000.00", "80000.00")
    assert statement["lines"] == [{"transaction": txs[1].to_dict(), "invested_after": "140000.00"}]
    assert (statement["closing_balance"], statement["closing_invested"]) == ("360000.00", "140000.00")

    # The defaults: from the registration to now, every line adding up to the initial balance.
    whole = quiet_api.get(path, headers=ADMIN).json()
    assert [line["transaction"]["id"] for line in whole["lines"]] == [tx.id for tx in txs]
    for line in whole["lines"]:
        assert Decimal(line["transaction"]["balance_after"]) + Decimal(line["invested_after"]) == Decimal("500000")
    assert whole["closing_balance"] == quiet_api.get(f"/clients/{ana['id']}", headers=ADMIN).json()["balance"]

    later, earlier = txs[2].created_at.isoformat(), txs[0].created_at.isoformat()
    reversed_range = quiet_api.get(path, params={"from": later, "to": earlier}, headers=ADMIN)
    assert assert_envelope(reversed_range, 422, "VALIDATION_ERROR")["errors"] == {
        "from": reversed_range.json()["errors"]["from"]
    }
    naive = datetime.datetime(2026, 1, 1).isoformat()
    for not_an_instant in (naive, "0", "1765152000.5"):
        refused = quiet_api.get(path, params={"from": not_an_instant}, headers=ADMIN)
        assert_envelope(refused, 422, "VALIDATION_ERROR")
    other = register(quiet_api, "Bob")
    assert_envelope(quiet_api.get(path, headers=bearer(other["id"])), 404, "CLIENT_NOT_FOUND")


def test_the_outbox_failures_and_their_retry(quiet_api, engine):
    clients = [register(quiet_api, name) for name in ("Ana", "Bob", "Carla")]
    for client in clients:
        engine.subscribe(client["id"], 1)
    state = quiet_api.get("/outbox", headers=ADMIN).json()
    assert (state["pending"], state["failed"], state["delivered"]) == (3, 0, 0)
    assert state["oldest_pending_at"] is not None and state["oldest_pending_age"].startswith("PT")

    assert engine.dispatch_notifications(Refusing()).failed == 3
    failed = pages(quiet_api, "/outbox/failed", ADMIN, limit=2)
    assert [n["client_id"] for n in failed] == [c["id"] for c in reversed(clients)]  # newest first
    assert {(n["status"], n["attempts"], n["last_error"], n["channel"]) for n in failed} == {
        ("failed", 1, "mailbox unavailable", "email")
    }
    assert [n["recipient"] for n in failed] == [c["email"] for c in reversed(clients)]
    state = quiet_api.get("/outbox", headers=ADMIN).json()
    assert (state["pending"], state["failed"], state["oldest_pending_age"]) == (0, 3, None)

    retried = quiet_api.post("/outbox/retry", params={"limit": 2}, headers=ADMIN)
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"requeued": 2}
    assert quiet_api.post("/outbox/retry", headers=ADMIN).json() == {"requeued": 1}
    assert quiet_api.get("/outbox/failed", headers=ADMIN).json() == {"items": [], "next": None}
    assert quiet_api.get("/outbox", headers=ADMIN).json()["pending"] == 3


def test_the_ledger_check(quiet_api, engine):
    ana = register(quiet_api)
    engine.subscribe(ana["id"], 1, idempotency_key="k-1")
    r = quiet_api.get("/ledger/check", headers=ADMIN)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["clean"] is True
    assert (report["clients"], report["transactions"], report["active_subscriptions"]) == (1, 1, 1)
    assert report["outbox"] == {"pending": 1, "delivered": 0, "failed": 0}
    assert (report["violation_count"], report["violations"]) == (0, [])
    assert "violations: none" in report["summary"]


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/outbox"), ("GET", "/outbox/failed"), ("POST", "/outbox/retry"), ("GET", "/ledger/check")],
)
def test_operations_are_for_admins_only(quiet_api, method, path):
    ana = register(quiet_api)
    assert_envelope(quiet_api.request(method, path, headers=bearer(ana["id"])), 403, "FORBIDDEN")
    assert quiet_api.request(method, path).status_code == 401
