"""Notifications through real servers on loopback: an aiosmtpd SMTP server and an http.server SMS
gateway. What arrives (recipient, subject, body) is what the outbox holds, exactly once; an SMTP
outage never loses the subscription and the entry is delivered once the server is back."""

from __future__ import annotations

import ssl
import subprocess
from types import SimpleNamespace

import pytest
from conftest import ADMIN, SmtpServer, assert_envelope, free_port, register, wait_until

import fundcore
from fundcore_host.config import SmsSettings
from fundcore_host.notifiers import EmailNotifier, LogNotifier, RoutingNotifier, SmsGatewayNotifier, build_notifier


def note(**overrides):
    """A plain object carrying the notification attributes the notifiers read."""
    values = dict(
        id="0190b2a4-7c1e-7000-8000-0000000000aa",
        client_id="c-1",
        transaction_id="t-1",
        channel="email",
        recipient="ana@example.com",
        subject="Suscripción confirmada",
        body="Se vinculó al fondo DEUDAPRIVADA.",
        status="pending",
        attempts=0,
        last_error=None,
        created_at="2026-01-01T00:00:00Z",
        delivered_at=None,
    )
    values.update(overrides)
    return SimpleNamespace(**values)


# ----------------------------------------------------------------------------- notifiers alone


def test_email_notifier_delivers_over_smtp(smtp_server):
    EmailNotifier(smtp_server.settings()).send(note())
    (msg,) = smtp_server.messages
    assert msg["rcpt_tos"] == ["ana@example.com"] and msg["to"] == "ana@example.com"
    assert msg["mail_from"] == "fondos@example.com"
    assert msg["subject"] == "Suscripción confirmada"
    assert msg["body"] == "Se vinculó al fondo DEUDAPRIVADA."
    assert msg["notification_id"] == "0190b2a4-7c1e-7000-8000-0000000000aa"


def test_email_notifier_classifies_failures(smtp_server):
    notifier = EmailNotifier(smtp_server.settings())
    smtp_server.recorder.refuse.add("gone@example.com")
    with pytest.raises(fundcore.PermanentDeliveryError):
        notifier.send(note(recipient="gone@example.com"))
    smtp_server.stop()
    with pytest.raises(Exception) as info:  # connection refused: retryable
        notifier.send(note())
    assert not isinstance(info.value, fundcore.PermanentDeliveryError)
    assert smtp_server.messages == []


def _self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_email_notifier_starttls_with_login(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        logins.append(ok)
        return AuthResult(success=ok)

    server = SmtpServer(
        free_port(), tls_context=server_ctx, require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    server.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        settings = server.settings(tls="starttls", user="mailer", password="s3cret")
        EmailNotifier(settings, ssl_context=client_ctx).send(note())
        assert logins == [True]
        assert [m["subject"] for m in server.messages] == ["Suscripción confirmada"]
        # wrong password: retryable (a server configuration problem, not the message's)
        bad = server.settings(tls="starttls", user="mailer", password="nope")
        with pytest.raises(Exception) as info:
            EmailNotifier(bad, ssl_context=client_ctx).send(note())
        assert not isinstance(info.value, fundcore.PermanentDeliveryError)
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_email_notifier_implicit_tls(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = SmtpServer(free_port(), ssl_context=server_ctx)
    server.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        EmailNotifier(server.settings(tls="ssl"), ssl_context=client_ctx).send(note())
        assert [(m["to"], m["subject"]) for m in server.messages] == [("ana@example.com", "Suscripción confirmada")]
        # a client that does not trust the certificate does not send (retryable: fix the config)
        with pytest.raises(Exception) as info:
            EmailNotifier(server.settings(tls="ssl")).send(note())
        assert not isinstance(info.value, fundcore.PermanentDeliveryError)
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_sms_notifier_posts_json(gateway):
    SmsGatewayNotifier(gateway.settings()).send(note(channel="sms", recipient="+573001234567", body="Hola"))
    (req,) = gateway.requests
    assert req["path"] == "/sms"
    assert req["json"] == {
        "id": "0190b2a4-7c1e-7000-8000-0000000000aa",
        "to": "+573001234567",
        "body": "Hola",
        "client_id": "c-1",
        "transaction_id": "t-1",
    }
    assert req["headers"]["authorization"] == "Bearer gw-token"
    assert req["headers"]["idempotency-key"] == "0190b2a4-7c1e-7000-8000-0000000000aa"
    assert req["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("status, permanent", [(400, True), (404, True), (429, False), (500, False), (503, False)])
def test_sms_notifier_classifies_statuses(gateway, status, permanent):
    gateway.status_queue.append(status)
    with pytest.raises(Exception) as info:
        SmsGatewayNotifier(gateway.settings()).send(note(channel="sms"))
    assert isinstance(info.value, fundcore.PermanentDeliveryError) is permanent


def test_sms_notifier_unreachable_is_retryable():
    url = f"http://127.0.0.1:{free_port()}/sms"
    with pytest.raises(Exception) as info:
        SmsGatewayNotifier(SmsSettings(gateway_url=url, timeout_s=2)).send(note(channel="sms"))
    assert not isinstance(info.value, fundcore.PermanentDeliveryError)


def test_routing_by_channel(smtp_server, gateway):
    router = build_notifier(smtp_server.settings(), gateway.settings())
    router.send(note(channel="sms", recipient="+573001234567"))
    router.send(note(channel="email"))
    assert [r["json"]["to"] for r in gateway.requests] == ["+573001234567"]
    assert [m["to"] for m in smtp_server.messages] == ["ana@example.com"]
    with pytest.raises(fundcore.PermanentDeliveryError):
        router.send(note(channel="pigeon"))
    local = build_notifier(smtp_server.settings(host=None), SmsSettings())
    assert isinstance(local, RoutingNotifier)
    assert all(isinstance(n, LogNotifier) for n in local.routes.values())


# ----------------------------------------------------------------------------- end to end


def _notifications(api, cid):
    r = api.get(f"/clients/{cid}/notifications", headers=ADMIN)
    assert r.status_code == 200
    return r.json()


def test_email_and_sms_arrive_exactly_once(app_factory, smtp_server, gateway):
    api = app_factory(notifier=build_notifier(smtp_server.settings(), gateway.settings()))
    ana = register(api, "Ana")
    bob = register(api, "Bob", channel="sms", phone="+573005550000")
    r = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 1, "amount": "80000"}, headers=ADMIN)
    assert r.status_code == 201
    tx = r.json()
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201

    wait_until(
        lambda: all(n["status"] == "delivered" for n in _notifications(api, ana["id"]) + _notifications(api, bob["id"]))
    )
    (n_ana,) = _notifications(api, ana["id"])
    (n_bob,) = _notifications(api, bob["id"])
    assert n_ana["transaction_id"] == tx["id"] and n_ana["attempts"] == 1 and n_ana["delivered_at"]

    (mail,) = smtp_server.messages
    assert mail["rcpt_tos"] == ["ana@example.com"]
    assert mail["subject"] == n_ana["subject"] and mail["body"] == n_ana["body"].rstrip("\n")
    assert "FPV_BTG_PACTUAL_RECAUDADORA" in mail["subject"] + mail["body"]
    assert tx["id"] in mail["body"]
    assert mail["notification_id"] == n_ana["id"]

    (sms,) = gateway.requests
    assert sms["json"]["to"] == "+573005550000" and sms["json"]["body"] == n_bob["body"]
    assert sms["json"]["id"] == n_bob["id"] and len(sms["json"]["body"]) <= 160

    # the cancellation is notified too (default on), again exactly once
    assert api.delete(f"/clients/{ana['id']}/subscriptions/1", headers=ADMIN).status_code == 200
    wait_until(
        lambda: (
            len(smtp_server.messages) == 2 and all(n["status"] == "delivered" for n in _notifications(api, ana["id"]))
        )
    )
    assert len(gateway.requests) == 1
    # a few more rounds deliver nothing new
    dispatcher = api.app.state.host.dispatcher
    rounds = dispatcher.rounds
    wait_until(lambda: dispatcher.rounds >= rounds + 3)
    assert len(smtp_server.messages) == 2 and len(gateway.requests) == 1


def test_permanent_failures_fail_at_once(app_factory, smtp_server, gateway):
    api = app_factory(notifier=build_notifier(smtp_server.settings(), gateway.settings()))
    smtp_server.recorder.refuse.add("gone@example.com")
    gone = register(api, "Gone", email="gone@example.com")
    bob = register(api, "Bob", channel="sms", phone="+573005550000")
    gateway.status_queue.append(400)
    assert api.post(f"/clients/{gone['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    wait_until(
        lambda: (
            _notifications(api, gone["id"])[0]["status"] == "failed"
            and _notifications(api, bob["id"])[0]["status"] == "failed"
        )
    )
    for cid in (gone["id"], bob["id"]):
        (n,) = _notifications(api, cid)
        assert n["attempts"] == 1 and n["last_error"]
    assert smtp_server.messages == [] and len(gateway.requests) == 1
    # the subscriptions stand
    assert api.get(f"/clients/{gone['id']}", headers=ADMIN).json()["balance"] == "450000.00"


def test_gateway_5xx_is_retried_then_delivered_once(app_factory, gateway):
    api = app_factory(notifier=build_notifier(SmtpServer(free_port()).settings(host=None), gateway.settings()))
    bob = register(api, "Bob", channel="sms", phone="+573005550000")
    gateway.status_queue.extend([503, 500])
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    wait_until(lambda: _notifications(api, bob["id"])[0]["status"] == "delivered")
    (n,) = _notifications(api, bob["id"])
    assert n["attempts"] == 3
    assert [r["status"] for r in gateway.requests] == [503, 500, 200]
    assert len(gateway.delivered) == 1 and gateway.delivered[0]["json"]["id"] == n["id"]


def test_smtp_outage_keeps_subscription_and_delivers_once_when_back(app_factory, smtp_server, gateway):
    api = app_factory(notifier=build_notifier(smtp_server.settings(), gateway.settings()))
    ana = register(api, "Ana")
    smtp_server.stop()  # the mail server goes down

    r = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 4, "amount": "250000"}, headers=ADMIN)
    assert r.status_code == 201, r.text  # committed whatever the notifier does
    tx = r.json()
    assert api.get(f"/clients/{ana['id']}", headers=ADMIN).json()["balance"] == "250000.00"
    assert [s["fund_id"] for s in api.get(f"/clients/{ana['id']}/subscriptions", headers=ADMIN).json()] == [4]

    # the entry is retried: attempts grow, it stays pending, the error is recorded
    wait_until(lambda: _notifications(api, ana["id"])[0]["attempts"] >= 3)
    (n,) = _notifications(api, ana["id"])
    assert n["status"] == "pending" and n["last_error"] and n["delivered_at"] is None
    assert n["transaction_id"] == tx["id"]

    smtp_server.start()  # back, same port
    wait_until(lambda: _notifications(api, ana["id"])[0]["status"] == "delivered", timeout_s=20)
    (n,) = _notifications(api, ana["id"])
    (mail,) = smtp_server.messages
    assert mail["rcpt_tos"] == ["ana@example.com"] and mail["subject"] == n["subject"]
    assert mail["notification_id"] == n["id"]
    dispatcher = api.app.state.host.dispatcher
    rounds = dispatcher.rounds
    wait_until(lambda: dispatcher.rounds >= rounds + 3)
    assert len(smtp_server.messages) == 1  # exactly once
    assert_envelope(
        api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 4}, headers=ADMIN), 409, "ALREADY_SUBSCRIBED"
    )
