"""Every endpoint of the REST API (docs/apis.md#rest) with its success status and every error
code with its HTTP status, against the real engine (temporary store)."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from conftest import ADMIN, assert_envelope, register

import fundcore

MIN_FUND_1 = "75000.00"


def test_health_is_public_and_echoes_request_id(api):
    r = api.get("/health", headers={"X-Request-ID": "req-42.a:b"})
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-request-id"] == "req-42.a:b"


def test_ready_is_public_unlimited_and_reads_the_store(app_factory):
    """`GET /ready` (the readiness probe): no token, not counted by the rate limit, 200 while
    the store answers (its 503 while the database is down is test_store_outage.py's)."""
    api = app_factory(rate_limit_per_minute=1)
    for _ in range(3):
        r = api.get("/ready", headers={"X-Request-ID": "ready-1"})
        assert (r.status_code, r.json()) == (200, {"status": "ready"})
        assert r.headers["x-request-id"] == "ready-1"
    assert api.head("/ready").status_code == 200


@pytest.mark.parametrize(
    "error",
    [
        fundcore.OutcomeUnknownError("OUTCOME_UNKNOWN", "puede haberse guardado"),
        fundcore.StorageError("STORAGE_ERROR", "no se guardó ningún cambio"),
    ],
    ids=["outcome-unknown", "storage-error"],
)
def test_a_503_of_the_engine_says_when_to_retry(app_factory, error):
    """OUTCOME_UNKNOWN and STORAGE_ERROR are 503 in the envelope, with `Retry-After` (a client
    repeats the request, with the same Idempotency-Key, after it)."""
    api = app_factory()

    def store_failed() -> None:
        raise error

    api.app.add_api_route("/store-failed", store_failed)
    r = api.get("/store-failed")
    body = assert_envelope(r, 503, error.code)
    assert body["message"] == error.message and body["errors"] is None
    assert r.headers["retry-after"] == "1"
    # other engine errors say nothing of retrying
    assert "retry-after" not in api.get("/clients/0190b2a4-7c1e-7000-8000-000000000000", headers=ADMIN).headers


def test_request_id_is_generated_when_absent_or_unusable(api):
    first = api.get("/health").headers["x-request-id"]
    second = api.get("/health").headers["x-request-id"]
    assert first and second and first != second
    bad = api.get("/health", headers={"X-Request-ID": "has spaces and {braces}"}).headers["x-request-id"]
    assert bad != "has spaces and {braces}" and len(bad) == 32


def test_request_id_on_error_responses_and_in_log_lines(api, caplog):
    caplog.set_level(logging.INFO, logger="fundcore_host")
    r = api.get("/clients/whatever", headers={"X-Request-ID": "trace-me-1"})
    assert_envelope(r, 401, "UNAUTHORIZED")
    assert r.headers["x-request-id"] == "trace-me-1"
    access = [rec for rec in caplog.records if rec.name == "fundcore_host.access"]
    assert any(getattr(rec, "request_id", None) == "trace-me-1" and "401" in rec.getMessage() for rec in access)


def test_funds_catalogue(api):
    r = api.get("/funds", headers=ADMIN)
    assert r.status_code == 200
    funds = r.json()
    assert [f["id"] for f in funds] == [1, 2, 3, 4, 5]
    assert funds[0] == {
        "id": 1,
        "name": "FPV_BTG_PACTUAL_RECAUDADORA",
        "minimum": MIN_FUND_1,
        "category": "FPV",
        "active": True,
    }
    assert funds[3]["name"] == "FDO-ACCIONES" and funds[3]["minimum"] == "250000.00"


def test_register_and_read_client(api):
    c = register(api, "Ana")
    assert c["balance"] == "500000.00"
    assert c["channel"] == "email" and c["phone"] == "+573001234567"
    r = api.get(f"/clients/{c['id']}", headers=ADMIN)
    assert r.status_code == 200
    assert r.json() == c


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Ana", "email": "not-an-email", "phone": "+573001234567", "channel": "email"}, "email"),
        ({"name": "Ana", "email": "ana@example.com", "phone": "3001234567", "channel": "email"}, "phone"),
        ({"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "fax"}, "channel"),
        ({"name": "", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}, "name"),
    ],
)
def test_register_client_engine_validation(api, body, field):
    body_ = assert_envelope(api.post("/clients", json=body, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert list(body_["errors"]) == [field]
    assert body_["errors"][field] and not body_["errors"][field].startswith(f"{field}:")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "ana@example.com", "phone": "+573001234567", "channel": "email"}, "name"),
        ({"name": 5, "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}, "name"),
        ({"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email", "x": 1}, "x"),
    ],
)
def test_register_client_request_validation(api, body, field):
    envelope = assert_envelope(api.post("/clients", json=body, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert field in envelope["errors"]


def test_unknown_client_is_404(api):
    for path in ("", "/subscriptions", "/transactions", "/notifications"):
        assert_envelope(
            api.get(f"/clients/0190b2a4-7c1e-7000-8000-000000000000{path}", headers=ADMIN), 404, "CLIENT_NOT_FOUND"
        )
    assert_envelope(api.get("/clients/not-a-uuid", headers=ADMIN), 404, "CLIENT_NOT_FOUND")
    assert_envelope(
        api.post("/clients/0190b2a4-7c1e-7000-8000-000000000000/subscriptions", json={"fund_id": 1}, headers=ADMIN),
        404,
        "CLIENT_NOT_FOUND",
    )
    assert_envelope(
        api.delete("/clients/0190b2a4-7c1e-7000-8000-000000000000/subscriptions/1", headers=ADMIN),
        404,
        "CLIENT_NOT_FOUND",
    )


def test_subscribe_list_and_cancel(api):
    c = register(api)
    cid = c["id"]
    r = api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 1, "amount": "80000"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    tx = r.json()
    assert tx["kind"] == "subscription" and tx["amount"] == "80000.00" and tx["balance_after"] == "420000.00"
    assert tx["client_id"] == cid and tx["fund_id"] == 1 and tx["fund_name"] == "FPV_BTG_PACTUAL_RECAUDADORA"

    subs = api.get(f"/clients/{cid}/subscriptions", headers=ADMIN)
    assert subs.status_code == 200
    assert [(s["fund_id"], s["amount"], s["transaction_id"]) for s in subs.json()] == [(1, "80000.00", tx["id"])]
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "420000.00"

    r = api.delete(f"/clients/{cid}/subscriptions/1", headers=ADMIN)
    assert r.status_code == 200, r.text
    cancel = r.json()
    assert cancel["kind"] == "cancellation" and cancel["amount"] == "80000.00"  # the stored amount comes back
    assert cancel["balance_after"] == "500000.00"
    assert api.get(f"/clients/{cid}/subscriptions", headers=ADMIN).json() == []
    # after a cancellation the client may subscribe again
    assert api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201


@pytest.mark.parametrize(
    "amount, expected",
    [
        (None, MIN_FUND_1),
        ("90000.5", "90000.50"),
        ("90000.55", "90000.55"),
        (90000, "90000.00"),
        ("75000", "75000.00"),
        # what the engine reads as a number (the host passes the text on as sent)
        (" 80000 ", "80000.00"),
        ("080000", "80000.00"),
        ("+80000", "80000.00"),
        ("80000.", "80000.00"),
        ("80000.000", "80000.00"),
    ],
)
def test_subscribe_amount_forms(api, amount, expected):
    cid = register(api)["id"]
    body = {"fund_id": 1} if amount is None else {"fund_id": 1, "amount": amount}
    r = api.post(f"/clients/{cid}/subscriptions", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == expected
    assert Decimal(r.json()["balance_after"]) == Decimal("500000") - Decimal(expected)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"fund_id": 1, "amount": 80000.5}',
        b'{"fund_id": 1, "amount": 80000.25e1}',
        b'{"fund_id": 1, "amount": 1e400}',
        b'{"fund_id": 1, "amount": 1e-400}',
        b'{"fund_id": 1, "amount": NaN}',
        b'{"fund_id": 1, "amount": true}',
        b'{"fund_id": 1, "amount": "abc"}',
        b'{"fund_id": 1, "amount": "1e5"}',
        b'{"fund_id": 1, "amount": ["80000"]}',
    ],
)
def test_subscribe_refuses_floats_and_non_numbers(api, raw):
    cid = register(api)["id"]
    r = api.post(f"/clients/{cid}/subscriptions", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    body = assert_envelope(r, 422, "VALIDATION_ERROR")
    assert "amount" in body["errors"]
    # nothing changed
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "500000.00"
    assert api.get(f"/clients/{cid}/transactions", headers=ADMIN).json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    "raw, amount", [(b"80000.0", "80000.00"), (b"8e4", "80000.00"), (b"8.0E4", "80000.00"), (b"75000", "75000.00")]
)
def test_whole_json_numbers_are_integers(api, raw, amount):
    """JSON Schema counts 80000.0 and 8e4 as integers; the host reads them exactly, as decimals."""
    cid = register(api)["id"]
    r = api.post(
        f"/clients/{cid}/subscriptions",
        content=b'{"fund_id": 1.0, "amount": ' + raw + b"}",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == amount and r.json()["fund_id"] == 1


@pytest.mark.parametrize("amount", ["80000.123", "-80000", "0", "1000000000000.01", "", " ", "1_000", -80000])
def test_subscribe_engine_amount_validation(api, amount):
    cid = register(api)["id"]
    r = api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 1, "amount": amount}, headers=ADMIN)
    assert "amount" in assert_envelope(r, 422, "VALIDATION_ERROR")["errors"]


def test_subscribe_business_errors(api):
    cid = register(api)["id"]
    url = f"/clients/{cid}/subscriptions"
    body = assert_envelope(api.post(url, json={"fund_id": 2, "amount": "100000"}, headers=ADMIN), 422, "BELOW_MINIMUM")
    assert "FPV_BTG_PACTUAL_ECOPETROL" in body["message"]
    assert_envelope(api.post(url, json={"fund_id": 99}, headers=ADMIN), 404, "FUND_NOT_FOUND")
    assert api.post(url, json={"fund_id": 4, "amount": "300000"}, headers=ADMIN).status_code == 201
    assert_envelope(api.post(url, json={"fund_id": 4}, headers=ADMIN), 409, "ALREADY_SUBSCRIBED")
    body = assert_envelope(
        api.post(url, json={"fund_id": 2, "amount": "200001"}, headers=ADMIN), 409, "INSUFFICIENT_BALANCE"
    )
    assert body["message"] == "No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL"
    assert_envelope(api.delete(f"{url}/1", headers=ADMIN), 409, "NOT_SUBSCRIBED")
    assert_envelope(api.delete(f"{url}/99", headers=ADMIN), 404, "FUND_NOT_FOUND")
    # failures left no trace
    items = api.get(f"/clients/{cid}/transactions", headers=ADMIN).json()["items"]
    assert [t["fund_id"] for t in items] == [4]
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "200000.00"


def test_subscribe_request_validation(api):
    cid = register(api)["id"]
    url = f"/clients/{cid}/subscriptions"
    for body, field in [
        ({}, "fund_id"),
        ({"fund_id": "1"}, "fund_id"),
        ({"fund_id": 1.5}, "fund_id"),
        ({"fund_id": True}, "fund_id"),
        ({"fund_id": 1, "amount": 1.5}, "amount"),
        ({"fund_id": 1, "amount": "9" * 1001}, "amount"),
        ({"fund_id": 1, "extra": True}, "extra"),
    ]:
        env = assert_envelope(api.post(url, json=body, headers=ADMIN), 422, "VALIDATION_ERROR")
        assert field in env["errors"], (body, env)
    # any integer is a fund id to the engine: one that names no fund is its 404
    for fund_id in (-1, 0, 2**40, 10**30):
        env = assert_envelope(api.post(url, json={"fund_id": fund_id}, headers=ADMIN), 404, "FUND_NOT_FOUND")
        assert env["message"] == f"No existe el fondo {fund_id}"
        assert_envelope(api.delete(f"{url}/{fund_id}", headers=ADMIN), 404, "FUND_NOT_FOUND")
    env = assert_envelope(
        api.post(url, content=b"{not json", headers={**ADMIN, "Content-Type": "application/json"}),
        422,
        "VALIDATION_ERROR",
    )
    assert "body" in env["errors"]
    env = assert_envelope(api.post(url, json=[1, 2], headers=ADMIN), 422, "VALIDATION_ERROR")
    assert_envelope(api.delete(f"{url}/abc", headers=ADMIN), 422, "VALIDATION_ERROR")


def test_idempotency_key(api):
    cid = register(api)["id"]
    url = f"/clients/{cid}/subscriptions"
    key = {"Idempotency-Key": "order-7f3a"}
    first = api.post(url, json={"fund_id": 3, "amount": "60000"}, headers={**ADMIN, **key})
    again = api.post(url, json={"fund_id": 3, "amount": "60000"}, headers={**ADMIN, **key})
    assert first.status_code == 201 and again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["idempotency_key"] == "order-7f3a"
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "440000.00"
    assert len(api.get(f"/clients/{cid}/transactions", headers=ADMIN).json()["items"]) == 1
    assert_envelope(
        api.post(url, json={"fund_id": 3, "amount": "70000"}, headers={**ADMIN, **key}), 409, "IDEMPOTENCY_KEY_REUSED"
    )
    # cancel with a key, replayed
    ckey = {"Idempotency-Key": "cancel-1"}
    c1 = api.delete(f"{url}/3", headers={**ADMIN, **ckey})
    c2 = api.delete(f"{url}/3", headers={**ADMIN, **ckey})
    assert c1.status_code == 200 and c2.status_code == 200 and c1.json() == c2.json()
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "500000.00"
    assert_envelope(
        api.post(url, json={"fund_id": 3}, headers={**ADMIN, "Idempotency-Key": "x" * 201}), 422, "VALIDATION_ERROR"
    )


def test_transactions_pagination(api):
    cid = register(api)["id"]
    url = f"/clients/{cid}/subscriptions"
    for fund in (1, 3, 5):
        assert api.post(url, json={"fund_id": fund}, headers=ADMIN).status_code == 201
    assert api.delete(f"{url}/3", headers=ADMIN).status_code == 200
    full = api.get(f"/clients/{cid}/transactions", headers=ADMIN)
    assert full.status_code == 200
    everything = full.json()
    assert everything["next"] is None
    assert [(t["kind"], t["fund_id"]) for t in everything["items"]] == [
        ("cancellation", 3),
        ("subscription", 5),
        ("subscription", 3),
        ("subscription", 1),
    ]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"before": cursor} if cursor else {})
        page = api.get(f"/clients/{cid}/transactions", params=params, headers=ADMIN).json()
        seen += page["items"]
        pages += 1
        if page["next"] is None:
            break
        assert page["next"] == page["items"][-1]["id"] and len(page["items"]) == 3
        cursor = page["next"]
        assert pages < 10
    assert seen == everything["items"] and pages == 2
    # the engine's page: an exactly full last page has no `next` (no empty page to fetch after it)
    exact = api.get(f"/clients/{cid}/transactions", params={"limit": 4}, headers=ADMIN).json()
    assert exact == {"items": everything["items"], "next": None}
    first = api.get(f"/clients/{cid}/transactions", params={"limit": 2}, headers=ADMIN).json()
    last = api.get(f"/clients/{cid}/transactions", params={"limit": 2, "before": first["next"]}, headers=ADMIN).json()
    assert first["next"] == first["items"][-1]["id"] and len(last["items"]) == 2 and last["next"] is None
    for bad in ("0", "201", "x", "-1", "5\n", " 5"):
        env = assert_envelope(
            api.get(f"/clients/{cid}/transactions", params={"limit": bad}, headers=ADMIN), 422, "VALIDATION_ERROR"
        )
        assert "limit" in env["errors"]
    assert api.get(f"/clients/{cid}/transactions", params={"limit": 200}, headers=ADMIN).status_code == 200
    assert api.get(f"/clients/{cid}/transactions", params={"limit": 1}, headers=ADMIN).json()["next"] is not None
    bad_cursor = api.get(f"/clients/{cid}/transactions", params={"before": "not-a-cursor"}, headers=ADMIN)
    body = assert_envelope(bad_cursor, 422, "VALIDATION_ERROR")
    assert body["errors"] and "before" in body["errors"], body


def test_notifications_listed(api):
    c = register(api, "Bea", channel="sms", phone="+573009876543")
    assert api.post(f"/clients/{c['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    r = api.get(f"/clients/{c['id']}/notifications", headers=ADMIN)
    assert r.status_code == 200
    (n,) = r.json()
    assert n["channel"] == "sms" and n["recipient"] == "+573009876543" and n["client_id"] == c["id"]
    assert n["status"] in ("pending", "delivered") and len(n["body"]) <= 160
    assert "DEUDAPRIVADA" in n["body"]


def test_unknown_route_and_method(api):
    assert_envelope(api.get("/nope"), 404, "NOT_FOUND")
    assert_envelope(api.get("/clients/x/unknown", headers=ADMIN), 404, "NOT_FOUND")
    assert_envelope(api.put("/funds", headers=ADMIN), 405, "METHOD_NOT_ALLOWED")
    assert_envelope(api.delete("/clients/x", headers=ADMIN), 405, "METHOD_NOT_ALLOWED")


def test_payload_too_large(api):
    cid = register(api)["id"]
    big = b'{"fund_id": 1, "pad": "' + b"x" * 70_000 + b'"}'
    assert_envelope(
        api.post(f"/clients/{cid}/subscriptions", content=big, headers={**ADMIN, "Content-Type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )

    def chunks():
        yield b'{"fund_id": 1, "pad": "'
        for _ in range(80):
            yield b"x" * 1000
        yield b'"}'

    assert_envelope(
        api.post(
            f"/clients/{cid}/subscriptions", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "500000.00"


def test_rate_limit_429(app_factory):
    api = app_factory(rate_limit_per_minute=3)
    for _ in range(3):
        assert api.get("/funds", headers=ADMIN).status_code == 200
    r = api.get("/funds", headers=ADMIN)
    assert_envelope(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1
    # unauthenticated callers are limited too (by address)
    statuses = [api.get("/funds").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]


def test_unexpected_error_is_500_envelope(app_factory):
    api = app_factory()

    def boom() -> None:
        raise RuntimeError("bug in a host route")

    api.app.add_api_route("/boom", boom)  # a host failure, not an engine one
    r = api.get("/boom", headers={"X-Request-ID": "r-500"})
    body = assert_envelope(r, 500, "INTERNAL_ERROR")
    assert "bug" not in body["message"]
    assert r.headers["x-request-id"] == "r-500"


def test_openapi_docs(api):
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/health",
        "/funds",
        "/funds/{fund_id}",
        "/audit",
        "/clients",
        "/clients/{client_id}",
        "/clients/{client_id}/subscriptions",
        "/clients/{client_id}/subscriptions/{fund_id}",
        "/clients/{client_id}/transactions",
        "/clients/{client_id}/notifications",
    }
    post = paths["/clients/{client_id}/subscriptions"]["post"]
    assert set(post["responses"]) >= {"201", "401", "404", "409", "422"}
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_fund_inactive_is_409(app_factory):
    from conftest import make_engine

    import fundcore

    eng = make_engine(
        funds=[
            fundcore.Fund(1, "FPV_BTG_PACTUAL_RECAUDADORA", Decimal("75000"), "FPV"),
            fundcore.Fund(9, "FONDO_CERRADO", Decimal("1000"), "FIC", active=False),
        ]
    )
    api = app_factory(eng=eng)
    assert [(f["id"], f["active"]) for f in api.get("/funds", headers=ADMIN).json()] == [(1, True), (9, False)]
    cid = register(api)["id"]
    assert_envelope(api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 9}, headers=ADMIN), 409, "FUND_INACTIVE")
    assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "500000.00"


def test_storage_error_is_503_envelope():
    """The engine's STORAGE_ERROR (a real fundcore.StorageError) renders as 503 in the envelope."""
    import json as json_

    import fundcore
    from fundcore_host.errors import engine_error_response

    exc = fundcore.StorageError("STORAGE_ERROR", "el almacenamiento falló", None, None, 503)
    assert isinstance(exc, fundcore.FundcoreError)
    response = engine_error_response(exc)
    assert response.status_code == 503 == fundcore.ERROR_CODES["STORAGE_ERROR"]
    assert json_.loads(response.body) == {
        "status": "error",
        "code": "STORAGE_ERROR",
        "message": "el almacenamiento falló",
        "errors": None,
    }


def test_store_on_disk_survives_restart(tmp_path):
    """Without an injected engine the app opens fundcore.Engine(FUNDCORE_DATA) at startup and
    closes it at shutdown; a second start sees the same data."""
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from fundcore_host.app import create_app

    settings = make_settings(data_path=str(tmp_path / "store"))
    with TestClient(create_app(settings)) as api:
        cid = register(api)["id"]
        assert api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201
    with TestClient(create_app(settings)) as api:
        assert api.get(f"/clients/{cid}", headers=ADMIN).json()["balance"] == "425000.00"
        assert len(api.get(f"/clients/{cid}/transactions", headers=ADMIN).json()["items"]) == 1


@pytest.mark.parametrize(
    "raw, key",
    [
        (b'{"fund_id": 3, "fund_id": 1}', "fund_id"),
        (b'{"fund_id": 1, "amount": "90000", "amount": "75000"}', "amount"),
        (b'{"fund_id": 1, "x": {"a": 1, "a": 2}}', "a"),
    ],
)
def test_duplicate_json_keys_are_refused(api, raw, key):
    """The last value does not silently win: `{"fund_id":3,"fund_id":1}` subscribed to fund 1."""
    cid = register(api)["id"]
    r = api.post(f"/clients/{cid}/subscriptions", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    body = assert_envelope(r, 422, "VALIDATION_ERROR")
    assert body["errors"] == {key: "la clave aparece más de una vez en el cuerpo JSON"}
    assert api.get(f"/clients/{cid}/subscriptions", headers=ADMIN).json() == []


def test_duplicate_keys_when_registering(api):
    raw = b'{"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email", "name": "Eve"}'
    r = api.post("/clients", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    body = assert_envelope(r, 422, "VALIDATION_ERROR")
    assert body["errors"] == {"name": "la clave aparece más de una vez en el cuerpo JSON"}


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("PUT", "/clients/{cid}/subscriptions", "GET, HEAD, POST"),
        ("PATCH", "/clients/{cid}/subscriptions", "GET, HEAD, POST"),
        ("GET", "/clients/{cid}/subscriptions/1", "DELETE"),
        ("DELETE", "/clients/{cid}", "GET, HEAD, PATCH"),
        ("PUT", "/clients", "GET, HEAD, POST"),
        ("DELETE", "/clients", "GET, HEAD, POST"),
        ("POST", "/health", "GET, HEAD"),
        ("PUT", "/funds", "GET, HEAD, POST"),
        ("PUT", "/funds/1", "GET, HEAD, PATCH"),
        ("DELETE", "/funds/1", "GET, HEAD, PATCH"),
        ("POST", "/audit", "GET, HEAD"),
    ],
)
def test_405_allow_lists_every_method_of_the_path(api, method, path, allow):
    """RFC 9110 §15.5.6: `Allow` names all methods of the target resource, not the first route's."""
    cid = register(api)["id"]
    r = api.request(method, path.format(cid=cid), headers=ADMIN)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    if method != "HEAD":
        assert_envelope(r, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/funds",
        "/funds/1",
        "/clients/{cid}",
        "/clients/{cid}/subscriptions",
        "/clients/{cid}/transactions",
        "/clients/{cid}/notifications",
        "/clients",
        "/audit",
        "/openapi.json",
    ],
)
def test_head_on_every_get_route(api, path):
    cid = register(api)["id"]
    url = path.format(cid=cid)
    got = api.get(url, headers=ADMIN)
    head = api.head(url, headers=ADMIN | {"X-Request-ID": "head-1"})
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["x-request-id"] == "head-1"


def test_head_is_authenticated_like_get(api):
    r = api.head("/funds")
    assert r.status_code == 401 and r.content == b"" and r.headers["www-authenticate"] == "Bearer"


def test_request_headers_over_16_kib_are_431(api):
    from fundcore_host.middleware import MAX_HEADER_BYTES

    assert MAX_HEADER_BYTES == 16 * 1024
    # 8 headers of 2,000 bytes: 16,000 bytes plus the test client's own, over the cap
    big = {f"X-Pad-{i}": "p" * 2000 for i in range(8)}
    r = api.get("/funds", headers=ADMIN | big | {"X-Request-ID": "big-1"})
    assert_envelope(r, 431, "REQUEST_HEADERS_TOO_LARGE")
    assert r.headers["x-request-id"] == "big-1"
    # one large Authorization header: refused before the token is even looked at
    r = api.get("/funds", headers={"Authorization": "Bearer " + "a" * 20_000})
    assert_envelope(r, 431, "REQUEST_HEADERS_TOO_LARGE")
    # just under the cap is served
    ok = {f"X-Pad-{i}": "p" * 1800 for i in range(8)}
    assert api.get("/funds", headers=ADMIN | ok).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "A\\ud800", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}',
        b'{"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email", "\\udfff": 1}',
    ],
)
def test_a_lone_surrogate_escape_is_invalid_json_not_a_500(api, raw):
    r = api.post("/clients", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    body = assert_envelope(r, 422, "VALIDATION_ERROR")
    assert body["errors"] == {"body": "El cuerpo de la solicitud no es JSON válido"}


def test_a_paired_surrogate_escape_is_text(api):
    raw = '{"name": "Ana \\ud83d\\ude00", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}'
    r = api.post("/clients", content=raw.encode(), headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["name"] == "Ana 😀"


@pytest.mark.parametrize("field", ["name", "email", "phone", "channel"])
def test_the_host_refuses_only_types_and_sizes(api, field):
    """A text over the host's size cap, or not a string, is the host's 422; anything else goes to
    the engine (here the engine accepts what a pattern of the host's own used to refuse)."""
    from fundcore_host.models import MAX_TEXT_CHARS

    good = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
    for value in ("x" * (MAX_TEXT_CHARS + 1), 5, None):
        env = assert_envelope(api.post("/clients", json=good | {field: value}, headers=ADMIN), 422, "VALIDATION_ERROR")
        assert list(env["errors"]) == [field] and env["message"] == "La solicitud no es válida"
    accepted = {"name": "\tAna\n", "email": " ana@EXAMPLE.com ", "phone": " +573001234567 ", "channel": "SMS"}
    r = api.post("/clients", json=good | {field: accepted[field]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert (
        r.json()[field]
        == {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "sms"}[field]
    )
