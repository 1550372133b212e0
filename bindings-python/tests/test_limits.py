"""The limits the module exports (`MAX_NAME_CHARS`, `MAX_PAGE`, ...) are the ones the engine
enforces: the value at each limit passes and the one just past it fails, on both stores; the
defaults (`DEFAULT_*`) are what the engine uses for a setting it is not given."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, REPO

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


# ------------------------------------------------------------------ the settings' defaults
# `DEFAULT_*` are what `Engine(...)` uses for a setting it is not given.


class FailingNotifier:
    def send(self, notification):
        raise ConnectionError("the mail server is down")


def test_default_initial_balance(store):
    with store.open() as eng:
        assert type(fundcore.DEFAULT_INITIAL_BALANCE) is Decimal
        assert eng.initial_balance == fundcore.DEFAULT_INITIAL_BALANCE
        assert eng.register_client(*ANA, "email").balance == fundcore.DEFAULT_INITIAL_BALANCE


def test_default_max_attempts(store):
    with store.open(retry_base_delay_ms=0) as eng:  # every retry due at once
        ana = eng.register_client(*ANA, "email")
        eng.subscribe(ana.id, 1)
        for _ in range(fundcore.DEFAULT_MAX_ATTEMPTS - 1):
            assert eng.dispatch_notifications(FailingNotifier()).retried == 1
        [notification] = eng.notifications(ana.id)
        assert (notification.status, notification.attempts) == ("pending", fundcore.DEFAULT_MAX_ATTEMPTS - 1)
        assert eng.dispatch_notifications(FailingNotifier()).failed == 1
        [notification] = eng.notifications(ana.id)
        assert (notification.status, notification.attempts) == ("failed", fundcore.DEFAULT_MAX_ATTEMPTS)


def test_default_retry_delays(store):
    with store.open() as eng:
        ana = eng.register_client(*ANA, "email")
        eng.subscribe(ana.id, 1)
        started = datetime.datetime.now(datetime.timezone.utc)
        assert eng.dispatch_notifications(FailingNotifier()).retried == 1
        ended = datetime.datetime.now(datetime.timezone.utc)
        [notification] = eng.notifications(ana.id)
        delay = datetime.timedelta(milliseconds=fundcore.DEFAULT_RETRY_BASE_DELAY_MS)
        assert started + delay <= notification.next_attempt_at <= ended + delay
    # The first delay may be as long as the longest, not longer.
    with store.open(retry_base_delay_ms=fundcore.DEFAULT_RETRY_MAX_DELAY_MS):
        pass
    with pytest.raises(fundcore.ValidationError) as info:
        store.open(retry_base_delay_ms=fundcore.DEFAULT_RETRY_MAX_DELAY_MS + 1)
    assert info.value.field == "retry_base_delay"


def documented_default(row_start: str) -> str:
    """The value docs/rules.md's table of limits and defaults gives on the row starting so."""
    for line in (REPO / "docs" / "rules.md").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {row_start} |"):
            return line.split("|")[2].strip()
    raise LookupError(row_start)


def test_defaults_without_an_observable_effect_are_the_documented_ones():
    """Page cache, flush interval and pool size change no result; they are the documented values
    (docs/rules.md quotes the core's source, which `make check-snippets` checks)."""
    assert documented_default("store page cache") == f"{fundcore.DEFAULT_CACHE_CAPACITY_BYTES // 2**20} MiB"
    assert fundcore.DEFAULT_CACHE_CAPACITY_BYTES % 2**20 == 0
    assert documented_default("periodic flush interval when not given") == (
        f"{fundcore.DEFAULT_FLUSH_INTERVAL_MS} milliseconds"
    )
    assert documented_default("database connections per engine (PostgreSQL)") == str(fundcore.DEFAULT_POOL_SIZE)
    assert documented_default("delivery attempts before `failed`") == str(fundcore.DEFAULT_MAX_ATTEMPTS)
