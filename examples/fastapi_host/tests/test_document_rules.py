"""Every value the OpenAPI document admits is one the engine accepts.

hypothesis draws values for each rule of the document (the JSON Schema of a request field as the
app publishes it, read by jsonschema_rs, the validator schemathesis reads it with) and hands them
to the real engine: a value the schema admits is never the engine's ``VALIDATION_ERROR``. Where
the schema says exactly what the engine reads (names, amounts written plainly, integers, page
sizes) the converse holds too: a value it does not admit is refused. The engine is asked through
calls that check the value before they look anything up (an unknown client, a fund id taken), so
nothing is written.

test_schemathesis.py checks the same through the running host; test_openapi.py checks that each
number in these rules is ``fundcore``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema_rs
import pytest
from conftest import make_engine, make_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fundcore
from fundcore_host.app import create_app
from fundcore_host.models import AMOUNT_PATTERN, EMAIL_PATTERN, IDEMPOTENCY_KEY_PATTERN, NAME_PATTERN, PHONE_PATTERN

UNKNOWN = "0190b2a4-7c1e-7000-8000-000000000000"
#: A fund every store has, so that creating it again is FUND_ALREADY_EXISTS once the values pass.
TAKEN_FUND = 1
RULES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine() -> Iterator[fundcore.Engine]:
    with make_engine() as opened:
        yield opened


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    with make_engine() as opened:
        return create_app(make_settings(), engine=opened).openapi()


def field_schema(document: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    schema = document["components"]["schemas"][model]["properties"][field]
    return {key: value for key, value in schema.items() if key not in ("description", "title", "examples")}


def admits(schema: dict[str, Any]) -> Callable[[object], bool]:
    return jsonschema_rs.validator_for(schema).is_valid


def refusal(call: Callable[[], object], field: str, accepted: set[str]) -> bool:
    """Whether ``call`` is the engine's ``VALIDATION_ERROR`` on ``field``; any other answer must
    be one of the ``accepted`` codes (the value passed, the lookup that follows failed)."""
    try:
        call()
    except fundcore.FundcoreError as error:
        if error.code == "VALIDATION_ERROR":
            assert error.field == field, (error.field, error.message)
            return True
        assert error.code in accepted, error
        return False
    raise AssertionError("the call was expected to fail after the value was checked")


# --------------------------------------------------------------------------- the engine's verdicts


def name_accepted(engine: fundcore.Engine, name: str) -> bool:
    as_client = not refusal(lambda: engine.update_client(UNKNOWN, name=name, actor="t"), "name", {"CLIENT_NOT_FOUND"})
    as_fund = not refusal(
        lambda: engine.create_fund(TAKEN_FUND, name, "1", "FIC", actor="t"), "name", {"FUND_ALREADY_EXISTS"}
    )
    assert as_client == as_fund, name
    return as_client


def contact_accepted(engine: fundcore.Engine, field: str, value: str) -> bool:
    return not refusal(
        lambda: engine.update_client(UNKNOWN, **{field: value}, actor="t"),  # type: ignore[arg-type]
        field,
        {"CLIENT_NOT_FOUND"},
    )


def amount_accepted(engine: fundcore.Engine, amount: str | int) -> bool:
    as_amount = not refusal(lambda: engine.subscribe(UNKNOWN, TAKEN_FUND, amount), "amount", {"CLIENT_NOT_FOUND"})
    as_minimum = not refusal(
        lambda: engine.create_fund(TAKEN_FUND, "F", amount, "FIC", actor="t"), "minimum", {"FUND_ALREADY_EXISTS"}
    )
    assert as_amount == as_minimum, amount
    return as_amount


def category_accepted(engine: fundcore.Engine, category: str) -> bool:
    return not refusal(
        lambda: engine.create_fund(TAKEN_FUND, "F", "1", category, actor="t"),  # type: ignore[arg-type]
        "category",
        {"FUND_ALREADY_EXISTS"},
    )


def key_accepted(engine: fundcore.Engine, key: str) -> bool:
    return not refusal(
        lambda: engine.subscribe(UNKNOWN, TAKEN_FUND, idempotency_key=key), "idempotency_key", {"CLIENT_NOT_FOUND"}
    )


# --------------------------------------------------------------------------- names

#: Code points worth trying one by one: every control and white space character is below U+3100.
LOW_CODE_POINTS = [chr(c) for c in range(0x3100)] + ["\ufeff", "\u180e", "\u200b", "\uffff", "\U0010ffff"]


@pytest.mark.parametrize(("model", "field"), [("RegisterClientRequest", "name"), ("CreateFundRequest", "name")])
def test_the_name_rule_is_the_engines_for_every_low_code_point(document, engine, model, field):
    name_admitted = admits(field_schema(document, model, field))
    for character in LOW_CODE_POINTS:
        for name in (character, f"Ana{character}", f"{character}Ana", f"A{character}a"):
            assert name_admitted(name) == name_accepted(engine, name), repr(name)


@RULES
@given(
    name=st.one_of(
        st.from_regex(NAME_PATTERN, fullmatch=True),
        st.text(max_size=fundcore.MAX_NAME_CHARS + 5),
        st.text(alphabet=st.sampled_from(" \t\n\u3000\u00a0\x00\x1fAz"), max_size=fundcore.MAX_NAME_CHARS + 5),
    )
)
@example(name="x" * fundcore.MAX_NAME_CHARS)
@example(name="x" * (fundcore.MAX_NAME_CHARS + 1))
@example(name=" \u3000" + "x" * fundcore.MAX_NAME_CHARS + "\t\n")
@example(name="x" + " " * (fundcore.MAX_NAME_CHARS - 2) + "x")
def test_a_name_is_admitted_exactly_when_the_engine_accepts_it(document, engine, name):
    """The rule of names is exact (within the host's size cap): white space around a name is
    admitted, since the engine trims it, and only then are the length and the control characters
    counted."""
    assert admits(field_schema(document, "RegisterClientRequest", "name"))(name) == name_accepted(engine, name)


# --------------------------------------------------------------------------- contact data


@RULES
@given(
    email=st.one_of(
        st.from_regex(EMAIL_PATTERN, fullmatch=True),
        st.text(max_size=40),
        st.text(alphabet=st.sampled_from("a@.-_ +é"), max_size=20),
    )
)
@example(email="a" * fundcore.MAX_EMAIL_LOCAL_BYTES + "@example.com")
@example(email="a" * (fundcore.MAX_EMAIL_LOCAL_BYTES + 1) + "@example.com")
@example(email="a@" + "b" * (fundcore.MAX_EMAIL_CHARS - 6) + ".com")
@example(email="a@" + "b" * (fundcore.MAX_EMAIL_CHARS - 5) + ".com")
@example(email="a.b+c@Example-1.co")
def test_an_email_the_document_admits_is_accepted(document, engine, email):
    if admits(field_schema(document, "RegisterClientRequest", "email"))(email):
        assert contact_accepted(engine, "email", email), email


@RULES
@given(
    phone=st.one_of(
        st.from_regex(PHONE_PATTERN, fullmatch=True),
        st.text(alphabet=st.sampled_from("+0123456789"), max_size=fundcore.MAX_PHONE_DIGITS + 3),
    )
)
@example(phone="+" + "1" * fundcore.MIN_PHONE_DIGITS)
@example(phone="+" + "1" * (fundcore.MIN_PHONE_DIGITS - 1))
@example(phone="+" + "1" * fundcore.MAX_PHONE_DIGITS)
@example(phone="+" + "1" * (fundcore.MAX_PHONE_DIGITS + 1))
@example(phone="+0" + "1" * fundcore.MIN_PHONE_DIGITS)
def test_a_phone_is_admitted_exactly_when_the_engine_accepts_it(document, engine, phone):
    """Exact for phones written without white space around them (which the engine trims and the
    document does not admit)."""
    assert admits(field_schema(document, "UpdateClientRequest", "phone"))(phone) == contact_accepted(
        engine, "phone", phone
    )


def test_channels_and_categories_are_the_engines(document, engine):
    for model in ("RegisterClientRequest", "UpdateClientRequest"):
        assert field_schema(document, model, "channel") == {"type": "string", "enum": list(fundcore.CHANNELS)}
    assert field_schema(document, "CreateFundRequest", "category") == {
        "type": "string",
        "enum": list(fundcore.CATEGORIES),
    }
    assert all(contact_accepted(engine, "channel", channel) for channel in fundcore.CHANNELS)
    assert all(category_accepted(engine, category) for category in fundcore.CATEGORIES)
    assert not contact_accepted(engine, "channel", "fax") and not category_accepted(engine, "XYZ")


# --------------------------------------------------------------------------- amounts

MAX_AMOUNT = int(fundcore.MAX_AMOUNT)
#: Decimal text written plainly: digits without a leading zero (but for a units digit of 0), and
#: perhaps a point followed by digits, no zero after the ``MINOR_DIGITS``-th.
plain_decimals = st.builds(
    lambda units, fraction: str(units) + ("." + fraction if fraction is not None else ""),
    st.one_of(st.integers(0, 3), st.integers(0, 2 * MAX_AMOUNT), st.sampled_from([MAX_AMOUNT - 1, MAX_AMOUNT])),
    st.none()
    | st.text(alphabet="0123456789", min_size=1, max_size=fundcore.MINOR_DIGITS + 2).filter(
        lambda fraction: len(fraction) <= fundcore.MINOR_DIGITS or not fraction.endswith("0")
    ),
)


@pytest.mark.parametrize(
    ("model", "field"),
    [("SubscribeRequest", "amount"), ("CreateFundRequest", "minimum"), ("UpdateFundRequest", "minimum")],
)
@RULES
@given(amount=st.one_of(plain_decimals, st.from_regex(AMOUNT_PATTERN, fullmatch=True)))
@example(amount=str(MAX_AMOUNT))
@example(amount=f"{MAX_AMOUNT}.{'0' * fundcore.MINOR_DIGITS}")
@example(amount=f"{MAX_AMOUNT}.{'0' * (fundcore.MINOR_DIGITS - 1)}1")
@example(amount=f"0.{'0' * (fundcore.MINOR_DIGITS - 1)}1")
@example(amount=f"0.{'0' * fundcore.MINOR_DIGITS}")
@example(amount=f"1.{'5' * (fundcore.MINOR_DIGITS + 1)}")
@example(amount="0")
def test_an_amount_written_plainly_is_admitted_exactly_when_the_engine_accepts_it(
    document, engine, model, field, amount
):
    """Exact for decimal text written plainly; the engine also reads a sign, leading zeros,
    zeros after the last decimal, ``"5."``, ``".5"`` and white space around it, which the
    document does not admit."""
    assert admits(field_schema(document, model, field))(amount) == amount_accepted(engine, amount)


@pytest.mark.parametrize(
    ("model", "field"),
    [("SubscribeRequest", "amount"), ("CreateFundRequest", "minimum"), ("UpdateFundRequest", "minimum")],
)
@RULES
@given(amount=st.integers(-3, 2 * MAX_AMOUNT) | st.integers(MAX_AMOUNT - 3, MAX_AMOUNT + 3))
def test_an_amount_as_a_json_integer_is_admitted_exactly_when_the_engine_accepts_it(
    document, engine, model, field, amount
):
    assert admits(field_schema(document, model, field))(amount) == amount_accepted(engine, amount)


def test_the_amount_pattern_reads_alike_in_python_and_the_validator(document):
    """The patterns are written for every dialect (ECMA-262, Python's ``re``, Rust's regex):
    Python, which hypothesis draws from, and jsonschema_rs, which decides, agree on the edges."""
    schema = field_schema(document, "SubscribeRequest", "amount")["anyOf"][0]
    for text in ["80000", "80000.5", "0.01", "0.10", "1000000000000.00", "80000\n", "080000", "1e5", "٣"]:
        assert admits(schema)(text) == bool(re.fullmatch(AMOUNT_PATTERN[1:-1], text)), repr(text)


# --------------------------------------------------------------------------- idempotency keys and pages


def key_schema(document: dict[str, Any]) -> dict[str, Any]:
    parameters = document["paths"]["/clients/{client_id}/subscriptions"]["post"]["parameters"]
    (key,) = [parameter for parameter in parameters if parameter["name"] == "Idempotency-Key"]
    return key["schema"]


@RULES
@given(
    key=st.one_of(
        st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True),
        st.text(max_size=12),
        st.text(alphabet=st.sampled_from("k \t\x7f\x85é"), max_size=6),
    )
)
@example(key="k" * fundcore.MAX_IDEMPOTENCY_KEY_CHARS)
@example(key="k" * (fundcore.MAX_IDEMPOTENCY_KEY_CHARS + 1))
@example(key="order 1")
def test_an_idempotency_key_the_document_admits_is_accepted(document, engine, key):
    """A key admitted has no space at either end: HTTP drops those, and a key of spaces alone
    would reach the engine empty."""
    if admits(key_schema(document))(key):
        assert key == key.strip(" \t")
        assert key_accepted(engine, key), repr(key)


def page_accepted(read: Callable[[], object]) -> bool:
    try:
        read()
    except fundcore.FundcoreError as error:
        assert (error.code, error.field) == ("VALIDATION_ERROR", "limit"), error
        return False
    return True


@given(limit=st.integers(-3, fundcore.MAX_PAGE + 3))
def test_a_page_size_is_admitted_exactly_when_the_engine_accepts_it(document, engine, limit):
    client = engine.clients(1).items or [engine.register_client("Ana", "ana@example.com", "+573001234567", "email")]
    reads = {
        "/clients": lambda: engine.clients(limit),
        "/audit": lambda: engine.audit_events(limit),
        "/clients/{client_id}/transactions": lambda: engine.history_page(client[0].id, limit),
    }
    for path, read in reads.items():
        (parameter,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        schema = {key: parameter["schema"][key] for key in ("type", "minimum", "maximum")}
        assert admits(schema)(limit) == page_accepted(read), (path, limit)
