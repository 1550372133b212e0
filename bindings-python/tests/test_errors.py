"""The exception hierarchy: one class per family of error codes (docs/errors.md), with code,
message, field, problem and HTTP status; `ERROR_CODES`; fund ids of any size."""

from __future__ import annotations

import enum
import pickle
import uuid
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, REPO


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
    # A change whose outcome is unknown is a store failure to a caller that does not know the
    # code: `except StorageError` (a 503 in a host) still catches it.
    assert issubclass(fundcore.OutcomeUnknownError, fundcore.StorageError)
    assert not issubclass(fundcore.PermanentDeliveryError, fundcore.FundcoreError)


def test_outcome_unknown_is_a_storage_error_with_its_own_code_and_503():
    assert fundcore.ERROR_CODES["OUTCOME_UNKNOWN"] == 503
    err = fundcore.OutcomeUnknownError("OUTCOME_UNKNOWN", "may have been saved")
    assert (err.code, err.http_status, err.field, err.problem) == ("OUTCOME_UNKNOWN", 503, None, None)
    assert isinstance(err, fundcore.StorageError) and not isinstance(err, (ValueError, LookupError))
    with pytest.raises(fundcore.StorageError):
        raise err
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is fundcore.OutcomeUnknownError
    assert (back.code, back.message, back.http_status) == ("OUTCOME_UNKNOWN", "may have been saved", 503)


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
    "sled": [
        ({"pool_size": 4}, "pool_size"),
        ({"pool_size": 0}, "pool_size"),
        ({"operation_timeout_ms": 2000}, "operation_timeout"),
        ({"operation_timeout_ms": fundcore.DEFAULT_OPERATION_TIMEOUT_MS}, "operation_timeout"),
        ({"prepared_statements": False}, "prepared_statements"),
        ({"prepared_statements": True}, "prepared_statements"),
    ],
    "postgres": [
        ({"durability": "periodic"}, "durability"),
        ({"durability": "periodic", "flush_interval_ms": 100}, "durability"),
        ({"flush_interval_ms": 100}, "flush_interval_ms"),
        ({"cache_capacity_bytes": 1 << 20}, "cache_capacity_bytes"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": -1}, "pool_size"),
        ({"pool_size": 2**32}, "pool_size"),
        # The operation timeout is checked by the core: from 100 ms to 30 s.
        ({"operation_timeout_ms": 0}, "operation_timeout"),
        ({"operation_timeout_ms": fundcore.MIN_OPERATION_TIMEOUT_MS - 1}, "operation_timeout"),
        ({"operation_timeout_ms": fundcore.MAX_OPERATION_TIMEOUT_MS + 1}, "operation_timeout"),
        ({"operation_timeout_ms": -1}, "operation_timeout"),
        ({"operation_timeout_ms": 2**64}, "operation_timeout"),
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


@pytest.mark.parametrize(
    "postgres_settings",
    [
        {"pool_size": 1},
        {"operation_timeout_ms": 2500, "prepared_statements": False},
        {"operation_timeout_ms": fundcore.MAX_OPERATION_TIMEOUT_MS, "prepared_statements": True},
        {"pool_size": 2, "operation_timeout_ms": 5000, "prepared_statements": False},
    ],
)
def test_settings_of_the_store_are_accepted(store, postgres_settings):
    settings = (
        postgres_settings
        if store.kind == "postgres"
        else {"durability": "periodic", "flush_interval_ms": 50, "cache_capacity_bytes": 1 << 20}
    )
    with store.open(**settings) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1, idempotency_key="k-1")
        assert eng.subscribe(c.id, 1, idempotency_key="k-1").balance_after == Decimal("425000.00")
        eng.cancel(c.id, 1)
        eng.subscribe(c.id, 1)
        eng.flush()
    with store.open() as eng:
        assert eng.client(c.id).balance == Decimal("425000.00")


@pytest.mark.parametrize(
    "timeout_ms", [fundcore.MIN_OPERATION_TIMEOUT_MS, fundcore.MAX_OPERATION_TIMEOUT_MS], ids=["min", "max"]
)
def test_the_operation_timeouts_bounds_are_accepted(timeout_ms):
    """Both ends of the range pass the configuration check: the engine goes on to connect (to a
    port where nothing listens, so the answer is the store's, not a ValidationError)."""
    with pytest.raises(fundcore.StorageError) as refused:
        fundcore.Engine("postgresql://postgres@127.0.0.1:1/none", operation_timeout_ms=timeout_ms)
    assert type(refused.value) is fundcore.StorageError


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


# ------------------------------------------------------------------ the binding's error surface
# `ERROR_CODES`, `http_status`, `field`/`problem` and the Python bases of the classes, checked
# against docs/errors.md (the table users read) and against what the engine raises.

ERRORS_DOC = REPO / "docs" / "errors.md"


def documented_table(kind: str) -> list[dict[str, str]]:
    """The rows of the docs/errors.md table marked `<!-- checked: kind -->`, by column name
    (cells without their backticks)."""
    lines = ERRORS_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- checked: {kind} -->") + 1
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _rule, *body = rows
    return [dict(zip(header, (cell.replace("`", "") for cell in row), strict=True)) for row in body]


def test_error_codes_are_the_documented_table():
    """`ERROR_CODES` is every code of docs/errors.md with its HTTP status, in the same order."""
    documented = [(row["code"], int(row["HTTP"])) for row in documented_table("engine-errors")]
    assert list(fundcore.ERROR_CODES.items()) == documented
    assert all(type(status) is int for status in fundcore.ERROR_CODES.values())


def every_code_raised(store) -> dict[str, fundcore.FundcoreError]:
    """One engine error of each code, raised on `store` (a catalogue with an inactive fund)."""
    funds = [
        fundcore.Fund(1, "ABIERTO", 1000, "FPV"),
        fundcore.Fund(2, "CERRADO", 1000, "FIC", active=False),
        fundcore.Fund(3, "GRANDE", 4000, "FIC"),
    ]
    calls = []
    with store.open(funds=funds, initial_balance=5000) as eng:
        ana = eng.register_client(*ANA, "email")
        eng.subscribe(ana.id, 1, 2000, idempotency_key="k-1")
        calls = [
            lambda: eng.subscribe(ana.id, 3, "4000.001"),
            lambda: eng.subscribe(ana.id, 3, 10),
            lambda: eng.subscribe(ana.id, 3),
            lambda: eng.subscribe(ana.id, 1),
            lambda: eng.cancel(ana.id, 3),
            lambda: eng.subscribe(ana.id, 2),
            lambda: eng.subscribe(ana.id, 3, idempotency_key="k-1"),
            lambda: eng.client(str(uuid.uuid4())),
            lambda: eng.fund(99),
            lambda: eng.create_fund(1, "OTRO", 1000, "FIC", actor="ops"),
            lambda: eng.transaction(str(uuid.uuid4())),
            lambda: fundcore.Engine("postgresql://fundcore:secret@127.0.0.1:1/none"),
        ]
        raised_by_code = {}
        for call in calls:
            err = raised(call)
            raised_by_code[err.code] = err
    return raised_by_code


#: Codes a healthy store cannot be made to raise on demand: OUTCOME_UNKNOWN needs a network that
#: loses a reply and stays silent (test_postgres_network.py builds one); its class and status are
#: checked here on an instance made as the binding makes them.
NOT_RAISED_ON_DEMAND = {"OUTCOME_UNKNOWN": fundcore.OutcomeUnknownError}


def test_every_code_has_its_documented_class_status_and_python_bases(store):
    raised_by_code = every_code_raised(store)
    assert set(raised_by_code) == set(fundcore.ERROR_CODES) - set(NOT_RAISED_ON_DEMAND)  # each once
    for code, cls in NOT_RAISED_ON_DEMAND.items():
        raised_by_code[code] = cls(code, "x")
    for row in documented_table("engine-errors"):
        code = row["code"]
        err = raised_by_code[code]
        assert type(err).__name__ == row["Python"], code
        assert err.http_status == fundcore.ERROR_CODES[code] == int(row["HTTP"]), code
        # Python habits: bad input is a ValueError, an unknown id a LookupError, and nothing else.
        assert isinstance(err, ValueError) == (row["Python"] == "ValidationError"), code
        assert isinstance(err, LookupError) == (row["Python"] == "NotFoundError"), code


def test_python_habits_catch_engine_errors(engine, ana):
    with pytest.raises(ValueError) as info:
        engine.subscribe(ana.id, 1, "ochenta mil")
    assert type(info.value) is fundcore.ValidationError
    with pytest.raises(ValueError) as info:
        engine.subscribe(ana.id, 1, 10)
    assert info.value.code == "BELOW_MINIMUM"
    with pytest.raises(LookupError) as info:
        engine.transaction("not-an-id")
    assert type(info.value) is fundcore.NotFoundError
    with pytest.raises(LookupError):
        engine.fund(2**40)


#: (field, call) pairs: each call on an engine and a client id raises VALIDATION_ERROR on field.
VALIDATION_CALLS = [
    ("amount", lambda eng, cid: eng.subscribe(cid, 1, "1.001")),
    ("amount", lambda eng, cid: eng.subscribe(cid, 1, "ochenta mil")),
    ("amount", lambda eng, cid: eng.subscribe(cid, 1, -5)),
    ("idempotency_key", lambda eng, cid: eng.subscribe(cid, 1, idempotency_key="")),
    ("name", lambda eng, cid: eng.register_client("", "a@example.com", "+573001234567", "email")),
    ("email", lambda eng, cid: eng.register_client("Bo", "bo-at-example.com", "+573001234567", "email")),
    ("phone", lambda eng, cid: eng.register_client("Bo", "bo@example.com", "3001234567", "sms")),
    ("channel", lambda eng, cid: eng.register_client("Bo", "bo@example.com", "+573001234567", "fax")),
    ("limit", lambda eng, cid: eng.history(cid, limit=0)),
    ("limit", lambda eng, cid: eng.history_page(cid, limit=fundcore.MAX_PAGE + 1)),
    ("before", lambda eng, cid: eng.history_page(cid, before="not-a-cursor")),
]


def documented_problems(locale: str) -> dict[str, set[str]]:
    """Field -> the problems docs/errors.md lists for it, in `locale`."""
    problems: dict[str, set[str]] = {}
    for row in documented_table("validation-fields"):
        for field in row["field"].split(", "):
            problems.setdefault(field, set()).add(row[f"problem ({locale})"])
    return problems


@pytest.mark.parametrize("locale", ["es", "en"])
def test_validation_errors_carry_field_and_problem_in_the_engine_locale(store, locale):
    """`problem` is the message without `field: `, one of the documented problems of that
    field, in the engine's locale; other errors have neither."""
    documented = documented_problems(locale)
    other = documented_problems("en" if locale == "es" else "es")
    with store.open(locale=locale) as eng:
        ana = eng.register_client(*ANA, "email")
        for field, call in VALIDATION_CALLS:
            with pytest.raises(fundcore.ValidationError) as info:
                call(eng, ana.id)
            err = info.value
            assert (err.code, err.field) == ("VALIDATION_ERROR", field)
            assert err.message == f"{field}: {err.problem}"
            assert err.problem in documented[field], (field, err.problem)
            assert err.problem not in other[field]  # the engine's locale, not the other one
            assert err.http_status == 422
        eng.subscribe(ana.id, 1)
        for call in (
            lambda: eng.subscribe(ana.id, 2, 10),
            lambda: eng.subscribe(ana.id, 1),
            lambda: eng.client(str(uuid.uuid4())),
            lambda: eng.fund(-7),
        ):
            err = raised(call)
            assert (err.field, err.problem) == (None, None), err.code
    for settings, field in (({"max_attempts": 0}, "max_attempts"), ({"initial_balance": "-1"}, "initial_balance")):
        with pytest.raises(fundcore.ValidationError) as info:
            store.open(locale=locale, **settings)
        err = info.value
        assert err.field == field and err.message == f"{field}: {err.problem}"
        assert err.problem in documented[field]


def test_problem_is_translated_not_copied(store):
    """The same bad input gives the same field and different problems in the two locales."""
    problems = {}
    for locale in ("es", "en"):
        with store.open(locale=locale) as eng:
            with pytest.raises(fundcore.ValidationError) as info:
                eng.register_client("Bo", "bo@example.com", "+57", "sms")
            problems[locale] = info.value.problem
    assert problems["es"] != problems["en"]
    assert "E.164" in problems["es"] and "E.164" in problems["en"]


def test_exceptions_built_by_hand_take_the_status_of_their_code():
    """An application (or a test double) raising a fundcore error gets the status of its code."""
    for code, status in fundcore.ERROR_CODES.items():
        assert fundcore.FundcoreError(code, "x").http_status == status
    assert fundcore.ConflictError("NOT_SUBSCRIBED", "x").http_status == 409
    assert fundcore.FundcoreError("SOMETHING_ELSE", "x").http_status == 500
    assert fundcore.FundcoreError("NOT_SUBSCRIBED", "x", http_status=418).http_status == 418
    err = fundcore.ValidationError("VALIDATION_ERROR", "amount: bad", "amount", "bad")
    assert (err.field, err.problem, err.http_status) == ("amount", "bad", 422)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is fundcore.ValidationError
    assert (back.code, back.message, back.field, back.problem, back.http_status) == (
        "VALIDATION_ERROR", "amount: bad", "amount", "bad", 422,
    )


def test_engine_errors_pickle_with_every_attribute(engine, ana):
    with pytest.raises(fundcore.ValidationError) as info:
        engine.subscribe(ana.id, 1, "1.001")
    err = info.value
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    attributes = ("code", "message", "field", "problem", "http_status")
    assert [getattr(back, a) for a in attributes] == [getattr(err, a) for a in attributes]


# ------------------------------------------------------------------ fund ids of any size

#: Ints that name no fund: negative, above the core's id range, beyond any machine integer.
MISSING_FUND_IDS = [-1, -(2**31), 2**32 - 1, 2**32, 2**63, 2**64, 10**40, -(10**40), 0]


@pytest.mark.parametrize("locale, template", [("es", "No existe el fondo {}"), ("en", "Fund {} not found")])
def test_fund_ids_of_any_size_are_fund_not_found_with_the_id_as_given(store, locale, template):
    with store.open(locale=locale) as eng:
        ana = eng.register_client(*ANA, "email")
        for fund_id in MISSING_FUND_IDS:
            for call in (
                lambda: eng.fund(fund_id),
                lambda: eng.subscribe(ana.id, fund_id),
                lambda: eng.cancel(ana.id, fund_id),
            ):
                err = raised(call)
                assert type(err) is fundcore.NotFoundError
                assert (err.code, err.field, err.http_status) == ("FUND_NOT_FOUND", None, 404)
                assert err.message == template.format(fund_id)
        assert eng.client(ana.id).balance == eng.initial_balance  # nothing moved


def test_int_subclasses_are_fund_ids_by_value(engine, ana):
    """An `int` subclass is read by its value, whatever its `str()` prints."""

    class FundChoice(int, enum.Enum):
        RECAUDADORA = 1
        MISSING = 2**40

    assert str(FundChoice.RECAUDADORA) != "1"  # `str()` would not do
    assert engine.fund(FundChoice.RECAUDADORA).id == 1
    assert engine.subscribe(ana.id, FundChoice.RECAUDADORA).fund_id == 1
    with pytest.raises(fundcore.NotFoundError) as info:
        engine.fund(FundChoice.MISSING)
    assert info.value.message == f"No existe el fondo {2**40}"
    for not_an_int in (True, 1.0, "1", Decimal(1)):
        with pytest.raises(TypeError):
            engine.fund(not_an_int)


def test_client_not_found_is_the_engines_own_answer_without_a_store(store):
    with store.open(locale="en") as eng:
        with pytest.raises(fundcore.NotFoundError) as raised:
            eng.client("0190f0c2-7b1e-7c3a-9d2e-5a4b3c2d1e0f")
    made = fundcore.client_not_found("0190f0c2-7b1e-7c3a-9d2e-5a4b3c2d1e0f", "en")
    assert isinstance(made, fundcore.NotFoundError)
    assert (made.code, made.message, made.http_status) == (raised.value.code, raised.value.message, 404)
    assert fundcore.client_not_found("x").message == "No existe el cliente x"
    with pytest.raises(fundcore.ValidationError):
        fundcore.client_not_found("x", "fr")  # type: ignore[arg-type]


def test_client_not_found_names_the_id_as_the_engine_does(engine):
    """A spelling the engine reads as a client id is named as the id it reads (the canonical
    text); one it cannot read is named as given."""
    ghost = "0190f0c2-7b1e-7c3a-9d2e-5a4b3c2d1e0f"
    misplaced_hyphen = ghost.replace("-", "", 1)[:12] + "-" + ghost.replace("-", "", 1)[12:]
    for spelling in (ghost, ghost.upper(), "{" + ghost + "}", ghost.replace("-", ""), misplaced_hyphen, "x", ""):
        with pytest.raises(fundcore.NotFoundError) as raised:
            engine.client(spelling)
        made = fundcore.client_not_found(spelling, engine.locale)
        assert (made.code, made.message) == (raised.value.code, raised.value.message), spelling
