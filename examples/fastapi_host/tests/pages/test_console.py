"""The operator console (``/ops``) in Chromium, driven only by roles and accessible names, in
Spanish and English: an operator signs in and lands on it; a fund created, its minimum changed,
closed and reopened, each said in a status and listed in the audit trail with the operator as
actor; the clients page by page; the outbox's counts, a failed delivery and its retry; the
ledger check; a client refused. Every page is checked by axe-core in both languages, with no
error in the browser, and photographed (``build/screenshots``)."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from .conftest import PagesHost, browser_errors, wait_for
from .flows import (
    LANG,
    api_client,
    api_subscribe,
    body_cells,
    checked,
    locale_of,
    sign_in,
    unexpected_errors,
    words,
)

LOCALES = ["es-CO", "en-US"]
both_languages = pytest.mark.parametrize("page", LOCALES, indirect=True)
OPERATOR_PASSWORD = "an operator passphrase for the console"
#: Rows per console page (pages/console.py CONSOLE_PAGE).
CONSOLE_PAGE = 25

_numbers = itertools.count(1)


def subject_of(token: str) -> str:
    """The ``sub`` of a host token (its payload, not verified: the host made it)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


class Operator:
    """An operator (admin) account made by the host's accounts command, with a token for the API."""

    def __init__(self, host: PagesHost, email: str) -> None:
        host.create_operator(email, OPERATOR_PASSWORD)
        status, signed_in = host.api("POST", "/auth/sign-in", {"email": email, "password": OPERATOR_PASSWORD})
        assert status == 200 and signed_in["role"] == "admin", signed_in
        self.email, self.token, self.subject = email, signed_in["access_token"], subject_of(signed_in["access_token"])


@pytest.fixture(scope="module")
def operator(host: PagesHost) -> Operator:
    """One operator account for the module (made with the accounts command, as the docs say)."""
    return Operator(host, "operator@example.com")


def operator_sign_in(page: Page, operator: Operator, locale: str) -> None:
    sign_in(page, operator.email, locale, OPERATOR_PASSWORD)


def go(page: Page, locale: str, key: str) -> None:
    """Follows the console's main navigation link ``key`` and waits for its heading."""
    w = words(locale)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w[key], exact=True).click()
    expect(page.get_by_role("heading", name=w[key], level=1)).to_be_visible()
    expect(page.get_by_role("link", name=w[key], exact=True)).to_have_attribute("aria-current", "page")


# ----------------------------------------------------------------------------- catalogue, audit


@both_languages
def test_an_operator_runs_a_fund_through_its_changes_and_the_audit_trail_names_the_operator(
    page: Page, host: PagesHost, operator: Operator
) -> None:
    """Signing in lands an operator on /ops; a fund is created, its minimum changed, then closed
    and reopened: each change is said in a status naming the fund and shows in its table row,
    and the audit trail lists the four changes, newest first, with the operator as actor."""
    locale = locale_of(page)
    w = words(locale)
    fund_id = 10 + next(_numbers)
    name = f"FONDO_PAGINAS_{fund_id}"
    operator_sign_in(page, operator, locale)
    expect(page).to_have_url(f"{host.url}/ops")
    expect(page.get_by_role("heading", name=w["catalogue"], level=1)).to_be_visible()

    create = page.get_by_role("form", name=w["create_fund"])
    create.get_by_role("textbox", name=w["id"]).fill(str(fund_id))
    create.get_by_role("textbox", name=w["name"]).fill(name)
    create.get_by_role("textbox", name=w["minimum_cop"]).fill("60000")
    create.get_by_role("combobox", name=w["category"]).select_option("FIC")
    create.get_by_role("button", name=w["create_fund"]).click()
    expect(page.get_by_role("status")).to_have_text(w["fund_created"].format(fund=name))
    funds = page.get_by_role("table", name=w["funds"])
    row = funds.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))
    expect(row.get_by_role("cell").nth(0)).to_have_text(str(fund_id))
    expect(row.get_by_role("cell").nth(1)).to_have_text("FIC")
    expect(row.get_by_role("cell").nth(2)).to_have_text("COP $60.000")
    expect(row.get_by_role("cell").nth(3)).to_have_text(w["active"])
    checked(page, "catalogue", locale)

    row.get_by_role("textbox", name=w["new_minimum"].format(fund=name)).fill("80000")
    row.get_by_role("button", name=w["save_minimum"].format(fund=name)).click()
    updated = w["fund_updated"].format(fund=name)
    expect(page.get_by_role("status")).to_have_text(f"{updated} {w['minimum_now'].format(minimum='COP $80.000')}")
    expect(row.get_by_role("cell").nth(2)).to_have_text("COP $80.000")

    row.get_by_role("button", name=w["close_fund"].format(fund=name)).click()
    expect(page.get_by_role("status")).to_have_text(f"{updated} {w['now_closed']}")
    expect(row.get_by_role("cell").nth(3)).to_have_text(w["closed"])
    row.get_by_role("button", name=w["reopen_fund"].format(fund=name)).click()
    expect(page.get_by_role("status")).to_have_text(f"{updated} {w['now_open']}")
    expect(row.get_by_role("cell").nth(3)).to_have_text(w["active"])
    status, fund = host.api("GET", f"/funds/{fund_id}", token=operator.token)
    assert status == 200 and fund["active"] is True and fund["category"] == "FIC", fund

    go(page, locale, "audit")
    audit = page.get_by_role("table", name=w["audit"])
    rows = audit.get_by_role("row").filter(has=page.get_by_role("cell", name=str(fund_id), exact=True))
    expect(rows).to_have_count(4)
    events = [body_cells(rows.nth(i), 6)[0] for i in range(4)]  # actor, action, target, before, after, request
    assert [event[0] for event in events] == [operator.subject] * 4
    assert [event[1] for event in events] == [w["action_fund_updated"]] * 3 + [w["action_fund_created"]]
    assert "active: true" in events[0][4] and "active: false" in events[0][3]
    assert "active: false" in events[1][4]
    assert "minimum: COP $80.000" in events[2][4] and "minimum: COP $60.000" in events[2][3]
    assert f"name: {name}" in events[3][4] and "category: FIC" in events[3][4]
    assert all(event[5] for event in events)  # each with its request's id
    checked(page, "audit", locale)


def test_a_refused_minimum_shows_the_engine_message_next_to_its_field(page: Page, operator: Operator) -> None:
    """A minimum that is not an amount: the row's field marked invalid with the engine's words
    read with it, the fund unchanged."""
    locale = "es-CO"
    w = words(locale)
    operator_sign_in(page, operator, locale)
    funds = page.get_by_role("table", name=w["funds"])
    row = funds.get_by_role("row").filter(has=page.get_by_role("rowheader", name="DEUDAPRIVADA", exact=True))
    field = row.get_by_role("textbox", name=w["new_minimum"].format(fund="DEUDAPRIVADA"))
    field.fill("-5")
    row.get_by_role("button", name=w["save_minimum"].format(fund="DEUDAPRIVADA")).click()
    field = page.get_by_role("textbox", name=w["new_minimum"].format(fund="DEUDAPRIVADA"))
    expect(field).to_have_attribute("aria-invalid", "true")
    alert = page.get_by_role("table", name=w["funds"]).get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(field).to_have_accessible_description(alert.inner_text())
    expect(page.get_by_role("status")).to_have_count(0)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="DEUDAPRIVADA", exact=True))
    expect(row.get_by_role("cell").nth(2)).to_have_text("COP $50.000")
    assert len(browser_errors(page)) == 1 and unexpected_errors(page, 422) == [], browser_errors(page)


# ----------------------------------------------------------------------------- clients


@pytest.fixture(scope="module")
def many_clients(host: PagesHost) -> int:
    """More clients than one console page holds (30 sign-ups through the JSON API)."""
    for n in range(CONSOLE_PAGE + 5):
        api_client(host, f"Cliente Consola {n}", f"console{n}@example.com", f"+5730088{n:05d}")
    return CONSOLE_PAGE + 5


@both_languages
def test_the_clients_pages_show_every_client_once(
    page: Page, host: PagesHost, operator: Operator, many_clients: int
) -> None:
    """The clients page by page ("next page" links, 25 a page): every client of the engine's
    list exactly once, in its order, with email, channel and balance."""
    locale = locale_of(page)
    w = words(locale)
    expected, before = [], None
    while True:
        query = f"?limit=100&before={before}" if before else "?limit=100"
        status, found = host.api("GET", f"/clients{query}", token=operator.token)
        assert status == 200, found
        expected += found["items"]
        before = found.get("next")
        if not before:
            break
    assert len(expected) >= many_clients
    operator_sign_in(page, operator, locale)
    go(page, locale, "clients")
    checked(page, "clients", locale)
    pager = page.get_by_role("navigation", name=w["clients_pages"])
    expect(pager.get_by_role("link", name=w["first_page"])).to_have_count(0)
    seen: list[list[str]] = []
    pages = 1
    while True:
        table = page.get_by_role("table", name=w["clients"])
        names = table.get_by_role("rowheader").all_inner_texts()
        cells = body_cells(table, 6)  # email, phone, channel, balance, created, id
        assert len(cells) <= CONSOLE_PAGE
        seen += [[name, *row] for name, row in zip(names, cells, strict=True)]
        if not pager.get_by_role("link", name=w["next_page"]).count():
            break
        pager.get_by_role("link", name=w["next_page"]).click()
        expect(pager.get_by_role("link", name=w["first_page"])).to_be_visible()
        pages += 1
    assert pages == -(-len(expected) // CONSOLE_PAGE) >= 2
    assert [row[6] for row in seen] == [client["id"] for client in expected]
    assert [(row[0], row[1], row[3]) for row in seen] == [
        (client["name"], client["email"], w["channel_" + client["channel"]]) for client in expected
    ]
    assert {row[4] for row in seen} == {"COP $500.000"}
    assert browser_errors(page) == []


# ----------------------------------------------------------------------------- outbox, ledger


def _count(page: Page, locale: str, key: str) -> str:
    w = words(locale)
    table = page.get_by_role("table", name=w["outbox_state"])
    row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=w[key], exact=True))
    return row.get_by_role("cell").inner_text()


@both_languages
def test_the_outbox_counts_are_the_engine_counts(page: Page, host: PagesHost, operator: Operator) -> None:
    """The outbox page's counts (pending, delivered, failed) are those of ``GET /outbox``."""
    locale = locale_of(page)
    operator_sign_in(page, operator, locale)
    go(page, locale, "outbox")
    status, state = host.api("GET", "/outbox", token=operator.token)
    assert status == 200, state
    assert [_count(page, locale, key) for key in ("backlog", "delivered", "failed")] == [
        str(state["pending"]),
        str(state["delivered"]),
        str(state["failed"]),
    ]
    checked(page, "outbox", locale)


@pytest.fixture
def failing_mail(host: PagesHost) -> Iterator[Callable[[], None]]:
    """The demo's mail server refuses every message while its folder is a file: it cannot keep
    the message, aiosmtpd answers 500 and the host's notifier fails the entry for good. The
    fixture's call (and its end) puts the folder back."""
    aside = host.mail_dir.with_name("mail.aside")
    host.mail_dir.rename(aside)
    host.mail_dir.write_text("a file where the mail folder was: every delivery fails\n")

    def restore() -> None:
        if host.mail_dir.is_file():
            host.mail_dir.unlink()
            aside.rename(host.mail_dir)

    try:
        yield restore
    finally:
        restore()


def test_a_failed_delivery_is_listed_and_retried(
    page: Page, host: PagesHost, operator: Operator, failing_mail: Callable[[], None]
) -> None:
    """A notification the mail server refused is counted as failed and listed with its client,
    recipient, attempts and the server's error; once the server keeps mail again, "retry the
    failed ones" says one went back to the queue and the message arrives; nothing is left failed."""
    locale = "es-CO"
    w = words(locale)
    client = api_client(host, "Cliente Falla", "failing@example.com", "+573004440000")
    api_subscribe(host, client, 3)
    wait_for(
        lambda: host.api("GET", "/outbox", token=operator.token)[1]["failed"] >= 1, "the delivery to fail", timeout_s=30
    )
    operator_sign_in(page, operator, locale)
    go(page, locale, "outbox")
    assert _count(page, locale, "failed") == "1"
    failed = page.get_by_role("table", name=w["failed_entries"])
    row = failed.get_by_role("row").filter(has=page.get_by_role("cell", name=client.email, exact=True))
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell")).to_have_text(
        [client.id, w["channel_email"], client.email, "1", re.compile(r"^SMTP 500: .*Error")]
    )
    checked(page, "outbox-failed", locale)

    failing_mail()  # the mail server keeps messages again
    page.get_by_role("button", name=w["retry_failed"]).click()
    expect(page.get_by_role("status")).to_have_text(w["retried_one"])
    message = host.wait_for_mail(client.email)
    assert "DEUDAPRIVADA" in str(message["Subject"]) + message.get_content()

    def settled() -> bool:
        page.reload()
        return _count(page, locale, "failed") == "0" and _count(page, locale, "backlog") == "0"

    wait_for(settled, "the retried notification to be delivered", timeout_s=30, interval_s=0.3)
    expect(page.get_by_text(w["no_failed"])).to_be_visible()
    assert browser_errors(page) == []


@both_languages
def test_the_ledger_check_finds_no_violation(page: Page, host: PagesHost, operator: Operator) -> None:
    """ "Check now" runs the engine's ledger check: a status saying there is no violation, and
    the summary's counts as ``GET /ledger/check`` has them."""
    locale = locale_of(page)
    w = words(locale)
    operator_sign_in(page, operator, locale)
    go(page, locale, "ledger")
    page.get_by_role("button", name=w["run_check"]).click()
    checked_at = re.escape(w["checked_at"]).replace(re.escape("{at}"), r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
    expect(page.get_by_role("status")).to_have_text(re.compile(f"^{re.escape(w['ledger_clean'])} {checked_at}$"))
    summary = page.get_by_role("table", name=w["summary"])

    def count(key: str) -> str:
        row = summary.get_by_role("row").filter(has=page.get_by_role("rowheader", name=w[key], exact=True))
        return row.get_by_role("cell").inner_text()

    status, report = host.api("GET", "/ledger/check", token=operator.token)
    assert status == 200, report
    assert count("violations") == "0" == str(report["violation_count"])
    assert count("clients") == str(report["clients"])
    assert count("transactions") == str(report["transactions"])
    expect(page.get_by_role("table", name=w["violations"])).to_have_count(0)
    checked(page, "ledger", locale)


# ----------------------------------------------------------------------------- a client


@both_languages
def test_a_client_is_refused_the_console(page: Page, host: PagesHost) -> None:
    """A signed-in client asking for any console page gets 403 and a page saying it is for
    operators only (an alert in the client's language), with no console navigation."""
    locale = locale_of(page)
    w = words(locale)
    n = next(_numbers)
    client = api_client(host, f"Cliente {n}", f"curious{n}@example.com", f"+5730066{n:05d}")
    sign_in(page, client.email, locale)
    for path in ("/ops", "/ops/clients", "/ops/audit", "/ops/outbox", "/ops/ledger"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("alert")).to_have_text(w["forbidden"])
        expect(page.get_by_role("link", name=w["catalogue"], exact=True)).to_have_count(0)
    checked(page, "forbidden", locale, status=403)
    assert LANG[locale] == page.evaluate("() => document.documentElement.lang")
