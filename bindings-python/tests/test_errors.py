"""The exception hierarchy: one class per family of error codes (docs/errors.md), with code,
message, field."""

from __future__ import annotations

import pickle
import uuid
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA


def test_hierarchy():
    assert issubclass(fundcore.FundcoreError, Exception)
    for cls in (
        fundcore.ValidationError,
        fundcore.NotFoundError,
        fundcore.ConflictError,
        fundcore.StorageError,
    ):
        assert issubclass(cls, fundcore.FundcoreError)
    assert issubclass(fundcore.InsufficientBalanceError, fundcore.ConflictError)
    assert not issubclass(fundcore.PermanentDeliveryError, fundcore.FundcoreError)


def raised(call):
    with pytest.raises(fundcore.FundcoreError) as info:
        call()
    err = info.value
    assert str(err) == err.message and err.message
    return err


def test_each_code_has_its_class(engine, ana):
    cases = [
        (lambda: engine.subscribe(ana.id, 1, "1.001"), fundcore.ValidationError, "VALIDATION_ERROR"),
        (lambda: engine.subscribe(ana.id, 1, 1000), fundcore.ValidationError, "BELOW_MINIMUM"),
        (lambda: engine.client(str(uuid.uuid4())), fundcore.NotFoundError, "CLIENT_NOT_FOUND"),
        (lambda: engine.client("not-an-id"), fundcore.NotFoundError, "CLIENT_NOT_FOUND"),
        (lambda: engine.fund(42), fundcore.NotFoundError, "FUND_NOT_FOUND"),
        (lambda: engine.transaction(str(uuid.uuid4())), fundcore.NotFoundError, "TRANSACTION_NOT_FOUND"),
        (lambda: engine.cancel(ana.id, 1), fundcore.ConflictError, "NOT_SUBSCRIBED"),
    ]
    for call, cls, code in cases:
        err = raised(call)
        assert type(err) is cls, (code, type(err))
        assert err.code == code
        assert (err.field is not None) == (code == "VALIDATION_ERROR")

    engine.subscribe(ana.id, 1, idempotency_key="k-1")
    err = raised(lambda: engine.subscribe(ana.id, 1))
    assert (type(err), err.code) == (fundcore.ConflictError, "ALREADY_SUBSCRIBED")
    err = raised(lambda: engine.subscribe(ana.id, 2, idempotency_key="k-1"))
    assert (type(err), err.code) == (fundcore.ConflictError, "IDEMPOTENCY_KEY_REUSED")
    engine.subscribe(ana.id, 4, Decimal("400000"))
    err = raised(lambda: engine.subscribe(ana.id, 2))
    assert type(err) is fundcore.InsufficientBalanceError
    assert err.code == "INSUFFICIENT_BALANCE"
    assert err.message == "No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL"
    assert isinstance(err, fundcore.ConflictError)


def test_fund_inactive_is_a_conflict(store):
    funds = [fundcore.Fund(7, "FONDO_CERRADO", 10000, "FIC", active=False)]
    with store.open(funds=funds) as eng:
        c = eng.register_client(*ANA, "sms")
        err = raised(lambda: eng.subscribe(c.id, 7))
        assert (type(err), err.code) == (fundcore.ConflictError, "FUND_INACTIVE")


def test_storage_error_when_the_store_is_locked(tmp_path):
    with fundcore.Engine(tmp_path / "store"):
        err = raised(lambda: fundcore.Engine(tmp_path / "store"))
        assert type(err) is fundcore.StorageError
        assert err.code == "STORAGE_ERROR"


def test_validation_errors_name_the_field(engine, store):
    cases = {
        "name": ("", "a@example.com", "+573001234567", "email"),
        "email": ("Bo", "bo-at-example.com", "+573001234567", "email"),
        "phone": ("Bo", "bo@example.com", "3001234567", "sms"),
        "channel": ("Bo", "bo@example.com", "+573001234567", "fax"),
    }
    for field, args in cases.items():
        with pytest.raises(fundcore.ValidationError) as info:
            engine.register_client(*args)
        assert info.value.field == field
        assert info.value.code == "VALIDATION_ERROR"
    for field, settings in {
        "locale": {"locale": "fr"},
        "durability": {"durability": "sometimes"},
        "max_attempts": {"max_attempts": 0},
    }.items():
        with pytest.raises(fundcore.ValidationError) as info:
            store.open(**settings)
        assert (info.value.code, info.value.field) == ("VALIDATION_ERROR", field)


#: Settings that mean nothing for a kind of store, and the field each is refused on.
MEANINGLESS_SETTINGS = {
    "sled": [({"pool_size": 4}, "pool_size"), ({"pool_size": 0}, "pool_size")],
    "postgres": [
        ({"durability": "periodic"}, "durability"),
        ({"durability": "periodic", "flush_interval_ms": 100}, "durability"),
        ({"flush_interval_ms": 100}, "flush_interval_ms"),
        ({"cache_capacity_bytes": 1 << 20}, "cache_capacity_bytes"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": -1}, "pool_size"),
        ({"pool_size": 2**32}, "pool_size"),
    ],
}


def test_settings_that_make_no_sense_for_the_store_are_refused(store):
    """A setting of the other kind of store, or a pool of no connections, is refused with the
    core's configuration error (never silently ignored), and the store is left as it was."""
    for settings, field in MEANINGLESS_SETTINGS[store.kind]:
        for locale, text in (("es", "valor de configuración fuera de rango"), ("en", "configuration value out of range")):
            with pytest.raises(fundcore.ValidationError) as info:
                store.open(locale=locale, **settings)
            err = info.value
            assert (err.code, err.field) == ("VALIDATION_ERROR", field), settings
            assert err.message == f"{field}: {text}"
    with store.open(initial_balance=1000) as eng:  # nothing was created by the refusals
        assert eng.initial_balance == Decimal("1000.00")


def test_settings_of_the_store_are_accepted(store):
    settings = (
        {"pool_size": 1}
        if store.kind == "postgres"
        else {"durability": "periodic", "flush_interval_ms": 50, "cache_capacity_bytes": 1 << 20}
    )
    with store.open(**settings) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        eng.flush()
    with store.open() as eng:
        assert eng.client(c.id).balance == Decimal("425000.00")


def test_messages_follow_the_engine_locale(store):
    with store.open(locale="en") as eng:
        assert eng.locale == "en"
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 4, Decimal("400000"))
        with pytest.raises(fundcore.InsufficientBalanceError) as info:
            eng.subscribe(c.id, 2)
        assert info.value.message == "Insufficient available balance to subscribe to fund FPV_BTG_PACTUAL_ECOPETROL"
        with pytest.raises(fundcore.ValidationError) as info:
            eng.subscribe(c.id, 1, "1.001")
        assert info.value.message == "amount: the amount allows at most 2 decimal places"
        with pytest.raises(fundcore.ValidationError) as info:
            eng.subscribe(c.id, 1, 1000)
        assert info.value.message == "The minimum amount to subscribe to fund FPV_BTG_PACTUAL_RECAUDADORA is COP $75.000"
        with pytest.raises(fundcore.NotFoundError) as info:
            eng.fund(-1)
        assert info.value.message == "Fund -1 not found"


def test_a_failed_operation_changes_nothing(engine, ana):
    engine.subscribe(ana.id, 1)
    before = (engine.client(ana.id), engine.history(ana.id), engine.notifications(ana.id), engine.subscriptions(ana.id))
    for call in (
        lambda: engine.subscribe(ana.id, 1),
        lambda: engine.subscribe(ana.id, 4, Decimal("500000")),
        lambda: engine.cancel(ana.id, 2),
        lambda: engine.subscribe(ana.id, 2, "1.001"),
    ):
        with pytest.raises(fundcore.FundcoreError):
            call()
    after = (engine.client(ana.id), engine.history(ana.id), engine.notifications(ana.id), engine.subscriptions(ana.id))
    assert after == before


def test_exceptions_can_be_built_caught_and_pickled():
    err = fundcore.ConflictError("NOT_SUBSCRIBED", "No tiene una suscripción activa al fondo X")
    assert (err.code, err.message, err.field) == ("NOT_SUBSCRIBED", "No tiene una suscripción activa al fondo X", None)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is fundcore.ConflictError
    assert (back.code, back.message, back.field) == (err.code, err.message, err.field)
    assert "NOT_SUBSCRIBED" in repr(err)


def test_closed_engine_refuses_calls(engine, ana):
    eng = engine
    eng.close()
    eng.close()  # idempotent
    assert eng.closed
    with pytest.raises(ValueError, match="closed"):
        eng.funds()
    with pytest.raises(ValueError, match="closed"):
        eng.client(ana.id)
