"""Authorization both ways: what a caller may do succeeds, everything else is refused with the
envelope (401 unauthenticated, 403 admin-only, 404 for another client's id) and leaks nothing."""

from __future__ import annotations

import math
import time

import jwt
import pytest
from conftest import ADMIN, SECRET, assert_envelope, bearer, make_engine, register

import fundcore
from fundcore_host.token import make_token

GHOST = "0190b2a4-7c1e-7000-8000-00000000beef"


@pytest.fixture
def two_clients(api):
    ana = register(api, "Ana")
    bob = register(api, "Bob", channel="sms", phone="+573005550000")
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    return ana, bob


def client_calls(cid: str):
    """(method, path, json) of every client-scoped endpoint."""
    return [
        ("GET", f"/clients/{cid}", None),
        ("GET", f"/clients/{cid}/subscriptions", None),
        ("GET", f"/clients/{cid}/transactions", None),
        ("GET", f"/clients/{cid}/notifications", None),
        ("POST", f"/clients/{cid}/subscriptions", {"fund_id": 1}),
        ("DELETE", f"/clients/{cid}/subscriptions/3", None),
    ]


def call(api, method, path, body, headers):
    return api.request(method, path, json=body, headers=headers)


def test_client_acts_on_itself(api, two_clients):
    ana, _ = two_clients
    me = bearer(ana["id"])
    assert api.get("/funds", headers=me).status_code == 200
    assert api.get(f"/clients/{ana['id']}", headers=me).json()["email"] == "ana@example.com"
    r = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 3, "amount": "50000"}, headers=me)
    assert r.status_code == 201
    assert [s["fund_id"] for s in api.get(f"/clients/{ana['id']}/subscriptions", headers=me).json()] == [3]
    assert len(api.get(f"/clients/{ana['id']}/transactions", headers=me).json()["items"]) == 1
    assert len(api.get(f"/clients/{ana['id']}/notifications", headers=me).json()) == 1
    assert api.delete(f"/clients/{ana['id']}/subscriptions/3", headers=me).status_code == 200


def test_admin_reads_and_acts_on_everyone(api, two_clients):
    for c in two_clients:
        for method, path, body in client_calls(c["id"]):
            r = call(api, method, path, body, ADMIN)
            assert r.status_code < 300 or r.json()["code"] in ("NOT_SUBSCRIBED",), (method, path, r.text)


def test_cross_client_is_404_and_changes_nothing(api, two_clients):
    ana, bob = two_clients
    as_ana = bearer(ana["id"])
    before_bob = api.get(f"/clients/{bob['id']}", headers=ADMIN).json()
    before_tx = api.get(f"/clients/{bob['id']}/transactions", headers=ADMIN).json()
    for method, path, body in client_calls(bob["id"]):
        r = call(api, method, path, body, as_ana)
        env = assert_envelope(r, 404, "CLIENT_NOT_FOUND")
        assert bob["email"] not in r.text and bob["phone"] not in r.text and "Bob" not in r.text
        # indistinguishable from an id that does not exist
        ghost = "0190b2a4-7c1e-7000-8000-00000000beef"
        r2 = call(api, method, path.replace(bob["id"], ghost), body, as_ana)
        env2 = assert_envelope(r2, 404, "CLIENT_NOT_FOUND")
        assert env["message"].replace(bob["id"], "ID") == env2["message"].replace(ghost, "ID")
    assert api.get(f"/clients/{bob['id']}", headers=ADMIN).json() == before_bob
    assert api.get(f"/clients/{bob['id']}/transactions", headers=ADMIN).json() == before_tx


@pytest.mark.parametrize("locale", ["es", "en"])
def test_another_clients_id_gets_the_engines_own_answer_for_an_unknown_id(app_factory, locale):
    """The 404 is what the engine answers for that text when no client has it: its code and
    message, in its locale (the host's own locale is Spanish here), the id shown as the engine
    shows it (a spelling it cannot read as given, one it can as the canonical id)."""
    engine = make_engine(locale=locale)
    api = app_factory(eng=engine, locale="es")
    ana = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
    bob = engine.register_client("Bob", "bob@example.com", "+573005550000", "sms")
    as_ana = bearer(ana.id)
    misplaced_hyphen = bob.id.replace("-", "", 1)[:12] + "-" + bob.id.replace("-", "", 1)[12:]
    with fundcore.Engine(locale=locale) as without_clients:
        for path_id in (bob.id, bob.id.upper(), "{" + bob.id + "}", misplaced_hyphen, "x", GHOST):
            with pytest.raises(fundcore.NotFoundError) as unknown:
                without_clients.client(path_id)
            env = assert_envelope(api.get(f"/clients/{path_id}", headers=as_ana), 404, "CLIENT_NOT_FOUND")
            assert env["message"] == unknown.value.message, path_id
    # the caller's own id in another spelling is still the caller's
    assert api.get(f"/clients/{ana.id.upper()}", headers=as_ana).json()["id"] == ana.id


def test_client_cannot_register_clients(api, two_clients):
    ana, _ = two_clients
    body = {"name": "Eve", "email": "eve@example.com", "phone": "+573001112233", "channel": "email"}
    assert_envelope(api.post("/clients", json=body, headers=bearer(ana["id"])), 403, "FORBIDDEN")
    assert api.post("/clients", json=body, headers=ADMIN).status_code == 201


def _bad_tokens(sub: str) -> dict[str, dict[str, str]]:
    now = int(time.time())
    return {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "not a jwt": {"Authorization": "Bearer not.a.jwt"},
        "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "wrong secret": bearer(sub, "admin", secret="another-secret-another-secret-another-secret"),
        "expired": {"Authorization": "Bearer " + make_token(SECRET, sub, "admin", ttl_s=60, now=now - 3600)},
        "alg none": {
            "Authorization": "Bearer "
            + jwt.encode({"sub": sub, "role": "admin", "exp": now + 600}, key=None, algorithm="none")
        },
        "no role": {"Authorization": "Bearer " + jwt.encode({"sub": sub, "exp": now + 600}, SECRET, "HS256")},
        "bad role": {
            "Authorization": "Bearer " + jwt.encode({"sub": sub, "role": "root", "exp": now + 600}, SECRET, "HS256")
        },
        "no exp": {"Authorization": "Bearer " + jwt.encode({"sub": sub, "role": "admin"}, SECRET, "HS256")},
        "no sub": {"Authorization": "Bearer " + jwt.encode({"role": "admin", "exp": now + 600}, SECRET, "HS256")},
        "HS512": {
            "Authorization": "Bearer " + jwt.encode({"sub": sub, "role": "admin", "exp": now + 600}, SECRET, "HS512")
        },
    }


def test_unauthenticated_is_401_everywhere(api, two_clients):
    ana, bob = two_clients
    calls = [
        *client_calls(bob["id"]),
        ("GET", "/funds", None),
        ("POST", "/clients", {"name": "Eve", "email": "eve@example.com", "phone": "+573001112233", "channel": "email"}),
    ]
    for label, headers in _bad_tokens(ana["id"]).items():
        for method, path, body in calls:
            r = call(api, method, path, body, headers)
            assert_envelope(r, 401, "UNAUTHORIZED")
            assert r.headers.get("www-authenticate") == "Bearer", label
            assert "Bob" not in r.text
    assert api.get(f"/clients/{bob['id']}", headers=ADMIN).json()["balance"] == "450000.00"
    assert len(api.get(f"/clients/{bob['id']}/transactions", headers=ADMIN).json()["items"]) == 1


def test_token_command_prints_a_valid_token(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "FUNDCORE_JWT_SECRET": SECRET}
    out = subprocess.run(
        [sys.executable, "-m", "fundcore_host.token", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["role"] == "admin" and claims["exp"] > time.time()
    out = subprocess.run(
        [sys.executable, "-m", "fundcore_host.token", "--role", "client", "--sub", "abc", "--ttl", "60"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "abc" and claims["role"] == "client"
    bad = subprocess.run(
        [sys.executable, "-m", "fundcore_host.token", "--role", "client"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert bad.returncode != 0


def test_the_token_command_says_it_is_for_scripts_and_tests_not_a_sign_in():
    """In its help and on stderr with every token: the shared secret, scripts and tests, and
    where people sign in instead. Only the token goes to stdout."""
    import os
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fundcore_host.token", *args],
            env={**os.environ, "FUNDCORE_JWT_SECRET": SECRET},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )

    said = [" ".join(run("--help").stdout.split()), run("--role", "admin").stderr.strip()]
    for text in said:
        assert "shared secret" in text and "FUNDCORE_JWT_SECRET" in text, text
        assert "for scripts and tests" in text and "not a sign-in" in text, text
        assert "OpenID Connect provider" in text and "the host's accounts" in text, text
    assert said[1].startswith("fundcore_host.token mints a token with the shared secret"), said[1]
    minted = run("--role", "client", "--sub", "abc")
    (token,) = minted.stdout.splitlines()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "abc"
    assert token not in minted.stderr


def test_refusal_comes_before_body_validation(api, two_clients):
    """Unauthenticated or cross-client calls are refused whatever the body looks like."""
    ana, bob = two_clients
    for raw in (b"{not json", b'{"fund_id": 1.5}', b"\xff\xfe", b"[]"):
        headers = {"Content-Type": "application/json"}
        assert_envelope(
            api.post(f"/clients/{bob['id']}/subscriptions", content=raw, headers=headers), 401, "UNAUTHORIZED"
        )
        assert_envelope(
            api.post(f"/clients/{bob['id']}/subscriptions", content=raw, headers=headers | bearer(ana["id"])),
            404,
            "CLIENT_NOT_FOUND",
        )
        assert_envelope(api.post("/clients", content=raw, headers=headers | bearer(ana["id"])), 403, "FORBIDDEN")
        assert_envelope(api.post("/clients", content=raw, headers=headers), 401, "UNAUTHORIZED")
        env = assert_envelope(
            api.post(f"/clients/{bob['id']}/subscriptions", content=raw, headers=headers | ADMIN),
            422,
            "VALIDATION_ERROR",
        )
        assert set(env["errors"]) <= {"body", "fund_id"}
    assert_envelope(
        api.get(f"/clients/{bob['id']}/transactions", params={"limit": "x"}, headers=bearer(ana["id"])),
        404,
        "CLIENT_NOT_FOUND",
    )
    assert_envelope(
        api.delete(f"/clients/{bob['id']}/subscriptions/abc", headers=bearer(ana["id"])), 404, "CLIENT_NOT_FOUND"
    )


def test_a_token_accepted_before_is_refused_once_it_expires(api):
    """Verified tokens are remembered for speed; expiry is still checked on every request."""
    from fundcore_host.token import LEEWAY_S

    # `exp` is a whole second: pick it so the token is accepted for 2 to 3 more seconds (the
    # leeway included), whatever the fraction of the current second, then wait until it is not.
    # (A token minted with `int(now)` stayed valid for only 1 - frac(now) seconds.)
    valid_until = math.ceil(time.time()) + 2
    token = jwt.encode({"sub": "admin", "role": "admin", "exp": valid_until - LEEWAY_S}, SECRET, "HS256")
    headers = {"Authorization": "Bearer " + token}
    assert api.get("/funds", headers=headers).status_code == 200
    assert api.get("/funds", headers=headers).status_code == 200
    while time.time() < valid_until + 0.05:
        time.sleep(0.05)
    refused = api.get("/funds", headers=headers)
    assert refused.status_code == 401
    assert_envelope(refused, 401, "UNAUTHORIZED")
    # a token signed with another secret is refused even right after a good one was remembered
    forged = make_token("another-secret-of-enough-length-0123456789", "admin", "admin")
    assert api.get("/funds", headers={"Authorization": "Bearer " + forged}).status_code == 401
