"""The host's own accounts on PostgreSQL (a real server: ``FUNDCORE_TEST_DATABASE_URL``, a
fresh database per test), where several workers and hosts share them:

* the account store behaves the same on both backends (SQLite and PostgreSQL), and two store
  instances on one database (two workers) share accounts, refresh tokens and counters: a token
  rotated through one is a second use through the other, one token presented through several at
  once rotates once, the sign-in counters add up;
* workers that start at once create the schema once, without an error;
* the account store failing after the engine registered a sign-up's client (the database turned
  read-only between the two steps) leaves a pending account that the next sign-in completes;
* two live workers: sign-up through one, sign-in, refresh and the second use through the other,
  and the sign-in limit counted across both;
* a database that stops answering: a 503 within the operation timeout, then calls work again;
* the engine's database stopped under a sign-up: STORAGE_ERROR, and no account left.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import SECRET, RecordingNotifier, assert_envelope, http_call, make_settings, wait_until
from fastapi.testclient import TestClient
from test_store_outage import PrivatePostgres

import fundcore
from fundcore_host.app import create_app
from fundcore_host.auth.accounts import open_account_store
from fundcore_host.auth.store import (
    APPLICATION_NAME,
    PG_SCHEMA,
    Account,
    AccountExistsError,
    AccountStore,
    PostgresAccountStore,
    SqliteAccountStore,
    StoredSession,
)
from fundcore_host.auth.tokens import refresh_token_digest
from fundcore_host.token import decode_token, make_token

PASSWORD = "correct horse battery staple"
ANA = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email", "password": PASSWORD}


def server_url() -> str:
    url = os.environ.get("FUNDCORE_TEST_DATABASE_URL")
    assert url, "FUNDCORE_TEST_DATABASE_URL is not set: run these tests through scripts/with-postgres.sh"
    return url


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    name = f"fundcore_accounts_{uuid.uuid4().hex}"
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url())._replace(path=f"/{name}"))
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: Any, tmp_path: Path) -> Iterator[Callable[[], AccountStore]]:
    """Makes store instances on one account store (two instances: two workers of one host)."""
    made: list[AccountStore] = []
    if request.param == "sqlite":

        def make() -> AccountStore:
            made.append(SqliteAccountStore(tmp_path / "accounts.sqlite3"))
            return made[-1]

        yield make
    else:
        url = request.getfixturevalue("database_url")

        def make() -> AccountStore:
            made.append(PostgresAccountStore(url, timeout_s=5))
            return made[-1]

        yield make
    for store in made:
        store.close()


def client_account(email: str = "ana@example.com") -> Account:
    return Account(
        id=str(uuid.uuid4()),
        email=email,
        role="client",
        client_id=fundcore.new_client_id(),
        password_hash="$argon2id$stand-in",
        status="active",
        created_at=time.time(),
    )


def test_an_email_has_one_account_on_both_backends(stores):
    first, second = stores(), stores()
    ana = client_account()
    first.insert_account(ana)
    with pytest.raises(AccountExistsError) as exists:
        second.insert_account(client_account())
    assert exists.value.account.id == ana.id and exists.value.account.client_id == ana.client_id
    assert second.account_by_email("ana@example.com") == ana


def test_a_token_rotated_through_one_worker_is_a_second_use_through_the_other(stores):
    worker_a, worker_b = stores(), stores()
    ana = client_account()
    worker_a.insert_account(ana)
    now = time.time()
    worker_a.start_family("family-1", ana.id, refresh_token_digest("t1"), now, now + 60)
    rotated = worker_b.rotate_refresh_token(refresh_token_digest("t1"), refresh_token_digest("t2"), now)
    assert (rotated.outcome, rotated.account) == ("rotated", ana)
    assert worker_a.rotate_refresh_token(refresh_token_digest("t1"), refresh_token_digest("t3"), now).outcome == (
        "reused"
    )
    assert worker_b.rotate_refresh_token(refresh_token_digest("t2"), refresh_token_digest("t4"), now).outcome == (
        "revoked"
    )
    assert worker_a.rotate_refresh_token(refresh_token_digest("nope"), refresh_token_digest("t5"), now).outcome == (
        "unknown"
    )


def test_one_token_through_many_workers_at_once_rotates_once(stores):
    """Ten rounds of six workers given one new token at the same moment."""
    workers = [stores() for _ in range(6)]
    ana = client_account()
    workers[0].insert_account(ana)
    now = time.time()
    for round_number in range(10):
        token = f"t{round_number}"
        workers[0].start_family(f"family-{round_number}", ana.id, refresh_token_digest(token), now, now + 60)
        outcomes: list[str] = []
        start = threading.Barrier(len(workers))

        def rotate(worker: AccountStore, n: int, token: str, start: threading.Barrier, outcomes: list[str]) -> None:
            start.wait()
            new = refresh_token_digest(f"{token}-{n}")
            outcomes.append(worker.rotate_refresh_token(refresh_token_digest(token), new, now).outcome)

        threads = [
            threading.Thread(target=rotate, args=(worker, n, token, start, outcomes))
            for n, worker in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        # one rotation; the first of the others is the second use, which revokes the family the
        # rest then find revoked
        assert sorted(outcomes) == ["reused"] + ["revoked"] * 4 + ["rotated"], (round_number, outcomes)


def test_sign_in_counters_add_up_across_workers_and_start_anew_with_a_window(stores):
    worker_a, worker_b = stores(), stores()
    now = time.time()
    counts = []
    for i in range(6):
        worker = worker_a if i % 2 else worker_b
        (attempts,) = worker.count_attempts(["account:x"], 10, now + i)
        counts.append(attempts.count)
        assert attempts.window_start == now
    assert counts == [1, 2, 3, 4, 5, 6]
    (after,) = worker_a.count_attempts(["account:x"], 10, now + 10)
    assert (after.count, after.window_start) == (1, now + 10)
    worker_b.settle_attempts(forget=["account:x"], uncount=[])
    assert worker_a.count_attempts(["account:x"], 10, now + 11)[0].count == 1


def test_workers_starting_at_once_create_the_schema_once(database_url):
    workers = [PostgresAccountStore(database_url, timeout_s=10) for _ in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def first_call(worker: PostgresAccountStore) -> None:
        start.wait()
        try:
            worker.account_by_email("nobody@example.com")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first_call, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for worker in workers:
        worker.close()
    assert errors == []
    with psycopg.connect(database_url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (PG_SCHEMA,)
        ).fetchall()
    assert [name for (name,) in tables] == [
        "accounts",
        "page_sessions",
        "refresh_tokens",
        "sign_in_attempts",
        "token_families",
    ]


def test_a_database_password_never_shows_in_the_store_error(database_url):
    parts = urllib.parse.urlsplit(database_url)
    wrong = urllib.parse.urlunsplit(
        parts._replace(netloc=f"fundcore_password_probe:s3cret-pw@{parts.hostname}:{parts.port}")
    )
    store = open_account_store(make_settings(database_url=wrong, operation_timeout=2))
    with pytest.raises(Exception) as failed:
        store.account_by_email("ana@example.com")
    assert type(failed.value).__name__ == "AccountStoreError" and "s3cret-pw" not in str(failed.value)


# ----------------------------------------------------------------------------- the seam, on PostgreSQL


def _terminate_account_connections(database_url: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database_name(database_url), APPLICATION_NAME),
        )


def _read_only(database_url: str, on: bool) -> None:
    """New sessions of the database read-only (``on``) or not, as after a fail-over to a standby;
    the account store's open sessions are ended so that it takes new ones."""
    with psycopg.connect(server_url(), autocommit=True) as admin:
        name = database_name(database_url)
        if on:
            admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        else:
            admin.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
    _terminate_account_connections(database_url)


def test_a_read_only_database_after_the_engine_registered_leaves_a_pending_account_the_next_sign_in_completes(
    database_url,
):
    app = create_app(make_settings(database_url=database_url, data_path="unused"), notifier=RecordingNotifier())
    with TestClient(app, raise_server_exceptions=False) as api:
        api.app.state.host.accounts.after_engine_registration = lambda account: _read_only(database_url, True)
        response = api.post("/auth/sign-up", json=ANA)
        assert_envelope(response, 503, "OUTCOME_UNKNOWN")
        assert response.headers["Retry-After"] == "1"
        api.app.state.host.accounts.after_engine_registration = None
        _read_only(database_url, False)
        with psycopg.connect(database_url) as connection:
            ((client_id, status),) = connection.execute(
                f"SELECT client_id, status FROM {PG_SCHEMA}.accounts"
            ).fetchall()
        assert status == "pending"
        engine = api.app.state.host.engine.blocking
        assert [c.id for c in engine.clients(10).items] == [client_id]

        signed_in = api.post("/auth/sign-in", json={"email": ANA["email"], "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["client_id"] == client_id
        with psycopg.connect(database_url) as connection:
            assert connection.execute(f"SELECT status FROM {PG_SCHEMA}.accounts").fetchall() == [("active",)]
        assert [c.id for c in engine.clients(10).items] == [client_id]


# ----------------------------------------------------------------------------- two live workers


def _worker_pids(log: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"fundcore host ready \(store: [^)]*, pid (\d+)\)", log)}


class Workers:
    """A host with two workers; each call's worker read from the access log by its request id."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.calls = 0

    def call(self, path: str, body: dict[str, Any]) -> tuple[int, Any, int]:
        self.calls += 1
        request_id = f"call-{self.calls}-{uuid.uuid4().hex[:8]}"
        status, answer, _ = http_call("POST", f"{self.host.url}{path}", body, {"X-Request-ID": request_id})
        pattern = re.compile(rf"fundcore_host\.access \[{re.escape(request_id)}\] .* pid=(\d+) ")

        def served_by() -> int | None:
            match = pattern.search(self.host.log())
            return int(match.group(1)) if match else None

        return status, answer, wait_until(served_by, timeout_s=10)


def test_two_workers_share_accounts_tokens_and_sign_in_limits(database_url, live_host):
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": database_url,
            "FUNDCORE_DATA": None,
            "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": "4",
            "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": "1000",
        },
        args=["--workers", "2"],
    )
    wait_until(lambda: len(_worker_pids(host.log())) == 2, timeout_s=30)
    workers = Workers(host)
    status, signed_up, signed_up_by = workers.call("/auth/sign-up", ANA)
    assert status == 201, signed_up
    client_id = signed_up["client"]["id"]
    (other,) = _worker_pids(host.log()) - {signed_up_by}
    credentials = {"email": ANA["email"], "password": PASSWORD}

    # a sign-in answered by the other worker
    for _ in range(60):
        status, tokens, by = workers.call("/auth/sign-in", credentials)
        assert status == 200 and tokens["client_id"] == client_id, tokens
        if by == other:
            break
    assert by == other, "the other worker never answered a sign-in"
    assert decode_token(SECRET, tokens["access_token"])["sub"] == client_id

    # a refresh token rotated by one worker and presented again to the other: refused there, and
    # the token the rotation gave is refused from then on, whichever worker is asked
    seen = False
    for _ in range(60):
        status, tokens, _ = workers.call("/auth/sign-in", credentials)
        assert status == 200
        status, rotated, rotated_by = workers.call("/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        assert status == 200, rotated
        status, again, reused_at = workers.call("/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        assert status == 401 and again["code"] == "INVALID_REFRESH_TOKEN", again
        for _ in range(2):
            status, after, _ = workers.call("/auth/refresh", {"refresh_token": rotated["refresh_token"]})
            assert status == 401 and after["code"] == "INVALID_REFRESH_TOKEN", after
        if rotated_by != reused_at:
            seen = True
            break
    assert seen, "the rotation and the second use were never answered by different workers"
    assert "a refresh token was used twice" in host.log()

    # the sign-in limit counts the attempts of both workers together
    for round_number in range(10):
        email = f"target{round_number}@example.com"
        answers = [workers.call("/auth/sign-in", {"email": email, "password": "wrong password"}) for _ in range(7)]
        statuses = [status for status, _, _ in answers]
        assert statuses == [401] * 4 + [429] * 3, statuses
        if len({by for _, _, by in answers}) == 2:
            break
    assert len({by for _, _, by in answers}) == 2, "one worker answered every attempt"
    assert host.stop() == 0


# ----------------------------------------------------------------------------- a database that stops answering


@pytest.fixture
def frozen_able_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own, whose processes it may stop (test_store_outage.py's)."""
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


def test_a_database_that_stops_answering_is_a_503_within_the_operation_timeout(frozen_able_postgres, live_host):
    """Every process of the server stopped (connections open, nothing answers): each accounts
    call answers 503 with Retry-After within FUNDCORE_OPERATION_TIMEOUT, and once the server runs
    again the calls work, and a sign-up made during the outage is completed by its repetition."""
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": frozen_able_postgres.url,
            "FUNDCORE_DATA": None,
            "FUNDCORE_OPERATION_TIMEOUT": "1",
        }
    )
    status, signed_up, _ = http_call("POST", f"{host.url}/auth/sign-up", ANA)
    assert status == 201, signed_up
    credentials = {"email": ANA["email"], "password": PASSWORD}
    bea = {**ANA, "name": "Bea", "email": "bea@example.com"}

    frozen_able_postgres.freeze()
    try:
        for path, body in (
            ("/auth/sign-in", credentials),
            ("/auth/refresh", {"refresh_token": signed_up["refresh_token"]}),
            ("/auth/sign-up", bea),
        ):
            started = time.monotonic()
            status, refused, headers = http_call("POST", f"{host.url}{path}", body, timeout_s=60)
            took = time.monotonic() - started
            assert status == 503 and refused["code"] == "STORAGE_ERROR", (path, refused)
            assert headers["Retry-After"] == "1" and took < 1 + 4, (path, took)
    finally:
        frozen_able_postgres.thaw()

    wait_until(lambda: http_call("POST", f"{host.url}/auth/sign-in", credentials)[0] == 200, timeout_s=30)
    status, again, _ = http_call("POST", f"{host.url}/auth/sign-up", bea)
    assert status == 201, again  # whatever the outage left of it, the same sign-up completes it
    admin = {"Authorization": f"Bearer {make_token(SECRET, 'admin', 'admin')}"}
    status, page, _ = http_call("GET", f"{host.url}/clients?limit=10", headers=admin)
    assert sorted(client["name"] for client in page["items"]) == ["Ana", "Bea"]
    assert "Traceback" not in host.log()


def test_an_engine_that_saved_nothing_leaves_no_account(frozen_able_postgres, tmp_path):
    """The engine's database stopped while the account store (a SQLite file here, so that it
    stays up) answers: the engine's STORAGE_ERROR says nothing was saved, and the pending account
    written before it is removed; once the database is back the same sign-up makes one client."""
    settings = make_settings(database_url=frozen_able_postgres.url, data_path="unused", operation_timeout=2)
    with TestClient(create_app(settings, notifier=RecordingNotifier()), raise_server_exceptions=False) as api:
        accounts_file = tmp_path / "accounts.sqlite3"
        api.app.state.host.accounts.store = SqliteAccountStore(accounts_file)
        frozen_able_postgres.stop()
        response = api.post("/auth/sign-up", json=ANA)
        assert_envelope(response, 503, "STORAGE_ERROR")
        with sqlite3.connect(accounts_file) as connection:
            assert connection.execute("SELECT count(*) FROM accounts").fetchall() == [(0,)]
        frozen_able_postgres.start()
        signed_up = wait_until(
            lambda: (answer := api.post("/auth/sign-up", json=ANA)).status_code == 201 and answer, timeout_s=30
        )
        engine = api.app.state.host.engine.blocking
        assert [c.id for c in engine.clients(10).items] == [signed_up.json()["client"]["id"]]


def test_page_sessions_are_shared_by_every_worker_and_end_for_all_at_sign_out(stores) -> None:
    """A page session started by one worker is seen by another (on PostgreSQL, every worker of
    every host), for an account of the host's or for a provider's user; it ends for both at
    sign-out and at its expiry."""
    first, second = stores(), stores()
    account = client_account()
    first.insert_account(account)
    now = time.time()
    own = StoredSession(account.id, account.subject, "client", account.email, now + 60)
    provider = StoredSession(None, "provider-user", "admin", "olga@example.com", now + 60)
    first.start_session("digest-own", own, now)
    first.start_session("digest-provider", provider, now)
    assert second.session("digest-own", now) == own
    assert second.session("digest-provider", now) == provider
    assert second.session("digest-own", now + 61) is None  # expired
    second.end_session("digest-own")
    assert first.session("digest-own", now) is None
    assert first.session("digest-provider", now) == provider
    assert first.session("unknown", now) is None
