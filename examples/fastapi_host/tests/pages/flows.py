"""What the flow tests of the portal and the console share: clients made through the JSON API,
signing in through the page, the page's words in its language, and one call that checks a page
(axe-core, the browser's errors, a screenshot) and records axe's counts in
``build/pages-report.json`` (violations, and the "incomplete" items a person has to judge)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Locator, Page, expect

from fundcore_host.pages.i18n import WORDS

from .conftest import REPO_ROOT, PagesHost, browser_errors, check_page_accessibility, take_screenshot

#: The language of the pages a browser of each locale gets first.
LANG = {"es-CO": "es", "en-US": "en"}
PASSWORD = "a long passphrase for the pages"
REPORT = REPO_ROOT / "build" / "pages-report.json"
_REPORT_LOCK = threading.Lock()


def words(locale: str) -> dict[str, str]:
    """The pages' words in the language a browser of ``locale`` gets."""
    return WORDS[LANG[locale]]


def locale_of(page: Page) -> str:
    """The locale of the page's browser context (``es-CO`` or ``en-US``)."""
    return str(page.evaluate("() => navigator.language"))


def record(section: str, key: str, value: Any) -> None:
    """Adds ``value`` under ``section``/``key`` of ``build/pages-report.json``."""
    with _REPORT_LOCK:
        try:
            report = json.loads(REPORT.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or another run's copy being replaced
            report = {}
        report.setdefault(section, {})[key] = value
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        # written aside then renamed: a run reading it meanwhile sees a whole file
        partial = REPORT.with_name(f".{REPORT.name}.{os.getpid()}")
        partial.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, REPORT)


def unexpected_errors(page: Page, status: int | None = None) -> list[str]:
    """The browser's errors, but for the one Chromium logs for a page answered with ``status``
    (a refusal is a 4xx page: the browser says the document "failed to load")."""
    expected = f"console: Failed to load resource: the server responded with a status of {status} "
    return [error for error in browser_errors(page) if not (status and error.startswith(expected))]


def checked(page: Page, name: str, locale: str, status: int | None = None) -> dict[str, Any]:
    """The page as it is now: no axe-core violation (WCAG 2.1 A/AA), no error in the browser
    (but the 4xx ``status`` of a refusal's page), a screenshot
    ``build/screenshots/<name>-<lang>.png``; axe's counts go to the report."""
    lang = LANG[locale]
    started = time.monotonic()
    results = check_page_accessibility(page, f"{name} ({lang})")
    axe_s = time.monotonic() - started
    assert unexpected_errors(page, status) == [], f"{name} ({lang}): {browser_errors(page)}"
    started = time.monotonic()
    take_screenshot(page, f"{name}-{lang}")
    screenshot_s = time.monotonic() - started
    incomplete = results["incomplete"]
    record(
        "axe",
        f"{name}-{lang}",
        {
            "violations": len(results["violations"]),
            "incomplete": len(incomplete),
            "incomplete_rules": sorted({item["id"] for item in incomplete}),
            "incomplete_elements": sum(len(item["nodes"]) for item in incomplete),
            "axe_s": round(axe_s, 2),
            "screenshot_s": round(screenshot_s, 2),
        },
    )
    return results


@dataclass
class Client:
    """A client with a host account, made through the JSON API."""

    id: str
    name: str
    email: str
    phone: str
    token: str


def api_client(host: PagesHost, name: str, email: str, phone: str, channel: str = "email") -> Client:
    """Signs a client up and in through ``/auth/sign-up`` and ``/auth/sign-in``."""
    profile = {"name": name, "email": email, "phone": phone, "channel": channel, "password": PASSWORD}
    status, body = host.api("POST", "/auth/sign-up", profile)
    assert status == 201, body
    return api_sign_in(host, email, name, phone)


def api_sign_in(host: PagesHost, email: str, name: str = "", phone: str = "") -> Client:
    status, signed_in = host.api("POST", "/auth/sign-in", {"email": email, "password": PASSWORD})
    assert status == 200, signed_in
    return Client(signed_in["client_id"], name, email, phone, signed_in["access_token"])


def api_subscribe(host: PagesHost, client: Client, fund_id: int, amount: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"fund_id": fund_id} | ({"amount": amount} if amount else {})
    status, tx = host.api("POST", f"/clients/{client.id}/subscriptions", body, token=client.token)
    assert status == 201, tx
    return dict(tx)


def api_cancel(host: PagesHost, client: Client, fund_id: int) -> dict[str, Any]:
    status, tx = host.api("DELETE", f"/clients/{client.id}/subscriptions/{fund_id}", token=client.token)
    assert status == 200, tx
    return dict(tx)


def api_history(host: PagesHost, client: Client) -> list[dict[str, Any]]:
    """Every transaction of ``client``, newest first, as the JSON API pages them."""
    found: list[dict[str, Any]] = []
    before = None
    while True:
        query = f"?limit=50&before={before}" if before else "?limit=50"
        status, page = host.api("GET", f"/clients/{client.id}/transactions{query}", token=client.token)
        assert status == 200, page
        found += page["items"]
        before = page.get("next")
        if not before:
            return found


def sign_in(page: Page, email: str, locale: str, password: str = PASSWORD) -> None:
    """Signs in through the sign-in page, by its labels; ends on the page the host sends to."""
    w = words(locale)
    page.goto("/sign-in")
    page.get_by_role("textbox", name=w["email"]).fill(email)
    page.get_by_label(w["password"], exact=True).fill(password)
    page.get_by_role("button", name=w["sign_in"]).click()
    expect(page.get_by_role("button", name=w["sign_out"])).to_be_visible()


def balance(page: Page, locale: str) -> Locator:
    """The home page's available balance (the paragraph in its region)."""
    return page.get_by_role("region", name=words(locale)["balance"]).get_by_role("paragraph")


def body_cells(table: Locator, columns: int) -> list[list[str]]:
    """The texts of a table's data cells (not its headers), row by row."""
    texts = [" ".join(text.split()) for text in table.get_by_role("cell").all_inner_texts()]
    assert len(texts) % columns == 0, texts
    return [texts[i : i + columns] for i in range(0, len(texts), columns)]


def exact(text: str) -> re.Pattern[str]:
    """A pattern matching exactly ``text`` (for names that are a prefix of another)."""
    return re.compile(f"^{re.escape(text)}$")
