"""The pages of the REST host (`make bench`, part `pages`): how long the client portal's pages take
to render, alone and while wrk drives the REST subscribe/cancel mix against the same host, and
how many bytes a browser downloads for the home page (the page and its one style sheet; the
pages load nothing else).

A client signs up through the pages (the form's CSRF token and the session cookie, as a browser
does), makes a few subscriptions, then `GET /` and `GET /history` are timed one after another.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import statistics
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class Browser:
    """Cookies and forms over urllib, enough to sign in and post the pages' forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> bytes:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read()

    def post_form(self, path: str, fields: dict[str, str], *, form_page: str) -> None:
        token = CSRF.search(self.get(form_page).decode())
        if token is None:
            raise RuntimeError(f"{form_page} has no CSRF token")
        data = urllib.parse.urlencode({**fields, "csrf_token": token.group(1)}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Origin": self.base})
        with self.opener.open(request, timeout=30) as response:
            response.read()


def _timed(browser: Browser, path: str, until: float, at_least: int) -> list[float]:
    """Milliseconds of each ``GET path`` until ``until`` (and at least ``at_least`` of them)."""
    times: list[float] = []
    while time.monotonic() < until or len(times) < at_least:
        started = time.perf_counter()
        browser.get(path)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "samples": len(ordered),
    }


def pages(
    quick: bool,
    record: Callable[..., None],
    say: Callable[[str], None],
    rest_host: Callable[..., object],
    rest_mix: Callable[[str, str, str, str], dict],
) -> None:
    """Figures ``pages_*``: render times alone and under the REST mix, and the home page's bytes."""
    seconds = 3.0 if quick else 6.0
    with rest_host({}, workers=1) as (base, token, data):  # type: ignore[attr-defined]
        browser = Browser(base)
        browser.post_form(
            "/sign-up",
            {"name": "Pages Bench", "email": "pages@example.com", "phone": "+573009990000",
             "channel": "email", "password": "a long bench passphrase"},
            form_page="/sign-up",
        )
        for fund, amount in ((1, "75000"), (3, "50000"), (5, "100000")):
            browser.post_form(f"/funds/{fund}/subscribe", {"amount": amount, "idempotency_key": f"bench-{fund}"},
                              form_page=f"/funds/{fund}/subscribe")
        page = browser.get("/")
        css = browser.get("/static/app.css")
        record("pages_home_bytes", len(page) + len(css), "bytes", page=len(page), stylesheet=len(css),
               note="everything the browser downloads for the home page: the pages have no script or font")
        idle = {path: _timed(browser, path, time.monotonic() + seconds / 2, 50) for path in ("/", "/history")}

        mix: dict = {}
        runner = threading.Thread(target=lambda: mix.update(rest_mix(base, token, data, f"{int(seconds) + 4}s")))
        runner.start()
        # rest_mix registers its clients first, then starts wrk: measure while wrk runs
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(data, "clients.txt")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        loaded = {path: _timed(browser, path, time.monotonic() + seconds / 2, 20) for path in ("/", "/history")}
        runner.join()
    for path, name in (("/", "home"), ("/history", "history")):
        alone, busy = _summary(idle[path]), _summary(loaded[path])
        record(f"pages_{name}_p50_ms", alone["p50_ms"], "ms", p99_ms=alone["p99_ms"], samples=alone["samples"])
        record(f"pages_{name}_under_rest_mix_p50_ms", busy["p50_ms"], "ms", p99_ms=busy["p99_ms"],
               samples=busy["samples"], rest_mix_req_per_s=mix.get("req_per_s"))
        say(f"GET {path}: {alone['p50_ms']:.1f} ms alone, {busy['p50_ms']:.1f} ms (p99 {busy['p99_ms']:.1f}) "
            f"under the REST mix at {mix.get('req_per_s', 0):.0f} req/s")
