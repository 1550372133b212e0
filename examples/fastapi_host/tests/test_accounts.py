"""The host's own accounts on the embedded store (a real engine, a real SQLite file, the app in
process): sign-up registers the client and its account together or neither, whatever fails
between them; sign-in answers an unknown email and a wrong password alike and limits attempts
per account and per address; refresh tokens are single use and a second use revokes the
sign-in; sign-out revokes it; operators come only from the command. PostgreSQL and several
workers: test_accounts_postgres.py; the logs: test_accounts_logs.py."""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import HOST_DIR, SECRET, RecordingNotifier, assert_envelope
from fastapi.testclient import TestClient
from pwdlib import PasswordHash

import fundcore
from fundcore_host.auth.accounts import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    Accounts,
    SignInLimits,
)
from fundcore_host.auth.store import Account, SqliteAccountStore
from fundcore_host.auth.tokens import refresh_token_digest
from fundcore_host.config import ConfigError, Settings
from fundcore_host.token import decode_token

PASSWORD = "correct horse battery staple"
ANA = {"name": "Ana", "email": "Ana@Example.com", "phone": "+573001234567", "channel": "email"}


@pytest.fixture
def accounts_file(tmp_path: Path) -> Path:
    return tmp_path / "accounts.sqlite3"


@pytest.fixture
def host(app_factory: Callable[..., TestClient], accounts_file: Path) -> TestClient:
    """The app on the test's engine, its accounts in ``accounts_file``, the default sign-in limits."""
    return app_factory(notifier=RecordingNotifier(), accounts_path=str(accounts_file))


def sign_up(api: TestClient, password: str = PASSWORD, **contact: str) -> Any:
    return api.post("/auth/sign-up", json={**ANA, **contact, "password": password})


def sign_in(api: TestClient, email: str = "ana@example.com", password: str = PASSWORD) -> Any:
    return api.post("/auth/sign-in", json={"email": email, "password": password})


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The account store's rows, read with a connection of the test's own."""
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, params).fetchall()


def engine_clients(engine: Any) -> list[Any]:
    return list(engine.clients(fundcore.MAX_PAGE).items)


def bearer_of(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# ----------------------------------------------------------------------------- sign-up


def test_sign_up_registers_the_client_and_its_account_and_signs_it_in(host, engine, accounts_file):
    response = sign_up(host)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"client", "access_token", "refresh_token", "token_type", "expires_in"}
    assert response.headers["Cache-Control"] == "no-store"
    client = body["client"]
    assert (client["name"], client["email"], client["balance"]) == ("Ana", "Ana@example.com", "500000.00")
    (registered,) = engine_clients(engine)
    assert registered.id == client["id"]
    claims = decode_token(SECRET, body["access_token"])
    assert (claims["sub"], claims["role"]) == (client["id"], "client")
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 900
    assert body["token_type"] == "Bearer"
    # the access token is the caller's: its own id answers, another's is CLIENT_NOT_FOUND
    assert host.get(f"/clients/{client['id']}", headers=bearer_of(body)).json()["id"] == client["id"]
    assert_envelope(host.get("/clients", headers=bearer_of(body)), 403, "FORBIDDEN")
    # stored: the email lower-cased, active, an argon2id hash with the chosen parameters, no
    # registration data kept, and the refresh token only as its SHA-256
    ((email, role, client_id, status, password_hash, registration),) = rows(
        accounts_file, "SELECT email, role, client_id, status, password_hash, registration FROM accounts"
    )
    assert (email, role, client_id, status, registration) == ("ana@example.com", "client", client["id"], "active", None)
    assert password_hash.startswith(
        f"$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST},p={ARGON2_PARALLELISM}$"
    )
    assert rows(accounts_file, "SELECT token_hash FROM refresh_tokens") == [
        (refresh_token_digest(body["refresh_token"]),)
    ]
    stored = b"".join(p.read_bytes() for p in accounts_file.parent.glob("accounts.sqlite3*"))
    assert body["refresh_token"].encode() not in stored and PASSWORD.encode() not in stored


def test_an_email_has_one_account_whatever_its_case(host, engine):
    assert sign_up(host).status_code == 201
    again = sign_up(host, email="ANA@example.COM", password="another long password")
    assert_envelope(again, 409, "ACCOUNT_EXISTS")
    assert len(engine_clients(engine)) == 1
    assert sign_in(host, email="  aNa@EXAMPLE.com ").status_code == 200


def test_a_value_the_engine_refuses_leaves_no_account_and_no_client(host, engine, accounts_file):
    """A definite refusal of the engine after the pending account was written: the account is
    removed, so the email is free and nothing half-made remains."""
    for contact, field in (({"phone": "3001234567"}, "phone"), ({"channel": "fax"}, "channel")):
        body = assert_envelope(sign_up(host, **contact), 422, "VALIDATION_ERROR")
        assert set(body["errors"]) == {field}
        assert rows(accounts_file, "SELECT count(*) FROM accounts") == [(0,)]
        assert engine_clients(engine) == []
        assert_envelope(sign_in(host), 401, "INVALID_CREDENTIALS")
    assert sign_up(host).status_code == 201  # the email was left free


def test_a_short_or_long_password_is_refused_before_anything_is_stored(host, engine, accounts_file):
    for password in ("x" * (MIN_PASSWORD_CHARS - 1), "x" * (MAX_PASSWORD_CHARS + 1)):
        body = assert_envelope(sign_up(host, password=password), 422, "VALIDATION_ERROR")
        assert set(body["errors"]) == {"password"} and password not in str(body)
    assert engine_clients(engine) == []
    assert not accounts_file.exists() or rows(accounts_file, "SELECT count(*) FROM accounts") == [(0,)]


def test_sign_up_never_makes_an_operator(host):
    assert_envelope(
        host.post("/auth/sign-up", json={**ANA, "password": PASSWORD, "role": "admin"}), 422, "VALIDATION_ERROR"
    )
    tokens = sign_up(host).json()
    assert decode_token(SECRET, tokens["access_token"])["role"] == "client"
    assert_envelope(host.get("/audit", headers=bearer_of(tokens)), 403, "FORBIDDEN")


@pytest.fixture
def locked_after_registration(host: TestClient, accounts_file: Path) -> Iterator[list[sqlite3.Connection]]:
    """The account store fails between the engine's registration and the account's activation,
    for real: at that seam another connection takes the SQLite file's write lock and keeps it
    (the host waits 0.3 s for it, then its write fails). Yields the lock holders."""
    accounts = host.app.state.host.accounts
    accounts.store = SqliteAccountStore(accounts_file, busy_timeout_s=0.3)
    holders: list[sqlite3.Connection] = []

    def take_the_write_lock(account: Account) -> None:
        holder = sqlite3.connect(accounts_file, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        holders.append(holder)

    accounts.after_engine_registration = take_the_write_lock
    yield holders
    for holder in holders:
        holder.close()


def release(holders: list[sqlite3.Connection], host: TestClient) -> None:
    for holder in holders:
        holder.execute("ROLLBACK")
    host.app.state.host.accounts.after_engine_registration = None


def test_a_store_failure_after_the_engine_registered_leaves_a_pending_account_the_next_sign_in_completes(
    host, engine, accounts_file, locked_after_registration
):
    response = sign_up(host)
    body = assert_envelope(response, 503, "OUTCOME_UNKNOWN")
    assert response.headers["Retry-After"] == "1" and PASSWORD not in str(body)
    ((client_id, status),) = rows(accounts_file, "SELECT client_id, status FROM accounts")
    assert status == "pending"
    assert [c.id for c in engine_clients(engine)] == [client_id]  # the engine did register it
    release(locked_after_registration, host)

    assert_envelope(sign_in(host, password="not the password!"), 401, "INVALID_CREDENTIALS")  # still pending
    assert rows(accounts_file, "SELECT status FROM accounts") == [("pending",)]
    signed_in = sign_in(host)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["client_id"] == client_id
    assert rows(accounts_file, "SELECT status, registration FROM accounts") == [("active", None)]
    assert [c.id for c in engine_clients(engine)] == [client_id]  # registered again under its id: still one
    assert host.get(f"/clients/{client_id}", headers=bearer_of(signed_in.json())).status_code == 200


def test_the_same_sign_up_again_completes_a_pending_account_and_another_password_does_not(
    host, engine, accounts_file, locked_after_registration
):
    assert_envelope(sign_up(host), 503, "OUTCOME_UNKNOWN")
    ((client_id,),) = rows(accounts_file, "SELECT client_id FROM accounts")
    release(locked_after_registration, host)
    assert_envelope(sign_up(host, password="someone else's password"), 409, "ACCOUNT_EXISTS")
    again = sign_up(host)
    assert again.status_code == 201, again.text
    assert again.json()["client"]["id"] == client_id
    assert_envelope(sign_up(host), 409, "ACCOUNT_EXISTS")  # now active
    assert [c.id for c in engine_clients(engine)] == [client_id]


def test_concurrent_identical_sign_ups_make_one_client(host, engine):
    results: list[Any] = []
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        results.append(sign_up(host))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    (client,) = engine_clients(engine)
    assert {r.json()["client"]["id"] for r in results if r.status_code == 201} == {client.id}


# ----------------------------------------------------------------------------- sign-in


def test_sign_in_gives_a_client_its_tokens(host):
    client_id = sign_up(host).json()["client"]["id"]
    response = sign_in(host)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "role", "client_id"}
    assert (body["role"], body["client_id"], body["token_type"]) == ("client", client_id, "Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    assert decode_token(SECRET, body["access_token"])["sub"] == client_id
    assert host.get(f"/clients/{client_id}/subscriptions", headers=bearer_of(body)).status_code == 200


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer_in_about_the_same_time(app_factory, tmp_path):
    host = app_factory(
        accounts_path=str(tmp_path / "a.sqlite3"), sign_in_max_per_account=100, sign_in_max_per_address=100
    )
    assert sign_up(host).status_code == 201
    wrong, unknown = [], []
    answers = set()
    for _ in range(10):  # interleaved, so that a busy moment of the machine falls on both
        for email, times in (("ana@example.com", wrong), ("nobody@example.com", unknown)):
            started = time.perf_counter()
            response = sign_in(host, email=email, password="not the password!")
            times.append(time.perf_counter() - started)
            assert_envelope(response, 401, "INVALID_CREDENTIALS")
            answers.add((response.text, response.headers["WWW-Authenticate"]))
    assert len(answers) == 1, answers  # byte for byte the same body
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 1 / 3 < ratio < 3, (statistics.median(unknown), statistics.median(wrong))


class CountingVerifications:
    """Counts the password verifications of the host's hasher (the real ones still run)."""

    def __init__(self, host: TestClient) -> None:
        self.count = 0
        passwords = host.app.state.host.accounts.passwords
        original = passwords.verify_blocking

        def counted(*args: Any) -> Any:
            self.count += 1
            return original(*args)

        passwords.verify_blocking = counted


def test_sign_in_attempts_are_limited_per_account_before_any_hash_is_verified(app_factory, tmp_path):
    host = app_factory(accounts_path=str(tmp_path / "a.sqlite3"), sign_in_max_per_account=3, sign_in_window_s=2)
    assert sign_up(host).status_code == 201
    verified = CountingVerifications(host)
    for _ in range(3):
        assert_envelope(sign_in(host, password="not the password!"), 401, "INVALID_CREDENTIALS")
    assert verified.count == 3
    limited = sign_in(host)  # even the right password, past the limit
    assert_envelope(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert_envelope(sign_in(host, email="ANA@example.com", password="x"), 429, "RATE_LIMITED")
    assert verified.count == 3  # nothing verified past the limit
    # the same for an email without an account: a 429 says nothing about who has one
    for _ in range(3):
        assert_envelope(sign_in(host, email="nobody@example.com", password="x"), 401, "INVALID_CREDENTIALS")
    assert_envelope(sign_in(host, email="nobody@example.com", password="x"), 429, "RATE_LIMITED")
    time.sleep(2.1)  # the window ends
    assert sign_in(host).status_code == 200


def test_concurrent_attempts_past_the_limit_are_refused_before_verification(app_factory, tmp_path):
    """Ten wrong passwords at once against a limit of three: the counter is taken before the
    hash is checked, in one statement, so exactly three are verified."""
    host = app_factory(accounts_path=str(tmp_path / "a.sqlite3"), sign_in_max_per_account=3)
    assert sign_up(host).status_code == 201
    verified = CountingVerifications(host)
    statuses: list[int] = []
    start = threading.Barrier(10)

    def attempt() -> None:
        start.wait()
        statuses.append(sign_in(host, password="not the password!").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [401] * 3 + [429] * 7
    assert verified.count == 3


def test_a_successful_sign_in_clears_the_accounts_failures(app_factory, tmp_path):
    host = app_factory(accounts_path=str(tmp_path / "a.sqlite3"), sign_in_max_per_account=3)
    assert sign_up(host).status_code == 201
    for _ in range(2):
        assert sign_in(host, password="typo typo typo").status_code == 401
    assert sign_in(host).status_code == 200
    for _ in range(3):
        assert sign_in(host, password="typo typo typo").status_code == 401
    assert_envelope(sign_in(host), 429, "RATE_LIMITED")


def test_sign_in_attempts_are_limited_per_address_across_emails(app_factory, tmp_path):
    host = app_factory(accounts_path=str(tmp_path / "a.sqlite3"), sign_in_max_per_address=4)
    assert sign_up(host).status_code == 201
    for i in range(4):
        assert_envelope(sign_in(host, email=f"guess{i}@example.com", password="x"), 401, "INVALID_CREDENTIALS")
    assert_envelope(sign_in(host, email="guess9@example.com", password="x"), 429, "RATE_LIMITED")
    assert_envelope(sign_in(host), 429, "RATE_LIMITED")  # from this address, any account


def test_auth_calls_are_counted_by_the_hosts_rate_limiter(app_factory, tmp_path):
    host = app_factory(accounts_path=str(tmp_path / "a.sqlite3"), rate_limit_per_minute=2)
    verified = CountingVerifications(host)
    assert sign_in(host, password="x").status_code == 401
    assert host.post("/auth/refresh", json={"refresh_token": "nope"}).status_code == 401
    response = sign_in(host, password="x")
    assert_envelope(response, 429, "RATE_LIMITED")
    assert verified.count == 1
    assert_envelope(host.post("/auth/sign-out", json={"refresh_token": "nope"}), 429, "RATE_LIMITED")


def test_a_password_is_the_same_however_its_accents_are_encoded(host):
    composed = "contraseña de Begoña"  # ñ as one code point
    decomposed = unicodedata.normalize("NFD", composed)  # n and a combining tilde
    assert composed != decomposed
    assert sign_up(host, password=composed).status_code == 201
    assert sign_in(host, password=decomposed).status_code == 200
    assert_envelope(sign_in(host, password="contrasena de Begona"), 401, "INVALID_CREDENTIALS")


def test_a_hash_made_with_other_parameters_is_replaced_at_sign_in(host, accounts_file):
    assert sign_up(host).status_code == 201
    pwdlib_default = PasswordHash.recommended().hash(PASSWORD)  # argon2id, m=65536, t=3, p=4
    with sqlite3.connect(accounts_file) as connection:
        connection.execute("UPDATE accounts SET password_hash = ?", (pwdlib_default,))
    assert sign_in(host).status_code == 200
    ((stored,),) = rows(accounts_file, "SELECT password_hash FROM accounts")
    assert stored != pwdlib_default and f"m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST}," in stored
    assert sign_in(host).status_code == 200


# ----------------------------------------------------------------------------- refresh and sign-out


def refresh(api: TestClient, token: str) -> Any:
    return api.post("/auth/refresh", json={"refresh_token": token})


def test_a_refresh_token_is_used_once_and_a_second_use_revokes_its_sign_in(host, accounts_file):
    first = sign_up(host).json()
    other_sign_in = sign_in(host).json()
    rotated = refresh(host, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"] and rotated.headers["Cache-Control"] == "no-store"
    assert (second["role"], second["client_id"]) == ("client", first["client"]["id"])
    third = refresh(host, second["refresh_token"]).json()  # the chain goes on, one use each

    # the first token again: refused, and every token of that sign-in with it
    assert_envelope(refresh(host, first["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    assert_envelope(refresh(host, third["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    families = rows(accounts_file, "SELECT revoked FROM token_families ORDER BY created_at")
    assert [bool(revoked) for (revoked,) in families] == [True, False]
    # another sign-in of the same account is not touched
    assert refresh(host, other_sign_in["refresh_token"]).status_code == 200
    assert_envelope(refresh(host, "not-a-token"), 401, "INVALID_REFRESH_TOKEN")


def test_one_refresh_token_presented_at_once_by_two_callers_rotates_once(host):
    tokens = sign_up(host).json()
    results: list[Any] = []
    start = threading.Barrier(6)

    def one() -> None:
        start.wait()
        results.append(refresh(host, tokens["refresh_token"]))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    rotated = [r for r in results if r.status_code == 200]
    assert len(rotated) == 1 and sorted(r.status_code for r in results) == [200] + [401] * 5
    # the others were second uses: the sign-in is revoked, the one new token with it
    assert_envelope(refresh(host, rotated[0].json()["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")


def test_an_expired_refresh_token_is_refused(host):
    tokens = sign_up(host).json()
    store = host.app.state.host.accounts.store
    later = time.time() + host.app.state.host.settings.refresh_token_ttl_s + 1
    assert (
        store.rotate_refresh_token(refresh_token_digest(tokens["refresh_token"]), "x" * 64, later).outcome == "expired"
    )
    assert refresh(host, tokens["refresh_token"]).status_code == 200  # not yet, really


def test_sign_out_revokes_the_sign_in_and_leaves_the_access_token_to_expire(host):
    tokens = sign_up(host).json()
    kept = sign_in(host).json()
    response = host.post("/auth/sign-out", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204 and response.content == b""
    assert_envelope(refresh(host, tokens["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    assert refresh(host, kept["refresh_token"]).status_code == 200
    # access tokens are not revocable: valid until their exp (README: the threat model)
    assert host.get(f"/clients/{tokens['client']['id']}", headers=bearer_of(tokens)).status_code == 200
    assert host.post("/auth/sign-out", json={"refresh_token": "unknown"}).status_code == 204  # RFC 7009


# ----------------------------------------------------------------------------- operators


def create_operator(env: dict[str, str], email: str, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fundcore_host.accounts", "create-operator", "--email", email, *args],
        input=password + "\n",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HOST_DIR), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_operator_is_made_by_the_command_and_signs_in_as_admin(host, accounts_file):
    env = {"FUNDCORE_ACCOUNTS_PATH": str(accounts_file)}
    made = create_operator(env, "Ops@Example.com", "operator passphrase 1")
    assert made.returncode == 0, made.stderr
    assert "operator passphrase 1" not in made.stdout + made.stderr
    response = sign_in(host, email="ops@example.com", password="operator passphrase 1")
    assert response.status_code == 200, response.text
    body = response.json()
    ((account_id,),) = rows(accounts_file, "SELECT id FROM accounts WHERE role = 'admin'")
    assert (body["role"], body["client_id"]) == ("admin", None)
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == (account_id, "admin")
    assert host.get("/audit", headers=bearer_of(body)).status_code == 200
    # its email cannot be signed up, and the command refuses it a second time
    assert_envelope(sign_up(host, email="ops@example.com"), 409, "ACCOUNT_EXISTS")
    again = create_operator(env, "ops@example.com", "another passphrase")
    assert again.returncode == 1 and "exists" in again.stderr
    refreshed = refresh(host, body["refresh_token"]).json()
    assert (refreshed["role"], refreshed["client_id"]) == ("admin", None)


def test_the_command_takes_no_password_argument_and_refuses_a_short_one(accounts_file):
    env = {"FUNDCORE_ACCOUNTS_PATH": str(accounts_file)}
    as_argument = create_operator(env, "ops@example.com", "", "--password", "operator passphrase 1")
    assert as_argument.returncode == 2 and "unrecognized arguments" in as_argument.stderr
    short = create_operator(env, "ops@example.com", "short")
    assert short.returncode == 2 and f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS}" in short.stderr
    assert not accounts_file.exists() or rows(accounts_file, "SELECT count(*) FROM accounts") == [(0,)]


# ----------------------------------------------------------------------------- settings


def test_the_accounts_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FUNDCORE_DATABASE_URL", raising=False)
    monkeypatch.delenv("FUNDCORE_ACCOUNTS_PATH", raising=False)
    monkeypatch.setenv("FUNDCORE_DATA", str(tmp_path / "store"))
    for name, value in {
        "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": "3",
        "FUNDCORE_SIGN_IN_MAX_PER_ADDRESS": "7",
        "FUNDCORE_SIGN_IN_WINDOW_S": "60",
        "FUNDCORE_ACCESS_TOKEN_TTL_S": "120",
        "FUNDCORE_REFRESH_TOKEN_TTL_S": "3600",
    }.items():
        monkeypatch.setenv(name, value)
    accounts = Accounts.from_settings(Settings.from_env())
    try:
        assert accounts.limits == SignInLimits(per_account=3, per_address=7, window_s=60)
        assert (accounts.access_ttl_s, accounts.refresh_ttl_s) == (120, 3600)
        assert isinstance(accounts.store, SqliteAccountStore)
        assert accounts.store.path == tmp_path / "store-accounts.sqlite3"  # beside the store directory
    finally:
        accounts.close()
    for name, value in (("FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT", "0"), ("FUNDCORE_ACCESS_TOKEN_TTL_S", "5")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            Settings.from_env()
        monkeypatch.setenv(name, "100")


# ----------------------------------------------------------------------------- the document


def test_another_method_on_an_auth_path_is_405_with_allow(host):
    for method in ("GET", "PUT", "DELETE"):
        response = host.request(method, "/auth/sign-in")
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["Allow"] == "POST"


def test_the_document_describes_the_auth_operations(host):
    document = host.get("/openapi.json").json()
    operations = {
        path: item["post"]["operationId"] for path, item in document["paths"].items() if path.startswith("/auth/")
    }
    assert operations == {
        "/auth/sign-up": "signUp",
        "/auth/sign-in": "signIn",
        "/auth/refresh": "refreshTokens",
        "/auth/sign-out": "signOut",
    }
    schemas = document["components"]["schemas"]
    new_password = schemas["SignUpRequest"]["properties"]["password"]
    assert (new_password["format"], new_password["minLength"], new_password["maxLength"]) == (
        "password",
        MIN_PASSWORD_CHARS,
        MAX_PASSWORD_CHARS,
    )
    assert schemas["SignInRequest"]["properties"]["password"]["format"] == "password"
    for path in operations:
        assert "security" not in document["paths"][path]["post"]  # no bearer token
    sign_in_responses = document["paths"]["/auth/sign-in"]["post"]["responses"]
    assert (
        "INVALID_CREDENTIALS"
        in sign_in_responses["401"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]
    )
    assert "ACCOUNT_EXISTS" in str(document["paths"]["/auth/sign-up"]["post"]["responses"]["409"])
