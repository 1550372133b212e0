"""Browser tests of the host's pages: a real host process (``python -m fundcore_host.demo``, with
its mail server and SMS gateway that keep what they receive), Debian's Chromium driven by
Playwright, axe-core's accessibility checks and full-page screenshots.

Fixtures:

* ``host`` (per test module): the running host; ``host.url``, ``host.data``, ``host.mail(to)``,
  ``host.wait_for_mail(to)``, ``host.sms(to)``, ``host.wait_for_sms(to)``, ``host.api(...)``;
* ``make_operator(email, password)``: an operator (admin) account in that host's account store;
* ``browser`` (session): Chromium;
* ``page_in(locale)``: a new page in a new context (``"es-CO"`` or ``"en-US"``) whose base URL is
  the host's; ``page``: the same, ``es-CO`` unless parametrized
  (``@pytest.mark.parametrize("page", ["es-CO", "en-US"], indirect=True)``);
* ``check_accessibility(page, name)``: axe-core (WCAG 2.0/2.1 A and AA) on the page; fails with
  the violations listed, returns axe's results;
* ``screenshot(page, name)``: ``build/screenshots/<name>.png``, the whole page.

Functions: ``browser_errors(page)`` (console errors and uncaught exceptions of the page's
context), ``pdf_text(pdf)`` (the text of a downloaded PDF, by pdftotext).

`make test-pages` runs them (`make pages-deps` installs chromium, poppler-utils, Playwright and
axe-core).
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, ViewportSize, sync_playwright

HOST_DIR = Path(__file__).resolve().parents[2]
REPO_ROOT = HOST_DIR.parents[1]
CHROMIUM = Path(os.environ.get("FUNDCORE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
AXE_JS = REPO_ROOT / "build" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
#: The rules axe runs: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LOOPBACK = "127.0.0.1"
#: The host's token secret in these tests (the developer's environment is not used).
JWT_SECRET = "pages-test-secret-for-the-fundcore-host-0123456789-0123456789-0123"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
LOCALES = ("es-CO", "en-US")
#: The errors each browser context reported (browser_errors).
_BROWSER_ERRORS: weakref.WeakKeyDictionary[BrowserContext, list[str]] = weakref.WeakKeyDictionary()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return cast(int, s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0, interval_s: float = 0.05) -> Any:
    """The first truthy value of ``predicate()``; fails saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        time.sleep(interval_s)


def host_environment(data: Path, **extra: str) -> dict[str, str]:
    """The environment of the host and its commands: the caller's without any ``FUNDCORE_*``
    setting (nor a Prometheus multiprocess directory), then exactly what these tests choose."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FUNDCORE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return {
        **base,
        "PYTHONPATH": str(HOST_DIR),
        "FUNDCORE_DATA": str(data / "fundcore"),
        "FUNDCORE_ACCOUNTS_PATH": str(data / "fundcore-accounts.sqlite3"),
        "FUNDCORE_JWT_SECRET": JWT_SECRET,
        # flows sign in again and again: no rate limit nor sign-in limits
        "FUNDCORE_RATE_LIMIT_PER_MINUTE": "0",
        "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": "1000000",
        "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": "1000000",
        # notifications reach the sinks within a fraction of a second
        "FUNDCORE_DISPATCH_INTERVAL_MS": "100",
        "FUNDCORE_LOG_LEVEL": "INFO",
        **extra,
    }


def _addresses(message: EmailMessage) -> set[str]:
    """The lower-cased addresses a message is sent to (To and Cc)."""
    headers = [str(value) for field in ("To", "Cc") for value in message.get_all(field, [])]
    return {address.lower() for _, address in getaddresses(headers)}


class PagesHost:
    """``python -m fundcore_host.demo`` in its own process group on loopback ports: the host,
    its SMTP server (mail in ``<data>/mail/*.eml``) and SMS gateway (``<data>/sms/*.json``)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.mail_dir = data / "mail"
        self.sms_dir = data / "sms"
        self.accounts_path = data / "fundcore-accounts.sqlite3"
        self.log_path = data / "host.log"
        self.env = host_environment(data)
        self.process: subprocess.Popen[bytes] | None = None

    # -- process

    def start(self) -> PagesHost:
        command = [
            sys.executable,
            "-m",
            "fundcore_host.demo",
            "--data",
            str(self.data),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--smtp-port",
            str(free_port()),
            "--sms-port",
            str(free_port()),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.data, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._ready, f"the host on {self.url} to answer GET /health", timeout_s=60)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the host exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the host's process group, SIGKILL if it is still there after 15 s."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group: anything the host left behind
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # -- what the sinks kept

    def mail(self, to: str | None = None) -> list[EmailMessage]:
        """The messages received so far (oldest first), those addressed to ``to`` when given."""
        messages = []
        for path in sorted(self.mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if to is None or to.lower() in _addresses(message):
                messages.append(message)
        return messages

    def wait_for_mail(self, to: str, count: int = 1, timeout_s: float = 30.0) -> EmailMessage:
        """The ``count``-th message to ``to`` (the first by default), waiting until it arrives;
        ``count=len(host.mail(to)) + 1`` waits for the next one."""

        def arrived() -> list[EmailMessage] | None:
            received = self.mail(to)
            return received if len(received) >= count else None

        found: list[EmailMessage] = wait_for(arrived, f"email number {count} to {to} in {self.mail_dir}", timeout_s)
        return found[count - 1]

    def sms(self, to: str | None = None) -> list[dict[str, Any]]:
        """The SMS received so far (oldest first; the JSON the host posted: ``to``, ``body``, ...),
        those to ``to`` when given."""
        received = []
        for path in sorted(self.sms_dir.glob("*.json")):
            message = json.loads(path.read_text(encoding="utf-8"))["message"]
            if to is None or message.get("to") == to:
                received.append(message)
        return received

    def wait_for_sms(self, to: str, count: int = 1, timeout_s: float = 30.0) -> dict[str, Any]:
        """The ``count``-th SMS to ``to`` (the first by default), waiting until it arrives."""

        def arrived() -> list[dict[str, Any]] | None:
            received = self.sms(to)
            return received if len(received) >= count else None

        found: list[dict[str, Any]] = wait_for(arrived, f"SMS number {count} to {to} in {self.sms_dir}", timeout_s)
        return found[count - 1]

    # -- setting things up without the pages

    def api(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout_s: float = 30
    ) -> tuple[int, Any]:
        """One JSON API call (for setting up a flow, not for testing the pages): (status, body)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def create_operator(self, email_address: str, password: str) -> None:
        """An operator (admin) account in this host's account store, made as its docs say:
        ``python -m fundcore_host.accounts create-operator`` with the password on stdin."""
        done = subprocess.run(
            [sys.executable, "-m", "fundcore_host.accounts", "create-operator", "--email", email_address],
            input=f"{password}\n",
            env=self.env,
            cwd=self.data,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"create-operator exited with {done.returncode}:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PagesHost]:
    """A host of its own for each test module (stopped at the module's end whatever happens)."""
    started = PagesHost(tmp_path_factory.mktemp("host"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def make_operator(host: PagesHost) -> Callable[[str, str], None]:
    """``make_operator("ops@example.com", "a long passphrase")``: an operator account of ``host``."""
    return host.create_operator


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make pages-deps` installs Debian's chromium")
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page_in(browser: Browser, host: PagesHost) -> Iterator[Callable[[str], Page]]:
    """``page_in("en-US")``: a page in a new context with that locale (its Accept-Language), the
    host as base URL and a 1280x900 viewport; every context is closed after the test."""
    contexts = []

    def open_page(locale: str = "es-CO") -> Page:
        context = browser.new_context(locale=locale, base_url=host.url, viewport=VIEWPORT)
        contexts.append(context)
        errors: list[str] = []
        _BROWSER_ERRORS[context] = errors
        context.on("console", lambda message: _record_console(errors, message))
        context.on("weberror", lambda error: errors.append(f"uncaught: {error.error}"))
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def _record_console(errors: list[str], message: ConsoleMessage) -> None:
    location = message.location
    url = str(location.get("url") or "")
    if url.endswith("/favicon.ico") and url.count("/") == 3:
        return  # Chromium asks every origin for /favicon.ico by itself; not the page's request
    if message.type == "error":
        errors.append(f"console: {message.text} ({location.get('url')}:{location.get('lineNumber')})")


def browser_errors(page: Page) -> list[str]:
    """What the browser reported as an error in the page's context so far: ``console.error``
    lines (a script's own, a resource that failed to load, a CSP refusal) and uncaught
    exceptions; not the 404 of the ``/favicon.ico`` Chromium asks every origin for. A flow
    asserts ``browser_errors(page) == []`` where none is expected."""
    return list(_BROWSER_ERRORS.get(page.context, []))


@pytest.fixture
def page(request: pytest.FixtureRequest, page_in: Callable[[str], Page]) -> Page:
    """A page in ``es-CO``, or in the locale the test parametrizes it with (``indirect=True``)."""
    return page_in(getattr(request, "param", "es-CO"))


# ----------------------------------------------------------------------------- accessibility, screenshots


def _axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"no axe-core at {AXE_JS}: `make pages-deps` installs it (npm, into build/tools)")
    return AXE_JS.read_text(encoding="utf-8")


def _truncated(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_violations(violations: list[dict[str, Any]], nodes_per_rule: int = 5) -> str:
    """axe's violations as readable lines: rule, impact, help, then the offending elements."""
    lines = []
    for violation in violations:
        nodes = violation.get("nodes", [])
        lines.append(
            f"- {violation['id']} ({violation.get('impact')}): {violation.get('help')}"
            f" [{len(nodes)} element(s); {violation.get('helpUrl')}]"
        )
        for node in nodes[:nodes_per_rule]:
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(f"    {target}: {_truncated(node.get('html', ''))}")
        if len(nodes) > nodes_per_rule:
            lines.append(f"    ... and {len(nodes) - nodes_per_rule} more")
    return "\n".join(lines)


def run_axe(page: Page) -> dict[str, Any]:
    """axe-core's results for the page as it is now (WCAG 2.0/2.1 A and AA rules only). The
    script is evaluated through the browser's devtools, so the page's CSP does not stop it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations", "incomplete"]}
    return cast(dict[str, Any], page.evaluate("(options) => window.axe.run(document, options)", options))


def check_page_accessibility(page: Page, name: str) -> dict[str, Any]:
    """Fails when axe-core finds a violation, listing them; else axe's results."""
    results = run_axe(page)
    violations = results["violations"]
    if violations:
        pytest.fail(
            f"{name}: axe-core found {len(violations)} accessibility violation(s) on {page.url}:\n"
            + describe_violations(violations),
            pytrace=False,
        )
    return results


@pytest.fixture
def check_accessibility() -> Callable[[Page, str], dict[str, Any]]:
    """``results = check_accessibility(page, "sign-in es")``: fails on any WCAG A/AA violation."""
    return check_page_accessibility


def take_screenshot(page: Page, name: str) -> Path:
    """The whole page as ``build/screenshots/<name>.png`` (from the repository root)."""
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def pdf_text(pdf: bytes | Path) -> str:
    """The text of a PDF (a download's bytes or file) as poppler's ``pdftotext -layout`` reads it."""
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, f"pdftotext exited with {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode("utf-8")


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """``path = screenshot(page, "portfolio-en")``: build/screenshots/portfolio-en.png."""
    return take_screenshot
