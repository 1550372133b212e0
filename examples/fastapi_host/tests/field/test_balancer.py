"""Several REST host instances behind nginx on one PostgreSQL database (issue 18, item 6).

Debian's nginx runs examples/deploy/nginx.conf (the very file, its loopback ports replaced) in
front of two instances of ``python -m fundcore_host.serve --workers 2``. Many clients (threads)
make keyed subscribe/cancel requests through nginx, and repeat a request with its
Idempotency-Key on 502, 503, 504 or a lost connection. Meanwhile each instance is restarted in
turn with SIGTERM (the next one only once the restarted instance's readiness endpoint answers
200), then one is killed with SIGKILL (every process of it) and started again. The history
checker (history.py) then compares every request with the database, ``fundcore verify`` checks
the books, and every notification the hosts delivered belongs to a committed change.

examples/deploy/README.md shows the commands this test runs (the instances and nginx, with the
test's own ports and database) and the numbers of a run.

Needs FUNDCORE_TEST_DATABASE_URL (`make test-field` starts a private server) and nginx
(``apt-get install -y nginx``)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from field_support import fundcore_bin, skip_unless_field_run
from history import OK, REFUSED, Attempt, Request, check, classify_http, fundcore_verify, read_snapshot
from pgcluster import LOOPBACK, free_port

from fundcore_host.demo_sinks import start_sinks
from fundcore_host.token import make_token

skip_unless_field_run()

HOST_DIR = Path(__file__).resolve().parents[2]
SECRET = "field-test-secret-for-the-fundcore-hosts-behind-nginx-0123456789-abcdef"
ADMIN = {"Authorization": f"Bearer {make_token(SECRET, 'admin-field', 'admin', 3600)}"}

NGINX_CONF = HOST_DIR.parent / "deploy" / "nginx.conf"
CALLERS = 12
CLIENTS = 8
FUNDS = {1: 75_000, 3: 50_000, 5: 100_000}
OPERATION_TIMEOUT_S = 5.0
#: A client gives up on an attempt after this long (nginx waits up to 35 s for an instance).
CLIENT_TIMEOUT_S = 40.0
#: No attempt may take longer: the operation timeout, plus a drain's wait for the requests that
#: queued at a stopping instance, plus room for a loaded 2-core machine.
ATTEMPT_LIMIT_S = OPERATION_TIMEOUT_S + 10
#: A request stops being repeated after this long.
REQUEST_BUDGET_S = 60.0


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database on the test server; dropped afterwards."""
    server = os.environ.get("FUNDCORE_TEST_DATABASE_URL")
    assert server, "FUNDCORE_TEST_DATABASE_URL is not set: run through make test-field"
    name = f"fundcore_field_{uuid.uuid4().hex}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def request_json(
    method: str, port: int, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        data = json.dumps(body) if body is not None else None
        connection.request(method, path, data, {"Content-Type": "application/json", **ADMIN, **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw
    finally:
        connection.close()


class Instance:
    """``python -m fundcore_host.serve --workers 2`` on a loopback port, in its own process
    group (SIGKILL takes the supervisor and its workers, as when a machine dies); its log is
    appended across restarts."""

    def __init__(self, name: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.port, self.env, self.log = name, port, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fundcore_host.serve",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(self.port),
                    "--workers",
                    "2",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 60) -> float:
        """Seconds until the instance's readiness endpoint (``GET /ready``) answers 200."""
        began = time.monotonic()
        while True:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if request_json("GET", self.port, "/ready", timeout=2)[0] == 200:
                    return time.monotonic() - began
            except OSError:
                pass
            assert time.monotonic() - began < timeout_s, f"{self.name} not ready in {timeout_s} s"
            time.sleep(0.1)

    def terminate(self, timeout_s: float = 60) -> tuple[int, float]:
        """SIGTERM to the supervisor; (exit status, seconds until it exited)."""
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout_s)
        return status, time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL to every process of the instance."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(timeout_s=20)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
                os.killpg(self.process.pid, signal.SIGKILL)


class Nginx:
    """Debian's nginx on examples/deploy/nginx.conf, in the foreground, with a private prefix."""

    def __init__(self, prefix: Path, listen: int, upstreams: list[int]) -> None:
        self.prefix, self.port = prefix, listen
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        conf = NGINX_CONF.read_text()
        for old, new in [("127.0.0.1:8080;", f"127.0.0.1:{listen};")] + [
            (f"127.0.0.1:{8001 + n} ", f"127.0.0.1:{port} ") for n, port in enumerate(upstreams)
        ]:
            assert conf.count(old) == 1, f"{NGINX_CONF} no longer has {old!r} once"
            conf = conf.replace(old, new)
        (prefix / "nginx.conf").write_text(conf)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [
                nginx,
                "-p",
                str(self.prefix),
                "-c",
                str(self.prefix / "nginx.conf"),
                "-e",
                "logs/error.log",
                "-g",
                f"daemon off; pid {self.prefix / 'nginx.pid'};",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, (self.prefix / "logs" / "error.log").read_text()
            try:
                request_json("GET", self.port, "/health", timeout=2)
                return
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def upstream_statuses(self) -> list[str]:
        log = (self.prefix / "logs" / "access.log").read_text()
        return re.findall(r"upstream_status=(\S+(?:, \S+)*) request_time", log)


class LoadClient:
    """Keyed subscribe/cancel requests through nginx from many threads; each request repeated
    with its key until it is acknowledged or refused (or its budget runs out)."""

    def __init__(self, port: int, clients: list[str]) -> None:
        self.port, self.clients = port, clients
        self.history: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.caller, args=(n,), daemon=True) for n in range(CALLERS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(REQUEST_BUDGET_S + CLIENT_TIMEOUT_S + 10)
        assert not any(t.is_alive() for t in self.threads), "a load thread did not finish"

    def caller(self, seed: int) -> None:
        rng = random.Random(seed)
        connection: http.client.HTTPConnection | None = None
        while not self.stopping.is_set():
            client, fund = rng.choice(self.clients), rng.choice(list(FUNDS))
            if rng.random() < 0.55:
                amount = str(FUNDS[fund] + 1000 * rng.randint(0, 20))
                request = Request(f"t{seed}", client, fund, "subscribe", amount, str(uuid.uuid4()))
                method, path, body = "POST", f"/clients/{client}/subscriptions", {"fund_id": fund, "amount": amount}
            else:
                request = Request(f"t{seed}", client, fund, "cancel", None, str(uuid.uuid4()))
                method, path, body = "DELETE", f"/clients/{client}/subscriptions/{fund}", None
            began_request = time.monotonic()
            delay = 0.05
            while time.monotonic() - began_request < REQUEST_BUDGET_S:
                if connection is None:
                    connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=CLIENT_TIMEOUT_S)
                began = time.time()
                status: int | None = None
                answer: Any = None
                try:
                    connection.request(
                        method,
                        path,
                        json.dumps(body) if body is not None else None,
                        {"Content-Type": "application/json", "Idempotency-Key": request.key, **ADMIN},
                    )
                    response = connection.getresponse()
                    raw = response.read()
                    status = response.status
                    try:
                        answer = json.loads(raw)
                    except ValueError:
                        answer = raw
                    if response.will_close:
                        connection.close()
                        connection = None
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = None
                outcome, code, tx = classify_http(status, answer)
                request.attempts.append(Attempt(began, time.time(), outcome, code, tx))
                if outcome in (OK, REFUSED):
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            with self.lock:
                self.history.append(request)

    def answered(self) -> int:
        with self.lock:
            return len(self.history)


def _blocked_by(database_url: str, holder_pid: int) -> int:
    """How many sessions wait for a lock that the session ``holder_pid`` holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder_pid,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_rolling_restart_and_a_killed_instance_behind_nginx_lose_nothing(database_url: str, tmp_path: Path) -> None:
    """Proves: behind examples/deploy/nginx.conf, two instances of two workers each survive a
    rolling restart by SIGTERM and the SIGKILL of one instance: a request in flight when its
    instance gets SIGTERM is answered (drained: held on a row lock meanwhile, it returns 201
    after the lock is released and the instance then exits 0); every request of the load ends
    acknowledged or refused, the failed ones after the client repeated them with their
    Idempotency-Key; no attempt waits longer than the operation timeout plus a drain; the
    database holds every acknowledged change exactly once and nothing else; the books are clean;
    every notification sent belongs to a committed change."""
    binary = fundcore_bin()
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        pytest.fail("nginx is not installed (apt-get install -y nginx)")
    sinks = start_sinks(tmp_path / "sinks", LOOPBACK, free_port(), free_port())
    env = {
        **os.environ,
        "PYTHONPATH": str(HOST_DIR),
        "FUNDCORE_DATABASE_URL": database_url,
        "FUNDCORE_JWT_SECRET": SECRET,
        "FUNDCORE_RATE_LIMIT_PER_MINUTE": "0",
        "FUNDCORE_DISPATCH_INTERVAL_MS": "100",
        "FUNDCORE_POOL_SIZE": "4",
        "FUNDCORE_OPERATION_TIMEOUT": str(OPERATION_TIMEOUT_S),
        **sinks.notifier_env(),
    }
    env.pop("FUNDCORE_DATA", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ports = [free_port(), free_port()]
    instances = [Instance(f"host-{n}", port, env, tmp_path / f"host-{n}.log") for n, port in enumerate(ports)]
    nginx = Nginx(tmp_path / "nginx", free_port(), ports)
    load: LoadClient | None = None
    events: list[str] = []
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        nginx.start()
        clients = []
        for n in range(CLIENTS + 1):
            status, body = request_json(
                "POST",
                nginx.port,
                "/clients",
                {"name": f"Cliente {n}", "email": f"c{n}@example.com", "phone": "+573001234567", "channel": "email"},
            )
            assert status == 201, body
            clients.append(body["id"])
        probe_client, clients = clients[0], clients[1:]

        load = LoadClient(nginx.port, clients)
        load.start()
        time.sleep(1.5)

        # 1. host-0 gets SIGTERM with a request in flight (held on the client's row lock)
        first = instances[0]
        probe: dict[str, Any] = {}
        with psycopg.connect(database_url) as holder:
            holder.execute("SELECT 1 FROM fundcore_clients WHERE id = %s FOR UPDATE", (probe_client,))
            holder_pid = holder.info.backend_pid

            def send_probe() -> None:
                probe["answer"] = request_json(
                    "POST",
                    first.port,
                    f"/clients/{probe_client}/subscriptions",
                    {"fund_id": 1},
                    {"Idempotency-Key": "drain-probe"},
                    timeout=30,
                )

            prober = threading.Thread(target=send_probe)
            prober.start()
            deadline = time.monotonic() + 10
            while _blocked_by(database_url, holder_pid) < 1:
                assert time.monotonic() < deadline, "the probe never waited on the row lock"
                time.sleep(0.02)
            began = time.monotonic()
            first.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            time.sleep(1.0)
            assert first.process.poll() is None, "host-0 exited with a request in flight"  # type: ignore[union-attr]
            holder.commit()  # releases the lock: the in-flight request completes
        prober.join(30)
        assert probe.get("answer", (None,))[0] == 201, probe
        status = first.process.wait(30)  # type: ignore[union-attr]
        events.append(
            f"host-0 SIGTERM: drained the held request, exited {status} after {time.monotonic() - began:.1f} s"
        )
        assert status == 0
        first.start()
        events.append(f"host-0 ready again after {first.wait_ready():.1f} s")

        # 2. host-1: SIGTERM, restart, ready
        status, took = instances[1].terminate()
        events.append(f"host-1 SIGTERM: exited {status} after {took:.1f} s")
        assert status == 0
        instances[1].start()
        events.append(f"host-1 ready again after {instances[1].wait_ready():.1f} s")

        # 3. host-0 dies (SIGKILL of every process), then comes back
        time.sleep(0.5)
        first.kill()
        events.append("host-0 SIGKILL")
        time.sleep(1.0)
        first.start()
        events.append(f"host-0 ready again after {first.wait_ready():.1f} s")
        time.sleep(1.5)
        load.stop()

        history = load.history
        snapshot = read_snapshot(database_url)
        probe_request = Request(
            "probe",
            probe_client,
            1,
            "subscribe",
            None,
            "drain-probe",
            [Attempt(0, 0, OK, "201", probe["answer"][1]["id"])],
        )
        # every notification the hosts delivered: its id, in the sinks' file names (a file
        # still being written is a hidden ".<name>.partial" until it is renamed: not counted)
        delivered = Counter(
            p.name.split("-", 1)[1].rsplit(".", 1)[0]
            for folder in (sinks.mail_dir, sinks.sms_dir)
            for p in folder.iterdir()
            if not p.name.startswith(".")
        )
        by_notification = {notification: tx for tx, notification in snapshot.outbox}
        unknown_notifications = [n for n in delivered if n not in by_notification]
        notified = [by_notification[n] for n in delivered if n in by_notification]
        report = check([*history, probe_request], snapshot, notified, latency_limit_s=ATTEMPT_LIMIT_S)
        verify_status, verify_output = fundcore_verify(binary, database_url)

        statuses = nginx.upstream_statuses()
        passed_on = sum(1 for s in statuses if "," in s)
        client_saw = Counter(a.code for r in history for a in r.attempts if a.outcome not in (OK, REFUSED))
        print(f"several hosts behind nginx: {report.summary()}")
        print(
            f"  nginx: {len(statuses)} requests, {passed_on} passed on to the other instance; "
            f"clients repeated after: {dict(client_saw) or 'nothing'}; "
            f"duplicate deliveries: {sum(c - 1 for c in delivered.values())}"
        )
        for event in events:
            print(f"  {event}")
        assert report.ok, report.details()
        assert report.counts["unresolved"] == 0 and report.counts["failed"] == 0, report.summary()
        assert verify_status == 0, verify_output
        assert not unknown_notifications, unknown_notifications[:5]
        assert report.counts["acknowledged"] > 100, report.summary()
    finally:
        if load is not None and not load.stopping.is_set():
            load.stopping.set()
        nginx.stop()
        for instance in instances:
            instance.stop()
        sinks.stop()
