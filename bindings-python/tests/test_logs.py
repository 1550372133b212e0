"""The engine's events reach Python's `logging` (loggers `fundcore.*`): operation, ids and
outcome, never contact data. Run in a fresh interpreter, since the levels of loggers are cached
when first used."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import logging, sys, fundcore
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s|%(message)s")
    logging.getLogger("sled").setLevel(logging.WARNING)
    eng = fundcore.Engine()
    ana = eng.register_client("Ana Secreta", "ana.secreta@example.com", "+573001234567", channel="sms")
    eng.subscribe(ana.id, 1)
    try:
        eng.subscribe(ana.id, 1)
    except fundcore.ConflictError:
        pass
    eng.update_client(ana.id, email="otra@example.org", actor="support")
    print("CLIENT", ana.id)
    """
)


def test_engine_events_reach_python_logging_without_contact_data():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("fundcore")]
    client = out.stdout.split("CLIENT ")[1].strip()
    assert any('operation="subscribe"' in line and client in line for line in lines), out.stdout
    assert any('result="ALREADY_SUBSCRIBED"' in line for line in lines), out.stdout
    assert any('result="ok"' in line for line in lines), out.stdout
    for secret in ("Ana Secreta", "ana.secreta", "example.com", "example.org", "3001234567"):
        assert secret not in out.stdout + out.stderr, secret


METRICS_PROGRAM = textwrap.dedent(
    """
    import json, fundcore
    assert fundcore.metrics() == []          # nothing recorded before metrics are enabled
    assert fundcore.enable_metrics() is True
    assert fundcore.enable_metrics() is True  # once per process, idempotent
    eng = fundcore.Engine()
    ana = eng.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    eng.subscribe(ana.id, 1)
    try:
        eng.subscribe(ana.id, 1)
    except fundcore.ConflictError:
        pass
    print(json.dumps(fundcore.metrics()))
    """
)


def test_enabled_metrics_count_exactly_the_operations_made():
    import json

    out = subprocess.run([sys.executable, "-c", METRICS_PROGRAM], capture_output=True, text=True, timeout=60, check=True)
    metrics = json.loads(out.stdout.strip().splitlines()[-1])

    def counter(name, **labels):
        return sum(m["value"] for m in metrics if m["type"] == "counter" and m["name"] == name and m["labels"] == labels)

    assert counter("fundcore_operations_total", operation="subscribe", result="ok") == 1
    assert counter("fundcore_operations_total", operation="subscribe", result="ALREADY_SUBSCRIBED") == 1
    assert counter("fundcore_operations_total", operation="register_client", result="ok") == 1
    (subscribes,) = [m for m in metrics if m["type"] == "histogram" and m["labels"] == {"operation": "subscribe"}]
    assert subscribes["name"] == "fundcore_operation_duration_seconds"
    assert subscribes["count"] == 2 and subscribes["buckets"][-1] == [float("inf"), 2]
    counts = [count for _, count in subscribes["buckets"]]
    assert counts == sorted(counts), "cumulative buckets"
