"""The host on the PostgreSQL store with two worker processes on one database (real
PostgreSQL, real processes): 64 concurrent callers on the same clients, then the invariants
checked through the API, every notification delivered exactly once, both workers serving; a
fund change made through one worker seen by the other at once; and ``GET /metrics`` adding up
both workers' counts.

Needs ``FUNDCORE_TEST_DATABASE_URL`` (a superuser URL; `make test-host` starts a private
server through scripts/with-postgres.sh); each test creates a fresh database."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, LOOPBACK, free_port, http_call, wait_until
from prometheus_client.parser import text_string_to_metric_families

from fundcore_host.demo_sinks import start_sinks

INITIAL_BALANCE = Decimal("500000")
CALLERS = 64
CALLS_PER_CALLER = 8
#: FUNDCORE_POOL_SIZE of the two-worker test: each worker's engine keeps at most this many connections.
POOL_SIZE = 3


def _psql() -> str:
    bin_dir = os.environ.get("FUNDCORE_TEST_PG_BIN")
    found = os.path.join(bin_dir, "psql") if bin_dir else shutil.which("psql")
    assert found and os.path.exists(found), "psql not found (run through make test-host)"
    return found


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    server = os.environ.get("FUNDCORE_TEST_DATABASE_URL")
    assert server, "FUNDCORE_TEST_DATABASE_URL is not set: run these tests through make test-host"
    name = f"fundcore_host_{uuid.uuid4().hex}"
    subprocess.run([_psql(), server, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    parts = urllib.parse.urlsplit(server)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    subprocess.run([_psql(), server, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def _connections_to(database_url: str) -> int:
    """How many connections the test server has open to the database of ``database_url``."""
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"
    server = os.environ["FUNDCORE_TEST_DATABASE_URL"]
    counted = subprocess.run([_psql(), server, "-Atc", query], check=True, capture_output=True, text=True)
    return int(counted.stdout)


def _worker_pids(log: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"fundcore host ready \(store: [^)]*, pid (\d+)\)", log)}


def _delivered_ids(folder: Path, suffix: str) -> Counter[str]:
    # the sinks name each file <UTC stamp>-<notification id><suffix>
    return Counter(p.name.split("-", 1)[1][: -len(suffix)] for p in folder.glob(f"*{suffix}"))


def test_two_workers_on_one_database_keep_every_invariant(database_url: str, live_host: Any, tmp_path: Path) -> None:
    sinks = start_sinks(tmp_path / "sinks", LOOPBACK, free_port(), free_port())
    try:
        host = live_host(
            env={
                "FUNDCORE_DATABASE_URL": database_url,
                "FUNDCORE_DISPATCH_INTERVAL_MS": "50",
                "FUNDCORE_POOL_SIZE": str(POOL_SIZE),
                "FUNDCORE_DATA": None,
                **sinks.notifier_env(),
            },
            args=["--workers", "2"],
        )
        wait_until(lambda: len(_worker_pids(host.log())) == 2, timeout_s=30)
        workers = _worker_pids(host.log())

        clients = []
        for i, channel in enumerate(["email", "sms", "email", "sms"]):
            status, body, _ = http_call(
                "POST",
                f"{host.url}/clients",
                {"name": f"Cliente {i}", "email": f"c{i}@example.com", "phone": f"+57300123456{i}", "channel": channel},
                ADMIN,
            )
            assert status == 201, body
            clients.append(body["id"])

        unexpected: list[tuple[int, Any]] = []
        outcomes: Counter[int] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(CALLERS)

        def caller(seed: int) -> None:
            rng = random.Random(seed)
            start.wait()
            for _ in range(CALLS_PER_CALLER):
                client = rng.choice(clients)
                fund = rng.choice([1, 2, 3])
                if rng.random() < 0.6:
                    status, body, _ = http_call(
                        "POST", f"{host.url}/clients/{client}/subscriptions", {"fund_id": fund}, ADMIN
                    )  # the fund's minimum
                    ok = {201, 409}  # 409: already subscribed, or not enough balance
                else:
                    status, body, _ = http_call(
                        "DELETE", f"{host.url}/clients/{client}/subscriptions/{fund}", headers=ADMIN
                    )
                    ok = {200, 409}  # 409 NOT_SUBSCRIBED: no active subscription to that fund
                with lock:
                    outcomes[status] += 1
                    if status not in ok:
                        unexpected.append((status, body))

        threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(t.is_alive() for t in threads)
        assert not unexpected, unexpected[:5]
        assert outcomes[201] > 0 and outcomes[200] > 0, outcomes
        # 64 callers on 2 workers, each engine within its pool (an engine's default is larger)
        assert 2 <= _connections_to(database_url) <= 2 * POOL_SIZE

        expected_notifications: set[str] = set()
        for client in clients:
            _, me, _ = http_call("GET", f"{host.url}/clients/{client}", headers=ADMIN)
            balance = Decimal(me["balance"])
            _, subscriptions, _ = http_call("GET", f"{host.url}/clients/{client}/subscriptions", headers=ADMIN)
            assert balance >= 0
            assert balance + sum(Decimal(s["amount"]) for s in subscriptions) == INITIAL_BALANCE

            history: list[dict[str, Any]] = []
            cursor = None
            while True:
                query = "limit=200" + (f"&before={cursor}" if cursor else "")
                status, page, _ = http_call("GET", f"{host.url}/clients/{client}/transactions?{query}", headers=ADMIN)
                assert status == 200, page
                history.extend(page["items"])
                cursor = page["next"]
                if not cursor:
                    break
            replayed = INITIAL_BALANCE
            for tx in reversed(history):  # oldest first
                replayed += Decimal(tx["amount"]) if tx["kind"] == "cancellation" else -Decimal(tx["amount"])
                assert replayed == Decimal(tx["balance_after"]), tx
            assert replayed == balance

            def all_delivered(client: str = client) -> list[dict[str, Any]] | None:
                _, notes, _ = http_call("GET", f"{host.url}/clients/{client}/notifications", headers=ADMIN)
                return notes if all(n["status"] == "delivered" for n in notes) else None

            notes = wait_until(all_delivered, timeout_s=60, interval_s=0.2) if history else []
            assert len(notes) == len(history)
            expected_notifications |= {n["id"] for n in notes}

        delivered = _delivered_ids(sinks.mail_dir, ".eml") + _delivered_ids(sinks.sms_dir, ".json")
        assert set(delivered) == expected_notifications
        assert all(count == 1 for count in delivered.values()), delivered.most_common(3)

        served_by = Counter(int(pid) for pid in re.findall(r"fundcore_host\.access .* ms pid=(\d+) ", host.log()))
        assert set(served_by) == workers, (served_by, workers)
        assert all(count > 0 for count in served_by.values())
        assert host.stop() == 0
    finally:
        sinks.stop()


def _served_by(host: Any, request_id: str) -> int:
    """The pid of the worker that answered the request with this ``X-Request-ID`` (its access
    line is written once the response is sent, so it is waited for)."""
    pattern = re.compile(rf"fundcore_host\.access \[{re.escape(request_id)}\] .* pid=(\d+) ")

    def found() -> int | None:
        match = pattern.search(host.log())
        return int(match.group(1)) if match else None

    pid: int = wait_until(found, timeout_s=10)
    return pid


def test_a_fund_change_through_one_worker_is_seen_by_the_other_at_once(
    database_url: str, live_host: Any, tmp_path: Path
) -> None:
    """Each change to fund 1 (a new minimum, closed, reopened) is made through one worker; the
    very next requests the other worker answers (the catalogue, a subscription at the fund's
    minimum, a cancellation) already see it."""
    host = live_host(
        env={"FUNDCORE_DATABASE_URL": database_url, "FUNDCORE_DATA": None},
        args=["--workers", "2"],
    )
    wait_until(lambda: len(_worker_pids(host.log())) == 2, timeout_s=30)
    workers = _worker_pids(host.log())
    contact = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
    status, ana, _ = http_call("POST", f"{host.url}/clients", contact, ADMIN)
    assert status == 201, ana
    subscriptions = f"{host.url}/clients/{ana['id']}/subscriptions"

    changes: list[tuple[dict[str, Any], str, bool]] = [  # the change, then fund 1's minimum and active flag
        ({"minimum": "90000"}, "90000.00", True),
        ({"active": False}, "90000.00", False),
        ({"active": True}, "90000.00", True),
        ({"minimum": "60000.50"}, "60000.50", True),
    ]
    for round_number, (change, minimum, active) in enumerate(changes):
        changed_by = f"change-{round_number}"
        status, fund, _ = http_call("PATCH", f"{host.url}/funds/1", change, ADMIN | {"X-Request-ID": changed_by})
        assert status == 200 and (fund["minimum"], fund["active"]) == (minimum, active), fund
        changer = _served_by(host, changed_by)
        other = (workers - {changer}).pop()
        seen_by_other: set[str] = set()
        for attempt in range(200):
            read_by = f"read-{round_number}-{attempt}"
            status, funds, _ = http_call("GET", f"{host.url}/funds", headers=ADMIN | {"X-Request-ID": read_by})
            assert status == 200 and (funds[0]["minimum"], funds[0]["active"]) == (minimum, active), funds[0]
            if _served_by(host, read_by) == other:
                seen_by_other.add("catalogue")

            subscribed_by = f"subscribe-{round_number}-{attempt}"
            status, tx, _ = http_call("POST", subscriptions, {"fund_id": 1}, ADMIN | {"X-Request-ID": subscribed_by})
            if active:
                assert status == 201 and tx["amount"] == minimum, tx
                status, refund, _ = http_call("DELETE", f"{subscriptions}/1", headers=ADMIN)
                assert status == 200 and refund["amount"] == minimum, refund
            else:
                assert status == 409 and tx["code"] == "FUND_INACTIVE", tx
            if _served_by(host, subscribed_by) == other:
                seen_by_other.add("subscription")
            if seen_by_other == {"catalogue", "subscription"}:
                break
        assert seen_by_other == {"catalogue", "subscription"}, f"worker {other} never answered: {seen_by_other}"

    # the trail holds each change once, as made through whichever worker
    status, trail, _ = http_call("GET", f"{host.url}/audit", headers=ADMIN)
    assert status == 200
    assert [e["request_id"] for e in trail["items"]] == [f"change-{n}" for n in reversed(range(len(changes)))]
    status, me, _ = http_call("GET", f"{host.url}/clients/{ana['id']}", headers=ADMIN)
    assert me["balance"] == "500000.00"
    assert host.stop() == 0


def test_a_bad_database_url_is_one_line_without_the_password(live_host: Any, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": f"postgresql://fundcore:s3cret-pw@{LOOPBACK}:{port}/fundcore",
            "FUNDCORE_DATA": None,
        },
        args=["--workers", "2"],
        wait=False,
    )
    assert host.process is not None
    assert host.process.wait(timeout=120) == 1
    log = host.log()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "cannot start:" in errors[0] and f"{port}" in errors[0], log
    assert "s3cret-pw" not in log and "Traceback" not in log, log


def test_several_workers_need_the_database(live_host: Any, tmp_path: Path) -> None:
    host = live_host(args=["--workers", "2"], wait=False)
    assert host.process is not None
    assert host.process.wait(timeout=60) == 2
    assert "FUNDCORE_DATABASE_URL" in host.log() and "Traceback" not in host.log()


def _scrape(host: Any, request_id: str) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], int]:
    """A ``GET /metrics`` without a token, parsed with prometheus_client's parser, and the pid of
    the worker that answered it."""
    status, body, headers = http_call("GET", f"{host.url}/metrics", headers={"X-Request-ID": request_id})
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version="), body
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }
    return samples, _served_by(host, request_id)


def test_two_workers_metrics_add_up_to_the_operations_made(database_url: str, live_host: Any, tmp_path: Path) -> None:
    """Operations spread over both workers; a scrape, whichever worker answers it, shows the sum
    over both: the engine's counters and duration histogram, the HTTP requests, the deliveries,
    and the outbox gauges once (the store's, not a sum). The metrics directory made for the run
    is removed when the host stops."""
    sinks = start_sinks(tmp_path / "sinks", LOOPBACK, free_port(), free_port())
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    try:
        host = live_host(
            env={
                "FUNDCORE_DATABASE_URL": database_url,
                "FUNDCORE_DATA": None,
                "FUNDCORE_DISPATCH_INTERVAL_MS": "50",
                "PROMETHEUS_MULTIPROC_DIR": None,
                "TMPDIR": str(temporary),
                **sinks.notifier_env(),
            },
            args=["--workers", "2"],
        )
        wait_until(lambda: len(_worker_pids(host.log())) == 2, timeout_s=30)
        workers = _worker_pids(host.log())
        (metrics_dir,) = temporary.iterdir()  # made by the parent for the workers
        assert metrics_dir.name.startswith("fundcore-metrics-")
        before, _ = _scrape(host, "scrape-before")

        # subscribe and refuse until each worker has served both at least twice
        served: Counter[tuple[int, int]] = Counter()  # (worker, status) of the subscriptions
        made: Counter[str] = Counter()
        clients = 0
        while not all(served[(pid, status)] >= 2 for pid in workers for status in (201, 409)):
            assert clients < 200, served
            contact = {
                "name": f"C{clients}",
                "email": f"c{clients}@example.com",
                "phone": "+573001234567",
                "channel": "email",
            }
            status, client, _ = http_call("POST", f"{host.url}/clients", contact, ADMIN)
            assert status == 201, client
            made["register_client"] += 1
            url = f"{host.url}/clients/{client['id']}/subscriptions"
            for attempt, expected in enumerate((201, 409)):
                request_id = f"sub-{clients}-{attempt}"
                status, body, _ = http_call("POST", url, {"fund_id": 1}, ADMIN | {"X-Request-ID": request_id})
                assert status == expected, body
                made["ok" if status == 201 else "ALREADY_SUBSCRIBED"] += 1
                served[(_served_by(host, request_id), status)] += 1
            clients += 1
        assert http_call("POST", f"{host.url}/clients/{uuid.uuid4()}/subscriptions", {"fund_id": 1}, ADMIN)[0] == 404

        def all_delivered() -> bool:
            samples, _ = _scrape(host, f"scrape-{uuid.uuid4().hex}")
            key = ("fundcore_deliveries_total", (("outcome", "delivered"),))
            return samples.get(key, 0) - before.get(key, 0) == made["ok"]

        wait_until(all_delivered, timeout_s=60, interval_s=0.2)

        def change(samples: dict[Any, float], name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return samples.get(key, 0.0) - before.get(key, 0.0)

        operation, histogram = "fundcore_operations_total", "fundcore_operation_duration_seconds"
        route = "/clients/{client_id}/subscriptions"
        subscribes = made["ok"] + made["ALREADY_SUBSCRIBED"] + 1

        def totals(samples: dict[Any, float]) -> dict[str, float]:
            """What the scrape shows of the operations made, added up over the workers."""
            return {
                "register_client": change(samples, operation, operation="register_client", result="ok"),
                "subscribed": change(samples, operation, operation="subscribe", result="ok"),
                "refused": change(samples, operation, operation="subscribe", result="ALREADY_SUBSCRIBED"),
                "not_found": change(samples, operation, operation="subscribe", result="CLIENT_NOT_FOUND"),
                "durations": change(samples, histogram + "_count", operation="subscribe"),
                "slowest_bucket": change(samples, histogram + "_bucket", operation="subscribe", le="+Inf"),
                "http_2xx": change(samples, "http_requests_total", method="POST", route=route, status="2xx"),
                "http_4xx": change(samples, "http_requests_total", method="POST", route=route, status="4xx"),
                "http_registered": change(
                    samples, "http_requests_total", method="POST", route="/clients", status="2xx"
                ),
                "http_durations": change(samples, "http_request_duration_seconds_count", method="POST", route=route),
                "delivered": change(samples, "fundcore_deliveries_total", outcome="delivered"),
                # the store's outbox, once (not one reading per worker added up)
                "outbox_delivered": samples[("fundcore_outbox_entries", (("status", "delivered"),))],
                "outbox_pending": samples[("fundcore_outbox_entries", (("status", "pending"),))],
                "oldest_pending_age": samples[("fundcore_outbox_oldest_pending_age_seconds", ())],
            }

        expected = {
            "register_client": made["register_client"],
            "subscribed": made["ok"],
            "refused": made["ALREADY_SUBSCRIBED"],
            "not_found": 1,
            "durations": subscribes,
            "slowest_bucket": subscribes,
            "http_2xx": made["ok"],
            "http_4xx": made["ALREADY_SUBSCRIBED"] + 1,
            "http_registered": clients,
            "http_durations": subscribes,
            "delivered": made["ok"],
            "outbox_delivered": made["ok"],
            "outbox_pending": 0,
            "oldest_pending_age": 0,
        }
        # scrapes until each worker has answered with these sums (a worker mirrors its engine's
        # counts every second): then every later scrape shows them too
        answered: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        shown: list[dict[str, float]] = []
        deadline = time.monotonic() + 15
        while set(answered) != workers:
            assert time.monotonic() < deadline, (expected, shown[-2:])
            samples, pid = _scrape(host, f"scrape-after-{uuid.uuid4().hex}")
            shown.append(totals(samples))
            if shown[-1] == expected:
                answered.setdefault(pid, samples)
        for n in range(4):
            samples, pid = _scrape(host, f"scrape-again-{n}")
            assert totals(samples) == expected, (pid, totals(samples))
        assert {f"counter_{pid}.db" for pid in workers} <= {f.name for f in metrics_dir.iterdir()}
        # the two answers differ only by the scrapes counted in between
        first, second = answered.values()
        differing = {key[0] for key in first.keys() | second.keys() if first.get(key) != second.get(key)}
        assert differing <= {
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "http_request_duration_seconds_count",
            "http_request_duration_seconds_sum",
            "fundcore_operations_total",  # dispatch rounds
            "fundcore_operation_duration_seconds_bucket",
            "fundcore_operation_duration_seconds_count",
            "fundcore_operation_duration_seconds_sum",
            "fundcore_outbox_oldest_pending_age_seconds",
        }, differing
        assert host.stop() == 0
        assert list(temporary.iterdir()) == []  # the metrics directory is gone
    finally:
        sinks.stop()
