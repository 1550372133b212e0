"""The OpenAPI document says what the server accepts and answers (schemathesis checks it against
the running host in test_schemathesis.py; this reads the document itself). What it states about
values comes from ``fundcore``; the engine decides them."""

from __future__ import annotations

import pytest
from conftest import ADMIN, register

import fundcore
from fundcore_host.errors import HOST_STATUS
from fundcore_host.models import MAX_TEXT_CHARS, MONEY_PATTERN

STATUS = {**fundcore.ERROR_CODES, **HOST_STATUS}

OPERATIONS = {
    ("/health", "get"): "health",
    ("/ready", "get"): "ready",
    ("/funds", "get"): "listFunds",
    ("/clients", "post"): "registerClient",
    ("/clients/{client_id}", "get"): "getClient",
    ("/clients/{client_id}/subscriptions", "get"): "listSubscriptions",
    ("/clients/{client_id}/subscriptions", "post"): "subscribe",
    ("/clients/{client_id}/subscriptions/{fund_id}", "delete"): "cancelSubscription",
    ("/clients/{client_id}/transactions", "get"): "listTransactions",
    ("/clients/{client_id}/notifications", "get"): "listNotifications",
    ("/clients", "get"): "listClients",
    ("/clients/{client_id}", "patch"): "updateClient",
    ("/funds", "post"): "createFund",
    ("/funds/{fund_id}", "patch"): "updateFund",
    ("/audit", "get"): "listAuditEvents",
    # the host's own accounts (routers/account.py; tests/test_accounts.py)
    ("/auth/sign-up", "post"): "signUp",
    ("/auth/sign-in", "post"): "signIn",
    ("/auth/refresh", "post"): "refreshTokens",
    ("/auth/sign-out", "post"): "signOut",
}
#: Operations without a bearer token that cannot answer 401 (the accounts' own 401s are sign-in's
#: and refresh's INVALID_CREDENTIALS and INVALID_REFRESH_TOKEN).
NO_401 = {("/auth/sign-up", "post"), ("/auth/sign-out", "post")}


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
    codes = set(STATUS)
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
            assert all(STATUS[code] == int(status) for code in allowed)
            assert content["example"]["code"] in allowed, (path, method, status)
            assert content["example"]["message"]
        for status in ("429", "503"):
            if status in responses:
                assert responses[status]["headers"]["Retry-After"]["required"] is True, (path, method, status)
                assert responses[status]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
        assert responses["405"]["headers"]["Allow"]["required"] is True
    for path, method, op in operations(spec):
        if path not in ("/health", "/ready"):
            expected = {"429", "503"} if (path, method) in NO_401 else {"401", "429", "503"}
            assert expected <= set(op["responses"]), (path, method)
    # the probes: no token and no rate limit; readiness answers 503 while the store cannot
    assert not {"401", "429", "503"} & set(spec["paths"]["/health"]["get"]["responses"])
    assert not {"401", "429"} & set(spec["paths"]["/ready"]["get"]["responses"])
    assert "503" in spec["paths"]["/ready"]["get"]["responses"]
    assert set(codes_of_503(spec)) == {"STORAGE_ERROR", "OUTCOME_UNKNOWN"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def codes_of_503(spec):
    """The codes the document gives a 503."""
    response = spec["paths"]["/funds"]["get"]["responses"]["503"]
    return response["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]


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


def test_what_the_document_states_about_values_comes_from_fundcore(spec):
    """Only types and size caps in the request models; the rules the document states are
    ``fundcore``'s (no pattern of the host's own)."""
    schemas = spec["components"]["schemas"]
    register_body = schemas["RegisterClientRequest"]["properties"]
    assert register_body["channel"]["enum"] == list(fundcore.CHANNELS)
    assert f"1 to {fundcore.MAX_NAME_CHARS} characters" in register_body["name"]["description"]
    assert f"{fundcore.MIN_PHONE_DIGITS} to {fundcore.MAX_PHONE_DIGITS} digits" in register_body["phone"]["description"]
    for name in ("name", "email", "phone", "channel"):
        assert register_body[name]["type"] == "string" and register_body[name]["maxLength"] == MAX_TEXT_CHARS
    subscribe_body = schemas["SubscribeRequest"]["properties"]
    assert subscribe_body["fund_id"] == {
        "type": "integer",
        "title": "Fund Id",
        "description": "fund id (see GET /funds)",
    }
    text, integer, null = subscribe_body["amount"]["anyOf"]
    assert text == {"type": "string", "maxLength": MAX_TEXT_CHARS} and integer == {"type": "integer"}
    assert null == {"type": "null"}
    assert f"at most {fundcore.MINOR_DIGITS} decimals" in subscribe_body["amount"]["description"]
    assert schemas["FundOut"]["properties"]["category"]["enum"] == list(fundcore.CATEGORIES)
    assert schemas["ClientOut"]["properties"]["channel"]["enum"] == list(fundcore.CHANNELS)
    seen = set()
    for path, _method, op in operations(spec):
        for parameter in op.get("parameters", []):
            schema = parameter["schema"]
            seen.add(parameter["name"])
            assert "pattern" not in schema, (path, parameter)
            if parameter["name"] in ("client_id", "before"):
                assert schema["type"] == "string" and schema["format"] == "uuid", (path, parameter)
            if parameter["name"] == "fund_id":
                assert schema["type"] == "integer" and "minimum" not in schema and "maximum" not in schema
            if parameter["name"] == "Idempotency-Key":
                assert parameter["required"] is False and schema["type"] == "string"
                assert (schema["minLength"], schema["maxLength"]) == (1, fundcore.MAX_IDEMPOTENCY_KEY_CHARS)
            if parameter["name"] == "limit":
                assert (schema["minimum"], schema["maximum"]) == (1, fundcore.MAX_PAGE)
    assert seen == {"client_id", "before", "fund_id", "Idempotency-Key", "limit"}


def test_the_administration_bodies_state_types_and_fundcores_rules_only(spec):
    """A new fund's category from ``fundcore.CATEGORIES``, a channel from ``fundcore.CHANNELS``,
    a minimum a string or an integer as an amount is; a change's fields optional, never null,
    without a default, at least one of them."""
    schemas = spec["components"]["schemas"]
    create = schemas["CreateFundRequest"]
    assert set(create["required"]) == {"id", "name", "minimum", "category"}
    assert create["properties"]["id"]["type"] == "integer"
    assert create["properties"]["category"]["enum"] == list(fundcore.CATEGORIES)
    text, integer = create["properties"]["minimum"]["anyOf"]
    assert text == {"type": "string", "maxLength": MAX_TEXT_CHARS} and integer == {"type": "integer"}
    for name, fields in {
        "UpdateFundRequest": {"name", "minimum", "active"},
        "UpdateClientRequest": {"name", "email", "phone", "channel"},
    }.items():
        change = schemas[name]
        assert set(change["properties"]) == fields and "required" not in change, name
        assert change["additionalProperties"] is False and change["minProperties"] == 1
        for field, schema in change["properties"].items():
            assert "default" not in schema and "null" not in str(schema), (name, field)
    assert schemas["UpdateFundRequest"]["properties"]["active"]["type"] == "boolean"
    assert schemas["UpdateClientRequest"]["properties"]["channel"]["enum"] == list(fundcore.CHANNELS)
    audit_event = schemas["AuditEventOut"]["properties"]
    assert audit_event["action"]["enum"] == ["fund_created", "fund_updated", "client_updated"]
    assert audit_event["id"]["format"] == "uuid" and audit_event["at"]["format"] == "date-time"
    for page, item in (("ClientPage", "ClientOut"), ("AuditEventPage", "AuditEventOut")):
        assert schemas[page]["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{item}"}


def test_only_admins_are_documented_as_403(spec):
    forbidden = {(path, method) for path, method, op in operations(spec) if "403" in op["responses"]}
    assert forbidden == {
        ("/clients", "post"),
        ("/clients", "get"),
        ("/funds", "post"),
        ("/funds/{fund_id}", "patch"),
        ("/audit", "get"),
    }


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
    assert schemas["TransactionOut"]["properties"]["amount"]["pattern"] == MONEY_PATTERN
    assert MONEY_PATTERN.endswith(f"{{{fundcore.MINOR_DIGITS}}}$")


def test_links_drive_the_next_operations(spec):
    created = spec["paths"]["/clients"]["post"]["responses"]["201"]["links"]
    assert created["getClient"] == {"operationId": "getClient", "parameters": {"client_id": "$response.body#/id"}}
    subscribed = spec["paths"]["/clients/{client_id}/subscriptions"]["post"]["responses"]["201"]["links"]
    assert subscribed["cancelSubscription"]["parameters"] == {
        "client_id": "$response.body#/client_id",
        "fund_id": "$response.body#/fund_id",
    }
    created_fund = spec["paths"]["/funds"]["post"]["responses"]["201"]["links"]
    assert created_fund["updateFund"]["parameters"] == {"fund_id": "$response.body#/id"}
    assert created["updateClient"]["parameters"] == {"client_id": "$response.body#/id"}
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
