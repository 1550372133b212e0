"""The code blocks of examples/fastapi_host/README.md and of the REST section of the root
README.md, run as a reader runs them (each block marked `<!-- run-by: ... test_readme.py -->`).

The curl blocks run in bash against the host started as `make demo` starts it (with its mail
server and SMS gateway), from a folder laid out like the repository root (`.venv`,
`examples`, and `data` being the demo's data). The only change to a block is the port: the
demo listens on a free port instead of 8000. Every curl call must answer 2xx, or the status its
comment names (`# too much: 409 INSUFFICIENT_BALANCE`). The block that starts the server is run
the same way until the server answers, then stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import LOOPBACK, SECRET, free_port, wait_until

REPO = Path(__file__).resolve().parents[3]
HOST_README = REPO / "examples/fastapi_host/README.md"
ROOT_README = Path(__file__).resolve().parents[3] / "README.md"
PAGES = [HOST_README, ROOT_README]
MARKER = "<!-- run-by: examples/fastapi_host/tests/test_readme.py -->"
FENCE = re.compile(r"^```")
#: A status named in a comment: `409 INSUFFICIENT_BALANCE`.
NAMED_STATUS = re.compile(r"\b([1-5][0-9]{2}) ([A-Z][A-Z_]{2,})")
#: Written by the `curl` wrapper to stderr after each call.
STATUS_LINE = re.compile(r"^CURL-STATUS (\d{3}) (\S+) (\S+)$", re.M)


def marked_blocks(page: Path, marker: str = MARKER) -> list[str]:
    """The code blocks of ``page`` whose marker (the line before them) is ``marker``: by default,
    the ones this file runs; other tests pass their own."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, previous, i = [], "", 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            j = i + 1
            while not FENCE.match(lines[j]):
                j += 1
            if previous == marker:
                blocks.append("\n".join(lines[i + 1 : j]) + "\n")
            i, previous = j + 1, ""
            continue
        if lines[i].strip():
            previous = lines[i].strip()
        i += 1
    return blocks


def curl_blocks() -> list[tuple[str, str]]:
    return [
        (page.relative_to(REPO).as_posix(), block)
        for page in PAGES
        for block in marked_blocks(page)
        if "curl " in block
    ]


def expected_answers(block: str) -> list[tuple[str, str | None]]:
    """Per curl call, in order: the status and error code its comment names (above it or after
    it, `409 INSUFFICIENT_BALANCE`), else ("2xx", None)."""
    expected: list[tuple[str, str | None]] = []
    named: tuple[str, str] | None = None
    for line in block.replace("\\\n", " ").splitlines():
        code, _, comment = line.partition("#") if not line.lstrip().startswith("#") else ("", "", line)
        if not code.strip():
            found = NAMED_STATUS.search(comment)
            named = (found.group(1), found.group(2)) if found else named
            continue
        if re.search(r"(^|[\s(])curl\s", code):
            found = NAMED_STATUS.search(comment)
            expected.append((found.group(1), found.group(2)) if found else (named or ("2xx", None)))
        named = None
    return expected


def expected_statuses(block: str) -> list[str]:
    """Per curl call, in order: the status its comment names (above it or after it), else 2xx."""
    return [status for status, _ in expected_answers(block)]


def repository_like(folder: Path, data: Path) -> Path:
    """A working folder where the README's relative paths resolve: .venv, examples and data."""
    folder.mkdir()
    (folder / ".venv").symlink_to(REPO / ".venv")
    (folder / "examples").symlink_to(REPO / "examples")
    data.mkdir(exist_ok=True)
    (folder / "data").symlink_to(data)
    return folder


def reader_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDCORE_")}
    return {**env, "FUNDCORE_JWT_SECRET": SECRET}


def test_every_marked_block_is_found():
    assert len(marked_blocks(HOST_README)) == 4
    assert len(marked_blocks(ROOT_README)) == 2
    example = (
        "# too much: 409 INSUFFICIENT_BALANCE\ncurl -s $API \\\n  -d x\n"
        "curl -s a  # 404 NOT_FOUND\n# COP 500.000\ncurl b\n"
    )
    assert expected_statuses(example) == ["409", "404", "2xx"]


@pytest.mark.parametrize("page, block", curl_blocks(), ids=lambda value: value if value.endswith(".md") else "")
def test_the_curl_calls_of_the_readme(live_host, tmp_path, page, block):
    data = tmp_path / "data"
    host = live_host(
        module="fundcore_host.demo",
        args=["--data", str(data), "--smtp-port", str(free_port()), "--sms-port", str(free_port())],
        env={"FUNDCORE_DATA": None, "FUNDCORE_RATE_LIMIT_PER_MINUTE": None, "FUNDCORE_DISPATCH_INTERVAL_MS": "100"},
    )
    assert "127.0.0.1:8000" in block
    script = block.replace("127.0.0.1:8000", f"{LOOPBACK}:{host.port}")
    wrapper = "curl() { command curl -w '%{stderr}CURL-STATUS %{http_code} %{method} %{url_effective}\\n' \"$@\"; }\n"
    done = subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + wrapper + script],
        cwd=repository_like(tmp_path / "work", data),
        env=reader_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{page}\n{done.stdout}\n{done.stderr}\n{host.log()[-3000:]}"
    calls = STATUS_LINE.findall(done.stderr)
    expected = expected_statuses(block)
    assert len(calls) == len(expected), (calls, expected, done.stderr)
    for (status, method, url), wanted in zip(calls, expected, strict=True):
        ok = status.startswith("2") if wanted == "2xx" else status == wanted
        assert ok, f"{page}: {method} {url} answered {status}, the README says {wanted}\n{done.stdout}"
    assert "Traceback" not in host.log()
    if "ls data/mail/" in block:
        mail = sorted(p.name for p in (data / "mail").glob("*.eml"))
        assert len(mail) == 3 and all(name in done.stdout for name in mail), done.stdout
        assert done.stdout.count('"status":"delivered"') == 3, done.stdout


def test_the_block_that_starts_the_server(tmp_path):
    (block,) = [b for page in PAGES for b in marked_blocks(page) if "fundcore_host.serve" in b]
    port = free_port()
    assert "--port 8000" in block and "127.0.0.1" in block
    script = block.replace("--port 8000", f"--port {port}")
    work = repository_like(tmp_path / "work", tmp_path / "data")
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", script],
            cwd=work,
            env=reader_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def healthy() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout_s=30, interval_s=0.05)
        assert (tmp_path / "data" / "fundcore").is_dir()  # FUNDCORE_DATA=./data/fundcore, as written
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the reader's terminal
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.wait(timeout=10) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "Application shutdown complete." in text, text
