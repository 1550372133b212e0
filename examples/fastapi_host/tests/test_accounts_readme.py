"""The code blocks of the accounts section of examples/fastapi_host/README.md (marked
`<!-- run-by: examples/fastapi_host/tests/test_accounts_readme.py -->`), run as a reader runs
them: in one bash session, in order, against the host started as `make demo` starts it, from a
folder laid out like the repository root. Every curl call must answer 2xx, or the status its
comment names. And the sign-up lines that `make demo` prints, run the same way."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import LOOPBACK, free_port, http_call
from test_readme import STATUS_LINE, expected_statuses, marked_blocks, reader_env, repository_like

HOST_README = Path(__file__).resolve().parents[1] / "README.md"  # examples/fastapi_host/README.md
MARKER = "<!-- run-by: examples/fastapi_host/tests/test_accounts_readme.py -->"
CURL_WRAPPER = "curl() { command curl -w '%{stderr}CURL-STATUS %{http_code} %{method} %{url_effective}\\n' \"$@\"; }\n"


def demo(live_host, tmp_path: Path):
    data = tmp_path / "data"
    return data, live_host(
        module="fundcore_host.demo",
        args=["--data", str(data), "--smtp-port", str(free_port()), "--sms-port", str(free_port())],
        env={  # the demo's own settings: the default limits
            "FUNDCORE_DATA": None,
            "FUNDCORE_RATE_LIMIT_PER_MINUTE": None,
            "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": None,
            "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": None,
        },
    )


def run_as_reader(
    script: str, work: Path, stdin: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str, str]]]:
    done = subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + CURL_WRAPPER + script],
        cwd=work,
        env=reader_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, STATUS_LINE.findall(done.stderr)


def test_the_accounts_blocks_of_the_readme(live_host, tmp_path):
    blocks = marked_blocks(HOST_README, MARKER)
    assert len(blocks) == 2 and "/auth/sign-up" in blocks[0] and "create-operator" in blocks[1]
    data, host = demo(live_host, tmp_path)
    script = "".join(blocks).replace("127.0.0.1:8000", f"{LOOPBACK}:{host.port}")
    done, calls = run_as_reader(script, repository_like(tmp_path / "work", data))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{host.log()[-3000:]}"
    expected = [status for block in blocks for status in expected_statuses(block)]
    assert [status for status, _, _ in calls] == [
        "201",
        "409",
        "200",
        "200",
        "401",
        "200",
        "401",
        "401",
        "200",
        "204",
        "200",
        "200",
    ] and len(expected) == len(calls)
    for (status, method, url), wanted in zip(calls, expected, strict=True):
        assert status.startswith("2") if wanted == "2xx" else status == wanted, (method, url, status, wanted)
    assert '"code":"ACCOUNT_EXISTS"' in done.stdout and '"code":"INVALID_CREDENTIALS"' in done.stdout
    assert '"action":' in done.stdout or '"items":' in done.stdout  # the operator read the audit trail
    assert (data / "fundcore-accounts.sqlite3").is_file()  # beside the demo's store, as the README says
    assert "Traceback" not in host.log()


def test_the_sign_up_lines_make_demo_prints(live_host, tmp_path):
    data, host = demo(live_host, tmp_path)
    banner = host.log()
    lines = banner.split("then sign in, from another terminal:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # the operator account's command is printed with the pages (the console is for operators)
    browser = banner.split("In a browser:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    lines += [line for line in browser if "create-operator" in line]
    script = "\n".join(line.strip() for line in lines) + "\n"
    assert "/auth/sign-up" in script and "create-operator" in script
    done, calls = run_as_reader(script, repository_like(tmp_path / "work", data), stdin="demo operator passphrase\n")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{host.log()[-3000:]}"
    assert [status for status, _, _ in calls] == ["201", "200", "200"], calls
    assert "operator account" in done.stdout
    # the command wrote the store the demo's host reads: the operator signs in there
    status, operator, _ = http_call(
        "POST", f"{host.url}/auth/sign-in", {"email": "ops@example.com", "password": "demo operator passphrase"}
    )
    assert status == 200 and operator["role"] == "admin", operator
