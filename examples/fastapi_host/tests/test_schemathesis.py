"""schemathesis against the running host (as `make demo` runs it, on loopback), with every
check: positive data accepted or refused by the engine (never by the host: the check of
schemathesis_hooks.py, with schemathesis.toml), negative data refused, statuses, headers and
bodies as documented, 405 with `Allow`, authentication not ignored, and stateful sequences that
follow the document's links (register -> read/subscribe -> cancel ...).

Bounded to a number of examples per operation (FUNDCORE_SCHEMATHESIS_EXAMPLES, default 200:
about a minute on 2 cores). A failure prints schemathesis's report with a `curl` to reproduce
it and the seed to replay the run (`--seed`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SECRET

from fundcore_host.token import make_token

EXAMPLES = int(os.environ.get("FUNDCORE_SCHEMATHESIS_EXAMPLES", "200"))
HERE = Path(__file__).resolve().parent


@pytest.mark.schemathesis
def test_the_running_host_conforms_to_its_openapi_document(live_host, tmp_path):
    host = live_host()
    token = make_token(SECRET, "schemathesis-admin", "admin", ttl_s=3600)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{host.url}/openapi.json",
        "--checks",
        "all",
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py")}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20_000:] + "\n--- host log ---\n" + host.log()[-5_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5_000:]
    assert "No issues found" in report, report[-5_000:]
    assert "Tested: 15" in report, report[-5_000:]  # every operation of the document
    assert "API Links:" in report, report[-5_000:]  # the stateful phase followed links
    # nothing the host answered was a 5xx
    assert " 500 " not in host.log() and "Traceback" not in host.log()
