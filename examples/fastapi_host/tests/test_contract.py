"""The shapes of the REST contract: each admits only what the engine accepts, and the amount
patterns of the OpenAPI document match exactly the amounts of their range."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fundcore
from fundcore_host import contract

CANONICAL = re.compile(contract.AMOUNT_SYNTAX)


def in_range(text: str, low: Decimal, high: Decimal) -> bool:
    return bool(CANONICAL.fullmatch(text)) and low <= Decimal(text) <= high


cents = st.integers(min_value=0, max_value=10**9)
amount_texts = st.one_of(
    st.integers(min_value=0, max_value=10**10).map(str),
    st.tuples(
        st.integers(min_value=0, max_value=10**10), st.integers(min_value=0, max_value=99), st.sampled_from([1, 2])
    ).map(lambda t: f"{t[0]}.{t[1]:02d}"[: len(str(t[0])) + 1 + t[2]]),
    st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{0,3})?\Z"),
)


@settings(max_examples=400, deadline=None)
@given(low=cents, span=cents, text=amount_texts)
def test_amount_pattern_matches_exactly_the_amounts_in_range(low, span, text):
    minimum, maximum = Decimal(low) / 100, Decimal(low + span) / 100
    pattern = re.compile(contract.amount_pattern(minimum, maximum))
    assert bool(pattern.fullmatch(text)) == in_range(text, minimum, maximum), (minimum, maximum, text)


@pytest.mark.parametrize(
    "low, high",
    [("75000", "500000"), ("0.01", "1000000000000"), ("125000.50", "125000.50"), ("99.99", "100.01"), ("0", "0.09")],
)
def test_amount_pattern_bounds_and_neighbours(low, high):
    minimum, maximum = Decimal(low), Decimal(high)
    pattern = re.compile(contract.amount_pattern(minimum, maximum))
    step = Decimal("0.01")
    for value in (minimum, maximum, minimum - step, maximum + step, minimum + step, maximum - step):
        if value < 0:
            continue
        for text in {f"{value:.2f}", f"{value:.2f}".rstrip("0").rstrip(".") if "." in f"{value:.2f}" else ""}:
            if text:
                assert bool(pattern.fullmatch(text)) == (minimum <= value <= maximum), (text, low, high)
    assert not pattern.fullmatch(f"0{maximum}") and not pattern.fullmatch(f"-{maximum}")


def register(engine, name="Ana", email="ana@example.com", phone="+573001234567"):
    return engine.register_client(name, email, phone, channel="email")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(contract.NAME_PATTERN, fullmatch=True).filter(lambda s: len(s) <= contract.NAME_MAX_CHARS))
def test_every_name_of_the_pattern_is_accepted_by_the_engine(name):
    with fundcore.Engine() as engine:
        assert register(engine, name=name).id


@settings(max_examples=300, deadline=None)
@given(st.from_regex(contract.EMAIL_PATTERN, fullmatch=True).filter(lambda s: len(s) <= contract.EMAIL_MAX_CHARS))
def test_every_email_of_the_pattern_is_accepted_by_the_engine(email):
    with fundcore.Engine() as engine:
        assert register(engine, email=email).id


@settings(max_examples=100, deadline=None)
@given(st.from_regex(contract.PHONE_PATTERN, fullmatch=True))
def test_every_phone_of_the_pattern_is_accepted_by_the_engine(phone):
    with fundcore.Engine() as engine:
        assert register(engine, phone=phone).id


@settings(max_examples=200, deadline=None)
@given(st.from_regex(contract.IDEMPOTENCY_KEY_PATTERN, fullmatch=True))
def test_every_idempotency_key_of_the_pattern_is_accepted_by_the_engine(key):
    with fundcore.Engine() as engine:
        client = register(engine)
        assert engine.subscribe(client.id, 3, None, idempotency_key=key).idempotency_key == key


@pytest.mark.parametrize("name", ["", "   ", "\tAna", "Ana\n", "\u00a0", "A" * 101])
def test_names_outside_the_pattern(name):
    assert not (re.fullmatch(contract.NAME_PATTERN, name) and len(name) <= contract.NAME_MAX_CHARS)


def test_the_page_limit_is_the_engines():
    assert contract.PAGE_MAX == fundcore.MAX_PAGE
