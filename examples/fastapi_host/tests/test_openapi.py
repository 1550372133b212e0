"""The OpenAPI document says what the server accepts and answers (schemathesis checks it against
the running host in test_schemathesis.py; test_document_rules.py checks its rules against the
engine; this reads the document itself). Every number and name in its rules is ``fundcore``'s,
and building it runs no operation of the serving process's engine (nothing in ``/metrics``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from conftest import ADMIN, http_call, register, wait_until
from prometheus_client.parser import text_string_to_metric_families

import fundcore
from fundcore_host.errors import HOST_STATUS
from fundcore_host.models import MAX_TEXT_CHARS, MONEY_PATTERN
from fundcore_host.openapi import UNKNOWN_CLIENT_ID

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
    ("/funds/{fund_id}", "get"): "getFund",
    ("/funds/{fund_id}", "patch"): "updateFund",
    ("/audit", "get"): "listAuditEvents",
    ("/clients/{client_id}/statement", "get"): "getStatement",
    ("/outbox", "get"): "getOutboxState",
    ("/outbox/failed", "get"): "listFailedNotifications",
    ("/outbox/retry", "post"): "retryFailedNotifications",
    ("/ledger/check", "get"): "checkLedger",
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


def test_error_examples_are_the_engines_own_messages(app_factory):
    """In both locales: the examples of 404, 409 and 422 are what an engine answers."""
    for locale in ("es", "en"):
        spec = app_factory(locale=locale).get("/openapi.json").json()
        responses = spec["paths"]["/clients/{client_id}/subscriptions"]["post"]["responses"]
        shown = {status: responses[str(status)]["content"]["application/json"]["example"] for status in (404, 409, 422)}
        refused = {}
        with fundcore.Engine(locale=locale) as engine:
            client = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
            engine.subscribe(client.id, 1, "80000")
            with pytest.raises(fundcore.NotFoundError) as refused[404]:
                engine.client(UNKNOWN_CLIENT_ID)
            with pytest.raises(fundcore.InsufficientBalanceError) as refused[409]:
                engine.subscribe(client.id, 4, "450000")
            with pytest.raises(fundcore.ValidationError) as refused[422]:
                engine.subscribe(client.id, 2, "100000")
        assert shown == {
            status: {"status": "error", "code": error.value.code, "message": error.value.message, "errors": None}
            for status, error in refused.items()
        }, locale
        assert [shown[status]["code"] for status in (404, 409, 422)] == [
            "CLIENT_NOT_FOUND",
            "INSUFFICIENT_BALANCE",
            "BELOW_MINIMUM",
        ]


def engine_series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the engine's own metrics (``fundcore_*``) in a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("fundcore_")
    }


def test_building_the_document_adds_nothing_to_the_metrics_of_a_fresh_host(live_host):
    """Four requests for the document on a fresh host (the first builds it and its examples)
    leave every series of the engine as it was: no operation, no refusal, no duration."""
    host = live_host(env={"FUNDCORE_DISPATCH_INTERVAL_MS": str(3_600_000)})

    def scrape() -> str:
        status, body, _ = http_call("GET", f"{host.url}/metrics")
        assert status == 200
        return body.decode() if isinstance(body, bytes) else str(body)

    # the dispatcher's first round (its next is an hour away) is counted before the first look
    wait_until(lambda: 'operation="dispatch_notifications"' in scrape())
    before = engine_series(scrape())
    for _ in range(4):
        status, document, _ = http_call("GET", f"{host.url}/openapi.json")
        assert status == 200 and "/funds/{fund_id}" in document["paths"]
    after = engine_series(scrape())
    assert after == before
    assert any(name == "fundcore_operations_total" for name, _ in before)  # the scrape shows the engine's series
    # ... and the document's examples are the engine's all the same
    example = document["paths"]["/clients/{client_id}/subscriptions"]["post"]["responses"]["409"]["content"]
    assert example["application/json"]["example"]["code"] == "INSUFFICIENT_BALANCE"


def properties(spec: dict[str, Any], model: str) -> dict[str, Any]:
    return spec["components"]["schemas"][model]["properties"]


def parameter(spec: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in spec["paths"][path][method].get("parameters", []) if p["name"] == name]
    return found["schema"]


def admitted(spec: dict[str, Any], model: str, value: object) -> bool:
    """Whether the document's schema of ``model`` admits ``value`` (read by jsonschema_rs, as
    schemathesis reads it)."""
    schema = {"$ref": f"#/components/schemas/{model}", "components": spec["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(value))


def test_every_rule_of_the_document_is_fundcores(spec):
    """Each number and name the document's rules state is ``fundcore``'s constant: seen through
    what the schemas admit at the edges (so a constant changed in Rust changes the document)."""
    register_body = properties(spec, "RegisterClientRequest")
    base = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}

    def client_admitted(**change: object) -> bool:
        return admitted(spec, "RegisterClientRequest", base | change)

    assert client_admitted()
    # names: 1 to MAX_NAME_CHARS characters once trimmed, not blank
    assert client_admitted(name="x" * fundcore.MAX_NAME_CHARS)
    assert not client_admitted(name="x" * (fundcore.MAX_NAME_CHARS + 1))
    assert client_admitted(name="  " + "x" * fundcore.MAX_NAME_CHARS + "\t")
    assert not client_admitted(name="") and not client_admitted(name=" \t\u3000")
    assert register_body["name"]["minLength"] == 1 and register_body["name"]["maxLength"] == MAX_TEXT_CHARS
    # emails: MAX_EMAIL_CHARS in all, MAX_EMAIL_LOCAL_BYTES before the @
    assert register_body["email"]["maxLength"] == fundcore.MAX_EMAIL_CHARS
    assert client_admitted(email="a" * fundcore.MAX_EMAIL_LOCAL_BYTES + "@example.com")
    assert not client_admitted(email="a" * (fundcore.MAX_EMAIL_LOCAL_BYTES + 1) + "@example.com")
    # phones: + and MIN_PHONE_DIGITS to MAX_PHONE_DIGITS digits
    for digits, admits in [
        (fundcore.MIN_PHONE_DIGITS - 1, False),
        (fundcore.MIN_PHONE_DIGITS, True),
        (fundcore.MAX_PHONE_DIGITS, True),
        (fundcore.MAX_PHONE_DIGITS + 1, False),
    ]:
        assert client_admitted(phone="+5" + "7" * (digits - 1)) == admits, digits
    assert (register_body["phone"]["minLength"], register_body["phone"]["maxLength"]) == (
        1 + fundcore.MIN_PHONE_DIGITS,
        1 + fundcore.MAX_PHONE_DIGITS,
    )
    # channels and categories: fundcore's names
    assert register_body["channel"]["enum"] == list(fundcore.CHANNELS)
    assert properties(spec, "UpdateClientRequest")["channel"]["enum"] == list(fundcore.CHANNELS)
    assert properties(spec, "CreateFundRequest")["category"]["enum"] == list(fundcore.CATEGORIES)
    assert properties(spec, "FundOut")["category"]["enum"] == list(fundcore.CATEGORIES)
    assert properties(spec, "ClientOut")["channel"]["enum"] == list(fundcore.CHANNELS)
    # amounts: more than zero, at most MAX_AMOUNT, MINOR_DIGITS decimals, as text or an integer
    smallest = Decimal(1).scaleb(-fundcore.MINOR_DIGITS)
    for model, field, base_body in [
        ("SubscribeRequest", "amount", {"fund_id": 1}),
        ("CreateFundRequest", "minimum", {"id": 6, "name": "F", "category": "FIC"}),
        ("UpdateFundRequest", "minimum", {}),
    ]:
        text, integer = properties(spec, model)[field]["anyOf"][:2]
        assert integer == {"type": "integer", "exclusiveMinimum": 0, "maximum": int(fundcore.MAX_AMOUNT)}, model
        for amount, admits in [
            (f"{fundcore.MAX_AMOUNT:f}", True),
            (f"{fundcore.MAX_AMOUNT + smallest:f}", False),
            (f"{smallest:f}", True),
            (f"{smallest / 10:f}", False),
            ("0", False),
            (int(fundcore.MAX_AMOUNT), True),
            (int(fundcore.MAX_AMOUNT) + 1, False),
            (0, False),
        ]:
            assert admitted(spec, model, base_body | {field: amount}) == admits, (model, amount)
        assert (
            text["type"] == "string"
            and f"at most {fundcore.MINOR_DIGITS} decimals" in (properties(spec, model)[field]["description"])
        )
    # idempotency keys: 1 to MAX_IDEMPOTENCY_KEY_CHARS characters
    for path, method in [
        ("/clients/{client_id}/subscriptions", "post"),
        ("/clients/{client_id}/subscriptions/{fund_id}", "delete"),
    ]:
        key = jsonschema_rs.validator_for(parameter(spec, path, method, "Idempotency-Key")).is_valid
        assert key("k") and key("k" * fundcore.MAX_IDEMPOTENCY_KEY_CHARS)
        assert not key("") and not key("k" * (fundcore.MAX_IDEMPOTENCY_KEY_CHARS + 1))
        assert not key(" k") and not key("k\x00")
    # page sizes: 1 to MAX_PAGE
    for path in ("/clients", "/audit", "/clients/{client_id}/transactions"):
        schema = parameter(spec, path, "get", "limit")
        assert (schema["minimum"], schema["maximum"]) == (1, fundcore.MAX_PAGE), path


def test_ids_and_cursors_are_any_integer_or_a_uuid(spec):
    """The engine reads any integer as a fund id (one that names no fund is 404) and any UUID
    as a client id or a cursor."""
    seen = set()
    for path, _method, op in operations(spec):
        for found in op.get("parameters", []):
            schema = found["schema"]
            seen.add(found["name"])
            if found["name"] in ("client_id", "before"):
                assert schema["type"] == "string" and schema["format"] == "uuid", (path, found)
            if found["name"] == "fund_id":
                assert schema["type"] == "integer" and "minimum" not in schema and "maximum" not in schema
            if found["name"] == "Idempotency-Key":
                assert found["required"] is False and schema["type"] == "string"
    assert {"client_id", "before", "fund_id", "Idempotency-Key", "limit"} <= seen
    assert properties(spec, "SubscribeRequest")["fund_id"] == {
        "type": "integer",
        "title": "Fund Id",
        "description": "fund id (see GET /funds)",
    }


def test_the_administration_bodies(spec):
    """A new fund's fields all required; a change's fields optional, never null, without a
    default, at least one of them."""
    schemas = spec["components"]["schemas"]
    create = schemas["CreateFundRequest"]
    assert set(create["required"]) == {"id", "name", "minimum", "category"}
    assert create["properties"]["id"]["type"] == "integer"
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
        ("/outbox", "get"),
        ("/outbox/failed", "get"),
        ("/outbox/retry", "post"),
        ("/ledger/check", "get"),
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
    assert created_fund["getFund"]["parameters"] == {"fund_id": "$response.body#/id"}
    listed = spec["paths"]["/funds"]["get"]["responses"]["200"]["links"]
    assert listed["getFund"]["parameters"] == {"fund_id": "$response.body#/0/id"}
    assert created["updateClient"]["parameters"] == {"client_id": "$response.body#/id"}
    known = set(OPERATIONS.values())
    for _, _, op in operations(spec):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in known


def test_what_the_document_admits_is_served(api, spec):
    """One request per shape the document admits, at its edges."""
    contact = {"name": " \u3000Ñandú 😀 ", "email": "a.b+c@Example-1.co", "phone": "+573001234567", "channel": "sms"}
    key = "~" + "k" * 198 + "!"
    assert admitted(spec, "RegisterClientRequest", contact)
    assert admitted(spec, "SubscribeRequest", {"fund_id": 3, "amount": "50000"})
    assert jsonschema_rs.validator_for(
        parameter(spec, "/clients/{client_id}/subscriptions", "post", "Idempotency-Key")
    ).is_valid(key)
    cid = register(api, **contact)["id"]
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
