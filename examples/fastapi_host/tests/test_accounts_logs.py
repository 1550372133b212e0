"""Passwords, password hashes and tokens never reach a log: a live host (``fundcore_host.serve``,
as ``make demo`` runs it) at ``DEBUG``, in both log formats, goes through every accounts path
(sign-up, a refused sign-up, sign-in, refresh, a refresh token's second use, sign-out, failed
and rate-limited sign-ins, an operator made by the command and signed in), and everything the
host and the command wrote is searched for each secret of the run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HOST_DIR, http_call

CLIENT_PASSWORD = "client passphrase 7Qx!"
OPERATOR_PASSWORD = "operator passphrase 9Zk?"
WRONG_PASSWORD = "not the password 3Wm#"
REFUSED_SIGN_UP_PASSWORD = "refused sign-up pass 5Tr%"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_password_hash_or_token_in_any_log_line(live_host, tmp_path: Path, log_format: str) -> None:
    accounts_file = tmp_path / "fundcore-accounts.sqlite3"  # beside FUNDCORE_DATA, as the host finds it
    host = live_host(
        env={
            "FUNDCORE_LOG_LEVEL": "DEBUG",
            "FUNDCORE_LOG_FORMAT": log_format,
            "FUNDCORE_SIGN_IN_MAX_PER_ACCOUNT": "2",
        }
    )
    secrets: dict[str, str] = {
        "client password": CLIENT_PASSWORD,
        "operator password": OPERATOR_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "refused sign-up's password": REFUSED_SIGN_UP_PASSWORD,
    }

    def post(path: str, body: dict[str, str], expected: int) -> dict[str, str]:
        status, answer, _ = http_call("POST", f"{host.url}{path}", body)
        assert status == expected, (path, status, answer)
        return answer if isinstance(answer, dict) else {}

    contact = {"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"}
    post(
        "/auth/sign-up",
        {**contact, "email": "bea@example.com", "phone": "12", "password": REFUSED_SIGN_UP_PASSWORD},
        422,
    )
    signed_up = post("/auth/sign-up", {**contact, "password": CLIENT_PASSWORD}, 201)
    post("/auth/sign-up", {**contact, "password": CLIENT_PASSWORD}, 409)
    signed_in = post("/auth/sign-in", {"email": "ana@example.com", "password": CLIENT_PASSWORD}, 200)
    refreshed = post("/auth/refresh", {"refresh_token": signed_in["refresh_token"]}, 200)
    post("/auth/refresh", {"refresh_token": signed_in["refresh_token"]}, 401)  # second use: revoked
    post("/auth/sign-out", {"refresh_token": signed_up["refresh_token"]}, 204)
    post("/auth/sign-in", {"email": "ana@example.com", "password": WRONG_PASSWORD}, 401)
    post("/auth/sign-in", {"email": "nobody@example.com", "password": WRONG_PASSWORD}, 401)
    post("/auth/sign-in", {"email": "ana@example.com", "password": WRONG_PASSWORD}, 401)
    post("/auth/sign-in", {"email": "ana@example.com", "password": CLIENT_PASSWORD}, 429)

    command = subprocess.run(
        [sys.executable, "-m", "fundcore_host.accounts", "create-operator", "--email", "ops@example.com"],
        input=OPERATOR_PASSWORD + "\n",
        env={**host.env, "PYTHONPATH": str(HOST_DIR)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode == 0, command.stderr
    operator = post("/auth/sign-in", {"email": "ops@example.com", "password": OPERATOR_PASSWORD}, 200)
    status, _, _ = http_call(
        "GET", f"{host.url}/audit", headers={"Authorization": f"Bearer {operator['access_token']}"}
    )
    assert status == 200

    for name, answer in (
        ("sign-up", signed_up),
        ("sign-in", signed_in),
        ("refresh", refreshed),
        ("operator", operator),
    ):
        for field in ("access_token", "refresh_token"):
            secrets[f"{name} {field}"] = answer[field]
            secrets[f"{name} {field}'s last part"] = answer[field].rsplit(".", 1)[-1]  # a JWT's signature
    with sqlite3.connect(accounts_file) as connection:
        for email, password_hash in connection.execute("SELECT email, password_hash FROM accounts"):
            secrets[f"hash of {email}"] = password_hash
            secrets[f"salt of {email}'s hash"] = password_hash.split("$")[-2]
            secrets[f"digest of {email}'s hash"] = password_hash.split("$")[-1]
        for (digest,) in connection.execute("SELECT token_hash FROM refresh_tokens"):
            secrets[f"refresh token digest {digest[:8]}"] = digest
    assert sum(name.startswith("hash ") for name in secrets) == 2  # the client's and the operator's

    assert host.stop() == 0
    written = {"host log": host.log(), "command's output": command.stdout + command.stderr}
    assert (
        "POST /auth/sign-in -> 429" in written["host log"] and "a refresh token was used twice" in written["host log"]
    )
    assert " DEBUG " in written["host log"] or '"level": "DEBUG"' in written["host log"]  # DEBUG records were written
    found = [(what, where) for what, secret in secrets.items() for where, text in written.items() if secret in text]
    assert found == [], found
