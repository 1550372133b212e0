"""`make demo` delivers for real: started as the demo target starts it, the host sends email to
a local SMTP server and SMS to a local gateway, which keep each message as a file; a
notification reads `delivered` only once one of them accepted it."""

from __future__ import annotations

import email
import json
from email import policy

from conftest import ADMIN, LOOPBACK, free_port, http_call, wait_until


def test_the_demo_delivers_email_and_sms_into_files(live_host, tmp_path):
    data = tmp_path / "data"
    host = live_host(
        module="fundcore_host.demo",
        args=["--data", str(data), "--smtp-port", str(free_port()), "--sms-port", str(free_port())],
        env={"FUNDCORE_DATA": None, "FUNDCORE_JWT_SECRET": None, "FUNDCORE_RATE_LIMIT_PER_MINUTE": None},
        data_dir=tmp_path,
    )
    banner = host.log()
    assert f"{data}/mail/" in banner and f"{data}/sms/" in banner and "export TOKEN=" in banner
    assert f"Metrics (Prometheus text format, no token): {host.url}/metrics\n" in banner
    assert http_call("GET", f"{host.url}/metrics")[0] == 200
    token = banner.split("export TOKEN=", 1)[1].split()[0]
    admin = {"Authorization": f"Bearer {token}"}  # the demo's own token (local secret)
    assert http_call("GET", f"{host.url}/funds", headers=ADMIN)[0] == 401  # not the suite's secret
    assert (data / "fundcore").is_dir()  # the store where the banner says

    status, ana, _ = http_call(
        "POST",
        f"{host.url}/clients",
        {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
        admin,
    )
    assert status == 201
    status, bob, _ = http_call(
        "POST",
        f"{host.url}/clients",
        {"name": "Bob", "email": "bob@example.com", "phone": "+573005550000", "channel": "sms"},
        admin,
    )
    assert status == 201
    assert (
        http_call("POST", f"{host.url}/clients/{ana['id']}/subscriptions", {"fund_id": 1, "amount": "80000"}, admin)[0]
        == 201
    )
    assert http_call("POST", f"{host.url}/clients/{bob['id']}/subscriptions", {"fund_id": 3}, admin)[0] == 201

    def notifications(cid):
        return http_call("GET", f"{host.url}/clients/{cid}/notifications", headers=admin)[1]

    wait_until(
        lambda: (
            notifications(ana["id"])[0]["status"] == "delivered"
            and notifications(bob["id"])[0]["status"] == "delivered"
        ),
        timeout_s=30,
    )
    (mail_note,), (sms_note,) = notifications(ana["id"]), notifications(bob["id"])

    (mail_file,) = list((data / "mail").glob("*.eml"))
    assert mail_note["id"] in mail_file.name
    message = email.message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    assert message["To"] == "ana@example.com" and message["Subject"] == mail_note["subject"]
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == mail_note["body"].rstrip("\n")

    (sms_file,) = list((data / "sms").glob("*.json"))
    received = json.loads(sms_file.read_text(encoding="utf-8"))["message"]
    assert received["to"] == "+573005550000" and received["body"] == sms_note["body"]
    assert received["id"] == sms_note["id"] in sms_file.name
    assert "not sent" not in host.log()  # no stand-in wrote a notification to the log instead


def test_a_notification_is_not_delivered_while_the_gateway_is_down(live_host, tmp_path):
    """The demo's notifiers are the real ones: with no gateway listening the entry stays pending."""
    host = live_host(
        env={
            "FUNDCORE_SMS_GATEWAY_URL": f"http://{LOOPBACK}:{free_port()}/sms",
            "FUNDCORE_DISPATCH_INTERVAL_MS": "50",
            "FUNDCORE_RETRY_BASE_DELAY_MS": "20",
            "FUNDCORE_RETRY_MAX_DELAY_MS": "50",
        }
    )
    status, bob, _ = http_call(
        "POST",
        f"{host.url}/clients",
        {"name": "Bob", "email": "bob@example.com", "phone": "+573005550000", "channel": "sms"},
        ADMIN,
    )
    assert status == 201
    assert http_call("POST", f"{host.url}/clients/{bob['id']}/subscriptions", {"fund_id": 3}, ADMIN)[0] == 201
    wait_until(
        lambda: http_call("GET", f"{host.url}/clients/{bob['id']}/notifications", headers=ADMIN)[1][0]["attempts"] >= 2
    )
    (note,) = http_call("GET", f"{host.url}/clients/{bob['id']}/notifications", headers=ADMIN)[1]
    assert note["status"] == "pending" and "unreachable" in note["last_error"]
