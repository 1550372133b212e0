"""One answer for the same bad input: ONE table of inputs, each fed through the REST API and
through the Python package directly (the same engine behind both), in both locales.

For a refused input both sides give the same code and message, REST with the HTTP status of the
code (``fundcore.ERROR_CODES``, the core's) and, for a ``VALIDATION_ERROR``, ``errors`` naming the
engine's field with its problem. For an accepted one both sides give the same record.

Left out, because one side cannot express them: a JSON number with a fraction for an amount or an
id, and any value of the wrong JSON type (``"fund_id": "1"``, ``"amount": true``, ``"name": 5``), a
path fund id that is not an integer (``/subscriptions/abc``): Python refuses a ``float`` or a
``str`` fund id with ``TypeError`` before the engine sees it, REST with the host's 422 on the type.
Missing or unknown fields, invalid JSON and repeated keys have no Python call. Texts over the
host's size cap (``MAX_TEXT_CHARS``) and page sizes beyond ``MAX_QUERY_INT`` are the host's abuse
limits (422 there; Python hands them to the engine, or raises ``OverflowError`` for a page size
beyond 128 bits). Header values that HTTP itself changes or refuses: leading and trailing spaces
of an ``Idempotency-Key`` (stripped on the wire), control characters other than tab and text that
is not Latin-1. A field of a change (``PATCH``) sent as ``null``: Python's ``None`` leaves the
field as it is, REST refuses ``null`` as a type (a field left out keeps its value).

Administrative calls are made by the same actor on both sides: Python passes the subject of the
admin token REST sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ADMIN, make_engine, make_settings
from fastapi.testclient import TestClient

import fundcore
from fundcore_host.app import create_app

UNKNOWN = "0190b2a4-7c1e-7000-8000-000000000000"
CONTACT = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
#: Stands for the client each side registers for the row.
OWN = "<own client>"
#: A fund each side creates: the fields a row does not give.
NEW_FUND = {"name": "FIC_NUEVO", "minimum": "100000", "category": "FIC"}
#: The subject of the admin token (conftest's ADMIN), the actor of Python's administrative calls.
ADMIN_SUBJECT = "admin-1"


@dataclass(frozen=True)
class Row:
    """An input and what the engine answers it with: the code, or ``None`` for accepted."""

    label: str
    call: str
    args: dict[str, Any] = field(default_factory=dict)
    code: str | None = None


ROWS = [
    # fund ids: any integer; one that names no fund is FUND_NOT_FOUND with the id as given
    Row("fund id -1", "subscribe", {"fund_id": -1}, "FUND_NOT_FOUND"),
    Row("fund id 2**40", "subscribe", {"fund_id": 2**40}, "FUND_NOT_FOUND"),
    Row("fund id 99", "subscribe", {"fund_id": 99}, "FUND_NOT_FOUND"),
    Row("cancel fund id -1", "cancel", {"fund_id": -1}, "FUND_NOT_FOUND"),
    Row("cancel fund id 2**40", "cancel", {"fund_id": 2**40}, "FUND_NOT_FOUND"),
    Row("cancel fund id 99", "cancel", {"fund_id": 99}, "FUND_NOT_FOUND"),
    # client ids: text that is not one, and one that names nobody
    Row("client id x", "client", {"client_id": "x"}, "CLIENT_NOT_FOUND"),
    Row("client id unknown", "client", {"client_id": UNKNOWN}, "CLIENT_NOT_FOUND"),
    Row("client id unknown, upper case", "client", {"client_id": UNKNOWN.upper()}, "CLIENT_NOT_FOUND"),
    Row("subscribe for client x", "subscribe", {"client_id": "x", "fund_id": 1}, "CLIENT_NOT_FOUND"),
    Row("subscriptions of client unknown", "subscriptions", {"client_id": UNKNOWN}, "CLIENT_NOT_FOUND"),
    Row("history of client x", "history", {"client_id": "x"}, "CLIENT_NOT_FOUND"),
    Row("notifications of client unknown", "notifications", {"client_id": UNKNOWN}, "CLIENT_NOT_FOUND"),
    # amounts: text the engine reads, or refuses
    Row("amount ' 80000 '", "subscribe", {"fund_id": 1, "amount": " 80000 "}),
    Row("amount '080000'", "subscribe", {"fund_id": 1, "amount": "080000"}),
    Row("amount 80000 (integer)", "subscribe", {"fund_id": 1, "amount": 80000}),
    Row("amount '80000.001'", "subscribe", {"fund_id": 1, "amount": "80000.001"}, "VALIDATION_ERROR"),
    Row("amount '0'", "subscribe", {"fund_id": 1, "amount": "0"}, "VALIDATION_ERROR"),
    Row("amount '-5'", "subscribe", {"fund_id": 1, "amount": "-5"}, "VALIDATION_ERROR"),
    Row("amount -5 (integer)", "subscribe", {"fund_id": 1, "amount": -5}, "VALIDATION_ERROR"),
    Row("amount 'abc'", "subscribe", {"fund_id": 1, "amount": "abc"}, "VALIDATION_ERROR"),
    Row("amount '1e3'", "subscribe", {"fund_id": 1, "amount": "1e3"}, "VALIDATION_ERROR"),
    Row("amount ''", "subscribe", {"fund_id": 1, "amount": ""}, "VALIDATION_ERROR"),
    Row("amount over the maximum", "subscribe", {"fund_id": 1, "amount": "1000000000000.01"}, "VALIDATION_ERROR"),
    Row("amount below the minimum", "subscribe", {"fund_id": 2, "amount": "100000"}, "BELOW_MINIMUM"),
    Row("amount over the balance", "subscribe", {"fund_id": 4, "amount": "500000.01"}, "INSUFFICIENT_BALANCE"),
    # contact data and channel
    Row("name ''", "register", {"name": ""}, "VALIDATION_ERROR"),
    Row("name of spaces", "register", {"name": "   "}, "VALIDATION_ERROR"),
    Row("name of 101 characters", "register", {"name": "A" * (fundcore.MAX_NAME_CHARS + 1)}, "VALIDATION_ERROR"),
    Row("name with a control character", "register", {"name": "Ana\x00"}, "VALIDATION_ERROR"),
    Row("name in spaces and tabs", "register", {"name": "\tAna \n"}),
    Row("email 'nope'", "register", {"email": "nope"}, "VALIDATION_ERROR"),
    Row("email without a dotted domain", "register", {"email": "ana@ejemplo"}, "VALIDATION_ERROR"),
    Row("phone '123'", "register", {"phone": "123"}, "VALIDATION_ERROR"),
    Row("phone with a space", "register", {"phone": "+57 3001234567"}, "VALIDATION_ERROR"),
    Row("channel 'fax'", "register", {"channel": "fax"}, "VALIDATION_ERROR"),
    Row("channel 'SMS'", "register", {"channel": "SMS"}),
    # history pages
    Row("limit 0", "history", {"limit": 0}, "VALIDATION_ERROR"),
    Row("limit -1", "history", {"limit": -1}, "VALIDATION_ERROR"),
    Row("limit MAX_PAGE + 1", "history", {"limit": fundcore.MAX_PAGE + 1}, "VALIDATION_ERROR"),
    Row("limit 2**40", "history", {"limit": 2**40}, "VALIDATION_ERROR"),
    Row("limit MAX_PAGE", "history", {"limit": fundcore.MAX_PAGE}),
    Row("before 'not-a-cursor'", "history", {"before": "not-a-cursor"}, "VALIDATION_ERROR"),
    Row("before an unknown transaction", "history", {"before": UNKNOWN}),
    # idempotency keys
    Row(
        "key too long",
        "subscribe",
        {"fund_id": 5, "key": "k" * (fundcore.MAX_IDEMPOTENCY_KEY_CHARS + 1)},
        "VALIDATION_ERROR",
    ),
    Row("key with a tab", "subscribe", {"fund_id": 5, "key": "order\t1"}, "VALIDATION_ERROR"),
    Row("cancel key too long", "cancel", {"fund_id": 3, "key": "k" * 201}, "VALIDATION_ERROR"),
    Row("key of the longest length", "subscribe", {"fund_id": 5, "key": "k" * fundcore.MAX_IDEMPOTENCY_KEY_CHARS}),
    Row("cancel with a key", "cancel", {"fund_id": 3, "key": "cancel-1"}),
    # a new fund: name, minimum (an amount), category, and an id the caller chooses
    Row("new fund named ''", "create_fund", {"name": ""}, "VALIDATION_ERROR"),
    Row("new fund named with spaces", "create_fund", {"name": "   "}, "VALIDATION_ERROR"),
    Row(
        "new fund name of 101 characters",
        "create_fund",
        {"name": "F" * (fundcore.MAX_NAME_CHARS + 1)},
        "VALIDATION_ERROR",
    ),
    Row("new fund name with a control character", "create_fund", {"name": "FIC\x07"}, "VALIDATION_ERROR"),
    Row("new fund minimum '0'", "create_fund", {"minimum": "0"}, "VALIDATION_ERROR"),
    Row("new fund minimum '-5'", "create_fund", {"minimum": "-5"}, "VALIDATION_ERROR"),
    Row("new fund minimum -5 (integer)", "create_fund", {"minimum": -5}, "VALIDATION_ERROR"),
    Row("new fund minimum 'abc'", "create_fund", {"minimum": "abc"}, "VALIDATION_ERROR"),
    Row("new fund minimum '80000.001'", "create_fund", {"minimum": "80000.001"}, "VALIDATION_ERROR"),
    Row("new fund minimum ''", "create_fund", {"minimum": ""}, "VALIDATION_ERROR"),
    Row("new fund minimum over the maximum", "create_fund", {"minimum": "1000000000000.01"}, "VALIDATION_ERROR"),
    Row("new fund minimum ' 80000 '", "create_fund", {"minimum": " 80000 "}),
    Row("new fund minimum 80000 (integer)", "create_fund", {"minimum": 80000}),
    Row("new fund category 'XYZ'", "create_fund", {"category": "XYZ"}, "VALIDATION_ERROR"),
    Row("new fund category ''", "create_fund", {"category": ""}, "VALIDATION_ERROR"),
    Row("new fund category 'fic'", "create_fund", {"category": "fic"}),
    Row("new fund id taken", "create_fund", {"fund_id": 1}, "FUND_ALREADY_EXISTS"),
    Row("new fund id taken, bad category", "create_fund", {"fund_id": 1, "category": "XYZ"}, "VALIDATION_ERROR"),
    Row("new fund id -1", "create_fund", {"fund_id": -1}, "FUND_NOT_FOUND"),
    Row("new fund id 2**40", "create_fund", {"fund_id": 2**40}, "FUND_NOT_FOUND"),
    # a fund's changes
    Row("fund change without a field", "update_fund", {"fund_id": 1}, "VALIDATION_ERROR"),
    Row("fund renamed ''", "update_fund", {"fund_id": 1, "name": ""}, "VALIDATION_ERROR"),
    Row("fund minimum '0'", "update_fund", {"fund_id": 1, "minimum": "0"}, "VALIDATION_ERROR"),
    Row("fund minimum 'abc'", "update_fund", {"fund_id": 1, "minimum": "abc"}, "VALIDATION_ERROR"),
    Row("fund minimum '90000.001'", "update_fund", {"fund_id": 1, "minimum": "90000.001"}, "VALIDATION_ERROR"),
    Row("fund minimum ' 90000 '", "update_fund", {"fund_id": 1, "minimum": " 90000 "}),
    Row("fund closed", "update_fund", {"fund_id": 1, "active": False}),
    Row("fund renamed", "update_fund", {"fund_id": 1, "name": " FPV_RENOMBRADO "}),
    Row("fund 99 changed", "update_fund", {"fund_id": 99, "name": "X"}, "FUND_NOT_FOUND"),
    Row("fund 99 without a field", "update_fund", {"fund_id": 99}, "VALIDATION_ERROR"),
    Row("fund -1 changed", "update_fund", {"fund_id": -1, "active": False}, "FUND_NOT_FOUND"),
    Row("fund 2**40 changed", "update_fund", {"fund_id": 2**40, "minimum": "1"}, "FUND_NOT_FOUND"),
    # a client's changes: validated as when registering
    Row("contact change without a field", "update_client", {}, "VALIDATION_ERROR"),
    Row("contact name ''", "update_client", {"name": ""}, "VALIDATION_ERROR"),
    Row("contact email 'nope'", "update_client", {"email": "nope"}, "VALIDATION_ERROR"),
    Row("contact phone '123'", "update_client", {"phone": "123"}, "VALIDATION_ERROR"),
    Row("contact channel 'fax'", "update_client", {"channel": "fax"}, "VALIDATION_ERROR"),
    Row("contact channel 'SMS'", "update_client", {"channel": "SMS"}),
    Row("contact email and phone", "update_client", {"email": " ana@EXAMPLE.com ", "phone": "+573009998877"}),
    Row("contact of client x", "update_client", {"client_id": "x", "channel": "sms"}, "CLIENT_NOT_FOUND"),
    Row("contact of client unknown", "update_client", {"client_id": UNKNOWN, "channel": "sms"}, "CLIENT_NOT_FOUND"),
    Row("contact of client unknown, no field", "update_client", {"client_id": UNKNOWN}, "VALIDATION_ERROR"),
    # the client list and the audit trail, a page at a time
    Row("clients limit 0", "clients", {"limit": 0}, "VALIDATION_ERROR"),
    Row("clients limit MAX_PAGE + 1", "clients", {"limit": fundcore.MAX_PAGE + 1}, "VALIDATION_ERROR"),
    Row("clients limit 2**40", "clients", {"limit": 2**40}, "VALIDATION_ERROR"),
    Row("clients limit 1", "clients", {"limit": 1}),
    Row("clients before 'x'", "clients", {"before": "x"}, "VALIDATION_ERROR"),
    Row("clients before an unknown client", "clients", {"before": UNKNOWN}),
    Row("audit limit 0", "audit", {"limit": 0}, "VALIDATION_ERROR"),
    Row("audit limit MAX_PAGE + 1", "audit", {"limit": fundcore.MAX_PAGE + 1}, "VALIDATION_ERROR"),
    Row("audit limit 1", "audit", {"limit": 1}),
    Row("audit limit MAX_PAGE", "audit", {"limit": fundcore.MAX_PAGE}),
    Row("audit before 'x'", "audit", {"before": "x"}, "VALIDATION_ERROR"),
    Row("audit before an unknown event", "audit", {"before": UNKNOWN}),
]


@dataclass(frozen=True)
class Answer:
    """What one side answered: an error's code, message, field and problem, or the record."""

    code: str | None
    message: str | None = None
    field: str | None = None
    problem: str | None = None
    record: Any = None


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two calls (ids, times)."""
    return {k: v for k, v in record.items() if k not in {"id", "client_id", "created_at", "transaction_id"}}


def through_python(engine: fundcore.Engine, row: Row, own: str) -> Answer:
    args = {**row.args}
    client_id = own if args.pop("client_id", OWN) == OWN else row.args["client_id"]
    try:
        if row.call == "register":
            contact = CONTACT | args
            record: Any = engine.register_client(
                contact["name"], contact["email"], contact["phone"], contact["channel"]
            ).to_dict()
        elif row.call == "client":
            record = engine.client(client_id).to_dict()
        elif row.call == "subscribe":
            if "amount" in args:
                tx = engine.subscribe(client_id, args["fund_id"], args["amount"], idempotency_key=args.get("key"))
            else:
                tx = engine.subscribe(client_id, args["fund_id"], idempotency_key=args.get("key"))
            record = tx.to_dict()
        elif row.call == "cancel":
            record = engine.cancel(client_id, args["fund_id"], idempotency_key=args.get("key")).to_dict()
        elif row.call == "subscriptions":
            record = [s.to_dict() for s in engine.subscriptions(client_id)]
        elif row.call == "notifications":
            record = [n.to_dict() for n in engine.notifications(client_id)]
        elif row.call == "history":
            record = engine.history_page(client_id, args.get("limit", 50), args.get("before")).to_dict()
        elif row.call == "create_fund":
            fund = NEW_FUND | args
            record = engine.create_fund(
                fund.get("fund_id", next_fund_id(engine)),
                fund["name"],
                fund["minimum"],
                fund["category"],
                actor=ADMIN_SUBJECT,
            ).to_dict()
        elif row.call == "update_fund":
            fund_id = args.pop("fund_id")
            record = engine.update_fund(fund_id, **args, actor=ADMIN_SUBJECT).to_dict()
        elif row.call == "update_client":
            record = engine.update_client(client_id, **args, actor=ADMIN_SUBJECT).to_dict()
        elif row.call == "clients":
            record = engine.clients(args.get("limit", 50), args.get("before")).to_dict()
        elif row.call == "audit":
            record = engine.audit_events(args.get("limit", 50), args.get("before")).to_dict()
        else:
            raise AssertionError(row.call)
    except fundcore.FundcoreError as error:
        assert error.http_status == fundcore.ERROR_CODES[error.code]
        return Answer(error.code, error.message, error.field, error.problem)
    return Answer(None, record=record)


def next_fund_id(engine: fundcore.Engine) -> int:
    """An id no fund has yet (each side creates its own fund)."""
    return max(fund.id for fund in engine.funds()) + 1


def through_rest(api: TestClient, engine: fundcore.Engine, row: Row, own: str) -> Answer:
    args = {**row.args}
    client_id = own if args.pop("client_id", OWN) == OWN else row.args["client_id"]
    key = args.pop("key", None)
    headers = ADMIN | ({"Idempotency-Key": key} if key is not None else {})
    base = f"/clients/{client_id}"
    if row.call == "register":
        response = api.post("/clients", json=CONTACT | args, headers=headers)
    elif row.call == "client":
        response = api.get(base, headers=headers)
    elif row.call == "subscribe":
        response = api.post(f"{base}/subscriptions", json=args, headers=headers)
    elif row.call == "cancel":
        response = api.delete(f"{base}/subscriptions/{args['fund_id']}", headers=headers)
    elif row.call in ("subscriptions", "notifications"):
        response = api.get(f"{base}/{row.call}", headers=headers)
    elif row.call == "history":
        response = api.get(f"{base}/transactions", params=args, headers=headers)
    elif row.call == "create_fund":
        fund = NEW_FUND | args
        body = {"id": fund.pop("fund_id", next_fund_id(engine)), **fund}
        response = api.post("/funds", json=body, headers=headers)
    elif row.call == "update_fund":
        response = api.patch(f"/funds/{args.pop('fund_id')}", json=args, headers=headers)
    elif row.call == "update_client":
        response = api.patch(base, json=args, headers=headers)
    elif row.call == "clients":
        response = api.get("/clients", params=args, headers=headers)
    elif row.call == "audit":
        response = api.get("/audit", params=args, headers=headers)
    else:
        raise AssertionError(row.call)
    body = response.json()
    if response.status_code < 400:
        return Answer(None, record=body)
    assert set(body) == {"status", "code", "message", "errors"} and body["status"] == "error", body
    assert response.status_code == fundcore.ERROR_CODES[body["code"]], (response.status_code, body)
    errors = body["errors"]
    if errors is None:
        return Answer(body["code"], body["message"])
    ((field_name, problem),) = errors.items()
    return Answer(body["code"], body["message"], field_name, problem)


@pytest.fixture(params=["es", "en"])
def both_sides(request: pytest.FixtureRequest) -> Iterator[tuple[fundcore.Engine, TestClient]]:
    """One engine in the locale, and the REST host over that same engine. Its audit trail
    starts with two events (a fund created, then changed), for the rows that read it."""
    engine = make_engine(locale=request.param)
    engine.create_fund(6, "FIC_AUDITADO", "1000", "FIC", actor="setup", request_id="setup-1")
    engine.update_fund(6, minimum="2000", actor="setup")
    with TestClient(create_app(make_settings(locale=request.param), engine=engine)) as api:
        yield engine, api
    engine.close()


def fresh_client(engine: fundcore.Engine) -> str:
    client = engine.register_client(CONTACT["name"], CONTACT["email"], CONTACT["phone"], CONTACT["channel"])
    engine.subscribe(client.id, 3, None)  # a subscription to cancel, a transaction to page
    return client.id


def normalised(answer: Answer) -> Answer:
    """An accepted answer with its records reduced to what two calls share."""
    record = answer.record
    if isinstance(record, dict) and "items" in record:
        record = {"items": [comparable(item) for item in record["items"]], "next": record["next"] is not None}
    elif isinstance(record, dict):
        record = comparable(record)
    elif isinstance(record, list):
        record = [comparable(item) for item in record]
    return Answer(answer.code, answer.message, answer.field, answer.problem, record)


@pytest.mark.parametrize("row", ROWS, ids=[row.label for row in ROWS])
def test_rest_and_python_give_the_same_answer(both_sides: tuple[fundcore.Engine, TestClient], row: Row) -> None:
    engine, api = both_sides
    # each side's own client, both registered before either call (a page of clients is the same)
    own_by_python, own_by_rest = fresh_client(engine), fresh_client(engine)
    by_python = normalised(through_python(engine, row, own_by_python))
    by_rest = normalised(through_rest(api, engine, row, own_by_rest))
    assert by_python.code == row.code, by_python
    assert by_rest == by_python
    if row.code == "VALIDATION_ERROR":
        assert by_rest.field and by_rest.problem and by_rest.message == f"{by_rest.field}: {by_rest.problem}"


def test_the_table_covers_every_kind_of_value() -> None:
    """Each kind of value the host used to check itself has refused and accepted rows."""
    refused = {(row.call, next(iter(row.args), "client_id")) for row in ROWS if row.code}
    accepted = {(row.call, next(iter(row.args), "client_id")) for row in ROWS if row.code is None}
    for kind in [
        ("subscribe", "fund_id"),
        ("register", "name"),
        ("register", "channel"),
        ("history", "limit"),
        ("create_fund", "minimum"),
        ("create_fund", "category"),
        ("update_fund", "fund_id"),
        ("update_client", "channel"),
        ("clients", "limit"),
        ("audit", "limit"),
    ]:
        assert kind in refused and kind in accepted, kind
    assert {code for row in ROWS for code in [row.code] if code} >= {
        "FUND_NOT_FOUND",
        "CLIENT_NOT_FOUND",
        "VALIDATION_ERROR",
        "BELOW_MINIMUM",
        "INSUFFICIENT_BALANCE",
        "FUND_ALREADY_EXISTS",
    }
