"""The browser-test fixtures themselves (conftest.py): axe-core finds violations where there are
some and none where there are none; the host really serves the browser; screenshots are PNG
files; the mail and SMS sinks' helpers wait for a message that the host sends after a client
signs up and subscribes through the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from .conftest import SCREENSHOTS, PagesHost, browser_errors, pdf_text, run_axe

#: A 1x1 PNG.
PIXEL = "data:image/png;base64," + (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

FLAWED = f"""<!doctype html>
<html><head><title>Flawed</title></head>
<body><main><h1>Subscribe</h1>
<input type="text" name="amount">
<img src="{PIXEL}">
</main></body></html>"""

CLEAN = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clean</title></head>
<body><main><h1>Subscribe</h1>
<form><label for="amount">Amount</label> <input id="amount" name="amount" type="text">
<button type="submit">Subscribe</button></form>
<img alt="Fund performance" src="{PIXEL}">
</main></body></html>"""


def test_axe_reports_the_violations_of_a_flawed_document(
    page: Page, check_accessibility: Callable[[Page, str], dict[str, Any]]
) -> None:
    page.set_content(FLAWED)
    found = {violation["id"] for violation in run_axe(page)["violations"]}
    assert {"label", "image-alt", "html-has-lang"} <= found, found
    with pytest.raises(pytest.fail.Exception) as failure:
        check_accessibility(page, "flawed")
    message = str(failure.value)
    assert "flawed: axe-core found" in message
    assert "- label (critical)" in message and "- image-alt (critical)" in message
    assert '<input type="text" name="amount">' in message  # the offending element's HTML


def test_axe_reports_nothing_on_a_clean_document(
    page: Page, check_accessibility: Callable[[Page, str], dict[str, Any]]
) -> None:
    page.set_content(CLEAN)
    results = check_accessibility(page, "clean")
    assert results["violations"] == []
    assert results["testEngine"]["name"] == "axe-core"


@pytest.mark.parametrize("page", ["es-CO", "en-US"], indirect=True)
def test_the_host_serves_the_browser_in_the_page_locale(page: Page, host: PagesHost) -> None:
    response = page.request.get("/health")  # relative: the context's base URL is the host's
    assert response.status == 200, response.text()
    navigation = page.goto("/health")
    assert navigation is not None and navigation.status == 200
    assert page.url == f"{host.url}/health"
    locale = page.evaluate("() => navigator.language")
    assert locale in ("es-CO", "en-US")
    assert navigation.request.all_headers()["accept-language"].startswith(locale)
    assert browser_errors(page) == []
    assert page.viewport_size == {"width": 1280, "height": 900}


def test_a_screenshot_is_a_png_file(page: Page, screenshot: Callable[[Page, str], Path]) -> None:
    page.set_content(CLEAN)
    path = screenshot(page, "infrastructure/clean")
    assert path == SCREENSHOTS / "infrastructure" / "clean.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_mail_helper_waits_for_a_subscription_email(host: PagesHost) -> None:
    address = "bea.pages@example.com"
    sign_up = {
        "name": "Bea",
        "email": address,
        "phone": "+573001234568",
        "channel": "email",
        "password": "a long passphrase",
    }
    status, body = host.api("POST", "/auth/sign-up", sign_up)
    assert status == 201, body
    status, signed_in = host.api("POST", "/auth/sign-in", {"email": address, "password": "a long passphrase"})
    assert status == 200, signed_in
    status, transaction = host.api(
        "POST",
        f"/clients/{signed_in['client_id']}/subscriptions",
        {"fund_id": 1, "amount": "80000"},
        token=signed_in["access_token"],
    )
    assert status == 201, transaction
    message = host.wait_for_mail(address)
    assert message["Subject"]
    assert host.mail(address) and host.mail("nobody@example.com") == []
    assert "80" in message.get_content()  # the amount is in the text


def test_the_sms_helper_waits_for_a_subscription_sms(host: PagesHost) -> None:
    phone = "+573005550001"
    sign_up = {"name": "Bob", "email": "bob.pages@example.com", "phone": phone, "channel": "sms"}
    status, body = host.api("POST", "/auth/sign-up", {**sign_up, "password": "another long passphrase"})
    assert status == 201, body
    status, signed_in = host.api(
        "POST", "/auth/sign-in", {"email": sign_up["email"], "password": "another long passphrase"}
    )
    assert status == 200, signed_in
    status, transaction = host.api(
        "POST", f"/clients/{signed_in['client_id']}/subscriptions", {"fund_id": 3}, token=signed_in["access_token"]
    )
    assert status == 201, transaction
    message = host.wait_for_sms(phone)
    assert message["to"] == phone and message["body"]
    assert host.sms("+570000000000") == []


def test_an_operator_can_sign_in(host: PagesHost, make_operator: Callable[[str, str], None]) -> None:
    make_operator("ops.pages@example.com", "an operator passphrase")
    status, signed_in = host.api(
        "POST", "/auth/sign-in", {"email": "ops.pages@example.com", "password": "an operator passphrase"}
    )
    assert status == 200, signed_in
    status, funds = host.api("GET", "/funds", token=signed_in["access_token"])
    assert status == 200 and funds, funds


def test_browser_errors_are_recorded(page: Page) -> None:
    page.set_content("<p>before</p>")
    assert browser_errors(page) == []
    page.set_content("<script>console.error('a stated error'); throw new Error('an uncaught one')</script>")
    errors = browser_errors(page)
    assert any("a stated error" in error for error in errors), errors
    assert any("an uncaught one" in error for error in errors), errors


def test_pdf_text_reads_a_pdf(page: Page) -> None:
    page.set_content('<html lang="es"><body><h1>Extracto de marzo</h1><p>Saldo: $ 420.000</p></body></html>')
    text = pdf_text(page.pdf())
    assert "Extracto de marzo" in text and "420.000" in text
