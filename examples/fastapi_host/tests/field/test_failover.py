"""Failover of PostgreSQL under a keyed load (issue 18, item 5), on loopback.

A primary and a hot standby (``pg_basebackup -R``); three engine processes (engine_load.py:
``fundcore.Engine(url)``, several calling threads and a dispatcher each) on the multi-host URL
``postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/postgres?target_session_attrs=read-write``.
Under load the standby stops receiving WAL for a second (the primary refuses and ends its
replication connection, as when their network drops), then every process of the primary is killed with SIGKILL and the
standby is promoted with ``pg_ctl promote``; the load goes on, nothing is restarted. Afterwards
the history checker (history.py) compares every request with the new primary, and ``fundcore
verify`` checks its books.

Each run prints its numbers: requests acknowledged / refused / failed / unresolved, attempts that
failed, requests retried, changes lost, and how long the failover took for the callers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from field_support import fundcore_bin, pg_workdir, skip_unless_field_run
from history import OK, REFUSED, Report, Request, check, fundcore_verify, load_history, read_snapshot
from pgcluster import Cluster

import fundcore

skip_unless_field_run()

PROCESSES = 3
THREADS = 3
CLIENTS = 9
#: Every call must return within the engine's operation deadline plus this.
SLACK_S = 3.0
AFTER_S = 3.0  # load after the promotion
GRACE_S = 2.0  # after the promotion, every attempt that starts this much later must succeed
HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    history: list[Request]
    report: Report
    verify_status: int
    verify_output: str
    cut_at: float
    killed_at: float
    promoted_at: float
    deadline_s: float
    notified: list[str]

    def first_ack_after(self, moment: float) -> float | None:
        ends = [a.ended for r in self.history for a in r.attempts if a.outcome == OK and a.started >= moment]
        return min(ends) if ends else None

    def numbers(self, label: str) -> str:
        first = self.first_ack_after(self.killed_at)
        outage = f"{first - self.killed_at:.2f} s" if first else "never"
        return (
            f"{label}: {self.report.summary()}; primary killed -> promoted "
            f"{self.promoted_at - self.killed_at:.2f} s, -> first acknowledged call {outage}; "
            f"deadline {self.deadline_s:.0f} s + {SLACK_S:.0f} s"
        )


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {timeout_s} s"
        time.sleep(0.05)


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _lines(paths: list[Path]) -> int:
    return sum(len(p.read_text().splitlines()) for p in paths if p.exists())


def run_failover(
    tmp_path: Path,
    synchronous: bool,
    operation_timeout_s: float,
    cut_s: float,
    detect_s: float,
) -> Run:
    """The scenario of the module; ``cut_s``: how long the standby receives nothing before the
    primary dies; ``detect_s``: from the primary's death to the promotion (an operator or a
    failover manager)."""
    binary = fundcore_bin()
    with pg_workdir() as base:
        return _run_failover(tmp_path, base, binary, synchronous, operation_timeout_s, cut_s, detect_s)


def _run_failover(
    tmp_path: Path,
    base: Path,
    binary: str,
    synchronous: bool,
    operation_timeout_s: float,
    cut_s: float,
    detect_s: float,
) -> Run:
    primary = Cluster(base / "primary")
    standby = Cluster(base / "standby")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        primary.init(
            wal_level="replica",
            synchronous_commit="on",
            synchronous_standby_names="'*'" if synchronous else "''",
        ).start()
        standby.standby_of(primary).start()
        expected_state = "sync" if synchronous else "async"
        _wait(
            lambda: _query(primary.url, "SELECT sync_state FROM pg_stat_replication") == [(expected_state,)],
            30,
            f"a streaming {expected_state} standby",
        )
        url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
            "?target_session_attrs=read-write"
        )
        with fundcore.Engine(url) as setup:
            clients = [
                setup.register_client(f"Cliente {n}", f"c{n}@example.com", "+573001234567", "email").id
                for n in range(CLIENTS)
            ]

        stop = tmp_path / "stop"
        histories = [tmp_path / f"history-{n}.jsonl" for n in range(PROCESSES)]
        sent = [tmp_path / f"notified-{n}.jsonl" for n in range(PROCESSES)]
        outputs = [tmp_path / f"process-{n}.log" for n in range(PROCESSES)]
        for n in range(PROCESSES):
            with open(outputs[n], "wb") as out:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            str(HERE / "engine_load.py"),
                            *("--url", url, "--clients", ",".join(clients), "--name", f"p{n}"),
                            *("--out", str(histories[n]), "--notified", str(sent[n]), "--stop", str(stop)),
                            *("--threads", str(THREADS), "--operation-timeout", str(operation_timeout_s)),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait(lambda: _lines(histories) >= 60, 30, "60 answered requests before the failover")

        # the standby stops receiving: the primary ends its replication connection and refuses new ones
        primary.refuse_replication()
        _wait(lambda: not _query(primary.url, "SELECT 1 FROM pg_stat_replication"), 10, "the standby cut off")
        cut_at = time.time()
        time.sleep(cut_s)
        assert not _query(primary.url, "SELECT 1 FROM pg_stat_replication"), "the standby reconnected"

        primary.kill()
        killed_at = time.time()
        time.sleep(detect_s)
        standby.promote()
        promoted_at = time.time()
        time.sleep(AFTER_S)

        stop.touch()
        for process in processes:
            process.wait(timeout=120)
        logs = "\n".join(p.read_text() for p in outputs)
        assert all(p.returncode == 0 for p in processes), logs
        deadline = operation_timeout_s

        history = load_history(histories)
        notified = [
            json.loads(line)["transaction_id"]
            for path in sent
            if path.exists()
            for line in path.read_text().splitlines()
        ]
        snapshot = read_snapshot(standby.url)
        report = check(history, snapshot, notified, latency_limit_s=deadline + SLACK_S)
        status, output = fundcore_verify(binary, url)
        return Run(history, report, status, output, cut_at, killed_at, promoted_at, deadline, notified)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        primary.stop()
        standby.stop()


def test_synchronous_standby_failover_keeps_every_acknowledged_change(tmp_path: Path) -> None:
    """Proves: with synchronous replication (``synchronous_standby_names = '*'``,
    ``synchronous_commit = on``), SIGKILL of the primary and promotion of the standby lose no
    acknowledged change, even with changes committed on the primary that the standby never
    received. The standby is cut off for 3 s, longer than the engines' 2 s operation deadline,
    while the primary still runs: commits wait for the standby, and a call that gives up at its
    deadline must not be acknowledged on the strength of the primary's local commit (PostgreSQL
    reports a commit whose wait for the standby was cancelled as done, and a lookup on the
    primary sees it). The promotion also takes longer (3 s) than the deadline, so the calls in
    flight when the primary died cannot learn their outcome in time either: they answer
    OUTCOME_UNKNOWN within the deadline, and their repeat with the same key after the promotion
    makes each change exactly once. No change is applied twice;
    nothing is notified that did not commit; every call returns within the deadline; calls
    succeed again after the promotion with no process restarted; the new primary's books are
    clean (``fundcore verify``)."""
    run = run_failover(tmp_path, synchronous=True, operation_timeout_s=2.0, cut_s=3.0, detect_s=3.0)
    print(run.numbers("failover, synchronous standby"))
    assert run.report.ok, run.report.details()
    assert run.verify_status == 0, run.verify_output
    assert run.report.counts["acknowledged"] > 0 and run.report.counts["unresolved"] == 0, run.report.summary()
    after = [r for r in run.history if r.attempts and r.attempts[0].started >= run.promoted_at]
    assert any(r.outcome == OK for r in after), "no call acknowledged after the promotion"
    late_failures = [
        (r.key, a)
        for r in run.history
        for a in r.attempts
        if a.started >= run.promoted_at + GRACE_S and a.outcome not in (OK, REFUSED)
    ]
    assert not late_failures, f"calls still failing {GRACE_S} s after the promotion: {late_failures[:5]}"


def test_asynchronous_standby_failover_can_lose_acknowledged_changes(tmp_path: Path) -> None:
    """Proves what asynchronous replication costs, and that the checker sees it: the same
    scenario with ``synchronous_standby_names = ''``. While the standby receives nothing the
    primary keeps acknowledging changes; they die with it. Guaranteed, and asserted: every change
    whose call started after the standby was cut off and was acknowledged before the primary died
    is missing on the new primary and reported lost by the checker (and there are some). The new
    primary's own books still add up (``fundcore verify`` is clean): the loss shows only in the
    callers' history. The test prints what was lost."""
    run = run_failover(tmp_path, synchronous=False, operation_timeout_s=5.0, cut_s=1.0, detect_s=0.5)
    print(run.numbers("failover, asynchronous standby"))
    print(run.report.details(limit=5))
    doomed = {
        r.key
        for r in run.history
        for a in r.attempts
        if a.outcome == OK and a.started >= run.cut_at and a.ended <= run.killed_at
    }
    assert doomed, "no change was acknowledged while the standby was cut off: the run shows nothing"
    reported = {key for key in doomed if any(f"key={key}:" in line for line in run.report.lost)}
    assert reported == doomed, f"acknowledged after the cut, not reported lost: {sorted(doomed - reported)[:5]}"
    assert run.verify_status == 0, run.verify_output
    # what asynchronous replication does not cost: duplicates, unrequested or refused changes
    for kind in ("duplicated", "refused_present", "unrequested", "ledger", "outbox", "mismatched"):
        assert not run.report.violations[kind], run.report.details()
