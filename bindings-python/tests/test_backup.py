"""`Engine.backup(dest)`: a consistent copy of an embedded store taken while threads subscribe
and cancel, on both stores (PostgreSQL refuses it, pointing at pg_dump)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from conftest import ANA

import fundcore
import fundcore.aio


def test_a_backup_under_load_holds_every_acknowledged_change(store, tmp_path):
    dest = tmp_path / "backup"
    with store.open() as eng:
        if store.kind == "postgres":
            eng.register_client(*ANA, channel="email")
            with pytest.raises(fundcore.StorageError) as refused:
                eng.backup(dest)
            assert "pg_dump" in refused.value.message
            assert refused.value.code == "STORAGE_ERROR"
            assert not dest.exists()
            return
        clients = [
            eng.register_client(f"Cliente {i}", f"c{i}@example.com", ANA[2], channel="email").id for i in range(40)
        ]
        acknowledged: list[tuple[float, fundcore.Transaction]] = []
        stop = threading.Event()

        def writer(seed: int) -> None:
            n = seed
            while not stop.is_set():
                n = (n * 1103515245 + 12345) % 2**31
                client, fund = clients[n % len(clients)], 1 + n % 5
                try:
                    tx = eng.subscribe(client, fund) if n % 2 else eng.cancel(client, fund)
                except fundcore.ConflictError:
                    continue
                acknowledged.append((time.monotonic(), tx))

        threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2, 3)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        eng.backup(dest)  # a str, a Path or any os.PathLike
        time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        before = [tx for at, tx in acknowledged if at < started]
        assert before, "the load ran before the backup"
    with fundcore.Engine(dest) as copy:
        for tx in before:
            assert copy.transaction(tx.id) == tx
        report = copy.verify_ledger()
        assert report.clean, report.to_dict()
        initial = copy.initial_balance
        for client in clients:
            invested = sum(s.amount for s in copy.subscriptions(client))
            assert copy.client(client).balance + invested == initial


def test_a_destination_that_exists_is_refused_and_left_as_it_was(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep").write_text("keep me")
    with fundcore.Engine(str(tmp_path / "store")) as eng:
        eng.register_client(*ANA, channel="email")
        with pytest.raises(fundcore.ValidationError) as refused:
            eng.backup(str(existing))
        assert refused.value.code == "VALIDATION_ERROR"
        assert refused.value.field == "dest"
        assert str(existing) in refused.value.message
        with pytest.raises(fundcore.StorageError) as unwritable:
            eng.backup(tmp_path / "missing" / "backup")
        assert str(tmp_path / "missing") in unwritable.value.message
    assert [p.name for p in existing.iterdir()] == ["keep"]
    assert (existing / "keep").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "store"]


def test_the_awaitable_engine_backs_up_too(tmp_path: Path):
    async def run() -> fundcore.Transaction:
        async with fundcore.aio.Engine.open(str(tmp_path / "store")) as eng:
            ana = await eng.register_client(*ANA, channel="sms")
            tx = await eng.subscribe(ana.id, 3)
            await eng.backup(tmp_path / "backup")
            return tx

    tx = asyncio.run(run())
    with fundcore.Engine(str(tmp_path / "backup")) as copy:
        assert copy.transaction(tx.id) == tx
