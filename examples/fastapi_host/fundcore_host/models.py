"""Request and response bodies of the REST API.

Request models check types only (a JSON string, integer or null where the document says so, no
unknown field, no JSON number with a fraction) and cap the size of what a request carries; every
value is decided by the engine, which answers a request exactly as it answers the same call from
Python. The document states the engine's rules on each value (lengths, patterns, ranges, enums),
built from ``fundcore``'s constants, so that every value it admits is one the engine accepts: a
request the document admits is never refused as invalid (tests/test_schemathesis.py), only for
the state of the store (an unknown id, a balance, a fund's minimum).

Response models are what every handler returns: each record's ``to_dict()`` (the engine's own
wire format) is validated against its model, and FastAPI serializes the model, so a record that
drifted from the documented shape is a 500 in the log, never a silent answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

import fundcore

from .json_body import DUPLICATE_KEY_ERROR, INVALID_JSON_ERROR, DuplicateKeyError, InvalidJson

# --------------------------------------------------------------------------- size caps

#: The longest text a request may carry in one value (a body field, a path id): a cap against
#: abuse, far above any value the engine accepts; the engine's own limits are its rules.
MAX_TEXT_CHARS = 1_000
#: The largest integer a request may carry as a page size: what the binding can take (the engine
#: then checks the range, 1 to ``fundcore.MAX_PAGE``).
MAX_QUERY_INT = 2**63 - 1


def _within_query_cap(value: int) -> int:
    if abs(value) > MAX_QUERY_INT:
        raise ValueError(f"an integer of at most {len(str(MAX_QUERY_INT))} digits is expected")
    return value


def _digits_only(value: object) -> object:
    # pydantic's lax integers strip white space ("5\n" would be 5); the document says integer.
    if isinstance(value, str) and value != value.strip():
        raise ValueError("an integer is expected")
    return value


#: An integer query value within :data:`MAX_QUERY_INT` (the cap is not shown in the document),
#: written as digits alone.
QueryInt = Annotated[int, BeforeValidator(_digits_only), AfterValidator(_within_query_cap)]
#: A text value within :data:`MAX_TEXT_CHARS`.
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT_CHARS)]

# --------------------------------------------------------------------------- the engine's rules

# What the document states about a request's values: the rules of the engine (core/src/client.rs,
# money.rs, rules.rs; docs/rules.md, Limits and defaults) in JSON Schema, each built from
# ``fundcore``'s constants. Every value a schema admits is one the engine accepts (tested with
# hypothesis against the engine in tests/test_document_rules.py); where the engine is more lenient
# than a plain pattern can say (surrounding white space, leading zeros, letter case), a schema
# admits the plain form only, except for names (below). The host does not check these rules
# itself: the engine refuses a value the document does not admit, in its own words, as it does
# for the same call from Python. Patterns use only what ECMA-262, Python's ``re`` and Rust's regex
# read alike: explicit ``\uXXXX`` classes, ``^`` and ``$``, no ``\s``, ``\d``, ``\w`` or ``.``.

#: Control characters (Unicode's Cc, as Rust's ``char::is_control``): in no name.
_CONTROL = ((0x00, 0x1F), (0x7F, 0x9F))
#: White space as the engine trims it (Unicode's White_Space, as Rust's ``str::trim``).
_WHITE_SPACE = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)


def _characters(*ranges: tuple[int, int]) -> str:
    """The inside of a character class holding ``ranges`` (merged), each code point written
    ``\\uXXXX``."""
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return "".join(
        f"\\u{low:04x}"
        if low == high
        else f"\\u{low:04x}-\\u{high:04x}"
        if high > low + 1
        else f"\\u{low:04x}\\u{high:04x}"
        for low, high in merged
    )


def _name_pattern(max_chars: int) -> str:
    """A name as the engine reads it: trimmed, 1 to ``max_chars`` characters without a control
    character. The white space around it is admitted: some of it is control characters (tab,
    line feed), which a pattern refusing every control character would refuse while the engine
    trims them (and random text often has them at its ends)."""
    control, blank = _characters(*_CONTROL), _characters(*_WHITE_SPACE)
    visible = f"[^{_characters(*_CONTROL, *_WHITE_SPACE)}]"
    inner = f"(?:[^{control}]{{0,{max_chars - 2}}}{visible})?" if max_chars >= 2 else ""
    return f"^[{blank}]*{visible}{inner}[{blank}]*$"


#: A client's or a fund's name (the engine's ``validate_name``).
NAME_PATTERN = _name_pattern(fundcore.MAX_NAME_CHARS)
#: An email address: the ASCII part of the engine's rule (one ``@``; a local part of 1 to
#: ``MAX_EMAIL_LOCAL_BYTES`` visible characters; a dotted domain of letters, digits and ``-``),
#: at most ``MAX_EMAIL_CHARS`` characters (the schema's ``maxLength``). The engine also accepts
#: addresses with other letters, and trims white space around one.
EMAIL_PATTERN = (
    f"^[\\u0021-\\u003f\\u0041-\\u007e]{{1,{fundcore.MAX_EMAIL_LOCAL_BYTES}}}@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+$"
)
#: A phone number in E.164: ``+``, a digit other than 0, then the rest of ``MIN_PHONE_DIGITS`` to
#: ``MAX_PHONE_DIGITS`` digits.
PHONE_PATTERN = f"^\\+[1-9][0-9]{{{fundcore.MIN_PHONE_DIGITS - 1},{fundcore.MAX_PHONE_DIGITS - 1}}}$"


def _any_digits(count: int) -> str:
    return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _digit_range(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _same_length_up_to(limit: str, lowest_first: int) -> str:
    """``len(limit)`` digits, the first at least ``lowest_first``, whose value is at most ``limit``."""
    first, rest = int(limit[0]), limit[1:]
    if rest == "9" * len(rest):
        return _digit_range(lowest_first, first) + _any_digits(len(rest))
    below = [_digit_range(lowest_first, first - 1) + _any_digits(len(rest))] if first > lowest_first else []
    return "(?:" + "|".join([*below, limit[0] + _same_length_up_to(rest, 0)]) + ")"


def _integers_up_to(limit: int) -> str:
    """The integers from 1 to ``limit``, written without leading zeros."""
    digits = str(limit)
    if digits == "9" * len(digits):
        return f"[1-9][0-9]{{0,{len(digits) - 1}}}" if len(digits) > 1 else "[1-9]"
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else "[1-9]"] if len(digits) > 1 else []
    return "|".join([*shorter, _same_length_up_to(digits, 1)])


def _amount_pattern(maximum: Decimal, minor_digits: int) -> str:
    """Decimal text of an amount the engine accepts: more than zero, at most ``maximum``, with at
    most ``minor_digits`` decimals, written plainly (no sign, no leading zero before another
    digit, a decimal point only with digits after it)."""
    whole = int(maximum)
    if whole != maximum or whole < 1:
        raise ValueError(f"the amount pattern expects a whole maximum of at least 1, not {maximum}")
    fraction = f"(?:\\.[0-9]{{1,{minor_digits}}})?"
    # below 1: a fraction that is not zero (a digit other than 0 among its first places)
    below_one = "|".join(
        "0" * zeros + "[1-9]" + (f"[0-9]{{0,{minor_digits - 1 - zeros}}}" if minor_digits - 1 - zeros else "")
        for zeros in range(minor_digits)
    )
    alternatives = [f"0\\.(?:{below_one})", f"{whole}(?:\\.0{{1,{minor_digits}}})?"]
    if whole > 1:
        alternatives.insert(0, f"(?:{_integers_up_to(whole - 1)}){fraction}")
    return f"^(?:{'|'.join(alternatives)})$"


#: An amount written as a string (``"80000"``, ``"80000.5"``, ``"0.01"``).
AMOUNT_PATTERN = _amount_pattern(fundcore.MAX_AMOUNT, fundcore.MINOR_DIGITS)
#: The largest amount, as a JSON integer.
MAX_AMOUNT_INTEGER = int(fundcore.MAX_AMOUNT)

# The request fields' types: the host checks the type and caps the size (``Text``); the
# schema is the engine's rule. ``routers/`` and any new request body use these.

#: A name: 1 to ``MAX_NAME_CHARS`` characters once trimmed (:data:`NAME_PATTERN`).
Name = Annotated[
    Text,
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": NAME_PATTERN}),
]
#: An email address (its ASCII form, :data:`EMAIL_PATTERN`).
Email = Annotated[
    Text, WithJsonSchema({"type": "string", "maxLength": fundcore.MAX_EMAIL_CHARS, "pattern": EMAIL_PATTERN})
]
#: A phone number in E.164.
Phone = Annotated[
    Text,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1 + fundcore.MIN_PHONE_DIGITS,
            "maxLength": 1 + fundcore.MAX_PHONE_DIGITS,
            "pattern": PHONE_PATTERN,
        }
    ),
]
#: A channel's name (the engine also reads it in any letter case, trimmed).
ChannelName = Annotated[Text, WithJsonSchema({"type": "string", "enum": list(fundcore.CHANNELS)})]
#: A category's name (the engine also reads it in any letter case, trimmed).
CategoryName = Annotated[Text, WithJsonSchema({"type": "string", "enum": list(fundcore.CATEGORIES)})]
#: An amount as a string, or as a JSON integer.
AmountText = Annotated[Text, WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN})]
AmountInteger = Annotated[
    StrictInt, WithJsonSchema({"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_AMOUNT_INTEGER})
]
#: An idempotency key as a header carries it: 1 to ``MAX_IDEMPOTENCY_KEY_CHARS`` characters, no
#: control character, none of them a space at either end (HTTP drops those, so a key of spaces
#: would arrive empty).
_KEY_END = f"[^{_characters(*_CONTROL, (0x20, 0x20))}]"
IDEMPOTENCY_KEY_PATTERN = f"^{_KEY_END}(?:[^{_characters(*_CONTROL)}]*{_KEY_END})?$"
IDEMPOTENCY_KEY_SCHEMA: JsonDict = {
    "type": "string",
    "minLength": 1,
    "maxLength": fundcore.MAX_IDEMPOTENCY_KEY_CHARS,
    "pattern": IDEMPOTENCY_KEY_PATTERN,
}

# --------------------------------------------------------------------------- requests

_FRACTION_MESSAGE = (
    "JSON numbers with a fraction are not accepted; "
    'send money as a string with up to 2 decimals, e.g. "80000.50", or as a whole number'
)
#: The request fields that carry money.
MONEY_FIELDS = frozenset({"amount", "minimum"})


def _refuse_invalid_json(value: object) -> object:
    if isinstance(value, InvalidJson):
        raise PydanticCustomError(INVALID_JSON_ERROR, "invalid JSON body")
    if isinstance(value, DuplicateKeyError):
        raise PydanticCustomError(DUPLICATE_KEY_ERROR, "duplicate key {key}", {"key": value.key})
    return value


def _whole_json_number(value: object, field: str | None) -> object:
    """A JSON number written with a fraction or an exponent arrives as ``Decimal`` (never a
    binary float). JSON Schema counts ``80000.0`` and ``8e4`` as integers, and so does the
    host (exactly: they are decimals); one with a non-zero fraction is refused."""
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value() and value.adjusted() <= 18:
            return int(value)
        if field in MONEY_FIELDS:
            raise ValueError(_FRACTION_MESSAGE)
        raise ValueError("JSON numbers with a fraction are not accepted for this field")
    return value


class _JsonBody(BaseModel):
    """A request body: refuses the markers of :mod:`fundcore_host.json_body` and numbers with
    a fraction."""

    @model_validator(mode="before")
    @classmethod
    def _valid_json(cls, value: object) -> object:
        return _refuse_invalid_json(value)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers_only(cls, value: object, info: ValidationInfo) -> object:
        return _whole_json_number(value, info.field_name)


def _refuse_null(value: object) -> object:
    """An optional field of a change is left out to keep its value; ``null`` is not a value."""
    if value is None:
        raise ValueError("null is not accepted: leave the field out to keep its value")
    return value


def _change_schema(example: dict[str, object]) -> Callable[[dict[str, Any]], None]:
    """The document's schema of a change: its fields without a default (one left out keeps the
    stored value), at least one of them (the engine's rule), and an example."""

    def complete(schema: dict[str, Any]) -> None:
        for property_schema in schema.get("properties", {}).values():
            property_schema.pop("default", None)
        schema["minProperties"] = 1
        schema["examples"] = [example]

    return complete


class _ChangeBody(_JsonBody):
    """A ``PATCH`` body: any of its fields, each left out to keep its value. ``null`` is not a
    value of any of them; a body with no field goes to the engine, whose answer is
    ``VALIDATION_ERROR`` on ``changes``."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        return _refuse_null(value)


_NAME_DESCRIPTION = (
    f"1 to {fundcore.MAX_NAME_CHARS} characters once the white space around them is trimmed, no control character"
)
_EMAIL_DESCRIPTION = (
    f"a plain address of at most {fundcore.MAX_EMAIL_CHARS} characters: 1 to {fundcore.MAX_EMAIL_LOCAL_BYTES} "
    "visible ASCII characters, `@`, a dotted domain of letters, digits and `-`"
)
_PHONE_DESCRIPTION = (
    f"E.164: `+` and {fundcore.MIN_PHONE_DIGITS} to {fundcore.MAX_PHONE_DIGITS} digits, e.g. +573001234567"
)
_CHANNEL_DESCRIPTION = "where notifications go: the email or the phone"
_MINIMUM_DESCRIPTION = (
    f"COP, more than zero and at most {fundcore.MAX_AMOUNT:f}: a decimal string with at most "
    f"{fundcore.MINOR_DIGITS} decimals or a JSON integer; JSON floats are refused"
)


class RegisterClientRequest(_JsonBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}]
        },
    )

    name: Name = Field(..., description=_NAME_DESCRIPTION)
    email: Email = Field(..., description=_EMAIL_DESCRIPTION)
    phone: Phone = Field(..., description=_PHONE_DESCRIPTION)
    channel: ChannelName = Field(..., description=_CHANNEL_DESCRIPTION)


class CreateFundRequest(_JsonBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": 6, "name": "FIC_RENTA_FIJA", "minimum": "100000", "category": "FIC"}]},
    )

    id: StrictInt = Field(..., description="the new fund's id (one already taken is FUND_ALREADY_EXISTS)")
    name: Name = Field(..., description=_NAME_DESCRIPTION)
    minimum: AmountText | AmountInteger = Field(..., description=_MINIMUM_DESCRIPTION, examples=["100000.00"])
    category: CategoryName = Field(..., description="the fund's category")


class UpdateFundRequest(_ChangeBody):
    """Any of a fund's name, minimum and active flag."""

    model_config = ConfigDict(json_schema_extra=_change_schema({"minimum": "90000"}))

    name: Name | SkipJsonSchema[None] = Field(None, description=_NAME_DESCRIPTION)
    minimum: AmountText | AmountInteger | SkipJsonSchema[None] = Field(
        None,
        description=_MINIMUM_DESCRIPTION + "; applies to subscriptions made afterwards",
        examples=["90000.00"],
    )
    active: StrictBool | SkipJsonSchema[None] = Field(
        None, description="false closes the fund to new subscriptions (cancellations are still allowed)"
    )


class UpdateClientRequest(_ChangeBody):
    """Any of a client's contact data and channel."""

    model_config = ConfigDict(json_schema_extra=_change_schema({"channel": "sms"}))

    name: Name | SkipJsonSchema[None] = Field(None, description=_NAME_DESCRIPTION)
    email: Email | SkipJsonSchema[None] = Field(None, description=_EMAIL_DESCRIPTION)
    phone: Phone | SkipJsonSchema[None] = Field(None, description=_PHONE_DESCRIPTION)
    channel: ChannelName | SkipJsonSchema[None] = Field(
        None, description=_CHANNEL_DESCRIPTION + "; notifications created afterwards use it"
    )


class SubscribeRequest(_JsonBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"fund_id": 1, "amount": "80000.00"}, {"fund_id": 3}]},
    )

    fund_id: StrictInt = Field(..., description="fund id (see GET /funds)")
    amount: AmountText | AmountInteger | None = Field(
        None,
        description=(
            f"COP, at least the fund's minimum (see GET /funds) and at most {fundcore.MAX_AMOUNT:f}: a decimal "
            f"string with at most {fundcore.MINOR_DIGITS} decimals or a JSON integer; JSON floats are refused. "
            "Omitted or null: the fund's minimum."
        ),
        examples=["80000.00"],
    )


# --------------------------------------------------------------------------- responses

#: Money as the engine writes it: a decimal string with exactly ``fundcore.MINOR_DIGITS`` decimals.
MONEY_PATTERN = f"^[0-9]+\\.[0-9]{{{fundcore.MINOR_DIGITS}}}$"
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["75000.00"])]


def _one_of(names: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"not one of {', '.join(names)}")
        return value

    return AfterValidator(check)


#: A notification channel: one of ``fundcore.CHANNELS``.
Channel = Annotated[
    str, _one_of(fundcore.CHANNELS), WithJsonSchema({"type": "string", "enum": list(fundcore.CHANNELS)})
]
#: A fund category: one of ``fundcore.CATEGORIES``.
Category = Annotated[
    str, _one_of(fundcore.CATEGORIES), WithJsonSchema({"type": "string", "enum": list(fundcore.CATEGORIES)})
]
#: A time as the engine writes it (RFC 3339, UTC, microseconds), passed on as written.
TIMESTAMP_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"
Timestamp = Annotated[
    str,
    Field(pattern=TIMESTAMP_PATTERN),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Record(Protocol):
    """A record of the engine: its ``to_dict()`` is its wire form."""

    def to_dict(self) -> Mapping[str, object]: ...


class _RecordOut(BaseModel):
    @classmethod
    def from_record(cls, record: Record) -> Self:
        """The record's ``to_dict()``, checked against this model."""
        return cls.model_validate(record.to_dict())


class FundOut(_RecordOut):
    id: int
    name: str
    minimum: Money
    category: Category
    active: bool


class ClientOut(_RecordOut):
    id: uuid.UUID
    name: str
    email: str
    phone: str
    channel: Channel
    balance: Money
    created_at: Timestamp


class SubscriptionOut(_RecordOut):
    client_id: uuid.UUID
    fund_id: int
    fund_name: str
    amount: Money
    transaction_id: uuid.UUID
    subscribed_at: Timestamp


class TransactionOut(_RecordOut):
    id: uuid.UUID
    client_id: uuid.UUID
    fund_id: int
    fund_name: str
    kind: Literal["subscription", "cancellation"]
    amount: Money
    balance_after: Money
    created_at: Timestamp
    idempotency_key: str | None = None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next: uuid.UUID | None = Field(None, description="pass as `before` for the next page; null on the last page")


class ClientPage(BaseModel):
    items: list[ClientOut]
    next: uuid.UUID | None = Field(None, description="pass as `before` for the next page; null on the last page")


class AuditEventOut(_RecordOut):
    id: uuid.UUID
    at: Timestamp
    actor: str = Field(..., description="who asked: the subject of the caller's token")
    action: Literal["fund_created", "fund_updated", "client_updated"]
    target: str = Field(..., description="the fund id or client id changed")
    before: dict[str, StrictStr | StrictBool] = Field(
        ..., description="the changed fields before the change (empty for a fund created)"
    )
    after: dict[str, StrictStr | StrictBool] = Field(..., description="the changed fields after the change")
    request_id: str | None = Field(None, description="the `X-Request-ID` of the request that made the change")


class AuditEventPage(BaseModel):
    items: list[AuditEventOut]
    next: uuid.UUID | None = Field(None, description="pass as `before` for the next page; null on the last page")


class NotificationOut(_RecordOut):
    id: uuid.UUID
    client_id: uuid.UUID
    transaction_id: uuid.UUID
    channel: Channel
    recipient: str
    subject: str
    body: str
    status: Literal["pending", "delivered", "failed"]
    attempts: Annotated[int, Field(ge=0)]
    last_error: str | None = None
    created_at: Timestamp
    delivered_at: Timestamp | None = None
    next_attempt_at: Timestamp | None = Field(None, description="when a pending entry is tried again")


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next: uuid.UUID | None = Field(None, description="pass as `before` for the next page; null on the last page")


class StatementLineOut(BaseModel):
    transaction: TransactionOut
    invested_after: Money = Field(
        ..., description="the sum of the client's active subscription amounts right after the transaction"
    )


class StatementOut(_RecordOut):
    """A client's account over ``from <= created_at < to`` (``from`` and ``to`` are Python
    keywords, hence the aliases)."""

    client_id: uuid.UUID
    start: Timestamp = Field(..., alias="from", description="the range's start, included")
    end: Timestamp = Field(..., alias="to", description="the range's end, excluded")
    opening_balance: Money = Field(..., description="the available balance at `from`")
    opening_invested: Money = Field(..., description="the sum of the active subscription amounts at `from`")
    lines: list[StatementLineOut] = Field(..., description="the range's transactions, oldest first")
    closing_balance: Money = Field(..., description="the available balance at `to`")
    closing_invested: Money = Field(..., description="the sum of the active subscription amounts at `to`")


class OutboxStateOut(_RecordOut):
    pending: Annotated[int, Field(ge=0)]
    failed: Annotated[int, Field(ge=0)]
    delivered: Annotated[int, Field(ge=0)]
    oldest_pending_at: Timestamp | None = Field(None, description="when the oldest pending entry was written")
    oldest_pending_age: str | None = Field(
        None,
        pattern="^PT[0-9]+(\\.[0-9]{1,6})?S$",
        description='how long the oldest pending entry has waited, an ISO 8601 duration in seconds ("PT12.5S")',
    )


class RetryReport(BaseModel):
    requeued: Annotated[int, Field(ge=0, description="failed notifications put back in the queue")]


class OutboxCounts(BaseModel):
    pending: Annotated[int, Field(ge=0)]
    delivered: Annotated[int, Field(ge=0)]
    failed: Annotated[int, Field(ge=0)]


class ViolationOut(BaseModel):
    client: uuid.UUID | None = Field(None, description="the client whose records break the rule; null store-wide")
    rule: Literal[
        "negative_balance",
        "reconciliation",
        "replay",
        "unique_ids",
        "outbox",
        "idempotency",
        "reference",
        "store_index",
    ]
    detail: str


class LedgerReportOut(_RecordOut):
    clean: bool = Field(..., description="whether no rule is broken")
    clients: Annotated[int, Field(ge=0)]
    transactions: Annotated[int, Field(ge=0)]
    active_subscriptions: Annotated[int, Field(ge=0)]
    idempotency_keys: Annotated[int, Field(ge=0)]
    outbox: OutboxCounts
    audit_events: Annotated[int, Field(ge=0)]
    violation_count: int = Field(..., ge=0, description="every violation found")
    violations: list[ViolationOut] = Field(..., description="the first violations found (at most 1000)")
    summary: str = Field(..., description="what was read and found, in a few lines of English")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"


# Lists of records, each checked in one validation (one call into pydantic's core for the
# whole list rather than one per record: lists are the longest answers).
FundList = TypeAdapter(list[FundOut])
SubscriptionList = TypeAdapter(list[SubscriptionOut])
NotificationList = TypeAdapter(list[NotificationOut])


def wire_forms(records: Iterable[Record]) -> list[Mapping[str, object]]:
    """Each record's ``to_dict()``, to be validated as a list."""
    return [record.to_dict() for record in records]
