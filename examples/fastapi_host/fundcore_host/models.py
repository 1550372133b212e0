"""Request and response bodies of the REST API.

Request models check the shapes of :mod:`fundcore_host.contract` before the engine sees a value
(see there why). Response models are what every handler returns: each record's ``to_dict()``
(the engine's own wire format) is validated against its model, and FastAPI serializes the model,
so a record that drifted from the documented shape is a 500 in the log, never a silent answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Literal, Protocol, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import contract
from .json_body import DUPLICATE_KEY_ERROR, INVALID_JSON_ERROR, DuplicateKeyError, InvalidJson

# --------------------------------------------------------------------------- requests

_FRACTION_MESSAGE = (
    "JSON numbers with a fraction are not accepted; "
    'send money as a string with up to 2 decimals, e.g. "80000.50", or as a whole number'
)


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
        if field == "amount":
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


class RegisterClientRequest(_JsonBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}]
        },
    )

    name: StrictStr = Field(
        ...,
        max_length=contract.NAME_MAX_CHARS,
        pattern=contract.NAME_PATTERN,
        description="1 to 100 characters, no control characters",
    )
    email: StrictStr = Field(..., max_length=contract.EMAIL_MAX_CHARS, pattern=contract.EMAIL_PATTERN)
    phone: StrictStr = Field(..., pattern=contract.PHONE_PATTERN, description="E.164, e.g. +573001234567")
    channel: Literal["email", "sms"] = Field(..., description="where notifications go: the email or the phone")


class SubscribeRequest(_JsonBody):
    """The document shows this body per fund of the catalogue (`contract.subscribe_body_schema`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"fund_id": 1, "amount": "80000.00"}, {"fund_id": 3}]},
    )

    fund_id: StrictInt = Field(..., ge=0, le=contract.FUND_ID_MAX, description="fund id (see GET /funds)")
    amount: (
        Annotated[StrictStr, Field(max_length=contract.AMOUNT_MAX_CHARS, pattern=contract.AMOUNT_SYNTAX)]
        | Annotated[StrictInt, Field(ge=0, le=10**15)]
        | None
    ) = Field(
        None,
        description=(
            "COP amount as a decimal string (at most 2 decimals) or a JSON integer; "
            "JSON floats are refused. Omitted: the fund's minimum."
        ),
        examples=["80000.00"],
    )

    def amount_decimal(self) -> Decimal | None:
        if self.amount is None:
            return None
        return Decimal(str(self.amount))


# --------------------------------------------------------------------------- responses

Money = Annotated[str, Field(pattern=contract.MONEY_PATTERN, examples=["75000.00"])]
FundId = Annotated[int, Field(ge=0, le=contract.FUND_ID_MAX)]
Channel = Literal["email", "sms"]
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
    id: FundId
    name: str
    minimum: Money
    category: Literal["FPV", "FIC"]
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
    fund_id: FundId
    fund_name: str
    amount: Money
    transaction_id: uuid.UUID
    subscribed_at: Timestamp


class TransactionOut(_RecordOut):
    id: uuid.UUID
    client_id: uuid.UUID
    fund_id: FundId
    fund_name: str
    kind: Literal["subscription", "cancellation"]
    amount: Money
    balance_after: Money
    created_at: Timestamp
    idempotency_key: str | None = None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
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


class Health(BaseModel):
    status: Literal["ok"] = "ok"


# Lists of records, each checked in one validation (one call into pydantic's core for the
# whole list rather than one per record: lists are the longest answers).
FundList = TypeAdapter(list[FundOut])
SubscriptionList = TypeAdapter(list[SubscriptionOut])
NotificationList = TypeAdapter(list[NotificationOut])


def wire_forms(records: Iterable[Record]) -> list[Mapping[str, object]]:
    """Each record's ``to_dict()``, to be validated as a list."""
    return [record.to_dict() for record in records]
