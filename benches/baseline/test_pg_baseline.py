"""The psycopg baseline follows the rules of docs/rules.md on a real PostgreSQL server, so
comparing fundcore's PostgreSQL store with it is honest.

Needs FUNDCORE_TEST_DATABASE_URL (a role that may CREATE DATABASE); `make test-baseline` starts a
private server on loopback when it is not set. Every test gets a fresh database.
"""
import os
import re
import secrets
import threading
from decimal import Decimal

import psycopg
import pytest

from baseline.pg_engine import (SCHEMA_FILE, ConflictError, Engine, InsufficientBalanceError,
                                NotFoundError, ValidationError)

ADMIN_URL = os.environ.get("FUNDCORE_TEST_DATABASE_URL")


def database_url(name: str) -> str:
    base, _, query = ADMIN_URL.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


@pytest.fixture
def url():
    if not ADMIN_URL:
        pytest.fail("FUNDCORE_TEST_DATABASE_URL is not set: run `make test-baseline`, which starts "
                    "a private PostgreSQL server")
    name = f"baseline_test_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def eng(url):
    e = Engine(url, pool_size=4)
    yield e
    e.close()


def ana(eng, channel="email"):
    return eng.register_client("Ana", "ana@example.com", "+573001234567", channel=channel)


def test_schema_is_fundcores_own_with_numeric_money(eng, url):
    with open(SCHEMA_FILE) as f:
        tables = set(re.findall(r"CREATE TABLE (\w+)", f.read()))
    with psycopg.connect(url) as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        money = con.execute(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE column_name IN ('balance', 'amount', 'balance_after')"
            " ORDER BY table_name, column_name").fetchall()
    assert tables and tables == present
    assert money and all(r[2:] == ("numeric", 17, 2) for r in money), money


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
    assert [s.fund_id for s in eng.subscriptions(c.id)] == [1]
    assert eng.transaction(tx.id) == tx


def test_below_minimum_is_refused_and_changes_nothing(eng):
    c = ana(eng)
    with pytest.raises(ValidationError) as e:
        eng.subscribe(c.id, 2, Decimal("124999.99"))
    assert e.value.code == "BELOW_MINIMUM"
    assert e.value.message == ("El monto mínimo para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL "
                               "es COP $125.000")
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
    assert [s.fund_id for s in eng.subscriptions(c.id)] == [4]


def test_cancel_refunds_the_stored_amount(eng):
    c = ana(eng)
    eng.subscribe(c.id, 3, Decimal("80000.50"))
    tx = eng.cancel(c.id, 3)
    assert tx.kind == "cancellation" and tx.amount == Decimal("80000.50")
    assert tx.balance_after == Decimal("500000.00")
    assert eng.client(c.id).balance == Decimal("500000.00")
    assert eng.subscriptions(c.id) == []
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
    assert eng.client(c.id).balance == Decimal("425000.00")


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
    with pytest.raises(ConflictError) as e:
        eng.cancel(c.id, 1, idempotency_key="k-1")
    assert e.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert len(eng.history(c.id)) == 1


def test_concurrent_duplicates_of_one_key_make_one_transaction(eng):
    c = ana(eng)
    results, start = [], threading.Barrier(4)

    def worker():
        start.wait()
        results.append(eng.subscribe(c.id, 2, idempotency_key="same-order"))

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(results) == 4 and len({tx.id for tx in results}) == 1
    assert eng.client(c.id).balance == Decimal("375000.00")
    assert len(eng.history(c.id)) == 1


def test_money_never_float(eng):
    c = ana(eng)
    with pytest.raises(TypeError, match="Decimal"):
        eng.subscribe(c.id, 1, 80000.0)
    with pytest.raises(ValidationError):
        eng.subscribe(c.id, 1, Decimal("80000.001"))
    assert eng.client(c.id).balance == Decimal("500000.00")


def test_unknown_ids(eng):
    with pytest.raises(NotFoundError) as e:
        eng.client("nope")
    assert e.value.code == "CLIENT_NOT_FOUND"
    with pytest.raises(NotFoundError) as e:
        eng.subscribe("0191c5c2-0000-7000-8000-000000000000", 1)
    assert e.value.code == "CLIENT_NOT_FOUND"
    c = ana(eng)
    with pytest.raises(NotFoundError) as e:
        eng.subscribe(c.id, 99)
    assert e.value.code == "FUND_NOT_FOUND"
    with pytest.raises(NotFoundError) as e:
        eng.transaction("0191c5c2-0000-7000-8000-000000000000")
    assert e.value.code == "TRANSACTION_NOT_FOUND"


def test_outbox_row_per_transaction_on_client_channel(eng):
    c = ana(eng, channel="sms")
    s = eng.subscribe(c.id, 1)
    k = eng.cancel(c.id, 1)
    n = eng.notifications(c.id)
    assert [r[1] for r in n] == [k.id, s.id]
    assert all(r[2] == "sms" and r[3] == "+573001234567" and r[4] == "pending" for r in n)


def test_concurrent_callers_never_overdraw(eng):
    c = ana(eng)
    refused, start = [], threading.Barrier(4)

    def worker(fund):
        start.wait()
        try:
            eng.subscribe(c.id, fund, Decimal("150000"))
        except InsufficientBalanceError:
            refused.append(fund)

    ts = [threading.Thread(target=worker, args=(f,)) for f in (1, 2, 3, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(refused) == 1  # 3 x 150000 fit in 500000, the fourth does not
    assert eng.client(c.id).balance == Decimal("50000.00")
    assert len(eng.history(c.id)) == 3


def test_round_trips_counted_as_the_protocol_sees_them(url, tmp_path):
    """round_trips (reported by the benchmarks) equals the server's ReadyForQuery messages."""
    e = Engine(url, pool_size=1)
    try:
        c = ana(e)
        trace = tmp_path / "libpq.trace"
        with open(trace, "w") as f:
            with e._pool.connection() as con:
                con.pgconn.trace(f.fileno())
                con.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            before = e.round_trips
            e.subscribe(c.id, 1)
            e.cancel(c.id, 1)
            e.subscribe(c.id, 2, idempotency_key="k")
            counted = e.round_trips - before
            with e._pool.connection() as con:
                con.pgconn.untrace()
        seen = len(re.findall(r"^B\s+\d+\s+ReadyForQuery", trace.read_text(), re.M))
    finally:
        e.close()
    assert counted == seen == 8 + 8 + 10
