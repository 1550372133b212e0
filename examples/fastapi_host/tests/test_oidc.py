"""Tokens of an OpenID Connect provider, through the real host app.

The provider is :class:`Provider`: an HTTP server on loopback serving a discovery document and a
key set (JWKS) of RSA and EC keys made here with ``cryptography``, counting the requests it gets,
able to rotate keys, to answer slowly or not at all. Its tokens are real RS256/ES256 JWTs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import jwt
import pytest
from conftest import (
    ADMIN,
    LOOPBACK,
    SECRET,
    RecordingNotifier,
    assert_envelope,
    free_port,
    make_engine,
    make_settings,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fundcore_host.app import create_app
from fundcore_host.auth.oidc import parse_key_set

AUDIENCE = "fundcore-api"
#: Keycloak's way: realm roles under realm_access.roles, the client id in a user-attribute claim.
KEYCLOAK = {
    "oidc_role_claim": "realm_access.roles",
    "oidc_role_map": {"fundcore-admin": "admin", "fundcore-client": "client"},
    "oidc_client_id_claim": "fundcore_client_id",
}


def private_key(alg: str) -> Any:
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class _Handler(BaseHTTPRequestHandler):
    server: _ProviderServer

    def do_GET(self) -> None:
        self.server.provider.answer(self)

    def log_message(self, *args: Any) -> None:
        pass


class _ProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    provider: Provider


class Provider:
    """An OpenID Connect provider on loopback (discovery, JWKS, signing keys)."""

    def __init__(self, path: str = "/realms/fundcore") -> None:
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []
        self.extra_jwks: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.silent: set[str] = set()  # "discovery" or "jwks": accept, read, never answer
        self.trickle: set[str] = set()  # "discovery" or "jwks": an answer that never ends
        self.released = threading.Event()
        self.server = _ProviderServer((LOOPBACK, 0), _Handler)
        self.server.provider = self
        self.base = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.issuer = self.base + path
        self.discovery_path = path + "/.well-known/openid-configuration"
        self.jwks_url = self.base + "/protocol/openid-connect/certs"
        self.jwks_uri = self.jwks_url  # what discovery names
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_key(self, kid: str, alg: str = "RS256", publish: bool = True) -> None:
        with self.lock:
            self.keys[kid] = (alg, private_key(alg))
            if publish:
                self.published.append(kid)

    def unpublish(self, kid: str) -> None:
        with self.lock:
            self.published.remove(kid)

    def fetches(self, which: str = "jwks") -> int:
        with self.lock:
            return self.requests[which]

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            keys = [public_jwk(self.keys[kid][1], kid, self.keys[kid][0]) for kid in self.published]
            return {"keys": keys + self.extra_jwks}

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        which = "discovery" if path == self.discovery_path else "jwks" if self.base + path == self.jwks_url else path
        with self.lock:
            self.requests[which] += 1
        if which in self.silent:
            self.released.wait(120)
            return
        if which in self.trickle:  # answers, one byte at a time, never done
            request.send_response(200)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", "100000")
            request.end_headers()
            while not self.released.wait(0.1):
                request.wfile.write(b" ")
                request.wfile.flush()
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        if which == "discovery":
            body: dict[str, Any] = {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_uri,
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
        elif which == "jwks":
            body = self.jwks()
        else:
            request.send_error(404)
            return
        data = json.dumps(body).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def claims(self, **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": AUDIENCE, "sub": "kc-subject", "iat": now, "exp": now + 300}
        return {k: v for k, v in (base | claims).items() if v is not None}

    def token(self, kid: str = "rsa-1", headers: dict[str, Any] | None = None, **claims: Any) -> str:
        alg, key = self.keys[kid]
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.add_key("rsa-1", "RS256")
    p.add_key("ec-1", "ES256")
    yield p
    p.close()


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oidc(provider: Provider, **overrides: Any) -> dict[str, Any]:
    """Settings (keywords of app_factory) for ``provider``, Keycloak's claims unless overridden."""
    return {"oidc_issuer": provider.issuer, "oidc_audience": AUDIENCE, **KEYCLOAK, **overrides}


def admin_token(provider: Provider, kid: str = "rsa-1", **claims: Any) -> str:
    return provider.token(kid, sub="kc-admin", realm_access={"roles": ["offline_access", "fundcore-admin"]}, **claims)


def client_token(provider: Provider, client_id: str, kid: str = "ec-1", **claims: Any) -> str:
    roles = {"roles": ["default-roles-fundcore", "fundcore-client"]}
    return provider.token(kid, sub="kc-user", realm_access=roles, fundcore_client_id=client_id, **claims)


def new_client(api: Any, headers: dict[str, str], name: str = "Ana") -> dict[str, Any]:
    body = {"name": name, "email": f"{name.lower()}@example.com", "phone": "+573001234567", "channel": "email"}
    r = api.post("/clients", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def refused_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected bearer token")]


# ----------------------------------------------------------------------------- accepted tokens


def test_rs256_and_es256_tokens_of_the_provider_pass_with_their_roles_mapped(app_factory, provider):
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider))
    as_admin = bearer_of(admin_token(provider, kid="rsa-1"))  # RS256
    ana = new_client(api, as_admin)
    assert api.get("/clients", headers=as_admin).status_code == 200

    as_ana = bearer_of(client_token(provider, ana["id"], kid="ec-1"))  # ES256
    assert api.get(f"/clients/{ana['id']}", headers=as_ana).json()["name"] == "Ana"
    r = api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 3}, headers=as_ana)
    assert r.status_code == 201, r.text
    assert_envelope(api.get("/clients", headers=as_ana), 403, "FORBIDDEN")  # a client, not an admin
    bob = new_client(api, as_admin, "Bob")
    assert_envelope(api.get(f"/clients/{bob['id']}", headers=as_ana), 404, "CLIENT_NOT_FOUND")

    # both roles: admin; an admin's change is recorded under the provider's subject
    both = {"roles": ["fundcore-client", "fundcore-admin"]}
    as_both = bearer_of(provider.token("ec-1", sub="kc-both", realm_access=both, fundcore_client_id=ana["id"]))
    assert api.patch(f"/clients/{bob['id']}", json={"channel": "sms"}, headers=as_both).status_code == 200
    assert api.get("/audit", headers=as_admin).json()["items"][0]["actor"] == "kc-both"

    # the host's own HS256 tokens keep working beside the provider's
    assert api.get("/clients", headers=ADMIN).status_code == 200
    # discovery once, the key set once, for all of the above
    assert (provider.fetches("discovery"), provider.fetches("jwks")) == (1, 1)


def test_cognito_groups_map_to_roles_and_the_audience_is_the_client_id_claim(app_factory, provider):
    """Cognito's access tokens: no aud but client_id, groups in cognito:groups, the fundcore
    client id in a custom attribute."""
    api = app_factory(
        notifier=RecordingNotifier(),
        oidc_issuer=provider.issuer,
        oidc_audience="app-client-1",
        oidc_audience_claim="client_id",
        oidc_role_claim="cognito:groups",
        oidc_role_map={"fundcore-admins": "admin", "fundcore-clients": "client"},
        oidc_client_id_claim="custom:fundcore_client_id",
    )

    def cognito(groups: list[str], client_id: str = "app-client-1", **claims: Any) -> dict[str, str]:
        token = provider.token(
            "rsa-1", aud=None, client_id=client_id, token_use="access", **{"cognito:groups": groups}, **claims
        )
        return bearer_of(token)

    ana = new_client(api, cognito(["fundcore-admins"]))
    mine = cognito(["fundcore-clients"], **{"custom:fundcore_client_id": ana["id"]})
    assert api.get(f"/clients/{ana['id']}", headers=mine).status_code == 200
    assert_envelope(api.get("/clients", headers=mine), 403, "FORBIDDEN")
    for refused in (
        cognito(["fundcore-admins"], client_id="another-app"),  # issued for another app client
        cognito(["staff"]),  # a group the map does not name
        cognito(["admin"]),  # with a map, only its names count
        cognito(["fundcore-clients"]),  # a client without its fundcore client id
    ):
        assert_envelope(api.get("/funds", headers=refused), 401, "UNAUTHORIZED")


def test_a_plain_role_claim_with_sub_as_the_client_id_and_a_namespaced_claim(app_factory, provider):
    """Defaults: the role claim is `role` and the client id is `sub`; a claim whose name holds dots
    (Auth0's namespaced claims) is read by its whole name."""
    api = app_factory(notifier=RecordingNotifier(), oidc_issuer=provider.issuer, oidc_audience=AUDIENCE)
    ana = new_client(api, bearer_of(provider.token(role="admin")))
    assert api.get(f"/clients/{ana['id']}", headers=bearer_of(provider.token(sub=ana["id"], role="client"))).is_success
    for role in ("root", ["client-ish"], 7, None):
        assert_envelope(api.get("/funds", headers=bearer_of(provider.token(role=role))), 401, "UNAUTHORIZED")

    auth0 = app_factory(
        notifier=RecordingNotifier(),
        oidc_issuer=provider.issuer,
        oidc_audience=AUDIENCE,
        oidc_role_claim="https://fundcore.example.com/roles",
        oidc_client_id_claim="https://fundcore.example.com/client_id",
    )
    namespaced = {"https://fundcore.example.com/roles": ["admin"]}
    assert auth0.get("/clients", headers=bearer_of(provider.token("ec-1", **namespaced))).status_code == 200


def test_tokens_without_a_usable_role_or_client_id_are_refused(app_factory, provider, caplog):
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider))
    caplog.set_level(logging.INFO, logger="fundcore_host.auth")
    client = {"roles": ["fundcore-client"]}
    cases = {
        "no_role": provider.token(),
        "no_role ": provider.token(realm_access={"roles": ["offline_access"]}),
        " no_role": provider.token(realm_access={"roles": "fundcore-admin "}),
        "no_client_id": provider.token(realm_access=client),
        " no_client_id": provider.token(realm_access=client, fundcore_client_id=""),
        "no_client_id ": provider.token(realm_access=client, fundcore_client_id=42),
    }
    for reason, token in cases.items():
        assert_envelope(api.get("/funds", headers=bearer_of(token)), 401, "UNAUTHORIZED")
        assert refused_reasons(caplog)[-1] == f"rejected bearer token: {reason.strip()} (oidc)"


# ----------------------------------------------------------------------------- refused tokens


def _attacks(provider: Provider, attacker: Provider) -> dict[str, tuple[str, str]]:
    """label -> (token, the reason class the host logs)."""
    now = int(time.time())
    leeway = 30
    rsa_key = provider.keys["rsa-1"][1]
    claims = provider.claims(sub="kc-admin", realm_access={"roles": ["fundcore-admin"]})
    forged_key = private_key("RS256")
    attacker.add_key("rsa-1", "RS256")  # the attacker's own key under the provider's key id
    attacker.add_key("attacker-only", "RS256")
    attacker_jwk = public_jwk(forged_key, "rsa-1", "RS256")

    def signed(kid: str = "rsa-1", **changes: Any) -> str:
        alg, key = provider.keys[kid]
        return jwt.encode({**claims, **changes}, key, algorithm=alg, headers={"kid": kid})

    def unsigned_with(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
        def part(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        return ".".join((part(json.dumps(header).encode()), part(json.dumps(payload).encode()), part(signature)))

    good = signed()
    head, _, signature = good.split(".")
    tampered_claims = {**claims, "sub": "someone-else"}
    tampered_body = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).rstrip(b"=").decode()
    pem = public_pem(rsa_key)
    return {
        "wrong issuer": (signed(iss=provider.issuer + "/other"), "unknown_issuer"),
        "issuer with a trailing slash": (signed(iss=provider.issuer + "/"), "unknown_issuer"),
        "wrong audience": (signed(aud="another-api"), "wrong_audience"),
        "audience list without ours": (signed(aud=["another-api", "a-third"]), "wrong_audience"),
        "no audience": (signed(aud=None), "missing_claim"),
        "expired": (signed(iat=now - 3600, exp=now - leeway - 60), "expired"),
        "not yet valid (nbf beyond the leeway)": (signed(nbf=now + leeway + 60), "not_yet_valid"),
        "issued in the future (iat beyond the leeway)": (signed(iat=now + leeway + 60), "not_yet_valid"),
        "no exp": (signed(exp=None), "missing_claim"),
        "no sub": (signed(sub=None), "missing_claim"),
        "alg none": (unsigned_with({"alg": "none", "kid": "rsa-1"}, claims), "algorithm_not_allowed"),
        "alg None spelled otherwise": (unsigned_with({"alg": "None", "kid": "rsa-1"}, claims), "algorithm_not_allowed"),
        "HS256 with the provider's public key (PEM) as the secret": (
            _hs256(claims, pem, kid="rsa-1"),
            "algorithm_not_allowed",
        ),
        "HS256 with the PEM as the secret, no iss": (
            _hs256({k: v for k, v in claims.items() if k != "iss"} | {"role": "admin"}, pem),
            "bad_signature",
        ),
        "HS256 with the host's own secret but the provider's iss": (
            jwt.encode(claims | {"role": "admin"}, SECRET, algorithm="HS256"),
            "algorithm_not_allowed",
        ),
        "unknown key id": (jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": "kid-x"}), "unknown_key"),
        "no key id": (jwt.encode(claims, rsa_key, algorithm="RS256"), "no_key_id"),
        "the provider's key id, another key": (
            jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": "rsa-1"}),
            "bad_signature",
        ),
        "payload changed after signing": (f"{head}.{tampered_body}.{signature}", "bad_signature"),
        "RS256 naming the EC key": (
            jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "ec-1"}),
            "algorithm_mismatch",
        ),
        "PS256 with the RS256 key": (
            jwt.encode(claims, rsa_key, algorithm="PS256", headers={"kid": "rsa-1"}),
            "algorithm_mismatch",
        ),
        "the attacker's key embedded (jwk header)": (
            jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": "rsa-1", "jwk": attacker_jwk}),
            "bad_signature",
        ),
        "the attacker's key set named (jku header)": (
            attacker.token("attacker-only", headers={"jku": attacker.jwks_url}, **claims),
            "unknown_key",
        ),
        "the attacker's certificate URL (x5u header)": (
            attacker.token("rsa-1", headers={"x5u": attacker.base + "/cert.pem"}, **claims),
            "bad_signature",
        ),
        "no alg in the header": ("e30.e30.e30", "algorithm_not_allowed"),
        "not a JWT": ("not.a.jwt", "malformed"),
    }


def _hs256(claims: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """HS256 over ``claims`` with ``secret``, made by hand: PyJWT refuses to use a PEM public key
    as an HMAC secret, an attacker does not."""
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    return signing_input + "." + part(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def test_forged_and_invalid_tokens_are_401_and_only_their_reason_is_logged(app_factory, provider, caplog):
    attacker = Provider()
    try:
        api = app_factory(notifier=RecordingNotifier(), **oidc(provider))
        assert api.get("/clients", headers=bearer_of(admin_token(provider))).status_code == 200  # keys in hand
        caplog.set_level(logging.INFO, logger="fundcore_host")
        attacks = _attacks(provider, attacker)
        assert len(attacks) == 26
        for label, (token, reason) in attacks.items():
            r = api.get("/clients", headers=bearer_of(token))
            assert_envelope(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"] == "Bearer", label
            assert token not in r.text
            logged = refused_reasons(caplog)
            assert logged and logged[-1].startswith(f"rejected bearer token: {reason} ("), (label, logged[-1:])
        text = caplog.text
        # neither a token nor its claims (the middle part) reach the log
        claims_parts = {label: token.split(".")[1] for label, (token, _) in attacks.items()}
        assert not [label for label, (token, _) in attacks.items() if token in text]
        assert not [label for label, part in claims_parts.items() if len(part) > 16 and part in text]
        assert "BEGIN PUBLIC KEY" not in text and SECRET not in text
        assert attacker.requests == Counter()  # jku, x5u: never followed
        assert provider.fetches("jwks") <= 2  # the unknown key ids: at most one more fetch
    finally:
        attacker.close()


def test_a_symmetric_key_in_the_key_set_is_never_used():
    secret = base64.urlsafe_b64encode(b"k" * 32).rstrip(b"=").decode()
    rsa_jwk = public_jwk(private_key("RS256"), "rsa", "RS256")
    keys = parse_key_set(
        {
            "keys": [
                {"kty": "oct", "kid": "oct", "k": secret},
                {"kty": "oct", "kid": "oct-hs", "alg": "HS256", "k": secret},
                {**rsa_jwk, "kid": "enc", "use": "enc"},
                {k: v for k, v in rsa_jwk.items() if k != "kid"},
                {"kty": "RSA", "kid": "broken", "n": "AQAB"},
                rsa_jwk,
                "not an object",
            ]
        }
    )
    assert list(keys) == ["rsa"] and keys["rsa"][0].algorithm_name == "RS256"


# ----------------------------------------------------------------------------- keys over time


def test_keys_rotated_mid_test_are_fetched_once_and_a_removed_key_is_refused(app_factory, provider):
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider, oidc_jwks_cooldown_s=1, oidc_jwks_cache_s=2))
    old = bearer_of(admin_token(provider, kid="rsa-1"))
    assert api.get("/clients", headers=old).status_code == 200
    fetched_at = time.monotonic()
    assert provider.fetches() == 1

    provider.add_key("rsa-2", "RS256")  # the provider starts signing with a new key
    new = bearer_of(admin_token(provider, kid="rsa-2"))
    time.sleep(max(0.0, fetched_at + 1.05 - time.monotonic()))  # past the cool-down of the first fetch
    for _ in range(5):
        assert api.get("/clients", headers=new).status_code == 200
    assert api.get("/clients", headers=old).status_code == 200  # both are published
    assert provider.fetches() == 2  # the new key id made one fetch, not one per request
    second_fetch = time.monotonic()

    provider.unpublish("rsa-1")  # the old key is removed
    time.sleep(max(0.0, second_fetch + 2.05 - time.monotonic()))  # the keys in hand are now stale
    assert api.get("/clients", headers=new).status_code == 200  # used while the set is fetched again

    def old_refused() -> bool:
        return api.get("/clients", headers=old).status_code == 401

    deadline = time.monotonic() + 5
    while not old_refused():
        assert time.monotonic() < deadline, "a token of the removed key is still accepted"
        time.sleep(0.02)
    assert provider.fetches() == 3
    assert api.get("/clients", headers=new).status_code == 200
    assert api.get("/clients", headers=bearer_of(admin_token(provider, kid="rsa-1"))).status_code == 401


@contextlib.asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[httpx2.AsyncClient]:
    """The host app on this loop (its lifespan entered), called through httpx's ASGI transport."""
    app = create_app(make_settings(**settings), engine=make_engine(), notifier=RecordingNotifier())
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://fundcore.test") as client:
            yield client


def test_a_burst_of_unknown_key_ids_costs_the_provider_one_fetch(provider):
    forged = private_key("RS256")
    claims = provider.claims(realm_access={"roles": ["fundcore-admin"]})

    def unknown() -> dict[str, str]:
        return bearer_of(jwt.encode(claims, forged, algorithm="RS256", headers={"kid": uuid.uuid4().hex}))

    async def burst() -> tuple[list[int], float]:
        provider.delay_s = 0.2  # the fetch is under way while the requests arrive
        async with served(**oidc(provider)) as api:
            started = time.monotonic()
            concurrent = await asyncio.gather(*(api.get("/funds", headers=unknown()) for _ in range(100)))
            one_by_one = [await api.get("/funds", headers=unknown()) for _ in range(100)]
            elapsed = time.monotonic() - started
            assert (await api.get("/funds", headers=bearer_of(admin_token(provider)))).status_code == 200
            return [r.status_code for r in concurrent + one_by_one], elapsed

    statuses, elapsed = asyncio.run(burst())
    assert statuses == [401] * 200
    assert (provider.fetches("discovery"), provider.fetches("jwks")) == (1, 1)
    assert elapsed < 10, elapsed


def test_unknown_key_ids_over_time_fetch_at_most_once_per_cool_down(provider):
    forged = private_key("ES256")
    claims = provider.claims(realm_access={"roles": ["fundcore-admin"]})

    async def flood() -> tuple[int, float]:
        async with served(**oidc(provider, oidc_jwks_cooldown_s=1, oidc_jwks_cache_s=60)) as api:
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < 3.2:
                token = jwt.encode(claims, forged, algorithm="ES256", headers={"kid": uuid.uuid4().hex})
                assert (await api.get("/funds", headers=bearer_of(token))).status_code == 401
                sent += 1
            return sent, time.monotonic() - started

    sent, elapsed = asyncio.run(flood())
    assert sent > 20
    assert 1 <= provider.fetches() <= 1 + math.ceil(elapsed / 1), (provider.fetches(), elapsed)


# ----------------------------------------------------------------------------- provider outages


def _timed(api: Any, headers: dict[str, str]) -> tuple[Any, float]:
    started = time.monotonic()
    response = api.get("/funds", headers=headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize("down", ["discovery", "jwks_uri", "jwks_url"])
def test_a_provider_that_refuses_connections_is_401_at_once(app_factory, provider, caplog, down):
    dead = f"http://{LOOPBACK}:{free_port()}"
    settings = oidc(provider)
    if down == "discovery":
        settings["oidc_issuer"] = dead + "/realms/fundcore"
    elif down == "jwks_uri":
        provider.jwks_uri = dead + "/certs"
    else:
        settings["oidc_jwks_url"] = dead + "/certs"
    caplog.set_level(logging.INFO, logger="fundcore_host")
    api = app_factory(notifier=RecordingNotifier(), **settings)
    token = provider.token(iss=settings["oidc_issuer"], realm_access={"roles": ["fundcore-admin"]})
    for _ in range(3):
        response, took = _timed(api, bearer_of(token))
        assert_envelope(response, 401, "UNAUTHORIZED")
        assert took < 2, took
    assert refused_reasons(caplog)[-1] == "rejected bearer token: keys_unavailable (oidc)"
    failures = [r.getMessage() for r in caplog.records if "could not be fetched" in r.getMessage()]
    assert len(failures) == 1 and "connection refused" in failures[0], failures  # then the cool-down
    assert token not in caplog.text
    assert api.get("/funds", headers=ADMIN).status_code == 200  # the host's own tokens are unaffected


@pytest.mark.parametrize("silent, timeout_s", [("jwks", None), ("discovery", 1.0)])
def test_a_provider_that_never_answers_is_401_within_the_timeout(app_factory, provider, silent, timeout_s):
    """`jwks` with the default timeout (5 s): what a deployment gets without tuning anything."""
    provider.silent.add(silent)
    extra = {"oidc_http_timeout_s": timeout_s} if timeout_s is not None else {}
    limit = timeout_s if timeout_s is not None else 5.0
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider, **extra))
    token = bearer_of(admin_token(provider))
    response, took = _timed(api, token)
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert limit - 0.5 < took < limit + 2.5, took
    assert provider.fetches(silent) == 1
    response, took = _timed(api, token)  # within the cool-down: no new fetch, no wait
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert took < 1, took
    assert provider.fetches(silent) == 1
    assert api.get("/funds", headers=ADMIN).status_code == 200


def test_a_key_set_that_trickles_in_forever_is_given_up(app_factory, provider, caplog):
    """A byte every 0.1 s keeps every read of the socket under its timeout: the fetch's own
    deadline ends it, and the request had stopped waiting at the timeout already."""
    provider.trickle.add("jwks")
    caplog.set_level(logging.INFO, logger="fundcore_host")
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider, oidc_http_timeout_s=1))
    response, took = _timed(api, bearer_of(admin_token(provider)))
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert took < 2.5, took
    deadline = time.monotonic() + 5
    while not any("could not be fetched (timed out)" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the fetch did not give up"
        time.sleep(0.05)


def test_keys_in_hand_are_used_while_the_provider_is_down(app_factory, provider):
    api = app_factory(notifier=RecordingNotifier(), **oidc(provider, oidc_jwks_cooldown_s=1, oidc_jwks_cache_s=1))
    token = bearer_of(admin_token(provider))
    assert api.get("/clients", headers=token).status_code == 200
    provider.close()  # connections refused from now on
    time.sleep(1.1)  # the keys in hand are stale
    for _ in range(3):
        response, took = _timed(api, token)
        assert response.status_code == 200 and took < 1, (response.text, took)


def test_the_event_loop_runs_while_the_keys_are_fetched(provider):
    """A slow key set (1.5 s) delays only the requests that need it: the loop ticks every 10 ms
    and other requests are answered meanwhile."""
    provider.delay_s = 1.5

    async def measure() -> tuple[int, float, float, list[float]]:
        async with served(**oidc(provider)) as api:
            stop = asyncio.Event()
            gaps: list[float] = []
            other: list[float] = []

            async def ticker() -> None:
                last = time.monotonic()
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            async def others() -> None:
                await asyncio.sleep(0.2)
                while not stop.is_set():
                    started = time.monotonic()
                    assert (await api.get("/funds", headers=ADMIN)).status_code == 200
                    other.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(ticker()), asyncio.create_task(others())]
            await asyncio.sleep(0.05)  # the ticker is running
            started = time.monotonic()
            response = await api.get("/funds", headers=bearer_of(admin_token(provider)))
            took = time.monotonic() - started
            stop.set()
            await asyncio.gather(*tasks)
            return response.status_code, took, max(gaps), other

    status, took, worst_gap, other = asyncio.run(measure())
    assert status == 200
    assert took >= 1.4, took  # the fetch was slow ...
    assert worst_gap < 0.25, worst_gap  # ... and the loop kept running
    assert len(other) >= 5 and max(other) < 0.5, other
