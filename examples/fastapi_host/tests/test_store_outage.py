"""The host while its PostgreSQL server goes away and comes back, without restarting the host
(a real server of the test's own, stopped and started with pg_ctl; a real host process):

* ``GET /ready`` answers 200 while the store answers, 503 ``STORAGE_ERROR`` with ``Retry-After``
  while the server is down, and 200 again once it is back; ``GET /health`` stays 200 throughout
  (a liveness probe must not have a healthy host restarted for a database outage);
* a change during the outage is a 503 with ``Retry-After``, and repeating it with its
  ``Idempotency-Key`` after the outage makes it once;
* the notification dispatcher logs one WARNING when the store goes away and one INFO when it
  is back, not an ERROR with a traceback every round.

The server is private to each test (``initdb`` from ``FUNDCORE_TEST_PG_BIN``, which
scripts/with-postgres.sh sets), so stopping it disturbs no other test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, LOOPBACK, http_call, wait_until

#: The dispatcher's interval: during a 2 s outage it tries some 40 rounds.
DISPATCH_INTERVAL_MS = 50
OUTAGE_S = 2.0


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a loopback port, run as ``postgres`` when we are root
    (as scripts/with-postgres.sh and core/tests/postgres.rs do)."""

    def __init__(self) -> None:
        bin_dir = os.environ.get("FUNDCORE_TEST_PG_BIN")
        if not bin_dir:
            pytest.fail("FUNDCORE_TEST_PG_BIN is not set: run these tests through make test-host")
        self.bin = Path(bin_dir)
        self.work = Path(tempfile.mkdtemp(prefix="fundcore-host-outage."))
        if os.getuid() == 0:
            shutil.chown(self.work, "postgres")
        self.data = self.work / "data"
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"
        self._as_owner("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '{LOOPBACK}'\nport = {self.port}\nunix_socket_directories = '{self.work}'\n"
            )

    def _as_owner(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        self._as_owner("pg_ctl", "-D", str(self.data), "-l", str(self.work / "log"), "-w", "start")

    def stop(self) -> None:
        self._as_owner("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._as_owner("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


def get(host: Any, path: str) -> tuple[int, Any, Any]:
    return http_call("GET", f"{host.url}{path}", timeout_s=30)


def dispatcher_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " fundcore_host.dispatcher " in line]


def test_ready_follows_the_store_and_the_dispatcher_logs_the_outage_once(
    private_postgres: PrivatePostgres, live_host: Any
) -> None:
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": private_postgres.url,
            "FUNDCORE_DATA": None,
            "FUNDCORE_DISPATCH_INTERVAL_MS": str(DISPATCH_INTERVAL_MS),
            "FUNDCORE_OPERATION_TIMEOUT": "3",
            "FUNDCORE_POOL_SIZE": "2",
        }
    )
    assert get(host, "/ready")[:2] == (200, {"status": "ready"})
    status, client, _ = http_call(
        "POST",
        f"{host.url}/clients",
        {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
        ADMIN,
    )
    assert status == 201, client
    subscriptions = f"{host.url}/clients/{client['id']}/subscriptions"

    private_postgres.stop()
    outage_started = time.monotonic()
    status, body, headers = wait_until(lambda: (answer := get(host, "/ready"))[0] == 503 and answer, timeout_s=30)
    assert body["status"] == "error" and body["code"] == "STORAGE_ERROR" and body["message"], body
    assert set(body) == {"status", "code", "message", "errors"} and body["errors"] is None
    assert headers["Retry-After"] == "1"
    assert get(host, "/health")[:2] == (200, {"status": "ok"})  # alive, though not ready

    key = {"Idempotency-Key": "outage-1", **ADMIN}
    status, refused, headers = http_call("POST", subscriptions, {"fund_id": 1, "amount": "80000"}, key)
    assert status == 503 and refused["code"] in {"STORAGE_ERROR", "OUTCOME_UNKNOWN"}, refused
    assert headers["Retry-After"] == "1"
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
    assert get(host, "/ready")[0] == 503

    private_postgres.start()
    wait_until(lambda: get(host, "/ready")[0] == 200, timeout_s=30, interval_s=0.1)
    assert get(host, "/ready")[1] == {"status": "ready"}
    status, tx, _ = http_call("POST", subscriptions, {"fund_id": 1, "amount": "80000"}, key)
    assert status == 201, tx
    status, again, _ = http_call("POST", subscriptions, {"fund_id": 1, "amount": "80000"}, key)
    assert (status, again) == (201, tx)  # the same key: the first result, nothing more
    status, account, _ = http_call("GET", f"{host.url}/clients/{client['id']}", headers=ADMIN)
    assert Decimal(account["balance"]) == Decimal("420000.00")

    wait_until(lambda: "dispatch resumed" in host.log(), timeout_s=30)
    lines = dispatcher_lines(host.log())
    went_away = [line for line in lines if " WARNING " in line and "cannot be reached" in line]
    came_back = [line for line in lines if " INFO " in line and "answers again" in line]
    assert len(went_away) == 1 and len(came_back) == 1, lines
    assert "STORAGE_ERROR" in went_away[0]
    assert not [line for line in lines if " ERROR " in line], lines
    assert "Traceback" not in host.log() and "dispatch round failed" not in host.log()
    # the subscription's email is dispatched: the dispatcher works again
    wait_until(lambda: "dispatch round: delivered=1" in host.log(), timeout_s=30)
