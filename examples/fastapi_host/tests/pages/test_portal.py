"""The client portal in Chromium, driven only by roles and accessible names, in Spanish (an
``es-CO`` browser) and English (``en-US``): sign-up, sign-in and sign-out; the catalogue;
subscribe and cancel, each confirmed; the engine's refusal; the history's pages and filters;
the notifications; the contact data and channel; the chart and the statement files; the
keyboard alone; the language link. Every page is checked by axe-core in both languages, with
no error in the browser, and photographed (``build/screenshots``)."""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from fundcore import format_cop

from .conftest import PagesHost, browser_errors, pdf_text
from .flows import (
    LANG,
    PASSWORD,
    Client,
    api_cancel,
    api_client,
    api_history,
    api_sign_in,
    api_subscribe,
    balance,
    body_cells,
    checked,
    exact,
    locale_of,
    record,
    sign_in,
    words,
)

LOCALES = ["es-CO", "en-US"]
both_languages = pytest.mark.parametrize("page", LOCALES, indirect=True)

RECAUDADORA, ECOPETROL, DEUDAPRIVADA, ACCIONES, DINAMICA = (
    "FPV_BTG_PACTUAL_RECAUDADORA",
    "FPV_BTG_PACTUAL_ECOPETROL",
    "DEUDAPRIVADA",
    "FDO-ACCIONES",
    "FPV_BTG_PACTUAL_DINAMICA",
)
#: The engine's refusal of a subscription the balance does not cover, word for word (SPEC §13).
INSUFFICIENT = {
    "es": f"No tiene saldo disponible para vincularse al fondo {ECOPETROL}",
    "en": f"Insufficient available balance to subscribe to fund {ECOPETROL}",
}
#: The host's refusal of a wrong password (fundcore_host/errors.py INVALID_CREDENTIALS).
WRONG_PASSWORD = {
    "es": "El correo o la contraseña no son correctos",
    "en": "The email or the password is not correct",
}
#: Columns of the history table and of the chart's table.
HISTORY_COLUMNS, CHART_COLUMNS = 6, 4

_numbers = itertools.count(1)


def fresh_client(host: PagesHost, channel: str = "email") -> Client:
    """A new client (COP $500.000) signed up through the JSON API."""
    n = next(_numbers)
    return api_client(host, f"Cliente {n}", f"client{n}@example.com", f"+5730055{n:05d}", channel)


@pytest.fixture(scope="module")
def busy(host: PagesHost) -> Client:
    """One client with 45 transactions (more than two history pages) in funds 1, 3 and 5, of
    both kinds, made through the JSON API; FPV_BTG_PACTUAL_DINAMICA stays subscribed."""
    client = api_client(host, "Valentina Ríos", "valentina@example.com", "+573001110000")
    for _ in range(11):
        api_subscribe(host, client, 1)
        api_subscribe(host, client, 3)
        api_cancel(host, client, 3)
        api_cancel(host, client, 1)
    api_subscribe(host, client, 5)
    return client


# ----------------------------------------------------------------------------- account


@both_languages
def test_sign_up_through_the_page_then_sign_out_and_in(page: Page, host: PagesHost) -> None:
    """Sign-up by the form's labels (name, email, phone, channel, password) lands on the home
    page with COP $500.000 and the chosen channel in the engine; signing out leads to the
    sign-in page, and signing in again to the same home page."""
    locale = locale_of(page)
    w = words(locale)
    n = next(_numbers)
    email, channel = f"signup{n}@example.com", ("sms" if locale == "es-CO" else "email")
    page.goto("/sign-in")
    expect(page.get_by_role("heading", name=w["sign_in"], level=1)).to_be_visible()
    checked(page, "sign-in", locale)
    page.get_by_role("link", name=w["sign_up"]).click()
    expect(page.get_by_role("heading", name=w["sign_up"], level=1)).to_be_visible()
    checked(page, "sign-up", locale)

    page.get_by_role("textbox", name=w["name"]).fill("Camila Ortiz")
    page.get_by_role("textbox", name=w["email"]).fill(email)
    page.get_by_role("textbox", name=w["phone"]).fill(f"+5730077{n:05d}")
    page.get_by_role("group", name=w["channel"]).get_by_role("radio", name=w[f"channel_{channel}"]).check()
    page.get_by_label(w["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=w["sign_up"]).click()

    expect(page).to_have_url(f"{host.url}/")
    expect(page.get_by_role("heading", name="Camila Ortiz", level=1)).to_be_visible()
    expect(balance(page, locale)).to_have_text("COP $500.000")
    expect(page.get_by_text(f"{w['signed_in_as']} {email}")).to_be_visible()
    checked(page, "home", locale)
    client = api_sign_in(host, email)
    status, stored = host.api("GET", f"/clients/{client.id}", token=client.token)
    assert status == 200 and stored["channel"] == channel and stored["name"] == "Camila Ortiz", stored

    page.get_by_role("button", name=w["sign_out"]).click()
    expect(page).to_have_url(f"{host.url}/sign-in")
    expect(page.get_by_role("button", name=w["sign_out"])).to_have_count(0)
    page.goto("/")  # signed out: the home page sends to the sign-in page
    expect(page).to_have_url(f"{host.url}/sign-in")
    sign_in(page, email, locale)
    expect(page).to_have_url(f"{host.url}/")
    expect(balance(page, locale)).to_have_text("COP $500.000")
    assert browser_errors(page) == []


@both_languages
def test_a_wrong_password_is_refused_in_an_alert(page: Page, host: PagesHost) -> None:
    """A wrong password leaves the visitor on the sign-in page, not signed in, with the host's
    words in an alert (and the email kept in its field)."""
    locale = locale_of(page)
    w = words(locale)
    client = fresh_client(host)
    page.goto("/sign-in")
    page.get_by_role("textbox", name=w["email"]).fill(client.email)
    page.get_by_label(w["password"], exact=True).fill("not the passphrase at all")
    page.get_by_role("button", name=w["sign_in"]).click()
    expect(page.get_by_role("alert")).to_have_text(WRONG_PASSWORD[LANG[locale]])
    expect(page.get_by_role("textbox", name=w["email"])).to_have_value(client.email)
    expect(page.get_by_role("button", name=w["sign_out"])).to_have_count(0)
    assert len(browser_errors(page)) == 1
    checked(page, "sign-in-refused", locale, status=401)


# ----------------------------------------------------------------------------- catalogue, subscribe, cancel


def test_the_catalogue_shows_every_fund_with_the_client_subscription(page: Page, host: PagesHost, busy: Client) -> None:
    """The home page's table lists every fund of the engine with its category and minimum, the
    client's own subscription (or none) and one action per fund."""
    w = words("es-CO")
    status, funds = host.api("GET", "/funds", token=busy.token)
    assert status == 200, funds
    sign_in(page, busy.email, "es-CO")
    table = page.get_by_role("table", name=w["funds"])
    expect(table.get_by_role("row")).to_have_count(len(funds) + 1)
    for fund in funds:
        row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=fund["name"], exact=True))
        mine = fund["id"] == 5
        action = w["cancel_fund" if mine else "subscribe_to"].format(fund=fund["name"])
        expect(row.get_by_role("cell")).to_have_text(
            [
                fund["category"],
                format_cop(fund["minimum"]),
                "COP $100.000" if mine else w["not_subscribed"],
                w["cancel"] if mine else w["subscribe"],
            ]
        )
        expect(row.get_by_role("link", name=action)).to_be_visible()
    subscriptions = page.get_by_role("table", name=w["subscriptions"])
    expect(subscriptions.get_by_role("rowheader")).to_have_text([DINAMICA])
    expect(balance(page, "es-CO")).to_have_text("COP $400.000")


@both_languages
def test_subscribe_with_the_minimum_then_cancel_with_the_refund(page: Page, host: PagesHost) -> None:
    """Subscribe: the amount is prefilled with the fund's minimum, the confirmation names the
    fund and the amount, confirming says what was done and the balance drops by it. Cancel: the
    confirmation shows the refund, confirming says so and the balance is back."""
    locale = locale_of(page)
    w = words(locale)
    client = fresh_client(host)
    sign_in(page, client.email, locale)
    funds = page.get_by_role("table", name=w["funds"])
    funds.get_by_role("link", name=w["subscribe_to"].format(fund=RECAUDADORA)).click()

    expect(page.get_by_role("heading", name=w["subscribe_to"].format(fund=RECAUDADORA), level=1)).to_be_visible()
    amount = page.get_by_role("textbox", name=w["amount"])
    assert Decimal(amount.input_value()) == Decimal(75000)
    expect(amount).to_have_accessible_description(w["amount_hint"].format(minimum="COP $75.000"))
    checked(page, "subscribe", locale)
    page.get_by_role("button", name=w["continue"]).click()

    expect(page.get_by_role("heading", name=w["confirm_subscription"], level=1)).to_be_visible()
    expect(
        page.get_by_text(w["confirm_subscription_text"].format(fund=RECAUDADORA, amount="COP $75.000"))
    ).to_be_visible()
    checked(page, "confirm", locale)
    page.get_by_role("button", name=w["confirm"]).click()

    done = w["done_subscription"].format(fund=RECAUDADORA, amount="COP $75.000", balance="COP $425.000")
    expect(page.get_by_role("status")).to_have_text(done)
    expect(balance(page, locale)).to_have_text("COP $425.000")
    row = funds.get_by_role("row").filter(has=page.get_by_role("rowheader", name=RECAUDADORA))
    expect(row.get_by_role("cell").nth(2)).to_have_text("COP $75.000")

    mine = page.get_by_role("table", name=w["subscriptions"])
    expect(mine.get_by_role("rowheader")).to_have_text([RECAUDADORA])
    mine.get_by_role("link", name=w["cancel_fund"].format(fund=RECAUDADORA)).click()
    expect(page.get_by_role("heading", name=w["confirm_cancel"], level=1)).to_be_visible()
    expect(page.get_by_text(w["confirm_cancel_text"].format(fund=RECAUDADORA, amount="COP $75.000"))).to_be_visible()
    expect(page.get_by_role("definition")).to_have_text("COP $75.000")
    expect(page.get_by_role("term")).to_have_text(w["refund"])
    checked(page, "cancel-confirm", locale)
    page.get_by_role("button", name=w["confirm"]).click()

    done = w["done_cancellation"].format(fund=RECAUDADORA, amount="COP $75.000", balance="COP $500.000")
    expect(page.get_by_role("status")).to_have_text(done)
    expect(balance(page, locale)).to_have_text("COP $500.000")
    expect(page.get_by_text(w["no_subscriptions"])).to_be_visible()
    kinds = [tx["kind"] for tx in api_history(host, client)]
    assert kinds == ["cancellation", "subscription"], kinds


@both_languages
def test_a_subscription_the_balance_does_not_cover_is_refused_with_the_engine_message(
    page: Page, host: PagesHost
) -> None:
    """FDO-ACCIONES for COP $450.000, then FPV_BTG_PACTUAL_ECOPETROL for its minimum: the amount
    form again with the engine's exact message in an alert read with the amount field, the field
    marked invalid, and the balance unchanged (COP $50.000)."""
    locale = locale_of(page)
    w = words(locale)
    client = fresh_client(host)
    sign_in(page, client.email, locale)
    funds = page.get_by_role("table", name=w["funds"])
    funds.get_by_role("link", name=w["subscribe_to"].format(fund=ACCIONES)).click()
    page.get_by_role("textbox", name=w["amount"]).fill("450000")
    page.get_by_role("button", name=w["continue"]).click()
    expect(
        page.get_by_text(w["confirm_subscription_text"].format(fund=ACCIONES, amount="COP $450.000"))
    ).to_be_visible()
    page.get_by_role("button", name=w["confirm"]).click()
    expect(balance(page, locale)).to_have_text("COP $50.000")

    funds.get_by_role("link", name=w["subscribe_to"].format(fund=ECOPETROL)).click()
    page.get_by_role("button", name=w["continue"]).click()
    page.get_by_role("button", name=w["confirm"]).click()

    expect(page.get_by_role("heading", name=w["subscribe_to"].format(fund=ECOPETROL), level=1)).to_be_visible()
    alert = page.get_by_role("main").get_by_role("alert")
    expect(alert).to_have_text(INSUFFICIENT[LANG[locale]])
    amount = page.get_by_role("textbox", name=w["amount"])
    expect(amount).to_have_attribute("aria-invalid", "true")
    # the alert is read with the field it is about
    expect(amount).to_have_accessible_description(re.compile(re.escape(INSUFFICIENT[LANG[locale]])))
    checked(page, "refusal", locale, status=409)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w["home"]).click()
    expect(balance(page, locale)).to_have_text("COP $50.000")
    assert [tx["fund_name"] for tx in api_history(host, client)] == [ACCIONES]


# ----------------------------------------------------------------------------- history


def _history_rows(page: Page, locale: str) -> list[list[str]]:
    table = page.get_by_role("table", name=words(locale)["history"])
    if not table.count():
        return []
    return body_cells(table, HISTORY_COLUMNS)


def _walk_history(page: Page, locale: str) -> list[list[str]]:
    """Every row of every history page, following the "older" links from the first page."""
    w = words(locale)
    pager = page.get_by_role("navigation", name=w["history"])
    rows, pages = _history_rows(page, locale), 1
    expect(pager.get_by_role("link", name=w["newest"])).to_have_count(0)
    while pager.get_by_role("link", name=w["older"]).count():
        pager.get_by_role("link", name=w["older"]).click()
        expect(pager.get_by_role("link", name=w["newest"])).to_be_visible()
        rows += _history_rows(page, locale)
        pages += 1
    record("history", f"pages-{LANG[locale]}-{len(rows)}-rows", pages)
    return rows


def test_history_pages_show_every_transaction_once_newest_first(page: Page, host: PagesHost, busy: Client) -> None:
    """45 transactions: 20 per page, the "older" link from page to page; together the pages show
    each transaction exactly once, in the engine's order (newest first), with its kind, fund,
    amount and balance after it."""
    locale = "es-CO"
    w = words(locale)
    expected = api_history(host, busy)
    assert len(expected) == 45
    sign_in(page, busy.email, locale)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w["history"]).click()
    expect(page.get_by_role("heading", name=w["history"], level=1)).to_be_visible()
    expect(page.get_by_role("table", name=w["history"]).get_by_role("row")).to_have_count(21)
    checked(page, "history", locale)
    rows = _walk_history(page, locale)
    assert [row[5] for row in rows] == [tx["id"] for tx in expected]
    assert len({row[5] for row in rows}) == 45
    assert [row[1:5] for row in rows] == [
        [w["kind_" + tx["kind"]], tx["fund_name"], format_cop(tx["amount"]), format_cop(tx["balance_after"])]
        for tx in expected
    ]
    dates = [row[0] for row in rows]
    assert dates == sorted(dates, reverse=True)
    page.get_by_role("navigation", name=w["history"]).get_by_role("link", name=w["newest"]).click()
    assert [row[5] for row in _history_rows(page, locale)] == [tx["id"] for tx in expected[:20]]
    assert browser_errors(page) == []


def test_history_filters_by_kind_and_by_fund(page_in: Callable[[str], Page], host: PagesHost, busy: Client) -> None:
    """In English: filtering by kind shows only cancellations (all 22 of them, over the pages);
    by fund only DEUDAPRIVADA's; both together only its cancellations."""
    locale = "en-US"
    w = words(locale)
    page = page_in(locale)
    expected = api_history(host, busy)
    sign_in(page, busy.email, locale)
    page.goto("/history")
    checked(page, "history", locale)

    page.get_by_label(w["kind"], exact=True).select_option(label=w["kind_cancellation"])
    page.get_by_role("button", name=w["filter"]).click()
    rows = _walk_history(page, locale)
    assert {row[1] for row in rows} == {w["kind_cancellation"]}
    assert [row[5] for row in rows] == [tx["id"] for tx in expected if tx["kind"] == "cancellation"]

    page.goto("/history")
    page.get_by_label(w["fund"], exact=True).select_option(label=DEUDAPRIVADA)
    page.get_by_role("button", name=w["filter"]).click()
    expect(page.get_by_label(w["fund"], exact=True)).to_have_value("3")
    rows = _walk_history(page, locale)
    assert {row[2] for row in rows} == {DEUDAPRIVADA}
    assert [row[5] for row in rows] == [tx["id"] for tx in expected if tx["fund_name"] == DEUDAPRIVADA]

    page.get_by_label(w["kind"], exact=True).select_option(label=w["kind_subscription"])
    page.get_by_role("button", name=w["filter"]).click()
    rows = _walk_history(page, locale)
    assert {(row[1], row[2]) for row in rows} == {(w["kind_subscription"], DEUDAPRIVADA)}
    assert len(rows) == 11
    assert browser_errors(page) == []


# ----------------------------------------------------------------------------- notifications, contact data


def _wait_until_delivered(page: Page, locale: str, count: int, timeout_s: float = 30) -> list[list[str]]:
    """The notifications table once it has ``count`` rows, every one delivered (reloading)."""
    w = words(locale)
    deadline = time.monotonic() + timeout_s
    while True:
        table = page.get_by_role("table", name=w["notifications"])
        rows = body_cells(table, 6) if table.count() else []
        if len(rows) == count and {row[4] for row in rows} == {w["status_delivered"]}:
            return rows
        assert time.monotonic() < deadline, f"notifications not all delivered: {rows}"
        time.sleep(0.2)
        page.reload()


@both_languages
def test_notifications_are_listed_with_their_status(page: Page, host: PagesHost, busy: Client) -> None:
    """The 45 notifications of the busy client, each by email to its address with its subject,
    delivered by the demo's mail server (the page says so once the dispatcher has run)."""
    locale = locale_of(page)
    w = words(locale)
    sign_in(page, busy.email, locale)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w["notifications"]).click()
    expect(page.get_by_role("heading", name=w["notifications"], level=1)).to_be_visible()
    rows = _wait_until_delivered(page, locale, 45)
    assert {row[1] for row in rows} == {w["channel_email"]}
    assert {row[2] for row in rows} == {busy.email}
    assert all(row[3] for row in rows)
    assert len(host.mail(busy.email)) >= 45
    checked(page, "notifications", locale)


@both_languages
def test_a_new_channel_carries_the_next_notification(page: Page, host: PagesHost) -> None:
    """The profile page changes the contact data and the channel ("saved" in a status); the
    next subscription's notification arrives through the new channel in the demo's sinks: in
    Spanish an email client switches to SMS with a new phone, in English an SMS client to email
    with a new address."""
    locale = locale_of(page)
    w = words(locale)
    spanish = locale == "es-CO"
    client = fresh_client(host, channel="email" if spanish else "sms")
    sign_in(page, client.email, locale)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w["profile"]).click()
    expect(page.get_by_role("heading", name=w["profile"], level=1)).to_be_visible()
    expect(page.get_by_role("textbox", name=w["email"])).to_have_value(client.email)
    expect(page.get_by_role("textbox", name=w["phone"])).to_have_value(client.phone)
    channels = page.get_by_role("group", name=w["channel"])
    expect(channels.get_by_role("radio", name=w["channel_email" if spanish else "channel_sms"])).to_be_checked()

    new_phone, new_email = f"+5731099{next(_numbers):05d}", f"renamed{next(_numbers)}@example.com"
    page.get_by_role("textbox", name=w["name"]).fill("Nombre Nuevo" if spanish else "New Name")
    if spanish:
        page.get_by_role("textbox", name=w["phone"]).fill(new_phone)
        channels.get_by_role("radio", name=w["channel_sms"]).check()
    else:
        page.get_by_role("textbox", name=w["email"]).fill(new_email)
        channels.get_by_role("radio", name=w["channel_email"]).check()
    page.get_by_role("button", name=w["save"]).click()
    expect(page.get_by_role("status")).to_have_text(w["saved"])
    expect(channels.get_by_role("radio", name=w["channel_sms" if spanish else "channel_email"])).to_be_checked()
    checked(page, "profile", locale)

    tx = api_subscribe(host, client, 3)
    if spanish:
        message = host.wait_for_sms(new_phone)
        assert message["transaction_id"] == tx["id"] and DEUDAPRIVADA in message["body"]
        assert host.mail(client.email) == [] and host.sms(client.phone) == []
    else:
        mail = host.wait_for_mail(new_email)
        assert mail["X-Fundcore-Transaction-Id"] == tx["id"]
        assert host.sms(client.phone) == [] and host.mail(client.email) == []


# ----------------------------------------------------------------------------- chart, statement


@both_languages
def test_the_chart_and_its_table_hold_the_engine_figures(page: Page, host: PagesHost, busy: Client) -> None:
    """The chart is an image named by its title with its description (46 points: the opening
    and one per transaction); its table lists, oldest first, the same figures as the engine's
    ``GET /clients/{id}/statement``: the opening, then each transaction with the balance and the
    invested amount after it (and the balances are the history's)."""
    locale = locale_of(page)
    w = words(locale)
    status, statement = host.api("GET", f"/clients/{busy.id}/statement", token=busy.token)
    assert status == 200, statement
    lines = statement["lines"]
    history = list(reversed(api_history(host, busy)))
    assert [line["transaction"]["id"] for line in lines] == [tx["id"] for tx in history]
    sign_in(page, busy.email, locale)
    page.get_by_role("navigation", name=w["main_navigation"]).get_by_role("link", name=w["evolution"]).click()
    expect(page.get_by_role("heading", name=w["evolution"], level=1)).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("^" + re.escape(w["chart_title"])))
    expect(chart).to_be_visible()
    description = re.escape(w["chart_description"]).replace(re.escape("{points}"), str(len(lines) + 1))
    description = description.replace(re.escape("{first}"), ".+").replace(re.escape("{last}"), ".+")
    expect(chart).to_have_accessible_name(re.compile(f"^{re.escape(w['chart_title'])} {description}$"))

    rows = body_cells(page.get_by_role("table", name=w["chart_table"]), CHART_COLUMNS)
    assert rows[0][1:] == [
        w["opening_balance"],
        format_cop(statement["opening_balance"]),
        format_cop(statement["opening_invested"]),
    ]
    assert rows[0][2:] == ["COP $500.000", "COP $0"]
    assert len(rows) == len(lines) + 1 == 46
    for row, line, tx in zip(rows[1:], lines, history, strict=True):
        assert row[1:] == [
            f"{w['kind_' + tx['kind']]} · {tx['fund_name']} · {format_cop(tx['amount'])}",
            format_cop(line["transaction"]["balance_after"]),
            format_cop(line["invested_after"]),
        ], row
        assert row[2] == format_cop(tx["balance_after"])
    assert rows[-1][2:] == ["COP $400.000", "COP $100.000"]
    checked(page, "evolution", locale)


@both_languages
def test_the_statement_downloads_as_pdf_and_csv(page: Page, host: PagesHost, busy: Client) -> None:
    """The statement form (this month by default; here from two days back) downloads a PDF whose text has the client's
    name, every transaction id and the money as COP $…, and a CSV with the same rows: opening,
    each transaction with the engine's balance after it, closing."""
    locale = locale_of(page)
    w = words(locale)
    expected = list(reversed(api_history(host, busy)))
    sign_in(page, busy.email, locale)
    page.goto("/evolution")
    statement = page.get_by_role("region", name=w["statement"])
    expect(statement.get_by_label(w["from"])).to_have_value(re.compile(r"^\d{4}-\d{2}-01$"))
    # from two days back: the range holds every transaction even on a month's first day
    since = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=2)
    statement.get_by_label(w["from"]).fill(since.isoformat())

    with page.expect_download() as pdf_download:
        statement.get_by_role("button", name=w["download_pdf"]).click()
    pdf = pdf_download.value
    assert re.fullmatch(rf"statement-{since.isoformat()}-\d{{4}}-\d{{2}}-\d{{2}}\.pdf", pdf.suggested_filename)
    text = pdf_text(pdf.path())
    flat = " ".join(text.split())
    assert w["statement_of"].format(name=busy.name) in flat
    assert busy.email in flat
    for tx in expected:
        assert tx["id"] in flat, tx["id"]
    assert "COP $500.000" in flat and "COP $400.000" in flat and "COP $100.000" in flat
    assert len(re.findall(r"COP \$[\d.]+", flat)) >= 3 * len(expected)

    with page.expect_download() as csv_download:
        statement.get_by_role("button", name=w["download_csv"]).click()
    csv_file = csv_download.value
    assert csv_file.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(csv_file.path().read_text(encoding="utf-8-sig"))))
    assert rows[0] == [w[k] for k in ("date", "kind", "fund", "amount", "balance_after", "invested", "transaction")]
    assert rows[1][1] == w["opening_balance"] and rows[1][4:6] == ["COP $500.000", "COP $0"]
    assert rows[-1][1] == w["closing_balance"] and rows[-1][4:6] == ["COP $400.000", "COP $100.000"]
    assert [row[6] for row in rows[2:-1]] == [tx["id"] for tx in expected]
    assert [row[4] for row in rows[2:-1]] == [format_cop(tx["balance_after"]) for tx in expected]
    assert browser_errors(page) == []


# ----------------------------------------------------------------------------- keyboard, language, weight


def _focused(page: Page) -> dict[str, Any]:
    """What has the focus: its role as the page exposes it, its accessible text, whether the
    browser draws the focus ring (``:focus-visible`` with an outline)."""
    return dict(
        page.evaluate(
            """() => {
                const e = document.activeElement;
                const style = getComputedStyle(e);
                return {
                    tag: e.tagName.toLowerCase(),
                    name: (e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent || '').trim(),
                    visible: e.matches(':focus-visible') && style.outlineStyle !== 'none'
                        && parseFloat(style.outlineWidth) >= 2,
                };
            }"""
        )
    )


def _tab_to(page: Page, target: Any, limit: int = 40) -> None:
    """Presses Tab until ``target`` (a locator) has the focus, checking the ring is drawn."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            focused = _focused(page)
            assert focused["visible"], f"no visible focus on {focused}"
            return
    raise AssertionError(f"{limit} Tabs did not reach {target}")


def test_subscribe_and_cancel_with_the_keyboard_alone(page: Page, host: PagesHost) -> None:
    """From the home page with Tab, Enter and Space only: subscribe to DEUDAPRIVADA with the
    prefilled minimum, confirm, then cancel it and confirm; the focus ring is visible on every
    control reached."""
    locale = "es-CO"
    w = words(locale)
    client = fresh_client(host)
    sign_in(page, client.email, locale)
    page.goto("/")
    skip = page.get_by_role("link", name=w["skip_to_content"])
    _tab_to(page, skip, limit=1)  # the first Tab reaches the skip link
    page.keyboard.press("Enter")
    subscribe = page.get_by_role("table", name=w["funds"]).get_by_role(
        "link", name=w["subscribe_to"].format(fund=DEUDAPRIVADA)
    )
    _tab_to(page, subscribe, limit=10)  # from the main content, not through the header
    page.keyboard.press("Enter")
    amount = page.get_by_role("textbox", name=w["amount"])
    expect(page.get_by_role("heading", name=w["subscribe_to"].format(fund=DEUDAPRIVADA))).to_be_visible()
    _tab_to(page, amount)
    assert Decimal(amount.input_value()) == Decimal(50000)
    _tab_to(page, page.get_by_role("button", name=w["continue"]), limit=2)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=w["confirm_subscription"])).to_be_visible()
    _tab_to(page, page.get_by_role("button", name=w["confirm"]))
    page.keyboard.press("Space")
    expect(page.get_by_role("status")).to_have_text(
        w["done_subscription"].format(fund=DEUDAPRIVADA, amount="COP $50.000", balance="COP $450.000")
    )

    cancel = page.get_by_role("table", name=w["subscriptions"]).get_by_role(
        "link", name=w["cancel_fund"].format(fund=DEUDAPRIVADA)
    )
    _tab_to(page, cancel)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=w["confirm_cancel"])).to_be_visible()
    _tab_to(page, page.get_by_role("button", name=w["confirm"]))
    page.keyboard.press("Space")
    expect(page.get_by_role("status")).to_have_text(
        w["done_cancellation"].format(fund=DEUDAPRIVADA, amount="COP $50.000", balance="COP $500.000")
    )
    expect(balance(page, locale)).to_have_text("COP $500.000")
    assert browser_errors(page) == []


def test_the_language_link_switches_and_an_english_browser_gets_english_first(
    page_in: Callable[[str], Page], host: PagesHost
) -> None:
    """A Spanish browser gets Spanish; the "English" link switches the page (and the next ones)
    to English, "Español" back; an en-US browser gets English on its first visit."""
    es, en = words("es-CO"), words("en-US")
    page = page_in("es-CO")
    page.goto("/sign-in")
    expect(page.get_by_role("heading", name=es["sign_in"], level=1)).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "es"
    switch = page.get_by_role("link", name=es["switch_language"])
    assert switch.get_attribute("hreflang") == "en"
    switch.click()
    expect(page.get_by_role("heading", name=en["sign_in"], level=1)).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "en"
    page.get_by_role("link", name=en["sign_up"]).click()  # the choice holds on the next page
    expect(page.get_by_role("heading", name=en["sign_up"], level=1)).to_be_visible()
    page.get_by_role("link", name=en["switch_language"]).click()
    expect(page.get_by_role("heading", name=es["sign_up"], level=1)).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "es"

    english = page_in("en-US")
    english.goto("/sign-in")
    expect(english.get_by_role("heading", name=en["sign_in"], level=1)).to_be_visible()
    expect(english.get_by_role("link", name=exact(en["switch_language"]))).to_be_visible()
    assert english.evaluate("() => document.documentElement.lang") == "en"
    assert browser_errors(page) == [] and browser_errors(english) == []


def test_the_home_page_weight(page: Page, host: PagesHost, busy: Client) -> None:
    """What the browser downloads for the signed-in home page: the document and one style
    sheet, no script, under 30 kB in all (the figure goes to build/pages-report.json)."""
    sign_in(page, busy.email, "es-CO")
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto("/")
    page.wait_for_load_state("networkidle")
    sizes = {response.url.removeprefix(host.url): len(response.body()) for response in responses}
    kinds = [response.request.resource_type for response in responses]
    assert "script" not in kinds, kinds
    assert sorted(kinds) == ["document", "stylesheet"], sizes
    total = sum(sizes.values())
    record("home", "bytes", {"total": total, **sizes})
    assert total < 30_000, sizes
