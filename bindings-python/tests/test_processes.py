"""Engines and processes. On every kind of store an engine inherited through fork() fails fast
with StorageError instead of hanging, and an engine opened after the fork works. An embedded
store is used by one process at a time (another process's is refused plainly); a PostgreSQL
database is shared by engines in any number of processes."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, RecordingNotifier

FAST = 1.0  # seconds: an inherited engine must answer well within this


def use_inherited_engine(eng, client_id, tx_id, conn):
    """Runs in the forked child: every engine call, timed, then close(); reports to `conn`."""
    calls = {
        "register_client": lambda: eng.register_client("Bo", "bo@example.com", "+573009876543", "sms"),
        "client": lambda: eng.client(client_id),
        "subscribe": lambda: eng.subscribe(client_id, 2, Decimal("125000")),
        "cancel": lambda: eng.cancel(client_id, 1),
        "subscriptions": lambda: eng.subscriptions(client_id),
        "history": lambda: eng.history(client_id, limit=10),
        "transaction": lambda: eng.transaction(tx_id),
        "notifications": lambda: eng.notifications(client_id),
        "dispatch_notifications": lambda: eng.dispatch_notifications(RecordingNotifier()),
        "retry_failed_notifications": lambda: eng.retry_failed_notifications(),
        "flush": lambda: eng.flush(),
        "funds": lambda: eng.funds(),
        "fund": lambda: eng.fund(1),
        "initial_balance": lambda: eng.initial_balance,
    }
    for name, call in calls.items():
        started = time.monotonic()
        try:
            call()
            outcome = ("returned", None, None)
        except Exception as err:  # reported to the parent, which asserts on it
            outcome = (type(err).__name__, getattr(err, "code", None), str(err))
        conn.send((name, *outcome, time.monotonic() - started))
    started = time.monotonic()
    eng.close()  # must neither hang nor touch the parent's store
    conn.send(("close", "returned", None, None, time.monotonic() - started))
    conn.close()


def run_forked_child(eng, client_id, tx_id):
    """Forks, runs `use_inherited_engine` in the child; returns its reports. Fails (rather than
    hangs) if the child does not finish in time."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=use_inherited_engine, args=(eng, client_id, tx_id, send))
    child.start()
    send.close()
    reports = []
    deadline = time.monotonic() + 20 * FAST
    while time.monotonic() < deadline and receive.poll(max(0.0, deadline - time.monotonic())):
        try:
            reports.append(receive.recv())
        except EOFError:
            break
    child.join(timeout=5)
    if child.is_alive():
        child.kill()
        child.join()
    hung = [] if reports and reports[-1][0] == "close" else ["the child hung"]
    assert not hung, f"{hung}; it reported {[r[0] for r in reports]}"
    assert child.exitcode == 0
    return reports


@pytest.mark.parametrize(
    ("locale", "phrases"),
    [
        ("es", ("otro proceso", "abra el motor después del fork")),
        ("en", ("another process", "open the engine after the fork")),
    ],
)
def test_an_engine_used_in_a_forked_child_raises_storage_error_at_once(store, locale, phrases):
    eng = store.open(locale=locale)
    ana = eng.register_client(*ANA, channel="email")
    tx = eng.subscribe(ana.id, 1, Decimal("80000"))

    reports = run_forked_child(eng, ana.id, tx.id)

    *calls, (_, closed, _, _, close_seconds) = reports
    assert len(calls) == 14
    for name, kind, code, message, seconds in calls:
        assert (name, kind, code) == (name, "StorageError", "STORAGE_ERROR"), message
        assert all(phrase in message for phrase in phrases), message
        assert seconds < FAST, (name, seconds)
    assert closed == "returned" and close_seconds < FAST

    # The parent's engine (its connections, for PostgreSQL) and store are untouched by the child.
    bo = eng.register_client("Bo", "bo@example.com", "+573009876543", channel="sms")
    eng.subscribe(bo.id, 3)
    assert eng.client(ana.id).balance == Decimal("420000.00")
    eng.close()
    with store.open() as again:
        assert [t.kind for t in again.history(ana.id)] == ["subscription"]
        assert again.client(bo.id).balance == Decimal("450000.00")
        assert len(again.notifications(ana.id)) == 1


def open_in_forked_child(path, conn):
    """Runs in a forked child: opens an engine of its own; reports the outcome to `conn`."""
    started = time.monotonic()
    try:
        with fundcore.Engine(path) as eng:
            eng.register_client(*ANA, channel="email")
        outcome = ("returned", None, None)
    except Exception as err:  # reported to the parent, which asserts on it
        outcome = (type(err).__name__, getattr(err, "code", None), str(err))
    conn.send((*outcome, time.monotonic() - started))
    conn.close()


def test_a_child_of_a_process_that_opened_a_store_cannot_open_one_and_says_why(tmp_path):
    """The embedded store's worker threads stay in the parent: once this process has opened a
    store (every test here has), a forked child opening its own would wait forever for them.
    It gets StorageError at once instead."""
    with fundcore.Engine(tmp_path / "parent"):
        pass
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=open_in_forked_child, args=(str(tmp_path / "child"), send))
    child.start()
    send.close()
    try:
        assert receive.poll(20 * FAST), "the child hung"
        kind, code, message, seconds = receive.recv()
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()
    assert (kind, code) == ("StorageError", "STORAGE_ERROR"), message
    assert "fork()" in message and "ninguno en el proceso padre antes de crearlos" in message
    assert seconds < FAST


OPEN_AFTER_FORK = textwrap.dedent(
    """
    import multiprocessing, sys
    import fundcore

    def child(path, results):
        with fundcore.Engine(path) as eng:
            ana = eng.register_client("Ana", "ana@example.com", "+573001234567", "email")
            eng.subscribe(ana.id, 1)
            results.put(ana.id)

    if __name__ == "__main__":
        path = sys.argv[1]
        ctx = multiprocessing.get_context("fork")
        results = ctx.SimpleQueue()
        worker = ctx.Process(target=child, args=(path, results))
        worker.start()
        worker.join(timeout=30)
        assert worker.exitcode == 0, worker.exitcode
        client_id = results.get()
        with fundcore.Engine(path) as eng:     # the parent opens it only now
            print(eng.client(client_id).balance)
    """
)


def test_an_engine_opened_after_the_fork_works_in_the_child(store, tmp_path):
    """The documented pattern, in a fresh interpreter that has opened no store before forking:
    the child opens its own engine and works; the parent sees its changes afterwards."""
    script = tmp_path / "open_after_fork.py"
    script.write_text(OPEN_AFTER_FORK)
    out = subprocess.run(
        [sys.executable, str(script), store.location],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "425000.00"


HOLD_STORE = textwrap.dedent(
    """
    import sys
    import fundcore
    eng = fundcore.Engine(sys.argv[1])
    print("HOLDING", flush=True)
    sys.stdin.read()
    eng.close()
    """
)


@pytest.mark.parametrize(
    ("locale", "phrase"), [("es", "otro proceso"), ("en", "another process")]
)
def test_a_store_another_process_holds_is_refused_plainly(tmp_path, locale, phrase):
    path = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STORE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        with pytest.raises(fundcore.StorageError) as raised:
            fundcore.Engine(path, locale=locale)
        err = raised.value
        assert err.code == "STORAGE_ERROR"
        assert str(path) in err.message and phrase in err.message
        assert "PostgreSQL" in err.message
        for internal in ("WouldBlock", "IO error", "acquire", "os error", "Errno"):
            assert internal not in err.message, err.message
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    with fundcore.Engine(path) as eng:  # released once the other process closed it
        assert len(eng.funds()) == 5


# ------------------------------------------------------------------ PostgreSQL: shared by processes


def connect_in_forked_child(url, conn):
    """Runs in a forked child: connects an engine of its own, registers and subscribes a
    client; reports its id (or the error) to `conn`."""
    started = time.monotonic()
    try:
        with fundcore.Engine(url) as eng:
            bo = eng.register_client("Bo", "bo@example.com", "+573009876543", channel="sms")
            eng.subscribe(bo.id, 3)
        outcome = ("returned", bo.id, None)
    except Exception as err:  # reported to the parent, which asserts on it
        outcome = (type(err).__name__, getattr(err, "code", None), str(err))
    conn.send((*outcome, time.monotonic() - started))
    conn.close()


@pytest.mark.postgres
def test_a_forked_child_connects_its_own_engine_while_the_parent_keeps_its_own(database_url, tmp_path):
    """Unlike an embedded store, a database may be opened in a child of a process that has
    engines open (here one on PostgreSQL and one on an embedded store): the child connects its
    own engine and works, the parent's engine keeps working and sees the child's changes."""
    with fundcore.Engine(tmp_path / "embedded"), fundcore.Engine(database_url) as parent:
        ana = parent.register_client(*ANA, channel="email")
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=connect_in_forked_child, args=(database_url, send))
        child.start()
        send.close()
        try:
            assert receive.poll(20 * FAST), "the child hung"
            kind, bo_id, message, seconds = receive.recv()
        finally:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
        assert kind == "returned", message
        assert child.exitcode == 0
        assert parent.client(bo_id).balance == Decimal("450000.00")
        assert parent.subscribe(ana.id, 1).balance_after == Decimal("425000.00")


SHARING_PROCESS = textwrap.dedent(
    """
    import json, sys
    import fundcore

    url, shared, fund = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with fundcore.Engine(url) as eng:
        own = eng.register_client("Bo", "bo@example.com", "+573009876543", "sms")
        tx = eng.subscribe(shared, fund)
        print(json.dumps({"client": own.id, "tx": tx.id, "fund": fund}), flush=True)
        other = json.loads(sys.stdin.readline())
        # The other process's commits are visible here.
        seen = eng.transaction(other["tx"])
        assert (seen.client_id, seen.fund_id) == (shared, other["fund"]), seen
        assert eng.client(other["client"]).name == "Bo"
        assert {tx.id, other["tx"]} <= {t.id for t in eng.history(shared)}
        refund = eng.cancel(shared, fund)
        print(json.dumps({"refund": refund.id}), flush=True)
    """
)


@pytest.mark.postgres
def test_engines_in_two_processes_share_one_database(database_url):
    """Two interpreters each open `fundcore.Engine(url)` on one database, commit on the same
    client at the same time, and each sees the other's transactions; the state adds up."""
    with fundcore.Engine(database_url) as eng:
        ana = eng.register_client(*ANA, channel="email")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SHARING_PROCESS, database_url, ana.id, str(fund)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fund in (1, 3)
    ]
    try:
        first = [p.stdout.readline() for p in processes]
        if all(first):
            for process, other in zip(processes, reversed(first)):
                process.stdin.write(other)
                process.stdin.close()
            for process in processes:
                process.wait(timeout=60)
    finally:
        for process in processes:  # a process that failed may leave the other waiting
            if process.poll() is None:
                process.kill()
                process.wait()
    failures = [p.stderr.read() for p in processes if p.returncode != 0]
    assert failures == []
    refunds = [json.loads(p.stdout.readline())["refund"] for p in processes]
    commits = [json.loads(line)["tx"] for line in first]
    with fundcore.Engine(database_url) as eng:
        history = eng.history(ana.id)
        assert sorted(t.id for t in history) == sorted(commits + refunds)
        assert sorted(t.kind for t in history) == ["cancellation"] * 2 + ["subscription"] * 2
        assert eng.client(ana.id).balance == Decimal("500000.00")
        assert eng.subscriptions(ana.id) == []
        assert len(eng.notifications(ana.id)) == 4
