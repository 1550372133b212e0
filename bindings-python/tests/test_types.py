"""Types and conversions at the Python boundary: money, times, ids, records."""

from __future__ import annotations

import copy
import datetime
import json
import pickle
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, assert_attributes_match_dict


@pytest.fixture
def client(shared_engine):
    """A new client on the module's engine: the many argument cases below share one store of
    each kind, each with a fresh client whose state it checks."""
    return shared_engine.register_client(*ANA, channel="email")


# ------------------------------------------------------------------ money in


@pytest.mark.parametrize(
    "amount, stored",
    [
        (Decimal("80000"), Decimal("80000.00")),
        (Decimal("80000.5"), Decimal("80000.50")),
        (Decimal("80000.25"), Decimal("80000.25")),
        (Decimal("8E+4"), Decimal("80000.00")),
        (Decimal("80000.000"), Decimal("80000.00")),
        (80000, Decimal("80000.00")),
        ("80000.75", Decimal("80000.75")),
        (" 80000 ", Decimal("80000.00")),
    ],
)
def test_amounts_accept_decimal_int_and_str(shared_engine, client, amount, stored):
    tx = shared_engine.subscribe(client.id, 1, amount)
    assert type(tx.amount) is Decimal
    assert tx.amount == stored
    assert tx.amount.as_tuple().exponent == -2  # always 2 fractional digits
    assert shared_engine.client(client.id).balance == Decimal("500000.00") - stored


@pytest.mark.parametrize("amount", [80000.0, 0.1, float("nan"), True])
def test_floats_and_bools_are_refused_with_type_error(shared_engine, client, amount):
    with pytest.raises(TypeError) as info:
        shared_engine.subscribe(client.id, 1, amount)
    message = str(info.value)
    assert "Decimal" in message and "int" in message and "str" in message
    assert shared_engine.history(client.id) == []
    assert shared_engine.client(client.id).balance == Decimal("500000.00")


def test_float_message_says_why(engine, ana):
    with pytest.raises(TypeError, match="not float"):
        engine.subscribe(ana.id, 1, 80000.5)


@pytest.mark.parametrize("amount", [[80000], b"80000", object()])
def test_other_types_are_type_errors(shared_engine, client, amount):
    with pytest.raises(TypeError, match="decimal.Decimal, int or str"):
        shared_engine.subscribe(client.id, 1, amount)


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("80000.001"),
        "80000.001",
        Decimal("0"),
        0,
        -80000,
        Decimal("-80000"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1E+20"),
        Decimal("1E-100000"),
        "1000000000000.01",
        "ochenta mil",
        "8e4",
        "",
        10**40,
    ],
)
def test_invalid_amounts_are_validation_errors(shared_engine, client, amount):
    with pytest.raises(fundcore.ValidationError) as info:
        shared_engine.subscribe(client.id, 1, amount)
    assert info.value.code == "VALIDATION_ERROR"
    assert info.value.field == "amount"
    assert shared_engine.history(client.id) == []
    assert shared_engine.notifications(client.id) == []


def test_largest_amount_is_accepted(store):
    with store.open(initial_balance="1000000000000") as eng:
        c = eng.register_client("Rica", "rica@example.com", "+573001234567", "email")
        assert c.balance == Decimal("1000000000000.00")
        tx = eng.subscribe(c.id, 1, Decimal("1000000000000"))
        assert tx.balance_after == Decimal("0.00")


def test_initial_balance_accepts_money_types_but_not_float(store):
    with pytest.raises(TypeError):
        store.open(initial_balance=1000.5)
    with pytest.raises(fundcore.ValidationError) as info:
        store.open(initial_balance="-1")
    with store.open(initial_balance=Decimal("1000.5")) as eng:
        assert eng.initial_balance == Decimal("1000.50")
    assert info.value.field == "initial_balance"


# ------------------------------------------------------------------ money and times out


def test_money_attributes_are_decimals_and_json_strings(engine, ana):
    tx = engine.subscribe(ana.id, 3, 50000)
    assert isinstance(tx.amount, Decimal) and isinstance(tx.balance_after, Decimal)
    data = tx.to_dict()
    assert data["amount"] == "50000.00"
    assert data["balance_after"] == "450000.00"
    for fund in engine.funds():
        assert isinstance(fund.minimum, Decimal)
        assert fund.to_dict()["minimum"] == str(fund.minimum)


def test_timestamps_are_aware_utc_datetimes(engine, ana):
    before = datetime.datetime.now(datetime.timezone.utc)
    tx = engine.subscribe(ana.id, 1)
    after = datetime.datetime.now(datetime.timezone.utc)
    for value in (tx.created_at, ana.created_at, engine.subscriptions(ana.id)[0].subscribed_at):
        assert isinstance(value, datetime.datetime)
        assert value.tzinfo is not None
        assert value.utcoffset() == datetime.timedelta(0)
    assert before - datetime.timedelta(seconds=1) <= tx.created_at <= after + datetime.timedelta(seconds=1)
    text = tx.to_dict()["created_at"]
    assert text.endswith("Z")
    assert datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) == tx.created_at


def test_to_dict_is_json_ready_and_agrees_with_attributes(engine, ana):
    tx = engine.subscribe(ana.id, 1, "80000", idempotency_key="k-1")
    engine.cancel(ana.id, 1)
    engine.dispatch_notifications(type("Ok", (), {"send": lambda self, n: None})())
    records = [
        *engine.funds(),
        engine.client(ana.id),
        *engine.history(ana.id),
        *engine.notifications(ana.id),
        engine.transaction(tx.id),
        engine.dispatch_notifications(type("Ok", (), {"send": lambda self, n: None})()),
    ]
    engine.subscribe(ana.id, 2)
    records += engine.subscriptions(ana.id)
    for record in records:
        data = record.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert_attributes_match_dict(record)
    assert set(ana.to_dict()) == {"id", "name", "email", "phone", "channel", "balance", "created_at"}
    assert set(tx.to_dict()) == {
        "id", "client_id", "fund_id", "fund_name", "kind", "amount", "balance_after",
        "created_at", "idempotency_key",
    }


def test_ids_are_strings_and_enums_are_their_spec_strings(engine, ana):
    tx = engine.subscribe(ana.id, 1)
    assert isinstance(ana.id, str) and len(ana.id) == 36
    assert isinstance(tx.id, str) and tx.client_id == ana.id
    assert tx.kind == "subscription"
    assert ana.channel == "email"
    assert [f.category for f in engine.funds()] == ["FPV", "FPV", "FIC", "FIC", "FPV"]
    n = engine.notifications(ana.id)[0]
    assert (n.status, n.channel, n.attempts, n.last_error, n.delivered_at) == ("pending", "email", 0, None, None)


# ------------------------------------------------------------------ records


def test_records_are_immutable(engine, ana):
    tx = engine.subscribe(ana.id, 1)
    with pytest.raises(AttributeError):
        tx.amount = Decimal("1")
    with pytest.raises(AttributeError):
        ana.balance = Decimal("1")
    with pytest.raises(AttributeError):
        tx.extra = 1
    with pytest.raises(TypeError):
        fundcore.Transaction()


def test_records_compare_by_value_and_hash(engine, ana):
    tx = engine.subscribe(ana.id, 1)
    same = engine.transaction(tx.id)
    assert tx is not same and tx == same and hash(tx) == hash(same)
    assert len({tx, same}) == 1
    assert engine.client(ana.id) != ana  # balance changed
    assert tx != engine.subscribe(ana.id, 2)
    assert tx != tx.to_dict() and tx != "x"
    assert engine.fund(1) == fundcore.Fund(1, "FPV_BTG_PACTUAL_RECAUDADORA", 75000, "FPV")


def test_repr_is_readable(engine, ana):
    tx = engine.subscribe(ana.id, 1, Decimal("80000"))
    text = repr(tx)
    assert text.startswith("Transaction(id='")
    assert "amount=Decimal('80000.00')" in text
    assert "kind='subscription'" in text
    assert "tzinfo=datetime.timezone.utc" in text
    assert repr(engine.fund(3)) == (
        "Fund(id=3, name='DEUDAPRIVADA', minimum=Decimal('50000.00'), category='FIC', active=True)"
    )
    assert repr(engine) == f"<fundcore.Engine path='{engine.path}' locale='es'>"
    with fundcore.Engine(locale="en") as temporary:
        assert repr(temporary) == "<fundcore.Engine temporary locale='en'>"
    assert repr(temporary) == "<fundcore.Engine temporary locale='en' closed>"


def test_records_pickle_and_copy(engine, ana):
    tx = engine.subscribe(ana.id, 1)
    for record in (tx, ana, engine.fund(1), engine.notifications(ana.id)[0], engine.subscriptions(ana.id)[0]):
        assert pickle.loads(pickle.dumps(record)) == record
        assert copy.copy(record) == record
        assert copy.deepcopy(record) == record


def test_fund_constructor_validates_through_the_core():
    fund = fundcore.Fund(9, "X", "1000", "FIC", active=False)
    assert fund.minimum == Decimal("1000.00") and fund.active is False
    with pytest.raises(fundcore.ValidationError) as info:
        fundcore.Fund(9, "X", "1000.001", "FIC")
    assert info.value.field == "minimum"
    with pytest.raises(fundcore.ValidationError) as info:
        fundcore.Fund(9, "X", "1000", "ETF")
    assert info.value.field == "category"
    with pytest.raises(TypeError):
        fundcore.Fund(9, "X", 1000.0, "FIC")


def test_format_cop():
    assert fundcore.format_cop(Decimal("75000")) == "COP $75.000"
    assert fundcore.format_cop("1250000.5") == "COP $1.250.000,50"
    with pytest.raises(TypeError):
        fundcore.format_cop(1.5)


def test_text_with_a_thousands_dot_is_refused_while_a_decimal_of_that_value_is_not(engine, ana):
    """"75.000" typed by a person who reads COP $75.000 means seventy-five thousand: the engine
    refuses it rather than take 75; Decimal("75.000") is a number, seventy-five."""
    for text in ("75.000", "125.000", "1.500"):
        with pytest.raises(fundcore.ValidationError) as info:
            engine.subscribe(ana.id, 1, text)
        assert info.value.field == "amount"
        assert info.value.problems == {
            "es": "escriba el monto sin punto de miles (75000); el punto separa solo los centavos (75000.50)",
            "en": "write the amount without a thousands dot (75000); a dot only separates the cents (75000.50)",
        }
    assert engine.history(ana.id) == []
    assert fundcore.format_cop(Decimal("75.000")) == "COP $75"
    assert fundcore.format_cop(Decimal("80000.000")) == "COP $80.000"
    assert engine.subscribe(ana.id, 1, "80000.000").amount == Decimal("80000.00")


# ------------------------------------------------------------------ arguments


def test_limit_and_fund_id_arguments(engine, ana):
    for bad in (0, -1, 201, 10**30):
        with pytest.raises(fundcore.ValidationError) as info:
            engine.history(ana.id, limit=bad)
        assert info.value.field == "limit"
    with pytest.raises(TypeError):
        engine.history(ana.id, limit="5")
    # a malformed cursor is bad input, not an unknown transaction
    with pytest.raises(fundcore.ValidationError) as info:
        engine.history(ana.id, before="not-a-cursor")
    assert info.value.code == "VALIDATION_ERROR" and info.value.field == "before"
    for missing in (-1, 2**32, 10**30, 99):
        with pytest.raises(fundcore.NotFoundError) as info:
            engine.fund(missing)
        assert info.value.code == "FUND_NOT_FOUND"
        assert str(missing) in info.value.message
    with pytest.raises(TypeError):
        engine.fund("1")
    with pytest.raises(TypeError):
        engine.subscribe(ana.id, 1.0)


def test_keyword_arguments_of_the_spec(engine, ana):
    tx = engine.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-1")
    assert tx.idempotency_key == "k-1"
    assert engine.history(ana.id, limit=50, before=None) == [tx]
    assert engine.cancel(ana.id, 1, idempotency_key="k-2").kind == "cancellation"
    page = engine.history(ana.id, limit=1)
    assert engine.history(ana.id, limit=1, before=page[0].id) == [tx]
    with pytest.raises(TypeError):
        engine.subscribe(ana.id, 1, Decimal("80000"), "k-positional")  # key is keyword-only


# ------------------------------------------------------------------ the stubs


def test_stubs_match_the_module(tmp_path):
    """mypy's stubtest compares _fundcore.pyi with the built module: every name, signature,
    property and default (run from an empty directory so the installed package is checked)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fundcore", "--mypy-config-file", str(tmp_path / "none.ini")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (Path(fundcore.__file__).parent / "py.typed").exists()
    assert set(fundcore.__all__) <= set(dir(fundcore))
