"""What the portal and the console read, on both stores: the history filtered by kind and fund,
a statement for a date range, the failed notifications of every client, the ledger check of a
live engine, and error messages in every locale."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA

UTC = datetime.timezone.utc


class Refusing:
    """A notifier that refuses every message for good."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, notification):
        raise fundcore.PermanentDeliveryError(self.reason)


def filtered_pages(eng, client_id, limit, **filters):
    page = eng.history_page(client_id, limit, **filters)
    items = list(page.items)
    while page.next is not None:
        assert page.next == items[-1].id
        page = eng.history_page(client_id, limit, page.next, **filters)
        items.extend(page.items)
    return items


def test_a_filtered_history_pages_exactly_the_matching_transactions(engine, ana):
    engine.subscribe(ana.id, 2)
    for _ in range(8):
        engine.subscribe(ana.id, 1)
        engine.subscribe(ana.id, 3)
        engine.cancel(ana.id, 1)
        engine.cancel(ana.id, 3)
    everything = engine.history(ana.id, limit=200)
    for filters in [
        {"kind": "cancellation"},
        {"fund_id": 1},
        {"kind": "subscription", "fund_id": 3},
        {"fund_id": 2},
        {"kind": "cancellation", "fund_id": 2},
    ]:
        expected = [
            tx
            for tx in everything
            if tx.kind == filters.get("kind", tx.kind) and tx.fund_id == filters.get("fund_id", tx.fund_id)
        ]
        for limit in (1, 3, 50):
            assert filtered_pages(engine, ana.id, limit, **filters) == expected, (filters, limit)
    page = engine.history_page(ana.id, 2, kind="subscription", fund_id=2)
    assert page.to_dict() == {"items": [everything[-1].to_dict()], "next": None}


def test_a_filter_is_checked_as_the_engine_checks_it(engine, ana):
    with pytest.raises(fundcore.NotFoundError) as unknown_fund:
        engine.history_page(ana.id, fund_id=99)
    assert unknown_fund.value.code == "FUND_NOT_FOUND"
    with pytest.raises(fundcore.ValidationError) as bad_kind:
        engine.history_page(ana.id, kind="refund")
    assert (bad_kind.value.code, bad_kind.value.field) == ("VALIDATION_ERROR", "kind")
    with pytest.raises(TypeError):
        engine.history_page(ana.id, fund_id="1")


def test_a_statement_adds_up_line_by_line(engine, ana):
    txs = [
        engine.subscribe(ana.id, 1, Decimal("80000")),
        engine.subscribe(ana.id, 3, Decimal("60000")),
        engine.cancel(ana.id, 1),
        engine.subscribe(ana.id, 2),
    ]
    start, end = txs[1].created_at, txs[3].created_at
    statement = engine.statement(ana.id, start, end)
    assert (statement.client_id, statement.start, statement.end) == (ana.id, start, end)
    assert [line.transaction for line in statement.lines] == txs[1:3]
    assert (statement.opening_balance, statement.opening_invested) == (Decimal("420000.00"), Decimal("80000.00"))
    for line in statement.lines:
        assert line.balance_after == line.transaction.balance_after
        assert line.balance_after + line.invested_after == engine.initial_balance
    assert [line.invested_after for line in statement.lines] == [Decimal("140000.00"), Decimal("60000.00")]
    assert (statement.closing_balance, statement.closing_invested) == (Decimal("440000.00"), Decimal("60000.00"))

    as_dict = statement.to_dict()
    assert as_dict["from"] == start.isoformat().replace("+00:00", "Z")
    assert as_dict["opening_balance"] == "420000.00"
    assert as_dict["lines"][0] == {"transaction": txs[1].to_dict(), "invested_after": "140000.00"}
    assert as_dict["closing_invested"] == "60000.00"

    # From the client's creation to now: every transaction; it closes where the client stands.
    chart = engine.statement(ana.id, ana.created_at, datetime.datetime.now(UTC) + datetime.timedelta(seconds=1))
    assert [line.transaction for line in chart.lines] == txs
    assert chart.closing_balance == engine.client(ana.id).balance
    assert chart.closing_invested == sum((s.amount for s in engine.subscriptions(ana.id)), Decimal(0))

    # Any time zone names the same instant.
    bogota = datetime.timezone(datetime.timedelta(hours=-5))
    assert engine.statement(ana.id, start.astimezone(bogota), end.astimezone(bogota)) == statement


def test_a_statement_refuses_naive_times_and_a_reversed_range(engine, ana):
    now = datetime.datetime.now(UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.statement(ana.id, now.replace(tzinfo=None), now)
    with pytest.raises(TypeError):
        engine.statement(ana.id, "2026-01-01", now)
    with pytest.raises(fundcore.ValidationError) as reversed_range:
        engine.statement(ana.id, now, now - datetime.timedelta(days=1))
    assert reversed_range.value.code == "VALIDATION_ERROR"
    with pytest.raises(fundcore.NotFoundError):
        engine.statement(fundcore.new_client_id(), now, now)


def test_failed_notifications_show_their_error_and_leave_when_retried(engine):
    clients = [engine.register_client(name, ANA[1], ANA[2], "email") for name in ("Ana", "Beto", "Carla")]
    for index, client in enumerate(clients):
        engine.subscribe(client.id, 1)
        engine.dispatch_notifications(Refusing(f"mailbox {index} is full"))
    first = engine.failed_notifications(limit=2)
    assert [n.client_id for n in first.items] == [clients[2].id, clients[1].id]
    newest = first.items[0]
    assert (newest.status, newest.attempts, newest.last_error) == ("failed", 1, "mailbox 2 is full")
    assert (newest.channel, newest.recipient) == ("email", ANA[1])
    assert first.next == first.items[1].id
    rest = engine.failed_notifications(limit=2, before=first.next)
    assert [n.client_id for n in rest.items] == [clients[0].id]
    assert rest.to_dict() == {"items": [rest.items[0].to_dict()], "next": None}

    assert engine.retry_failed_notifications() == 3
    assert len(engine.failed_notifications()) == 0
    with pytest.raises(fundcore.ValidationError) as bad_cursor:
        engine.failed_notifications(before="not-an-id")
    assert bad_cursor.value.field == "before"


def test_the_ledger_check_of_a_live_engine(engine, ana):
    engine.subscribe(ana.id, 1, idempotency_key="k-1")
    engine.cancel(ana.id, 1)
    report = engine.verify_ledger()
    assert report.clean
    assert (report.clients, report.transactions, report.active_subscriptions, report.idempotency_keys) == (1, 2, 0, 1)
    assert report.outbox == {"pending": 2, "delivered": 0, "failed": 0}
    assert report.violations == []
    as_dict = report.to_dict()
    assert as_dict["clean"] is True
    assert as_dict["violation_count"] == 0
    assert "violations: none" in as_dict["summary"]


def test_errors_carry_their_message_in_every_locale(engine):
    engine.register_client(*ANA, channel="email")
    with pytest.raises(fundcore.ValidationError) as invalid:
        engine.register_client("Ana", "not-an-email", ANA[2], "email")
    err = invalid.value
    assert err.messages["es"] == err.message
    assert err.messages["en"] == "email: the email address is not valid"
    assert err.problems == {"es": "el correo electrónico no es válido", "en": "the email address is not valid"}

    ana = engine.register_client(*ANA, channel="email")
    engine.subscribe(ana.id, 4)
    with pytest.raises(fundcore.InsufficientBalanceError) as poor:
        engine.subscribe(ana.id, 2, Decimal("300000"))
    assert poor.value.messages == {
        "es": "No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL",
        "en": "Insufficient available balance to subscribe to fund FPV_BTG_PACTUAL_ECOPETROL",
    }
    assert poor.value.problems is None


def test_an_english_engine_keeps_both_locales(store):
    eng = store.open(locale="en")
    try:
        with pytest.raises(fundcore.NotFoundError) as missing:
            eng.client(fundcore.new_client_id())
        assert missing.value.message == missing.value.messages["en"]
        assert missing.value.messages["es"].startswith("No existe el cliente")
    finally:
        eng.close()
