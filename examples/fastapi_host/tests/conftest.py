"""Shared fixtures: a real fundcore engine (temporary store), the app, tokens, and real loopback
servers (aiosmtpd SMTP, an http.server SMS gateway)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

import fundcore
from fundcore_host.app import create_app
from fundcore_host.config import Settings, SmsSettings, SmtpSettings
from fundcore_host.token import make_token

SECRET = "test-secret-for-the-fundcore-host-suite-0123456789-0123456789-0123"
LOOPBACK = "127.0.0.1"

#: Engine retry policy for tests: short backoff so retries happen within a test's time.
FAST_RETRY = {"retry_base_delay_ms": 20, "retry_max_delay_ms": 100, "max_attempts": 1000}


def make_engine(path: str | None = None, **overrides: Any) -> Any:
    kwargs = {**FAST_RETRY, **overrides}
    return fundcore.Engine(path, **kwargs) if path is not None else fundcore.Engine(**kwargs)


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        data_path="unused-the-tests-pass-an-engine",
        jwt_secret=SECRET,
        dispatch_interval_ms=20,
        rate_limit_per_minute=0,
        log_level="INFO",
    )
    base.update(overrides)
    return Settings(**base)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def bearer(sub: str, role: str = "client", secret: str = SECRET, ttl_s: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(secret, sub, role, ttl_s)}"}


#: Minted once at import: valid for a day, so a long session (schemathesis, repeated runs) never
#: outlives it (with 600 s it expired under a slow run).
ADMIN = bearer("admin-1", "admin", ttl_s=86_400)


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is exactly the error envelope of docs/errors.md with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "code", "message", "errors"}, body
    assert body["status"] == "error"
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert body["errors"] is None or (
        isinstance(body["errors"], dict)
        and body["errors"]
        and all(isinstance(k, str) and isinstance(v, str) for k, v in body["errors"].items())
    ), body
    return body


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- app fixtures


@pytest.fixture
def engine() -> Any:
    return make_engine()


@pytest.fixture
def app_factory(engine: Any) -> Iterator[Callable[..., TestClient]]:
    """Build a started app (lifespan entered) on the test's engine; closed at teardown."""
    opened: list[TestClient] = []

    def build(notifier: Any = None, eng: Any = None, **settings: Any) -> TestClient:
        app = create_app(make_settings(**settings), engine=eng or engine, notifier=notifier)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


class RecordingNotifier:
    """A real Python notifier (the engine calls it) that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.lock = threading.Lock()

    def send(self, notification: Any) -> None:
        with self.lock:
            self.sent.append(notification)


@pytest.fixture
def api(app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory(notifier=RecordingNotifier())


def register(
    api: TestClient, name: str = "Ana", channel: str = "email", phone: str = "+573001234567", email: str | None = None
) -> dict[str, Any]:
    body = {"name": name, "email": email or f"{name.lower()}@example.com", "phone": phone, "channel": channel}
    response = api.post("/clients", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


# ----------------------------------------------------------------------------- SMTP server


class SmtpRecorder:
    """aiosmtpd handler: records every accepted message; refuses recipients listed in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import email
        from email import policy

        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "to": str(msg["To"]),
                    "subject": str(msg["Subject"]),
                    "body": msg.get_content().replace("\r\n", "\n").rstrip("\n"),
                    "message_id": str(msg["Message-ID"]),
                    "notification_id": str(msg["X-Fundcore-Notification-Id"]),
                }
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on loopback that can be stopped and started again on the same port."""

    def __init__(self, port: int, **controller_kwargs: Any) -> None:
        self.port = port
        self.recorder = SmtpRecorder()
        self.kwargs = controller_kwargs
        self.controller: Controller | None = None

    def start(self) -> None:
        assert self.controller is None
        deadline = time.monotonic() + 10
        while True:
            controller = Controller(self.recorder, hostname=LOOPBACK, port=self.port, **self.kwargs)
            try:
                controller.start()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.controller = controller

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self.recorder.lock:
            return list(self.recorder.messages)

    def settings(self, **overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = dict(
            host=LOOPBACK, port=self.port, tls="none", sender="fondos@example.com", timeout_s=5.0
        )
        values.update(overrides)
        return SmtpSettings(**values)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


# ----------------------------------------------------------------------------- SMS gateway


class GatewayServer:
    """A real HTTP receiver on loopback standing in for the SMS gateway."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status_queue: list[int] = []  # statuses to answer next (then 200)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with outer.lock:
                    status = outer.status_queue.pop(0) if outer.status_queue else 200
                    outer.requests.append(
                        {
                            "path": self.path,
                            "status": status,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "json": json.loads(raw.decode("utf-8")),
                        }
                    )
                payload = json.dumps({"accepted": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/sms"

    @property
    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] < 300]

    def settings(self, **overrides: Any) -> SmsSettings:
        values: dict[str, Any] = dict(gateway_url=self.url, token="gw-token", timeout_s=5.0)
        values.update(overrides)
        return SmsSettings(**values)


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


# ----------------------------------------------------------------------------- the host as `make demo` runs it

HOST_DIR = Path(__file__).resolve().parents[1]


class LiveHost:
    """``python -m fundcore_host.serve`` in its own process on a loopback port (as `make demo`
    runs it), its log in a file."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str | None] | None = None,
        module: str = "fundcore_host.serve",
        args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = data_dir / f"host-{self.port}.log"
        merged: dict[str, str | None] = {
            **os.environ,
            "PYTHONPATH": str(HOST_DIR),
            "FUNDCORE_DATA": str(data_dir / "fundcore"),
            "FUNDCORE_JWT_SECRET": SECRET,
            # no rate limit, nor sign-in limits (the host's own accounts): a test that wants them sets them
            "FUNDCORE_RATE_LIMIT_PER_MINUTE": "0",
            "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": "1000000",
            "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": "1000000",
            **(env or {}),
        }
        self.env = {k: v for k, v in merged.items() if v is not None}  # None: unset
        self.module = module
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.module == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(HOST_DIR),
                "--factory",
                "fundcore_host.app:create_app",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--no-access-log",
            ]
        return [sys.executable, "-m", self.module, "--host", LOOPBACK, "--port", str(self.port), *self.args]

    def start(self, wait: bool = True) -> LiveHost:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.log_path.parent)
            )
        if wait:
            wait_until(self.ready, timeout_s=30, interval_s=0.05)
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the host exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


@pytest.fixture
def live_host(tmp_path: Path) -> Iterator[Callable[..., LiveHost]]:
    """Start hosts with ``live_host(env=..., data_dir=...)``; all are stopped at teardown."""
    started: list[LiveHost] = []

    def start(
        env: dict[str, str | None] | None = None,
        data_dir: Path | None = None,
        wait: bool = True,
        module: str = "fundcore_host.serve",
        args: list[str] | None = None,
    ) -> LiveHost:
        host = LiveHost(data_dir or tmp_path, env, module, args)
        started.append(host)
        return host.start(wait=wait)

    yield start
    for host in reversed(started):
        host.stop()


def http_call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout_s: float = 30
) -> tuple[int, Any, Any]:
    """One HTTP request over a real socket: (status, parsed JSON body or raw bytes, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw, status, response_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        with error:
            raw, status, response_headers = error.read(), error.code, error.headers
    try:
        return status, json.loads(raw), response_headers
    except ValueError:
        return status, raw, response_headers


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """``env(FUNDCORE_X="...")``: the settings of an environment with exactly these variables."""
    for name in list(os.environ):
        if name.upper().startswith("FUNDCORE_"):
            monkeypatch.delenv(name)

    def settings_of(**variables: str) -> Settings:
        for name in list(os.environ):
            if name.upper().startswith("FUNDCORE_"):
                monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return Settings.from_env()

    return settings_of


@pytest.fixture
def site(app_factory: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    """The app with its pages, on the test's engine, its accounts in a SQLite file of the test."""
    return app_factory(notifier=RecordingNotifier(), accounts_path=str(tmp_path / "accounts.sqlite3"))
