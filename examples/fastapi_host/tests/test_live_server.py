"""The host under uvicorn on a loopback port, called over real HTTP from many threads at once:
engine calls run in parallel on the async engine's threads and the engine's guarantees hold through the API
(one active subscription per fund, no overdraft, idempotent retries)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import uvicorn
from conftest import ADMIN, LOOPBACK, RecordingNotifier, free_port, make_engine, make_settings

from fundcore_host.app import create_app


@pytest.fixture
def live():
    app = create_app(make_settings(), engine=make_engine(), notifier=RecordingNotifier())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://{LOOPBACK}:{port}"
    server.should_exit = True
    thread.join(20)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), exc.headers


def new_client(base: str) -> str:
    status, body, _ = http(
        "POST",
        f"{base}/clients",
        {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
        ADMIN,
    )
    assert status == 201
    return body["id"]


def test_concurrent_subscribes_to_one_fund(live):
    cid = new_client(live)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(
            pool.map(
                lambda _: http("POST", f"{live}/clients/{cid}/subscriptions", {"fund_id": 1}, ADMIN)[:2], range(24)
            )
        )
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1 and statuses.count(409) == 23
    assert {b["code"] for s, b in results if s == 409} == {"ALREADY_SUBSCRIBED"}
    assert http("GET", f"{live}/clients/{cid}", headers=ADMIN)[1]["balance"] == "425000.00"


def test_concurrent_subscribes_never_overdraw(live):
    cid = new_client(live)
    # 5 funds, 700.000 asked in total, 500.000 available: some must be refused, none overdrawn
    asks = [(1, "100000"), (2, "150000"), (3, "100000"), (4, "250000"), (5, "100000")] * 3
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(
                lambda a: http("POST", f"{live}/clients/{cid}/subscriptions", {"fund_id": a[0], "amount": a[1]}, ADMIN)[
                    :2
                ],
                asks,
            )
        )
    assert all(s in (201, 409) for s, _ in results), results
    assert {b["code"] for s, b in results if s == 409} <= {"ALREADY_SUBSCRIBED", "INSUFFICIENT_BALANCE"}
    balance = Decimal(http("GET", f"{live}/clients/{cid}", headers=ADMIN)[1]["balance"])
    subs = http("GET", f"{live}/clients/{cid}/subscriptions", headers=ADMIN)[1]
    assert balance >= 0
    assert balance + sum(Decimal(s["amount"]) for s in subs) == Decimal("500000")
    assert len(subs) == sum(1 for s, _ in results if s == 201) < 5


def test_concurrent_retries_with_one_idempotency_key(live):
    cid = new_client(live)
    headers = {**ADMIN, "Idempotency-Key": "retry-storm"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda _: http(
                    "POST", f"{live}/clients/{cid}/subscriptions", {"fund_id": 3, "amount": "60000"}, headers
                )[:2],
                range(16),
            )
        )
    assert {s for s, _ in results} == {201}
    assert len({b["id"] for _, b in results}) == 1
    assert http("GET", f"{live}/clients/{cid}", headers=ADMIN)[1]["balance"] == "440000.00"


def test_request_id_over_real_http(live):
    status, body, headers = http("GET", f"{live}/health", headers={"X-Request-ID": "live-1"})
    assert status == 200 and body == {"status": "ok"} and headers["X-Request-ID"] == "live-1"
    status, body, headers = http("GET", f"{live}/funds")
    assert status == 401 and body["code"] == "UNAUTHORIZED" and headers["X-Request-ID"]
