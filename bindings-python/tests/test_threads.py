"""Threads calling one engine in parallel, on every kind of store: the GIL is released around
store work, and the core's invariants hold whatever the interleaving."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from decimal import Decimal

import pytest

import fundcore
from conftest import RecordingNotifier

INITIAL = Decimal("500000.00")


BLOCKED_CALL_SCRIPT = r"""
import sys, threading
from decimal import Decimal
import fundcore

engine = fundcore.Engine(sys.argv[1])
ana = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
engine.subscribe(ana.id, 1)
in_send, release, b_started = threading.Event(), threading.Event(), threading.Event()
results = {}

class Waiting:
    def send(self, notification):
        in_send.set()
        assert release.wait(30)

def dispatcher():
    results["a"] = engine.dispatch_notifications(Waiting())

def requeuer():
    b_started.set()
    results["b"] = engine.retry_failed_notifications(10)

a = threading.Thread(target=dispatcher)
a.start()
assert in_send.wait(10)
b = threading.Thread(target=requeuer)
b.start()
assert b_started.wait(10)
b.join(0.3)
assert b.is_alive(), "B must be waiting for A's dispatch inside the core"
# Main thread: Python runs and other engine calls complete while A and B are inside.
assert sum(i * i for i in range(200_000)) > 0
tx = engine.subscribe(ana.id, 2)
assert engine.transaction(tx.id) == tx
assert engine.client(ana.id).balance == Decimal("300000.00")
assert "b" not in results and b.is_alive()
release.set()
a.join(10)
b.join(10)
assert not a.is_alive() and not b.is_alive()
assert results["a"].delivered == 1 and results["b"] == 0
print("ok")
"""


def test_a_call_blocked_inside_the_engine_does_not_hold_the_gil(store):
    """Thread A dispatches through a notifier that waits for the main thread; thread B calls
    an engine method that must wait for A's dispatch inside the core (one dispatch at a time).
    While B is blocked in Rust, the main thread keeps running Python and calling the engine:
    impossible unless B released the GIL (if it did not, the process deadlocks; it runs in a
    child process so that shows up here as a timeout)."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", BLOCKED_CALL_SCRIPT, store.location],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: a blocked engine call kept the GIL")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_python_threads_progress_during_engine_work(engine):
    """A CPU-bound Python loop keeps running while another thread makes many durable engine
    calls (each commit is flushed to disk with the GIL released)."""
    clients = [engine.register_client(f"C{i}", f"c{i}@example.com", "+573001234567", "email") for i in range(4)]
    done = threading.Event()
    ticks = 0

    def work():
        try:
            for _ in range(40):
                for c in clients:
                    engine.subscribe(c.id, 3)
                    engine.cancel(c.id, 3)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000
    for c in clients:
        assert engine.client(c.id).balance == INITIAL
        assert len(engine.history(c.id, limit=200)) == 80


def test_concurrent_callers_keep_the_invariants(store):
    """Eight threads race subscribe/cancel on the same three clients: no overdraft, no double
    refund, balance + active subscriptions = initial balance, every transaction notified once."""
    with store.open() as eng:
        race_and_check(eng)


@pytest.mark.postgres
def test_more_threads_than_pooled_connections_keep_the_invariants(database_url):
    """The same race on PostgreSQL through a pool of 2 connections for 8 threads: callers wait
    for a connection (with the GIL released) and the invariants still hold."""
    with fundcore.Engine(database_url, pool_size=2) as eng:
        race_and_check(eng)


def race_and_check(eng: fundcore.Engine) -> None:
    """Eight threads race on three clients of `eng`; then every invariant is checked."""
    clients = [
        eng.register_client(f"Cliente {i}", f"c{i}@example.com", "+573001234567", "email")
        for i in range(3)
    ]
    errors: list[BaseException] = []
    outcomes = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(seed: int):
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(60):
            c = rng.choice(clients)
            fund = rng.randint(1, 5)
            try:
                if rng.random() < 0.6:
                    amount = rng.choice([None, Decimal("130000"), 260000, "175000.50"])
                    eng.subscribe(c.id, fund, amount)
                else:
                    eng.cancel(c.id, fund)
                with lock:
                    outcomes["ok"] += 1
            except (fundcore.ConflictError, fundcore.ValidationError):
                with lock:
                    outcomes["refused"] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes["ok"] > 50 and outcomes["refused"] > 0

    all_ids: list[str] = []
    for c in clients:
        balance = eng.client(c.id).balance
        active = eng.subscriptions(c.id)
        assert balance >= 0
        assert balance + sum(s.amount for s in active) == INITIAL
        assert len({s.fund_id for s in active}) == len(active)
        history = []
        before = None
        while page := eng.history(c.id, limit=50, before=before):
            history += page
            before = page[-1].id
        all_ids += [t.id for t in history]
        # Replaying the history from the initial balance gives the balance and subscriptions.
        replay, open_subs = INITIAL, {}
        for t in reversed(history):
            if t.kind == "subscription":
                assert t.fund_id not in open_subs
                replay -= t.amount
                open_subs[t.fund_id] = t.amount
            else:
                assert open_subs.pop(t.fund_id) == t.amount  # refund of the stored amount
                replay += t.amount
            assert replay == t.balance_after and replay >= 0
        assert replay == balance
        assert open_subs == {s.fund_id: s.amount for s in active}
        # Exactly one outbox entry per transaction.
        assert sorted(n.transaction_id for n in eng.notifications(c.id)) == sorted(t.id for t in history)
    assert len(all_ids) == len(set(all_ids)) == outcomes["ok"]

    notifier = RecordingNotifier()
    while eng.dispatch_notifications(notifier, limit=100).delivered:
        pass
    assert len(notifier.sent) == len({n.id for n in notifier.sent}) == outcomes["ok"]


def test_concurrent_idempotent_replays_commit_once(engine, ana):
    results: list[fundcore.Transaction] = []
    lock = threading.Lock()

    def worker():
        tx = engine.subscribe(ana.id, 1, Decimal("90000"), idempotency_key="same-key")
        with lock:
            results.append(tx)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert engine.client(ana.id).balance == Decimal("410000.00")
    assert len(engine.history(ana.id)) == 1
    assert len(engine.notifications(ana.id)) == 1
