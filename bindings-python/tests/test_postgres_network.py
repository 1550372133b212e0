"""`operation_timeout_ms` and `OutcomeUnknownError` through a real network fault: a small TCP
proxy on loopback between the engine and the test server that can go silent (accept a
connection and never answer) or lose the server's replies (forward what the engine sends, drop
what the server answers). SPEC §10.1: no call waits on the network longer than the operation
timeout, and a change whose reply was lost and whose outcome cannot be learned is
`OUTCOME_UNKNOWN`; repeating it with the same idempotency key makes it exactly once."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import fundcore
from conftest import ANA

pytestmark = pytest.mark.postgres

#: The deadline the engines of these tests are given.
TIMEOUT_MS = 1000
#: What a call may take beyond its deadline here (a slow machine, a lookup's own round trip).
SLACK_S = 4.0


class FaultProxy:
    """Forwards loopback TCP to `upstream` while `mode` is "forward". In "drop_replies" the
    engine's bytes still reach the server, the server's answers are thrown away, and a new
    connection is accepted and never answered (as a half-open network after the reply was
    lost); in "silent" nothing is forwarded either way."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = None
        if self.mode == "forward":
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                return
            self._sockets.append(server)
        peers = [client] + ([server] if server is not None else [])
        while not self._closed.is_set():
            try:
                readable, _, _ = select.select(peers, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if server is None or self.mode == "silent":
                        continue
                    if sock is client:
                        server.sendall(data)
                    elif self.mode == "forward":
                        client.sendall(data)
            except OSError:
                break
        for sock in peers:
            sock.close()

    def url(self, database_url: str) -> str:
        """`database_url` through the proxy."""
        scheme, rest = database_url.split("://", 1)
        userinfo, tail = rest.rsplit("@", 1)
        database = tail.split("/", 1)[1]
        return f"{scheme}://{userinfo}@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def proxy(database_url) -> Iterator[FaultProxy]:
    location = database_url.rsplit("@", 1)[1].split("/", 1)[0]
    host, port = location.rsplit(":", 1)
    faults = FaultProxy((host, int(port)))
    yield faults
    faults.close()


def timed(call: Callable[[], Any], limit_s: float) -> tuple[Any, BaseException | None, float]:
    """Runs `call` in a thread: its result, what it raised and how long it took. A call still
    running after `limit_s` fails the test (it is left behind, blocked on the network)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome["error"] = error
        outcome["took"] = time.monotonic() - started

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        pytest.fail(f"the call was still waiting on the network after {limit_s:.0f} s")
    return outcome.get("value"), outcome.get("error"), outcome["took"]


def test_connecting_to_a_silent_server_fails_within_the_operation_timeout(proxy, database_url):
    """`operation_timeout_ms` reaches the store: a server that accepts and never answers is a
    StorageError after about that long, not after the default's 10 s or never."""
    proxy.mode = "silent"
    url = proxy.url(database_url)
    _, error, took = timed(lambda: fundcore.Engine(url, operation_timeout_ms=TIMEOUT_MS), 30)
    assert type(error) is fundcore.StorageError, error
    assert took < TIMEOUT_MS / 1000 + SLACK_S, took


def test_a_lost_reply_is_outcome_unknown_and_its_repeat_makes_the_change_once(proxy, database_url):
    """The server commits a subscribe whose answer is lost and the network stays silent: the
    call is `OutcomeUnknownError` (a StorageError) within the deadline; once the network is
    back, the same call with the same key succeeds, and the money moved once."""
    url = proxy.url(database_url)
    with fundcore.Engine(url, operation_timeout_ms=TIMEOUT_MS) as eng:
        ana = eng.register_client(*ANA, channel="email")
        # The engine has now seen the client and fund 1: the next subscribe is one write.
        eng.subscribe(ana.id, 1, idempotency_key="warm-up")
        eng.cancel(ana.id, 1)
        proxy.mode = "drop_replies"
        _, error, took = timed(lambda: eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-lost"), 60)
        assert isinstance(error, fundcore.OutcomeUnknownError), error
        assert isinstance(error, fundcore.StorageError)
        assert (error.code, error.http_status) == ("OUTCOME_UNKNOWN", 503)
        assert took < TIMEOUT_MS / 1000 + SLACK_S, took

        proxy.mode = "forward"
        tx, error, _ = timed(lambda: eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-lost"), 60)
        assert error is None, error
        assert tx.balance_after == Decimal("420000.00")
        assert eng.client(ana.id).balance == Decimal("420000.00")
        kinds = [t.kind for t in eng.history(ana.id)]
        assert kinds == ["subscription", "cancellation", "subscription"]
