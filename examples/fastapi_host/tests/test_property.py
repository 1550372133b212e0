"""Property-style test: random request sequences against the app (real engine, real auth).

Whatever the sequence, the host never answers 5xx, every error is exactly the envelope, refused
calls change nothing, and the money invariants of docs/invariants.md hold through the REST API:
balance >= 0 and balance + Σ active subscription amounts = 500000.00 for every client.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from conftest import ADMIN, RecordingNotifier, bearer, make_engine, make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from fundcore_host.app import create_app

INITIAL = Decimal("500000.00")
GHOST = "0190b2a4-7c1e-7000-8000-00000000dead"

amounts = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "50000",
            "75000.00",
            "80000.5",
            "100000",
            "125000.10",
            "250000",
            "400000",
            "499999.99",
            "0",
            "-1",
            "0.001",
            "1e5",
            "abc",
            "",
            " 1",
            "1000000000000.01",
            "99999999999999999999",
        ]
    ),
    st.decimals(min_value=0, max_value=600000, places=2, allow_nan=False).map(str),
    st.integers(min_value=-10, max_value=10**16),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
fund_ids = st.one_of(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=-3, max_value=2**33),
    st.sampled_from(["1", 1.5, None, True]),
)
keys = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3", "", "x" * 201, "a b"]))
auth_kinds = st.sampled_from(["admin", "self", "self", "self", "other", "none", "garbage"])
limits = st.one_of(st.none(), st.integers(min_value=-2, max_value=205), st.sampled_from(["x", "1.5", ""]))


class RestMachine(RuleBasedStateMachine):
    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.app = create_app(make_settings(), engine=make_engine(), notifier=RecordingNotifier())
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.http.__enter__()
        self.known: list[str] = []
        self.tx_ids: list[str] = []

    def teardown(self) -> None:
        self.http.__exit__(None, None, None)

    # ------------------------------------------------------------------ helpers

    def headers_for(self, kind: str, cid: str) -> dict[str, str]:
        if kind == "admin":
            return dict(ADMIN)
        if kind == "self":
            return bearer(cid)
        if kind == "other":
            others = [c for c in self.known if c != cid]
            return bearer(others[0] if others else GHOST)
        if kind == "garbage":
            return {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad"}
        return {}

    def check(self, response: Any) -> Any:
        assert response.status_code < 500, response.text
        assert response.headers.get("x-request-id")
        body = response.json()
        if response.status_code >= 400:
            assert set(body) == {"status", "code", "message", "errors"}, body
            assert body["status"] == "error" and isinstance(body["code"], str) and body["code"].isupper()
            assert isinstance(body["message"], str) and body["message"]
            assert body["errors"] is None or (
                isinstance(body["errors"], dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in body["errors"].items())
            )
        return body

    def snapshot(self, cid: str) -> tuple[Any, Any, Any]:
        client = self.http.get(f"/clients/{cid}", headers=ADMIN).json()
        subs = self.http.get(f"/clients/{cid}/subscriptions", headers=ADMIN).json()
        txs = self.http.get(f"/clients/{cid}/transactions", params={"limit": 200}, headers=ADMIN).json()
        return client, subs, txs

    def refused_unless_allowed(self, kind: str, cid: str, response: Any, before: Any) -> None:
        if kind in ("none", "garbage"):
            assert response.status_code == 401
        elif kind == "other" and cid in self.known:
            assert response.status_code == 404
        if response.status_code >= 400:
            assert self.snapshot(cid) == before  # a refused or failed call leaves no trace

    # ------------------------------------------------------------------ rules

    @initialize(target=clients)
    def first_client(self) -> str:
        r = self.http.post(
            "/clients",
            json={"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
            headers=ADMIN,
        )
        assert r.status_code == 201
        self.known.append(r.json()["id"])
        return r.json()["id"]

    @rule(
        target=clients,
        name=st.sampled_from(["Bea", "", "x" * 101, "Çé"]),
        email=st.sampled_from(["bea@example.com", "nope", ""]),
        phone=st.sampled_from(["+573001234567", "123", "+57 300"]),
        channel=st.sampled_from(["email", "sms", "fax", 1]),
        kind=auth_kinds,
    )
    def register(self, name, email, phone, channel, kind):
        headers = ADMIN if kind in ("admin", "self") else self.headers_for(kind, GHOST)
        r = self.http.post(
            "/clients", json={"name": name, "email": email, "phone": phone, "channel": channel}, headers=headers
        )
        body = self.check(r)
        if kind not in ("admin", "self"):
            assert r.status_code in (401, 403)
        if r.status_code == 201:
            assert body["balance"] == "500000.00"
            self.known.append(body["id"])
            return body["id"]
        return GHOST

    @rule(cid=clients, fund=fund_ids, amount=amounts, key=keys, kind=auth_kinds, omit_amount=st.booleans())
    def subscribe(self, cid, fund, amount, key, kind, omit_amount):
        before = self.snapshot(cid) if cid in self.known else None
        body: dict[str, Any] = {"fund_id": fund}
        if not omit_amount:
            body["amount"] = amount
        headers = self.headers_for(kind, cid) | ({"Idempotency-Key": key} if key is not None else {})
        content = json.dumps(body, allow_nan=True)
        r = self.http.post(
            f"/clients/{cid}/subscriptions", content=content, headers=headers | {"Content-Type": "application/json"}
        )
        out = self.check(r)
        fractional = isinstance(amount, float) and not (math.isfinite(amount) and amount == int(amount))
        if fractional and not omit_amount and r.status_code != 401 and kind != "other":
            assert r.status_code == 422 and out["code"] == "VALIDATION_ERROR"
        if before is not None:
            self.refused_unless_allowed(kind, cid, r, before)
        if r.status_code == 201:
            assert out["kind"] == "subscription" and out["client_id"] == cid
            self.tx_ids.append(out["id"])

    @rule(cid=clients, fund=fund_ids, key=keys, kind=auth_kinds)
    def cancel(self, cid, fund, key, kind):
        before = self.snapshot(cid) if cid in self.known else None
        headers = self.headers_for(kind, cid) | ({"Idempotency-Key": key} if key is not None else {})
        r = self.http.delete(f"/clients/{cid}/subscriptions/{fund}", headers=headers)
        out = self.check(r)
        if before is not None:
            self.refused_unless_allowed(kind, cid, r, before)
        if r.status_code == 200:
            assert out["kind"] == "cancellation"
            self.tx_ids.append(out["id"])

    @rule(
        cid=clients,
        limit=limits,
        use_cursor=st.booleans(),
        kind=auth_kinds,
        what=st.sampled_from(["", "/subscriptions", "/transactions", "/notifications"]),
    )
    def read(self, cid, limit, use_cursor, kind, what):
        params: dict[str, Any] = {}
        if what == "/transactions":
            if limit is not None:
                params["limit"] = limit
            if use_cursor and self.tx_ids:
                params["before"] = self.tx_ids[len(self.tx_ids) // 2]
        r = self.http.get(f"/clients/{cid}{what}", params=params, headers=self.headers_for(kind, cid))
        out = self.check(r)
        if kind in ("none", "garbage"):
            assert r.status_code == 401
        if kind == "other" and cid in self.known:
            assert r.status_code == 404
        if r.status_code == 200 and what == "/transactions":
            assert set(out) == {"items", "next"}
            assert all(t["client_id"] == cid for t in out["items"])

    @rule(
        path=st.sampled_from(["/funds", "/health", "/clients", "/clients/x/y", "/docs", "/nothing"]),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
        raw=st.one_of(
            st.binary(max_size=64), st.text(max_size=64).map(str.encode), st.just(b'{"fund_id": 1, "amount": 1.5}')
        ),
        kind=auth_kinds,
    )
    def noise(self, path, method, raw, kind):
        cid = self.known[0]
        r = self.http.request(
            method, path, content=raw, headers=self.headers_for(kind, cid) | {"Content-Type": "application/json"}
        )
        assert r.status_code < 500
        if path != "/docs" or r.status_code >= 400:
            self.check(r)

    @rule(cid=clients, raw=st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)))
    def garbage_subscribe(self, cid, raw):
        before = self.snapshot(cid) if cid in self.known else None
        r = self.http.post(
            f"/clients/{cid}/subscriptions", content=raw, headers=ADMIN | {"Content-Type": "application/json"}
        )
        self.check(r)
        if before is not None and r.status_code >= 400:
            assert self.snapshot(cid) == before

    # ------------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved(self) -> None:
        for cid in self.known:
            client, subs, _ = self.snapshot(cid)
            balance = Decimal(client["balance"])
            assert balance >= 0
            assert balance + sum(Decimal(s["amount"]) for s in subs) == INITIAL
            assert len({s["fund_id"] for s in subs}) == len(subs)


TestRestApi = RestMachine.TestCase
TestRestApi.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
