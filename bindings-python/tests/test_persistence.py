"""Reopening a store gives the same state, on every kind of store; an embedded store's
directory is locked while an engine has it open."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, RecordingNotifier


def snapshot(eng, client_id):
    return (
        eng.funds(),
        eng.client(client_id),
        eng.subscriptions(client_id),
        eng.history(client_id, limit=200),
        eng.notifications(client_id),
    )


def populate(eng):
    c = eng.register_client(*ANA, channel="email")
    eng.subscribe(c.id, 1, Decimal("80000"), idempotency_key="k-1")
    eng.subscribe(c.id, 3, "60000.50")
    eng.cancel(c.id, 1)
    eng.dispatch_notifications(RecordingNotifier(), limit=1)
    return c


def test_drop_and_reopen_gives_the_same_state(store):
    eng = store.open()
    if store.kind == "sled":
        assert eng.path == store.location
    c = populate(eng)
    before = snapshot(eng, c.id)
    del eng
    gc.collect()
    eng = store.open()
    assert snapshot(eng, c.id) == before
    assert eng.client(c.id).balance == Decimal("439999.50")
    # An idempotent replay after reopening still returns the original transaction.
    first = eng.history(c.id, limit=200)[-1]
    assert eng.subscribe(c.id, 1, Decimal("80000"), idempotency_key="k-1") == first
    eng.close()


def test_the_store_is_locked_while_open_and_released_by_close(tmp_path):
    path = tmp_path / "store"
    eng = fundcore.Engine(path)
    with pytest.raises(fundcore.StorageError):
        fundcore.Engine(path)
    eng.close()
    with fundcore.Engine(path) as again:
        assert len(again.funds()) == 5
    assert again.closed
    with fundcore.Engine(path):
        pass


def test_released_when_garbage_collected(tmp_path):
    path = str(tmp_path / "store")

    def use():
        eng = fundcore.Engine(path)
        populate(eng)
        # no close(): the engine goes away with this frame

    use()
    gc.collect()
    with fundcore.Engine(path) as eng:
        assert len(eng.funds()) == 5


def test_a_store_keeps_the_rules_it_was_created_with(store):
    funds = [fundcore.Fund(9, "UNICO", 1000, "FIC")]
    with store.open(initial_balance=10000, funds=funds) as eng:
        assert eng.initial_balance == Decimal("10000.00")
    with store.open() as eng:
        assert eng.initial_balance == Decimal("10000.00")
        assert eng.funds() == [fundcore.Fund(9, "UNICO", Decimal("1000.00"), "FIC")]


def test_periodic_durability_with_explicit_flush(tmp_path):
    path = tmp_path / "store"
    with fundcore.Engine(path, durability="periodic", flush_interval_ms=60_000) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        eng.flush()
    with fundcore.Engine(path) as eng:
        assert eng.client(c.id).balance == Decimal("425000.00")
    with pytest.raises(fundcore.ValidationError):
        fundcore.Engine(flush_interval_ms=100)  # an interval only makes sense with "periodic"


def test_committed_work_survives_a_killed_process(store):
    """A child process subscribes (durability every_commit) and dies without closing; the
    parent reopens the store and finds everything that was acknowledged."""
    child = textwrap.dedent(
        f"""
        import os, sys
        from decimal import Decimal
        import fundcore
        eng = fundcore.Engine({store.location!r})
        c = eng.register_client("Ana", "ana@example.com", "+573001234567", "sms")
        tx = eng.subscribe(c.id, 2, Decimal("150000"))
        print(c.id, tx.id, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True)
    client_id, tx_id = out.stdout.split()
    with store.open() as eng:
        assert eng.client(client_id).balance == Decimal("350000.00")
        assert eng.transaction(tx_id).amount == Decimal("150000.00")
        [n] = eng.notifications(client_id)
        assert (n.status, n.recipient) == ("pending", "+573001234567")
    assert store.kind != "sled" or os.path.isdir(store.location)
