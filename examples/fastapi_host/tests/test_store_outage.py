"""The host while its PostgreSQL server goes away and comes back, without restarting the host
(a real server of the test's own, stopped and started with pg_ctl; a real host process):

* ``GET /ready`` answers 200 while the store answers, 503 ``STORAGE_ERROR`` with ``Retry-After``
  while the server is down, and 200 again once it is back; ``GET /health`` stays 200 throughout
  (a liveness probe must not have a healthy host restarted for a database outage);
* a change during the outage is a 503 with ``Retry-After``, and repeating it with its
  ``Idempotency-Key`` after the outage makes it once;
* the notification dispatcher logs one WARNING when the store goes away and one INFO when it
  is back, not an ERROR with a traceback every round.

* while every process of the server is stopped (SIGSTOP: nothing answers, nothing refuses),
  ``/ready`` and a change answer 503 within ``FUNDCORE_OPERATION_TIMEOUT``, and a change whose
  reply never came is ``OUTCOME_UNKNOWN`` whose repeat with its key, once the server runs again,
  gives the one result.

The server is private to each test (``initdb`` from ``FUNDCORE_TEST_PG_BIN``, which
scripts/with-postgres.sh sets), so stopping it disturbs no other test."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, LOOPBACK, RecordingNotifier, http_call, wait_until
from page_forms import ORIGIN, csrf_of, post_form, sign_up

import fundcore

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

    def processes(self) -> list[int]:
        """The server's processes: the postmaster and its children (backends, workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Every process of the server stopped (SIGSTOP): connections open and accepted, and
        nothing answers, as a hung server or a silent network looks to a client."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # a frozen server would never stop
            self.thaw()
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


#: FUNDCORE_OPERATION_TIMEOUT of the frozen-server test, and what an answer may take beyond it
#: (the HTTP round trip and a loaded machine).
FROZEN_TIMEOUT_S = 1.0
FROZEN_SLACK_S = 3.0


def timed_call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[Any, float]:
    started = time.monotonic()
    answer = http_call(method, url, body, headers, timeout_s=60)
    return answer, time.monotonic() - started


def test_a_frozen_server_is_a_503_within_the_operation_timeout(
    private_postgres: PrivatePostgres, live_host: Any
) -> None:
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": private_postgres.url,
            "FUNDCORE_DATA": None,
            "FUNDCORE_DISPATCH_INTERVAL_MS": str(DISPATCH_INTERVAL_MS),
            "FUNDCORE_OPERATION_TIMEOUT": str(FROZEN_TIMEOUT_S),
        }
    )
    status, client, _ = http_call(
        "POST",
        f"{host.url}/clients",
        {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
        ADMIN,
    )
    assert status == 201, client
    subscriptions = f"{host.url}/clients/{client['id']}/subscriptions"
    key = {"Idempotency-Key": "frozen-1", **ADMIN}
    # the client and fund 1 seen by the engine, so the change below is one write
    assert http_call("POST", subscriptions, {"fund_id": 1}, ADMIN)[0] == 201
    assert http_call("DELETE", f"{subscriptions}/1", headers=ADMIN)[0] == 200

    private_postgres.freeze()
    try:
        (status, body, headers), took = timed_call("GET", f"{host.url}/ready")
        assert (status, body["code"], headers["Retry-After"]) == (503, "STORAGE_ERROR", "1"), body
        assert took < FROZEN_TIMEOUT_S + FROZEN_SLACK_S, took
        (status, body, _), took = timed_call("GET", f"{host.url}/health")
        assert (status, body) == (200, {"status": "ok"}) and took < 1.0, took
        (status, refused, headers), took = timed_call("POST", subscriptions, {"fund_id": 1, "amount": "80000"}, key)
        assert status == 503 and headers["Retry-After"] == "1", refused
        # the write was sent and no answer came: only the server knows whether it committed
        assert refused["code"] == "OUTCOME_UNKNOWN", refused
        assert took < FROZEN_TIMEOUT_S + FROZEN_SLACK_S, took
    finally:
        private_postgres.thaw()

    wait_until(lambda: get(host, "/ready")[0] == 200, timeout_s=30, interval_s=0.1)
    status, tx, _ = http_call("POST", subscriptions, {"fund_id": 1, "amount": "80000"}, key)
    assert status == 201 and Decimal(tx["balance_after"]) == Decimal("420000.00"), tx
    status, history, _ = http_call("GET", f"{host.url}/clients/{client['id']}/transactions", headers=ADMIN)
    assert [item["kind"] for item in history["items"]] == ["subscription", "cancellation", "subscription"], history
    wait_until(lambda: "dispatch resumed" in host.log(), timeout_s=30)
    lines = dispatcher_lines(host.log())
    assert len([line for line in lines if "cannot be reached" in line]) == 1, lines
    assert "Traceback" not in host.log()


def test_a_page_confirmation_whose_reply_was_lost_is_sent_again_with_its_key(
    private_postgres: PrivatePostgres, app_factory: Any, tmp_path: Path
) -> None:
    """The portal while the server is frozen: a confirmed subscription whose reply never came
    answers a page that says the change may have been saved and offers the same form again,
    with the same idempotency key; sent once the server runs again, it gives the one result."""
    engine = fundcore.Engine(private_postgres.url, operation_timeout_ms=int(FROZEN_TIMEOUT_S * 1000))
    site = app_factory(notifier=RecordingNotifier(), eng=engine, accounts_path=str(tmp_path / "accounts.sqlite3"))
    sign_up(site)
    client_id = engine.clients(50).items[0].id
    # the client and fund 1 seen by the engine, so the confirmation below is one write
    assert post_form(site, "/funds/1/subscribe", {"amount": "75000", "idempotency_key": "warm"}).status_code == 303
    assert post_form(site, "/subscriptions/1/cancel", {"idempotency_key": "warm-c"}, from_page="/").status_code == 303
    token = csrf_of(site.get("/funds/1/subscribe").text)
    form = {"amount": "80000", "idempotency_key": "lost-reply", "csrf_token": token}
    private_postgres.freeze()
    try:
        answer = site.post("/funds/1/subscribe", data=form, headers=ORIGIN, follow_redirects=False)
    finally:
        private_postgres.thaw()
    assert answer.status_code == 503, answer.text
    assert "puede haberse guardado" in answer.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', answer.text))
    assert hidden["idempotency_key"] == "lost-reply" and hidden["amount"] == "80000"
    wait_until(lambda: engine.clients(1) is not None, timeout_s=30, interval_s=0.1)
    again = site.post("/funds/1/subscribe", data=hidden, headers=ORIGIN, follow_redirects=False)
    assert again.status_code == 303, again.text
    assert [tx.kind for tx in engine.history(client_id)] == ["subscription", "cancellation", "subscription"]
    assert engine.client(client_id).balance == Decimal("420000.00")
