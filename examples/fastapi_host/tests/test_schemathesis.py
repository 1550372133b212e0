"""schemathesis against the running host (as `make demo` runs it, on loopback).

Two runs:

* a plain one, without the project's hook and configuration: schemathesis's own
  ``positive_data_acceptance`` and ``negative_data_rejection`` on every request it generates from
  the document (examples, coverage, fuzzing). Every request is then read back from the run's event
  log: a request the document admits is never refused as invalid (400, 422), save
  ``BELOW_MINIMUM`` (a fund's minimum is data of the store, not a rule a document can state), and
  no other check fails (a request it does not admit is refused, no 5xx). So the document states
  every rule the engine enforces on a value.
* the full one, with every check and the stateful phase: statuses, headers and bodies as
  documented, 405 with `Allow`, authentication not ignored, and sequences that follow the
  document's links (register -> read/subscribe -> cancel ...); positive data answered 422 is
  ``BELOW_MINIMUM`` only (the check of schemathesis_hooks.py, with schemathesis.toml).

Bounded to a number of examples per operation (FUNDCORE_SCHEMATHESIS_EXAMPLES, default 200:
about a minute each on 2 cores). A failure prints schemathesis's report with a `curl` to
reproduce it and the seed to replay the run (`--seed`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, http_call

from fundcore_host.token import make_token

EXAMPLES = int(os.environ.get("FUNDCORE_SCHEMATHESIS_EXAMPLES", "200"))
HERE = Path(__file__).resolve().parent
#: Statuses of a request refused as invalid.
INVALID_STATUSES = (400, 422)
#: The one refusal of a well-formed request that is about a value: the amount is below the
#: fund's minimum, which the store holds (and an admin changes), not the document.
DATA_REFUSALS = {"BELOW_MINIMUM"}
#: The engine's 422 about how two values of a request relate, which an OpenAPI document cannot
#: state (the schema of each value is independent): a statement's `from` after its `to`.
RELATION_REFUSALS = {("GET /clients/{client_id}/statement", "from")}


def relation_refusal(exchange: dict[str, Any]) -> bool:
    answer = exchange["answer"]
    errors = answer.get("errors") if isinstance(answer, dict) else None
    return (
        code_of(exchange) == "VALIDATION_ERROR"
        and isinstance(errors, dict)
        and len(errors) == 1
        and (exchange["operation"], next(iter(errors))) in RELATION_REFUSALS
    )


def schemathesis_command(url: str, *options: str) -> list[str]:
    token = make_token(SECRET, "schemathesis-admin", "admin", ttl_s=3600)
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        *options,
        "run",
        f"{url}/openapi.json",
        "--mode",
        "all",
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


def operation_count(url: str) -> int:
    """How many operations the running host's document has (every one is tested)."""
    status, document, _ = http_call("GET", f"{url}/openapi.json")
    assert status == 200
    return sum(len(item) for item in document["paths"].values())


def decoded(content: dict[str, str] | None) -> Any:
    """A body of the event log (``{"$base64": ...}``) as JSON, or as text when it is not JSON."""
    if not content:
        return None
    raw = base64.b64decode(content["$base64"]) if "$base64" in content else content.get("string", "").encode()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def exchanges(event_log: Path) -> list[dict[str, Any]]:
    """Every request of the run with its generation mode, its answer and its checks."""
    found = []
    for line in event_log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished.get("recorder") or {}
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            case = recorder["cases"][case_id]["value"]
            response = interaction.get("response")
            if response is None:
                continue
            found.append(
                {
                    "operation": f"{case['method']} {case['path']}",
                    "mode": case["meta"]["generation"]["mode"] if case.get("meta") else None,
                    "request": {
                        "uri": interaction["request"]["uri"],
                        "headers": {k: v for k, v in interaction["request"]["headers"].items() if k != "Authorization"},
                        "body": decoded(interaction["request"].get("body")),
                    },
                    "status": response["status_code"],
                    "answer": decoded(response.get("content")),
                    "checks": (recorder.get("checks") or {}).get(case_id, []),
                }
            )
    return found


def code_of(exchange: dict[str, Any]) -> str | None:
    answer = exchange["answer"]
    return answer.get("code") if isinstance(answer, dict) else None


def refusal(exchange: dict[str, Any]) -> str:
    answer = exchange["answer"]
    code = answer.get("code") if isinstance(answer, dict) else None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    return f"{exchange['operation']} -> {exchange['status']} {code} {json.dumps(errors, ensure_ascii=False)}"


@pytest.mark.schemathesis
def test_a_plain_run_finds_no_request_the_document_admits_refused_as_invalid(live_host, tmp_path):
    host = live_host()  # without rate or sign-in limits (conftest)
    event_log = tmp_path / "events.ndjson"
    command = [
        *schemathesis_command(host.url),
        "--checks",
        "positive_data_acceptance,negative_data_rejection,not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--continue-on-failure",
        "--output-sanitize",
        "false",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(event_log),
    ]
    env = {name: value for name, value in os.environ.items() if not name.startswith("SCHEMATHESIS_")}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = done.stdout + done.stderr
    assert event_log.exists(), report[-5_000:]
    seen = exchanges(event_log)
    positive = [e for e in seen if e["mode"] == "positive"]
    refused = [
        e
        for e in positive
        if e["status"] in INVALID_STATUSES and code_of(e) not in DATA_REFUSALS and not relation_refusal(e)
    ]
    kinds = Counter(refusal(e) for e in refused)
    assert not refused, (
        f"{len(refused)} of {len(positive)} requests the document admits were refused, "
        f"{len(kinds)} kinds:\n"
        + "\n".join(f"{count:4} x {kind}" for kind, count in kinds.most_common())
        + "\nfor example:\n"
        + "\n".join(json.dumps(e["request"], ensure_ascii=False)[:600] for e in refused[:10])
    )
    # every other check of the run passed: negative data refused, no server error
    failed = [
        (e, check["name"])
        for e in seen
        for check in e["checks"]
        if check["status"] == "failure"
        and not (check["name"] == "positive_data_acceptance" and (code_of(e) in DATA_REFUSALS or relation_refusal(e)))
    ]
    assert not failed, "\n".join(f"{name}: {refusal(e)} {e['request']}" for e, name in failed[:20])
    assert f"Tested: {operation_count(host.url)}" in report, report[-5_000:]  # every operation of the document
    # the run reached the engine with what the document admits: each change was made
    accepted = {e["operation"] for e in positive if 200 <= e["status"] < 300}
    assert {
        "POST /clients",
        "PATCH /clients/{client_id}",
        "POST /funds",
        "PATCH /funds/{fund_id}",
        "POST /clients/{client_id}/subscriptions",
    } <= accepted, accepted
    assert " 500 " not in host.log() and "Traceback" not in host.log()


@pytest.mark.schemathesis
def test_the_running_host_conforms_to_its_openapi_document(live_host, tmp_path):
    host = live_host()  # without rate or sign-in limits (conftest)
    command = [
        *schemathesis_command(host.url, "--config-file", str(HERE / "schemathesis.toml")),
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py")}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20_000:] + "\n--- host log ---\n" + host.log()[-5_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5_000:]
    assert "No issues found" in report, report[-5_000:]
    assert f"Tested: {operation_count(host.url)}" in report, report[-5_000:]  # every operation of the document
    assert "API Links:" in report, report[-5_000:]  # the stateful phase followed links
    # nothing the host answered was a 5xx
    assert " 500 " not in host.log() and "Traceback" not in host.log()
