"""Administration through the REST API (docs/apis.md#rest): the fund catalogue, a client's
contact data and channel, the client list and the audit trail, against the real engine.

Role checks both ways for every new endpoint; the audit trail shows who changed what (the
token's subject, the request's ``X-Request-ID``, the fields before and after); and the rules of
administration hold through the API: a new minimum applies to later subscriptions while a
cancellation refunds the stored amount, an inactive fund refuses subscriptions and allows
cancellations, a taken fund id is ``FUND_ALREADY_EXISTS``, and notifications created after a
contact change go to the new channel and address (delivered for real, on loopback).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ADMIN, assert_envelope, bearer, make_engine, register, wait_until

import fundcore
from fundcore_host.notifiers import build_notifier

GHOST = "0190b2a4-7c1e-7000-8000-00000000beef"
NEW_FUND = {"id": 6, "name": "FIC_RENTA_FIJA", "minimum": "100000", "category": "FIC"}
#: The subject of the admin token of conftest (ADMIN): the actor of the admin's changes.
ADMIN_SUBJECT = "admin-1"


@pytest.fixture
def two_clients(api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    ana = register(api, "Ana")
    bob = register(api, "Bob", channel="sms", phone="+573005550000")
    return ana, bob


def admin_only_calls() -> list[tuple[str, str, Any]]:
    """(method, path, json) of every administration endpoint only an admin may use."""
    return [
        ("GET", "/clients", None),
        ("POST", "/funds", NEW_FUND),
        ("PATCH", "/funds/1", {"minimum": "90000"}),
        ("GET", "/audit", None),
    ]


def audit(api: Any, **params: Any) -> dict[str, Any]:
    r = api.get("/audit", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def balance(api: Any, client_id: str) -> str:
    value: str = api.get(f"/clients/{client_id}", headers=ADMIN).json()["balance"]
    return value


# ----------------------------------------------------------------------------- roles


def test_an_admin_uses_every_administration_endpoint(api, two_clients):
    ana, bob = two_clients
    listed = api.get("/clients", headers=ADMIN)
    assert listed.status_code == 200
    assert listed.json() == {"items": [bob, ana], "next": None}  # newest first

    created = api.post("/funds", json=NEW_FUND, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": 6,
        "name": "FIC_RENTA_FIJA",
        "minimum": "100000.00",
        "category": "FIC",
        "active": True,
    }
    assert api.get("/funds", headers=ADMIN).json()[-1] == created.json()

    changed = api.patch("/funds/6", json={"name": "FIC_RENTA_FIJA_II", "minimum": 120000}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json() == created.json() | {"name": "FIC_RENTA_FIJA_II", "minimum": "120000.00"}

    contact = api.patch(f"/clients/{bob['id']}", json={"channel": "email"}, headers=ADMIN)
    assert contact.status_code == 200, contact.text
    assert contact.json() == bob | {"channel": "email"}

    trail = audit(api)
    assert [e["action"] for e in trail["items"]] == ["client_updated", "fund_updated", "fund_created"]
    assert {e["actor"] for e in trail["items"]} == {ADMIN_SUBJECT}


def test_a_client_token_is_403_on_the_admin_endpoints_and_changes_nothing(api, two_clients):
    ana, _ = two_clients
    as_ana = bearer(ana["id"])
    funds_before = api.get("/funds", headers=ADMIN).json()
    for method, path, body in admin_only_calls():
        env = assert_envelope(api.request(method, path, json=body, headers=as_ana), 403, "FORBIDDEN")
        assert env["message"] == "No tiene permiso para realizar esta operación"
    assert api.get("/funds", headers=ADMIN).json() == funds_before
    assert audit(api) == {"items": [], "next": None}


def test_the_403_comes_before_the_request_is_validated(api, two_clients):
    ana, _ = two_clients
    as_ana = bearer(ana["id"]) | {"Content-Type": "application/json"}
    for raw in (b"{not json", b'{"id": 1.5}', b"[]", b'{"minimum": null}'):
        assert_envelope(api.post("/funds", content=raw, headers=as_ana), 403, "FORBIDDEN")
        assert_envelope(api.patch("/funds/1", content=raw, headers=as_ana), 403, "FORBIDDEN")
    assert_envelope(api.patch("/funds/abc", json={"active": False}, headers=as_ana), 403, "FORBIDDEN")
    for path in ("/clients", "/audit"):
        for params in ({"limit": "x"}, {"limit": 0}, {"before": "not-a-cursor"}):
            assert_envelope(api.get(path, params=params, headers=as_ana), 403, "FORBIDDEN")
    # the same requests from an admin are refused for what they are
    assert_envelope(api.patch("/funds/abc", json={"active": False}, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert_envelope(api.get("/audit", params={"limit": 0}, headers=ADMIN), 422, "VALIDATION_ERROR")


def test_without_a_valid_token_every_new_endpoint_is_401(api, two_clients):
    ana, _ = two_clients
    calls = [*admin_only_calls(), ("PATCH", f"/clients/{ana['id']}", {"channel": "sms"})]
    expired = bearer(ADMIN_SUBJECT, "admin", ttl_s=-3600)
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}, expired):
        for method, path, body in calls:
            r = api.request(method, path, json=body, headers=headers)
            assert_envelope(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"] == "Bearer"
    assert api.get(f"/clients/{ana['id']}", headers=ADMIN).json() == ana
    assert len(api.get("/funds", headers=ADMIN).json()) == 5
    assert audit(api)["items"] == []


def test_a_client_changes_its_own_contact_data_and_channel(api, two_clients):
    ana, _ = two_clients
    as_ana = bearer(ana["id"])
    changes = {"email": "ana.maria@example.com", "phone": "+573009998877", "channel": "sms"}
    r = api.patch(f"/clients/{ana['id']}", json=changes, headers=as_ana)
    assert r.status_code == 200, r.text
    assert r.json() == ana | changes
    assert api.get(f"/clients/{ana['id']}", headers=as_ana).json() == ana | changes
    # its own id in another spelling is still its own
    r = api.patch(f"/clients/{ana['id'].upper()}", json={"name": "Ana María"}, headers=as_ana)
    assert r.status_code == 200 and r.json()["name"] == "Ana María"
    (latest, first) = audit(api)["items"]
    assert (latest["actor"], first["actor"]) == (ana["id"], ana["id"])
    assert first["before"] == {"email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
    assert first["after"] == changes


@pytest.mark.parametrize("locale", ["es", "en"])
def test_another_clients_id_is_404_with_the_engines_message_and_changes_nothing(app_factory, locale):
    engine = make_engine(locale=locale)
    api = app_factory(eng=engine)
    ana = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
    bob = engine.register_client("Bob", "bob@example.com", "+573005550000", "sms")
    as_ana = bearer(ana.id)
    without_clients = make_engine(locale=locale)
    try:
        for path_id in (bob.id, bob.id.upper(), GHOST, "x"):
            for body in ({"channel": "email"}, {}, {"channel": None}, {"x": 1}):
                r = api.patch(f"/clients/{path_id}", json=body, headers=as_ana)
                env = assert_envelope(r, 404, "CLIENT_NOT_FOUND")
                with pytest.raises(fundcore.NotFoundError) as unknown:  # the answer for an id no client has
                    without_clients.client(path_id)
                assert env["message"] == unknown.value.message, path_id
                assert "Bob" not in r.text and "bob@example.com" not in r.text
    finally:
        without_clients.close()
    assert engine.client(bob.id) == bob
    assert engine.audit_events().items == []


# ----------------------------------------------------------------------------- the audit trail


def test_the_audit_trail_shows_who_changed_what(api, two_clients):
    ana, bob = two_clients
    created = api.post("/funds", json=NEW_FUND, headers=ADMIN | {"X-Request-ID": "ops-create-1"})
    assert created.status_code == 201
    raised = api.patch("/funds/6", json={"minimum": "150000.50"}, headers=ADMIN | {"X-Request-ID": "ops-raise-1"})
    assert raised.status_code == 200
    by_ana = api.patch(
        f"/clients/{ana['id']}", json={"channel": "sms"}, headers=bearer(ana["id"]) | {"X-Request-ID": "ana:1"}
    )
    assert by_ana.status_code == 200
    # no X-Request-ID: the one the host generated and echoed
    closed = api.patch("/funds/6", json={"active": False}, headers=ADMIN)
    assert closed.status_code == 200
    generated = closed.headers["x-request-id"]
    # a request id the host does not accept is replaced, and the replacement is recorded
    renamed = api.patch(f"/clients/{bob['id']}", json={"name": "Roberto"}, headers=ADMIN | {"X-Request-ID": "a b"})
    replaced = renamed.headers["x-request-id"]
    assert renamed.status_code == 200 and replaced != "a b"

    trail = audit(api)
    assert trail["next"] is None
    seen = [(e["action"], e["target"], e["actor"], e["request_id"], e["before"], e["after"]) for e in trail["items"]]
    assert seen == [
        ("client_updated", bob["id"], ADMIN_SUBJECT, replaced, {"name": "Bob"}, {"name": "Roberto"}),
        ("fund_updated", "6", ADMIN_SUBJECT, generated, {"active": True}, {"active": False}),
        ("client_updated", ana["id"], ana["id"], "ana:1", {"channel": "email"}, {"channel": "sms"}),
        ("fund_updated", "6", ADMIN_SUBJECT, "ops-raise-1", {"minimum": "100000.00"}, {"minimum": "150000.50"}),
        (
            "fund_created",
            "6",
            ADMIN_SUBJECT,
            "ops-create-1",
            {},
            {"name": "FIC_RENTA_FIJA", "minimum": "100000.00", "category": "FIC", "active": True},
        ),
    ]
    ids = [e["id"] for e in trail["items"]]
    assert ids == sorted(ids, reverse=True)  # UUIDv7, newest first
    assert all(e["at"].endswith("Z") for e in trail["items"])

    # a page at a time
    first = audit(api, limit=2)
    assert first["items"] == trail["items"][:2] and first["next"] == first["items"][-1]["id"]
    second = audit(api, limit=2, before=first["next"])
    assert second["items"] == trail["items"][2:4]
    last = audit(api, limit=2, before=second["next"])
    assert last == {"items": trail["items"][4:], "next": None}
    env = assert_envelope(api.get("/audit", params={"before": "x"}, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert list(env["errors"]) == ["before"]
    assert list(
        assert_envelope(api.get("/audit", params={"limit": 201}, headers=ADMIN), 422, "VALIDATION_ERROR")["errors"]
    ) == ["limit"]


def test_refused_changes_leave_no_audit_event(api, two_clients):
    ana, _ = two_clients
    assert_envelope(api.post("/funds", json=NEW_FUND | {"id": 1}, headers=ADMIN), 409, "FUND_ALREADY_EXISTS")
    assert_envelope(api.post("/funds", json=NEW_FUND | {"minimum": "0"}, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert_envelope(api.patch("/funds/99", json={"active": False}, headers=ADMIN), 404, "FUND_NOT_FOUND")
    assert_envelope(api.patch(f"/clients/{ana['id']}", json={"email": "nope"}, headers=ADMIN), 422, "VALIDATION_ERROR")
    assert_envelope(api.patch(f"/clients/{ana['id']}", json={}, headers=ADMIN), 422, "VALIDATION_ERROR")
    # a change to the values a record already has changes nothing and is not an event either
    assert api.patch(f"/clients/{ana['id']}", json={"channel": "email"}, headers=ADMIN).status_code == 200
    assert audit(api)["items"] == []


# ----------------------------------------------------------------------------- the rules


def test_a_new_minimum_applies_to_later_subscriptions_and_a_cancel_refunds_the_stored_amount(api, two_clients):
    ana, bob = two_clients
    before = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN)
    assert before.status_code == 201 and before.json()["amount"] == "75000.00"

    raised = api.patch("/funds/1", json={"minimum": "90000"}, headers=ADMIN)
    assert raised.status_code == 200 and raised.json()["minimum"] == "90000.00"
    assert api.get("/funds", headers=ADMIN).json()[0]["minimum"] == "90000.00"

    below = api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 1, "amount": "80000"}, headers=ADMIN)
    assert_envelope(below, 422, "BELOW_MINIMUM")
    after = api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN)
    assert after.status_code == 201 and after.json()["amount"] == "90000.00"

    # ana's subscription keeps its stored amount, and the cancellation refunds exactly that
    assert api.get(f"/clients/{ana['id']}/subscriptions", headers=ADMIN).json()[0]["amount"] == "75000.00"
    refund = api.delete(f"/clients/{ana['id']}/subscriptions/1", headers=ADMIN)
    assert refund.status_code == 200
    assert (refund.json()["amount"], refund.json()["balance_after"]) == ("75000.00", "500000.00")
    assert balance(api, ana["id"]) == "500000.00"
    assert balance(api, bob["id"]) == "410000.00"


def test_an_inactive_fund_refuses_subscriptions_and_allows_cancellations(api, two_clients):
    ana, bob = two_clients
    assert api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201

    closed = api.patch("/funds/3", json={"active": False}, headers=ADMIN)
    assert closed.status_code == 200 and closed.json()["active"] is False
    refused = api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN)
    env = assert_envelope(refused, 409, "FUND_INACTIVE")
    assert env["message"] == "El fondo DEUDAPRIVADA no recibe nuevas suscripciones"
    assert balance(api, bob["id"]) == "500000.00"
    assert api.get(f"/clients/{bob['id']}/transactions", headers=ADMIN).json()["items"] == []

    cancelled = api.delete(f"/clients/{ana['id']}/subscriptions/3", headers=ADMIN)
    assert cancelled.status_code == 200 and cancelled.json()["amount"] == "50000.00"
    assert balance(api, ana["id"]) == "500000.00"

    reopened = api.patch("/funds/3", json={"active": True}, headers=ADMIN)
    assert reopened.status_code == 200 and reopened.json()["active"] is True
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201


def test_a_taken_fund_id_is_fund_already_exists(api):
    catalogue = api.get("/funds", headers=ADMIN).json()
    env = assert_envelope(api.post("/funds", json=NEW_FUND | {"id": 1}, headers=ADMIN), 409, "FUND_ALREADY_EXISTS")
    assert env["message"] == "Ya existe el fondo 1"
    assert api.get("/funds", headers=ADMIN).json() == catalogue
    assert api.post("/funds", json=NEW_FUND, headers=ADMIN).status_code == 201
    again = api.post("/funds", json=NEW_FUND | {"name": "OTRO", "category": "FPV"}, headers=ADMIN)
    assert_envelope(again, 409, "FUND_ALREADY_EXISTS")
    assert api.get("/funds", headers=ADMIN).json()[-1]["name"] == "FIC_RENTA_FIJA"


def test_a_new_fund_takes_subscriptions_and_transactions_keep_their_fund_name(api, two_clients):
    ana, _ = two_clients
    assert api.post("/funds", json=NEW_FUND, headers=ADMIN).status_code == 201
    first = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 6}, headers=ADMIN)
    assert first.status_code == 201 and first.json()["fund_name"] == "FIC_RENTA_FIJA"
    assert api.patch("/funds/6", json={"name": "FIC_RENOMBRADO"}, headers=ADMIN).status_code == 200
    cancel = api.delete(f"/clients/{ana['id']}/subscriptions/6", headers=ADMIN)
    assert cancel.status_code == 200 and cancel.json()["fund_name"] == "FIC_RENOMBRADO"
    history = api.get(f"/clients/{ana['id']}/transactions", headers=ADMIN).json()["items"]
    assert [t["fund_name"] for t in history] == ["FIC_RENOMBRADO", "FIC_RENTA_FIJA"]


def test_notifications_after_a_contact_change_go_to_the_new_channel(app_factory, smtp_server, gateway):
    api = app_factory(notifier=build_notifier(smtp_server.settings(), gateway.settings()))
    ana = register(api, "Ana")
    as_ana = bearer(ana["id"])
    assert api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 3}, headers=as_ana).status_code == 201
    changed = api.patch(f"/clients/{ana['id']}", json={"channel": "sms", "phone": "+573009998877"}, headers=as_ana)
    assert changed.status_code == 200
    assert api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 5}, headers=as_ana).status_code == 201

    def delivered() -> list[dict[str, Any]] | None:
        notes: list[dict[str, Any]] = api.get(f"/clients/{ana['id']}/notifications", headers=as_ana).json()
        return notes if len(notes) == 2 and all(n["status"] == "delivered" for n in notes) else None

    later, earlier = wait_until(delivered)
    assert (earlier["channel"], earlier["recipient"]) == ("email", "ana@example.com")
    assert (later["channel"], later["recipient"]) == ("sms", "+573009998877")
    assert [m["to"] for m in smtp_server.messages] == ["ana@example.com"]
    assert [r["json"]["to"] for r in gateway.delivered] == ["+573009998877"]
    assert smtp_server.messages[0]["notification_id"] == earlier["id"]
    assert gateway.delivered[0]["json"]["id"] == later["id"]


# ----------------------------------------------------------------------------- pages and requests


def test_the_clients_page_newest_first(api):
    registered = [register(api, name, email=f"{name.lower()}@example.com") for name in ("Ana", "Bea", "Cruz")]
    everything = api.get("/clients", headers=ADMIN).json()
    assert everything == {"items": registered[::-1], "next": None}
    first = api.get("/clients", params={"limit": 2}, headers=ADMIN).json()
    assert first["items"] == registered[:0:-1] and first["next"] == registered[1]["id"]
    rest = api.get("/clients", params={"limit": 2, "before": first["next"]}, headers=ADMIN).json()
    assert rest == {"items": registered[:1], "next": None}
    for params, field in (({"limit": 0}, "limit"), ({"limit": "x"}, "limit"), ({"before": "x"}, "before")):
        env = assert_envelope(api.get("/clients", params=params, headers=ADMIN), 422, "VALIDATION_ERROR")
        assert list(env["errors"]) == [field]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/funds/1", {"name": None}, "name"),
        ("/funds/1", {"minimum": None}, "minimum"),
        ("/funds/1", {"active": None}, "active"),
        ("/funds/1", {"active": "false"}, "active"),
        ("/funds/1", {"active": 0}, "active"),
        ("/funds/1", {"minimum": 90000.5}, "minimum"),
        ("/funds/1", {"minimum": True}, "minimum"),
        ("/funds/1", {"category": "FIC"}, "category"),
        ("/funds/1", {"name": "x" * 1001}, "name"),
        ("/clients/{cid}", {"channel": None}, "channel"),
        ("/clients/{cid}", {"email": 5}, "email"),
        ("/clients/{cid}", {"balance": "900000"}, "balance"),
    ],
)
def test_a_change_is_type_checked_by_the_host(api, path, body, field):
    """Types and size caps only: ``null`` is not a value (a field left out keeps its value), a
    field a change does not have is refused, a JSON number with a fraction is not money."""
    cid = register(api)["id"]
    r = api.patch(path.format(cid=cid), json=body, headers=ADMIN)
    env = assert_envelope(r, 422, "VALIDATION_ERROR")
    assert list(env["errors"]) == [field] and env["message"] == "La solicitud no es válida"
    assert audit(api)["items"] == []


def test_an_empty_change_is_the_engines_validation_error(api):
    cid = register(api)["id"]
    for path in ("/funds/1", f"/clients/{cid}"):
        env = assert_envelope(api.patch(path, json={}, headers=ADMIN), 422, "VALIDATION_ERROR")
        assert env == {
            "status": "error",
            "code": "VALIDATION_ERROR",
            "message": "changes: " + env["errors"]["changes"],
            "errors": {"changes": env["errors"]["changes"]},
        }


@pytest.mark.parametrize("raw, amount", [(b"90000", "90000.00"), (b"9e4", "90000.00"), (b'"90000.5"', "90000.50")])
def test_a_minimum_is_money_as_in_a_subscription(api, raw, amount):
    r = api.post(
        "/funds",
        content=b'{"id": 6, "name": "FIC_NUEVO", "category": "FIC", "minimum": ' + raw + b"}",
        headers=ADMIN | {"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["minimum"] == amount


def test_duplicate_keys_in_a_change_are_refused(api):
    raw = b'{"minimum": "90000", "minimum": "1"}'
    r = api.patch("/funds/1", content=raw, headers=ADMIN | {"Content-Type": "application/json"})
    assert assert_envelope(r, 422, "VALIDATION_ERROR")["errors"] == {
        "minimum": "la clave aparece más de una vez en el cuerpo JSON"
    }
    assert api.get("/funds", headers=ADMIN).json()[0]["minimum"] == "75000.00"
