"""The baseline follows the rules of docs/rules.md, so comparing fundcore with it is honest."""
import threading
from decimal import Decimal

import pytest

from baseline.sqlite_engine import (ConflictError, Engine, InsufficientBalanceError, NotFoundError,
                                    ValidationError, format_cop)


@pytest.fixture(params=[True, False], ids=["durable", "periodic"])
def eng(request, tmp_path):
    e = Engine(str(tmp_path / "store"), durable=request.param)
    yield e
    e.close()


def ana(eng, channel="email"):
    return eng.register_client("Ana", "ana@example.com", "+573001234567", channel=channel)


def test_new_client_starts_with_500000(eng):
    c = ana(eng)
    assert c.balance == Decimal("500000.00")
    assert eng.client(c.id).balance == Decimal("500000.00")


def test_subscribe_defaults_to_minimum_and_debits(eng):
    c = ana(eng)
    tx = eng.subscribe(c.id, 1)
    assert tx.kind == "subscription" and tx.amount == Decimal("75000.00")
    assert tx.balance_after == Decimal("425000.00")
    assert eng.client(c.id).balance == Decimal("425000.00")


def test_below_minimum_is_refused_and_changes_nothing(eng):
    c = ana(eng)
    with pytest.raises(ValidationError) as e:
        eng.subscribe(c.id, 2, Decimal("124999.99"))
    assert e.value.code == "BELOW_MINIMUM"
    assert "FPV_BTG_PACTUAL_ECOPETROL" in e.value.message and "COP $125.000" in e.value.message
    assert eng.client(c.id).balance == Decimal("500000.00")
    assert eng.history(c.id) == []


def test_insufficient_balance_exact_message_and_no_trace(eng):
    c = ana(eng)
    eng.subscribe(c.id, 4, Decimal("300000"))
    with pytest.raises(InsufficientBalanceError) as e:
        eng.subscribe(c.id, 2, Decimal("200000.01"))
    assert e.value.code == "INSUFFICIENT_BALANCE"
    assert e.value.message == "No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL"
    assert eng.client(c.id).balance == Decimal("200000.00")
    assert len(eng.history(c.id)) == 1
    assert len(eng.notifications(c.id)) == 1


def test_cancel_refunds_the_stored_amount(eng):
    c = ana(eng)
    eng.subscribe(c.id, 3, Decimal("80000.50"))
    tx = eng.cancel(c.id, 3)
    assert tx.kind == "cancellation" and tx.amount == Decimal("80000.50")
    assert tx.balance_after == Decimal("500000.00")
    assert eng.client(c.id).balance == Decimal("500000.00")
    with pytest.raises(ConflictError) as e:
        eng.cancel(c.id, 3)
    assert e.value.code == "NOT_SUBSCRIBED"
    eng.subscribe(c.id, 3)  # allowed again after cancelling


def test_one_active_subscription_per_fund(eng):
    c = ana(eng)
    eng.subscribe(c.id, 1)
    with pytest.raises(ConflictError) as e:
        eng.subscribe(c.id, 1)
    assert e.value.code == "ALREADY_SUBSCRIBED"


def test_history_newest_first_with_cursor(eng):
    c = ana(eng)
    ids = []
    for _ in range(3):
        ids.append(eng.subscribe(c.id, 1).id)
        ids.append(eng.cancel(c.id, 1).id)
    h = eng.history(c.id, limit=50)
    assert [t.id for t in h] == ids[::-1]
    assert len(set(ids)) == 6 and ids == sorted(ids)
    page = eng.history(c.id, limit=2, before=ids[3])
    assert [t.id for t in page] == [ids[2], ids[1]]


def test_idempotency(eng):
    c = ana(eng)
    t1 = eng.subscribe(c.id, 1, Decimal("80000"), idempotency_key="k-1")
    t2 = eng.subscribe(c.id, 1, Decimal("80000"), idempotency_key="k-1")
    assert t1 == t2 and eng.client(c.id).balance == Decimal("420000.00")
    with pytest.raises(ConflictError) as e:
        eng.subscribe(c.id, 1, Decimal("90000"), idempotency_key="k-1")
    assert e.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_money_never_float(eng):
    c = ana(eng)
    with pytest.raises(TypeError, match="Decimal"):
        eng.subscribe(c.id, 1, 80000.0)
    with pytest.raises(ValidationError):
        eng.subscribe(c.id, 1, Decimal("80000.001"))


def test_unknown_ids(eng):
    with pytest.raises(NotFoundError):
        eng.client("nope")
    c = ana(eng)
    with pytest.raises(NotFoundError) as e:
        eng.subscribe(c.id, 99)
    assert e.value.code == "FUND_NOT_FOUND"


def test_outbox_entry_per_transaction_on_client_channel(eng):
    c = ana(eng, channel="sms")
    eng.subscribe(c.id, 1)
    eng.cancel(c.id, 1)
    n = eng.notifications(c.id)
    assert len(n) == 2 and all(r[2] == "sms" and r[3] == "+573001234567" and len(r[5]) <= 160 for r in n)


def test_concurrent_callers_never_overdraw(tmp_path):
    e = Engine(str(tmp_path / "s"), durable=False)
    c = ana(e)
    errors = []

    def worker(fund):
        try:
            e.subscribe(c.id, fund, Decimal("150000"))
        except InsufficientBalanceError:
            errors.append(fund)

    ts = [threading.Thread(target=worker, args=(f,)) for f in (1, 2, 3, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(errors) == 1  # 3 x 150000 fit in 500000, the fourth does not
    assert e.client(c.id).balance == Decimal("50000.00")


def test_format_cop():
    assert format_cop(Decimal("75000")) == "COP $75.000"
    assert format_cop(Decimal("75000.5")) == "COP $75.000,50"
