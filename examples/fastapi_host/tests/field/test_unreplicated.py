"""A commit whose wait for synchronous replication is cancelled is not acknowledged.

With ``synchronous_standby_names`` set, a commit waits until a standby has it. When that wait is
cancelled (a ``statement_timeout`` on the role, ``pg_cancel_backend``, a shutdown), PostgreSQL
answers the statement as a success after a WARNING that the change "has already committed
locally, but might not have been replicated to the standby": a failover then loses it. The
store reads that warning and answers ``OUTCOME_UNKNOWN`` instead of the transaction; the repeat
with the same idempotency key, once replication works, gives the one change."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import psycopg
from field_support import pg_workdir, skip_unless_field_run
from pgcluster import Cluster

import fundcore

skip_unless_field_run()


def test_a_commit_whose_replication_wait_is_cancelled_answers_outcome_unknown() -> None:
    with pg_workdir() as work:
        primary = Cluster(work / "primary").init(synchronous_commit="on")
        try:
            primary.start()
            engine = fundcore.Engine(primary.url, operation_timeout_ms=8000)
            client = engine.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
            with psycopg.connect(primary.url, autocommit=True) as admin:
                # A synchronous standby that never connects: every commit waits for it.
                admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'ghost'")
                admin.execute("SELECT pg_reload_conf()")
                time.sleep(0.3)
                outcome: dict[str, object] = {}

                def subscribe() -> None:
                    try:
                        outcome["transaction"] = engine.subscribe(client.id, 1, Decimal("75000"), idempotency_key="k-1")
                    except fundcore.FundcoreError as error:
                        outcome["error"] = error

                caller = threading.Thread(target=subscribe)
                caller.start()
                waiting: list[int] = []
                deadline = time.monotonic() + 5
                while not waiting and time.monotonic() < deadline:
                    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'").fetchall()
                    waiting = [row[0] for row in rows]
                    time.sleep(0.02)
                assert waiting, "the subscribe never waited for the standby"
                admin.execute("SELECT pg_cancel_backend(%s)", (waiting[0],))
                caller.join(10)
                assert not caller.is_alive()
                error = outcome.get("error")
                assert isinstance(error, fundcore.OutcomeUnknownError), outcome
                assert "replication" in error.message
                # The change is on the primary (committed locally), and nowhere else yet.
                count = admin.execute("SELECT count(*) FROM fundcore_transactions").fetchone()
                assert count is not None and count[0] == 1
                # Replication back (no synchronous standby required): the repeat with the key
                # returns the one change.
                admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
                admin.execute("SELECT pg_reload_conf()")
                time.sleep(0.3)
                again = engine.subscribe(client.id, 1, Decimal("75000"), idempotency_key="k-1")
                assert again.amount == Decimal("75000")
                count = admin.execute("SELECT count(*) FROM fundcore_transactions").fetchone()
                assert count is not None and count[0] == 1
            print(f"cancelled replication wait: {error.code}; the repeat returned {again.id}")
        finally:
            primary.stop()
