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
    eng = fundcore.Engine(sys.argv[1])
    ana = eng.register_client("Ana Secreta", "ana.secreta@example.com", "+573001234567", channel="sms")
    eng.subscribe(ana.id, 1)
    try:
        eng.subscribe(ana.id, 1)
    except fundcore.ConflictError:
        pass
    eng.update_client(ana.id, email="otra@example.org", actor="support")
    eng.close()
    print("CLIENT", ana.id)
    """
)


def test_engine_events_reach_python_logging_without_contact_data(store):
    # Python's logging at DEBUG for every logger: only the core's records arrive, not those of
    # the store's libraries (tokio-postgres logs every statement's parameters at DEBUG).
    out = subprocess.run([sys.executable, "-c", PROGRAM, store.location], capture_output=True, text=True,
                         timeout=60, check=True)
    records = [line for line in out.stdout.splitlines() if "|" in line]
    lines = [line for line in records if line.startswith("fundcore")]
    client = out.stdout.split("CLIENT ")[1].strip()
    assert any('operation="subscribe"' in line and client in line for line in lines), out.stdout
    assert any('result="ALREADY_SUBSCRIBED"' in line for line in lines), out.stdout
    assert any('result="ok"' in line for line in lines), out.stdout
    assert {line.split("|")[0].split(".")[0] for line in records} == {"fundcore"}, out.stdout
    for secret in ("Ana Secreta", "ana.secreta", "example.com", "example.org", "3001234567"):
        assert secret not in out.stdout + out.stderr, secret


EXIT_PROGRAM = textwrap.dedent(
    """
    import logging, sys, time, fundcore
    logging.basicConfig(level=logging.DEBUG, filename=sys.argv[2])
    eng = fundcore.Engine(sys.argv[1], durability="periodic")
    ids = [eng.register_client(f"Bench {i}", f"b{i}@example.com", "+573001234567", channel="sms").id
           for i in range(20)]
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        for client in ids:
            eng.subscribe(client, 1)
            eng.cancel(client, 1)
    print("done", flush=True)
    # the engine is not closed: the interpreter drops it on exit, holding the GIL
    """
)


def test_a_process_logging_at_debug_exits_with_its_engine_open(tmp_path):
    # The store's threads log too; were their records sent to Python, one would wait for the GIL
    # while the exiting interpreter, holding it, waits for that thread: the process would hang.
    out = subprocess.run([sys.executable, "-c", EXIT_PROGRAM, str(tmp_path / "store"), str(tmp_path / "log")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
    assert "fundcore.observe" in (tmp_path / "log").read_text()


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
