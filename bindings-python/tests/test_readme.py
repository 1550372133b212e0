"""Every Python block of bindings-python/README.md, and the Python quickstart of the root
README.md, runs as written and prints what its comments say.

Each block runs in a fresh interpreter (the fork example needs a process that has opened no
store yet) with a temporary working directory, so relative store paths land there. The
PostgreSQL block runs against a fresh database of the test server, named by
FUNDCORE_DATABASE_URL with a password the server does not ask for, which must not be printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fresh_database

BINDING_README = Path(__file__).resolve().parents[1] / "README.md"
ROOT_README = Path(__file__).resolve().parents[2] / "README.md"

MARKER = "<!-- run-by: bindings-python/tests/test_readme.py -->"

#: What each block prints, in order, keyed by a line that identifies the block.
EXPECTED = {
    "print([f.name for f in eng.funds()])": [
        "subscription 80000.00 420000.00",
        "80000.00",
        "INSUFFICIENT_BALANCE - No tiene saldo disponible para vincularse al fondo FDO-ACCIONES",
        "not float",
        "\n500000.00\n",
        "DispatchReport(delivered=2, retried=0, failed=0)",
    ],
    "page = eng.history_page(ana.id, limit=2)": [
        "2 True",
        "1 None",
        "\n1\n",
        "VALIDATION_ERROR phone 422",
        "the phone must be in E.164 format, e.g. +573001234567",
        "FUND_NOT_FOUND 404 - Fund 1099511627776 not found",
    ],
    "class AsyncMailer:": [
        "DispatchReport(delivered=0, retried=1, failed=0)",
        "pending - TypeError: send returned an awaitable (coroutine), so nothing was delivered;",
    ],
    "class LoopNotifier:": [
        "-> ana@example.com",
        "DispatchReport(delivered=1, retried=0, failed=0)",
    ],
    "def worker(path):": ["425000.00", "\n0\n"],
    'URL = os.environ["FUNDCORE_DATABASE_URL"]': ["postgresql://…@127.0.0.1:", "[0, 0]", "375000.00"],
    # The root README's Python quickstart.
    "print([t.to_dict() for t in eng.history(ana.id, limit=50)])": [
        "subscription 80000.00 420000.00",
        "INSUFFICIENT_BALANCE No tiene saldo disponible para vincularse al fondo FDO-ACCIONES",
        "\n500000.00\n",
        "'kind': 'cancellation'",
    ],
}


def python_blocks(readme: Path) -> list[tuple[int, str, str]]:
    """(line, marker line before it, code) of every ```python block."""
    text = readme.read_text()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        blocks.append((text[: match.start()].count("\n") + 1, before.strip(), match.group(1)))
    return blocks


#: A password in the URL a block is given, which nothing may print.
PASSWORD = "readme-password"


def needs_database(code: str) -> bool:
    return "FUNDCORE_DATABASE_URL" in code


BLOCKS = [
    pytest.param(
        code,
        id=f"{readme.parent.name}/{readme.name}:{line}",
        marks=[pytest.mark.postgres] if needs_database(code) else [],
    )
    for readme in (BINDING_README, ROOT_README)
    for line, marker, code in python_blocks(readme)
    if readme == BINDING_README or marker == MARKER
]


def test_every_python_block_of_the_binding_readme_is_marked_as_run_here():
    blocks = python_blocks(BINDING_README)
    assert len(blocks) == 6
    assert sum(needs_database(code) for _, _, code in blocks) == 1
    assert [marker for _, marker, _ in blocks] == [MARKER] * len(blocks)
    assert any(marker == MARKER for _, marker, _ in python_blocks(ROOT_README))


@pytest.mark.parametrize("code", BLOCKS)
def test_readme_block_runs_as_written(code, tmp_path):
    [key] = [key for key in EXPECTED if key in code]  # each block has its expectations
    env = dict(os.environ)
    if needs_database(code):
        scheme, rest = fresh_database().split("://", 1)
        user, location = rest.split("@", 1)  # the test server's URL names a user, no password
        env["FUNDCORE_DATABASE_URL"] = f"{scheme}://{user}:{PASSWORD}@{location}"
    script = tmp_path / "readme_block.py"  # a file, so that "spawn" workers can import it
    script.write_text(code, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "RuntimeWarning" not in out.stderr, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    position = 0
    for expected in EXPECTED[key]:
        found = out.stdout.find(expected, position)
        assert found >= 0, f"{expected!r} not printed (in order) by the block:\n{out.stdout}"
        position = found + len(expected.rstrip("\n"))
