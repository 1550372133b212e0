"""The OpenAPI document says exactly what the server accepts and answers (schemathesis checks
it against the running host in test_schemathesis.py; this reads the document itself)."""

from __future__ import annotations

import re

import pytest
from conftest import ADMIN, register

import fundcore
from fundcore_host import contract
from fundcore_host.errors import ENGINE_STATUS, HOST_STATUS

OPERATIONS = {
    ("/health", "get"): "health",
    ("/funds", "get"): "listFunds",
    ("/clients", "post"): "registerClient",
    ("/clients/{client_id}", "get"): "getClient",
    ("/clients/{client_id}/subscriptions", "get"): "listSubscriptions",
    ("/clients/{client_id}/subscriptions", "post"): "subscribe",
    ("/clients/{client_id}/subscriptions/{fund_id}", "delete"): "cancelSubscription",
    ("/clients/{client_id}/transactions", "get"): "listTransactions",
    ("/clients/{client_id}/notifications", "get"): "listNotifications",
}


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_readable_operation_ids(spec):
    assert {(path, method): op["operationId"] for path, method, op in operations(spec)} == OPERATIONS


def test_every_operation_lists_405_413_431_500_with_the_envelope(spec):
    codes = set(ENGINE_STATUS) | set(HOST_STATUS)
    assert spec["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"]["enum"] == sorted(codes)
    for path, method, op in operations(spec):
        responses = op["responses"]
        assert {"405", "413", "431", "500"} <= set(responses), (path, method)
        for status, response in responses.items():
            assert response["headers"]["X-Request-ID"]["required"] is True
            if int(status) < 400:
                continue
            content = response["content"]["application/json"]
            allowed = content["schema"]["allOf"][1]["properties"]["code"]["enum"]
            assert allowed and set(allowed) <= codes
            assert all(({**ENGINE_STATUS, **HOST_STATUS})[code] == int(status) for code in allowed)
            assert content["example"]["code"] in allowed, (path, method, status)
            assert content["example"]["message"]
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
        assert responses["405"]["headers"]["Allow"]["required"] is True
    for path, method, op in operations(spec):
        if path != "/health":
            assert {"401", "429", "503"} <= set(op["responses"]), (path, method)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_error_examples_are_the_engines_own_messages(spec):
    example = spec["paths"]["/clients/{client_id}/subscriptions"]["post"]["responses"]["409"]["content"][
        "application/json"
    ]["example"]
    with fundcore.Engine() as engine:
        client = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
        engine.subscribe(client.id, 1, "80000")
        with pytest.raises(fundcore.InsufficientBalanceError) as refused:
            engine.subscribe(client.id, 4, "450000")
    assert example == {
        "status": "error",
        "code": "INSUFFICIENT_BALANCE",
        "message": refused.value.message,
        "errors": None,
    }


def test_request_shapes(spec):
    schemas = spec["components"]["schemas"]
    register_body = schemas["RegisterClientRequest"]["properties"]
    assert register_body["channel"]["enum"] == ["email", "sms"]
    assert register_body["name"]["pattern"] == contract.NAME_PATTERN and register_body["name"]["maxLength"] == 100
    assert register_body["email"]["pattern"] == contract.EMAIL_PATTERN
    assert register_body["phone"]["pattern"] == contract.PHONE_PATTERN
    for path, _method, op in operations(spec):
        for parameter in op.get("parameters", []):
            schema = parameter["schema"]
            if parameter["name"] in ("client_id", "before"):
                assert schema["type"] == "string" and schema["format"] == "uuid", (path, parameter)
            if parameter["name"] == "before":
                assert schema["pattern"] == contract.UUID_PATTERN
            if parameter["name"] == "Idempotency-Key":
                assert parameter["required"] is False and schema["type"] == "string"
                assert (schema["minLength"], schema["maxLength"]) == (1, 200)
                assert schema["pattern"] == contract.IDEMPOTENCY_KEY_PATTERN
            if parameter["name"] == "limit":
                assert (schema["minimum"], schema["maximum"]) == (1, fundcore.MAX_PAGE)


def test_subscribe_body_is_the_engines_catalogue(api, spec):
    body = spec["components"]["schemas"]["SubscribeRequest"]
    funds = api.get("/funds", headers=ADMIN).json()
    branches = {b["properties"]["fund_id"]["const"]: b for b in body["anyOf"]}
    assert sorted(branches) == [f["id"] for f in funds]
    for fund in funds:
        branch = branches[fund["id"]]
        assert branch["additionalProperties"] is False and branch["required"] == ["fund_id"]
        text, integer, null = branch["properties"]["amount"]["anyOf"]
        assert integer == {"type": "integer", "minimum": int(float(fund["minimum"])), "maximum": 500000}
        assert null == {"type": "null"}
        pattern = re.compile(text["pattern"])
        assert pattern.fullmatch(fund["minimum"]) and pattern.fullmatch("500000.00")
        for refused in ("-1", f"-{fund['minimum']}", "500000.01", "0", "1e5", "80000.001"):
            assert not pattern.fullmatch(refused), (fund["id"], refused)


def test_response_shapes(spec):
    schemas = spec["components"]["schemas"]
    for name, fields in {
        "ClientOut": ("id", "created_at"),
        "TransactionOut": ("id", "client_id", "created_at"),
        "NotificationOut": ("id", "transaction_id", "created_at"),
    }.items():
        properties = schemas[name]["properties"]
        for field in fields:
            assert properties[field]["format"] in ("uuid", "date-time"), (name, field)
    assert schemas["ClientOut"]["properties"]["channel"]["enum"] == ["email", "sms"]
    assert schemas["TransactionOut"]["properties"]["amount"]["pattern"] == contract.MONEY_PATTERN


def test_links_drive_the_next_operations(spec):
    created = spec["paths"]["/clients"]["post"]["responses"]["201"]["links"]
    assert created["getClient"] == {"operationId": "getClient", "parameters": {"client_id": "$response.body#/id"}}
    subscribed = spec["paths"]["/clients/{client_id}/subscriptions"]["post"]["responses"]["201"]["links"]
    assert subscribed["cancelSubscription"]["parameters"] == {
        "client_id": "$response.body#/client_id",
        "fund_id": "$response.body#/fund_id",
    }
    known = set(OPERATIONS.values())
    for _, _, op in operations(spec):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in known


def test_what_the_document_admits_is_served(api, spec):
    """One request per shape the document admits, at its edges."""
    cid = register(api, name=" \u3000Ñandú 😀 ", email="a.b+c@Example-1.co")["id"]
    key = "~" + "k" * 198 + "!"
    r = api.post(
        f"/clients/{cid}/subscriptions",
        json={"fund_id": 3, "amount": "50000"},
        headers=ADMIN | {"Idempotency-Key": key},
    )
    assert r.status_code == 201, r.text
    assert (
        api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 5, "amount": None}, headers=ADMIN).status_code == 201
    )
    cursor = r.json()["id"].upper()  # any UUID spelling
    page = api.get(f"/clients/{cid}/transactions", params={"limit": fundcore.MAX_PAGE, "before": cursor}, headers=ADMIN)
    assert page.status_code == 200 and page.json()["items"] == []
