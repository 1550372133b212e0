"""The curl walkthroughs of the READMEs (and of docs/), run one after another on ONE demo, as a
reader who keeps the demo running runs them: in the documented order and then all of them once
more on the demo so used, and in the reverse order on another new demo.

A walkthrough is a code block marked `<!-- run-by: ... -->` that calls the demo
(`127.0.0.1:8000`) with curl; the blocks of a marker other than test_readme.py's (the accounts
section's, which run in one session) are one walkthrough. Each runs in its own bash, from a
folder laid out like the repository root, as test_readme.py and test_accounts_readme.py run them
on a new demo. Every call must answer 2xx, or the status its comment names, with the error code
it names in the body (`# too much: 409 INSUFFICIENT_BALANCE`); and the funds the demo had before
a run are as they were after it (a walkthrough that changes them sets them back). The block that
starts a server of its own (`fundcore_host.serve`) is not a walkthrough of the demo: it would
open the demo's store.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from conftest import LOOPBACK, bearer, free_port, http_call
from test_readme import STATUS_LINE, curl_blocks, expected_answers, marked_blocks, reader_env

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", REPO / "examples/fastapi_host/README.md", *sorted((REPO / "docs").glob("*.md"))]
ONE_BLOCK_EACH = "<!-- run-by: examples/fastapi_host/tests/test_readme.py -->"
RUN_BY = re.compile(r"^<!-- run-by: \S+ -->$")
DEMO = "127.0.0.1:8000"
START_OVER = "<!-- run-by: examples/fastapi_host/tests/test_readme_walkthroughs.py -->"
#: Between two calls' bodies in the file the curl wrapper appends them to.
SEPARATOR = "\x1e"


def walkthroughs() -> list[tuple[str, str]]:
    """(where, script) in the documented order: the root README, the host README, docs/."""
    found: list[tuple[str, str]] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        markers = sorted({line.strip() for line in text.splitlines() if RUN_BY.match(line.strip())})
        where = page.relative_to(REPO).as_posix()
        for marker in markers:
            blocks = marked_blocks(page, marker)
            parts = [[b] for b in blocks] if marker == ONE_BLOCK_EACH else [blocks]
            for part in parts:
                if not ("curl " in "".join(part) and DEMO in "".join(part)):
                    continue
                first = "\n".join(part[0].splitlines()[:3])
                found.append((text.index(first), where, "".join(part)))
    order = {page.relative_to(REPO).as_posix(): i for i, page in enumerate(PAGES)}
    found.sort(key=lambda item: (order[item[1]], item[0]))
    return [(f"{where} block {n}", script) for n, (_, where, script) in enumerate(found, 1)]


def work_folder(tmp_path: Path) -> Path:
    """A folder laid out like the repository root (.venv, examples), the demo's data in its own
    `data/`, so that the README's `rm -rf data` removes the demo's data."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    (work / "examples").symlink_to(REPO / "examples")
    return work


def demo(live_host, work: Path):
    """The demo as `make demo` starts it from ``work`` (`--data data`), on free ports."""
    return live_host(
        module="fundcore_host.demo",
        args=["--data", str(work / "data"), "--smtp-port", str(free_port()), "--sms-port", str(free_port())],
        env={  # the demo's own settings, as test_readme.py and test_accounts_readme.py start it
            "FUNDCORE_DATA": None,
            "FUNDCORE_RATE_LIMIT_PER_MINUTE": None,
            "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": None,
            "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": None,
            "FUNDCORE_DISPATCH_INTERVAL_MS": "100",
        },
    )


def run_all(host, work: Path, order: list[tuple[str, str]], label: str) -> list[str]:
    """Runs each walkthrough; returns what answered otherwise than its comments say."""
    bodies = work.parent / "bodies"
    wrapper = (
        "curl() {\n  local status=0\n"
        "  command curl -w '%{stderr}CURL-STATUS %{http_code} %{method} %{url_effective}\\n' \"$@\""
        f" | tee -a {shlex.quote(str(bodies))} || status=$?\n"
        f"  printf '\\n{SEPARATOR}\\n' >> {shlex.quote(str(bodies))}\n  return $status\n}}\n"
    )
    problems: list[str] = []
    seeded = catalogue(host)
    for where, script in order:
        bodies.write_text("")
        done = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + wrapper + script.replace(DEMO, f"{LOOPBACK}:{host.port}")],
            cwd=work,
            env=reader_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = STATUS_LINE.findall(done.stderr)
        answers = bodies.read_text().split(f"\n{SEPARATOR}\n")[:-1]
        expected = expected_answers(script)
        for (status, method, url), body, (wanted, code) in zip(calls, answers, expected, strict=False):
            ok = status.startswith("2") if wanted == "2xx" else status == wanted and f'"{code}"' in body
            if not ok:
                said = f"{wanted} {code}" if code else wanted
                problems.append(
                    f"{label}, {where}: {method} {url} answered {status} {body[:200]}, the README says {said}"
                )
        if done.returncode != 0 or len(calls) != len(expected):
            problems.append(
                f"{label}, {where}: exit status {done.returncode} after {len(calls)} of {len(expected)} calls: "
                + done.stderr[done.stderr.rfind("CURL-STATUS") :][:500]
            )
    now = catalogue(host)
    if any(now[fund_id] != fund for fund_id, fund in seeded.items()):
        problems.append(f"{label}: the walkthroughs left the catalogue changed: {seeded} -> {now}")
    assert "Traceback" not in host.log()
    return problems


def catalogue(host) -> dict[int, dict]:
    status, funds, _ = http_call("GET", f"{host.url}/funds", headers=bearer("operator", role="admin"))
    assert status == 200, funds
    return {fund["id"]: fund for fund in funds}


def start_over_commands() -> list[str]:
    """The commands of the READMEs' start-over blocks but the last, `make demo`."""
    blocks = [block for page in PAGES[:2] for block in marked_blocks(page, START_OVER)]
    assert len(blocks) == 2 and blocks[0] == blocks[1], blocks
    lines = [line.split("#")[0].strip() for line in blocks[0].splitlines()]
    lines = [line for line in lines if line]
    assert lines[-1] == "make demo", lines  # what demo() starts
    return lines[:-1]


def test_every_walkthrough_is_found():
    scripts = [script for _, script in walkthroughs()]
    assert all(block in scripts for _, block in curl_blocks())
    accounts = marked_blocks(
        REPO / "examples/fastapi_host/README.md", "<!-- run-by: examples/fastapi_host/tests/test_accounts_readme.py -->"
    )
    assert "".join(accounts) in scripts
    assert len(scripts) == len(curl_blocks()) + 1
    assert start_over_commands() == ["rm -rf data"]


def test_in_the_documented_order_and_again_on_the_used_demo_then_starting_over(live_host, tmp_path):
    work = work_folder(tmp_path)
    host = demo(live_host, work)
    seeded = catalogue(host)
    order = walkthroughs()
    problems = run_all(host, work, order, "first run") + run_all(host, work, order, "second run")
    assert not problems, "\n".join(problems)

    # the READMEs' way to start over: stop the demo, their commands, `make demo`: an empty store
    assert host.stop() == 0
    subprocess.run(["bash", "-c", "set -e\n" + "\n".join(start_over_commands())], cwd=work, check=True)
    host = demo(live_host, work)
    assert catalogue(host) == seeded
    status, clients, _ = http_call("GET", f"{host.url}/clients?limit=1", headers=bearer("operator", role="admin"))
    assert status == 200 and clients["items"] == [], clients
    with sqlite3.connect(work / "data" / "fundcore-accounts.sqlite3") as accounts:  # made at the first use
        tables = {name for (name,) in accounts.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "accounts" not in tables or accounts.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    assert not any((work / "data" / "mail").glob("*")) and not any((work / "data" / "sms").glob("*"))


def test_in_the_reverse_order(live_host, tmp_path):
    work = work_folder(tmp_path)
    host = demo(live_host, work)
    problems = run_all(host, work, walkthroughs()[::-1], "reverse order")
    assert not problems, "\n".join(problems)
