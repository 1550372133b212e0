"""The limits the module exports (`MAX_NAME_CHARS`, `MAX_PAGE`, ...) are the ones the engine
enforces: the value at each limit passes and the one just past it fails, on both stores."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA

PHONE = ANA[2]


@pytest.fixture
def client(shared_engine):
    """A new client on the module's engine (one store of each kind for the whole module)."""
    return shared_engine.register_client(*ANA, channel="email")


def refused_field(call) -> str | None:
    """The field of the VALIDATION_ERROR `call` raises, or None when it succeeds."""
    try:
        call()
    except fundcore.ValidationError as err:
        assert err.code == "VALIDATION_ERROR"
        return err.field
    return None


def quoted(text: str) -> list[str]:
    """The 'quoted' words of an error text, e.g. the choices it lists."""
    return re.findall(r"'([^']+)'", text)


def test_limits_are_ints_and_money_is_decimal():
    for name in (
        "MAX_PAGE",
        "MAX_NAME_CHARS",
        "MAX_EMAIL_CHARS",
        "MAX_EMAIL_LOCAL_BYTES",
        "MAX_IDEMPOTENCY_KEY_CHARS",
        "MIN_PHONE_DIGITS",
        "MAX_PHONE_DIGITS",
        "MINOR_DIGITS",
        "SMS_MAX_CHARS",
    ):
        value = getattr(fundcore, name)
        assert type(value) is int and value > 0, name
    assert type(fundcore.MAX_AMOUNT) is Decimal
    assert fundcore.MIN_PHONE_DIGITS <= fundcore.MAX_PHONE_DIGITS


def test_max_name_chars(shared_engine):
    def register(name):
        return lambda: shared_engine.register_client(name, "n@example.com", PHONE, "email")

    longest = "é" * fundcore.MAX_NAME_CHARS  # characters, not bytes
    assert refused_field(register(longest)) is None
    assert refused_field(register(f"  {longest}  ")) is None  # counted after trimming
    assert refused_field(register(longest + "é")) == "name"
    with pytest.raises(fundcore.ValidationError) as info:
        register("x" * (fundcore.MAX_NAME_CHARS + 1))()
    assert str(fundcore.MAX_NAME_CHARS) in info.value.problem  # the text quotes the limit


def test_max_email_chars_and_local_bytes(shared_engine):
    def register(email):
        return lambda: shared_engine.register_client("Bo", email, PHONE, "email")

    local = "a" * fundcore.MAX_EMAIL_LOCAL_BYTES
    domain_chars = fundcore.MAX_EMAIL_CHARS - len(local) - 1
    longest = f"{local}@{'b' * (domain_chars - 4)}.com"
    assert len(longest) == fundcore.MAX_EMAIL_CHARS
    assert refused_field(register(longest)) is None
    assert refused_field(register(f"{local}@{'b' * (domain_chars - 3)}.com")) == "email"
    assert refused_field(register(f"{local}a@example.com")) == "email"
    assert refused_field(register(f"{'é' * (fundcore.MAX_EMAIL_LOCAL_BYTES // 2)}@example.com")) is None
    assert refused_field(register(f"{'é' * (fundcore.MAX_EMAIL_LOCAL_BYTES // 2 + 1)}@example.com")) == "email"


def test_phone_digits(shared_engine):
    def register(digits):
        return lambda: shared_engine.register_client("Bo", "bo@example.com", "+" + "5" * digits, "sms")

    assert refused_field(register(fundcore.MIN_PHONE_DIGITS)) is None
    assert refused_field(register(fundcore.MAX_PHONE_DIGITS)) is None
    assert refused_field(register(fundcore.MIN_PHONE_DIGITS - 1)) == "phone"
    assert refused_field(register(fundcore.MAX_PHONE_DIGITS + 1)) == "phone"


def test_max_idempotency_key_chars(shared_engine, client):
    longest = "k" * fundcore.MAX_IDEMPOTENCY_KEY_CHARS
    with pytest.raises(fundcore.ValidationError) as info:
        shared_engine.subscribe(client.id, 1, idempotency_key=longest + "k")
    assert info.value.field == "idempotency_key"
    assert str(fundcore.MAX_IDEMPOTENCY_KEY_CHARS) in info.value.problem
    assert shared_engine.history(client.id) == []
    tx = shared_engine.subscribe(client.id, 1, idempotency_key=longest)
    assert tx.idempotency_key == longest
    cancelled = shared_engine.cancel(client.id, 1, idempotency_key="c" * fundcore.MAX_IDEMPOTENCY_KEY_CHARS)
    assert cancelled.kind == "cancellation"


def test_max_page(shared_engine, client):
    for call in (shared_engine.history, shared_engine.history_page):
        assert len(call(client.id, limit=fundcore.MAX_PAGE)) == 0
        assert refused_field(lambda call=call: call(client.id, limit=fundcore.MAX_PAGE + 1)) == "limit"
        assert refused_field(lambda call=call: call(client.id, limit=0)) == "limit"
    with pytest.raises(fundcore.ValidationError) as info:
        shared_engine.history(client.id, limit=fundcore.MAX_PAGE + 1)
    assert str(fundcore.MAX_PAGE) in info.value.problem


def test_minor_digits(shared_engine, client):
    finest = "75000." + "1" * fundcore.MINOR_DIGITS
    assert refused_field(lambda: shared_engine.subscribe(client.id, 1, finest + "1")) == "amount"
    tx = shared_engine.subscribe(client.id, 1, finest)
    assert tx.amount == Decimal(finest)
    assert tx.amount.as_tuple().exponent == -fundcore.MINOR_DIGITS
    assert len(tx.to_dict()["balance_after"].split(".")[1]) == fundcore.MINOR_DIGITS


def test_max_amount(store):
    cent = Decimal(1).scaleb(-fundcore.MINOR_DIGITS)
    with pytest.raises(fundcore.ValidationError) as info:
        store.open(initial_balance=fundcore.MAX_AMOUNT + cent)
    assert info.value.field == "initial_balance"
    with store.open(initial_balance=fundcore.MAX_AMOUNT) as eng:
        rich = eng.register_client(*ANA, "email")
        assert rich.balance == fundcore.MAX_AMOUNT
        with pytest.raises(fundcore.ValidationError) as info:
            eng.subscribe(rich.id, 1, fundcore.MAX_AMOUNT + cent)
        assert info.value.field == "amount"
        assert eng.subscribe(rich.id, 1, fundcore.MAX_AMOUNT).balance_after == 0


def test_sms_max_chars(store):
    """An SMS about a fund with a long name is shortened to exactly `SMS_MAX_CHARS`."""
    funds = [fundcore.Fund(1, "F" * fundcore.MAX_NAME_CHARS, 1000, "FIC"), fundcore.Fund(2, "CORTO", 1000, "FIC")]
    with store.open(funds=funds) as eng:
        bo = eng.register_client("Bo", "bo@example.com", PHONE, "sms")
        eng.subscribe(bo.id, 2)
        eng.subscribe(bo.id, 1)
        long_name, short_name = eng.notifications(bo.id)
        assert long_name.channel == "sms"
        assert len(long_name.body) == fundcore.SMS_MAX_CHARS
        assert len(short_name.body) < fundcore.SMS_MAX_CHARS


def test_channels(shared_engine):
    for channel in fundcore.CHANNELS:
        client = shared_engine.register_client("Bo", "bo@example.com", PHONE, channel)
        assert client.channel == channel
        shared_engine.subscribe(client.id, 1)
        [notification] = shared_engine.notifications(client.id)
        assert notification.channel == channel
        assert notification.recipient == {"email": "bo@example.com", "sms": PHONE}[channel]
    with pytest.raises(fundcore.ValidationError) as info:
        shared_engine.register_client("Bo", "bo@example.com", PHONE, "fax")
    assert info.value.field == "channel"
    assert quoted(info.value.problem) == list(fundcore.CHANNELS)  # the engine's own list


def test_categories(shared_engine):
    assert {fund.category for fund in shared_engine.funds()} == set(fundcore.CATEGORIES)
    for category in fundcore.CATEGORIES:
        assert fundcore.Fund(9, "X", 1000, category).category == category
    with pytest.raises(fundcore.ValidationError) as info:
        fundcore.Fund(9, "X", 1000, "ETF")
    assert info.value.field == "category"
    assert quoted(info.value.problem) == list(fundcore.CATEGORIES)
