"""Tokens of an external OpenID Connect provider (Cognito, Keycloak, Entra ID, Auth0, ...).

A token is accepted when

* its header names an asymmetric algorithm (:data:`ALGORITHMS`: RSA or ECDSA; never ``none``
  and never HMAC, so the provider's public key cannot be used as a shared secret) and a key id;
* the provider's key set (JWKS) holds a signing key of that id and that algorithm, and the
  signature verifies with it;
* ``iss`` is the configured issuer, exactly; the audience claim (``aud``, or the configured one
  such as Cognito's ``client_id``) holds the configured audience; ``exp`` is in the future and
  ``nbf`` and ``iat`` are not, within the leeway; ``sub`` is present;
* the role claim (a name, or a dotted path into objects such as ``realm_access.roles``) holds a
  value that the role map (or, without one, the host's own names) makes ``client`` or
  ``admin``; admin wins when both are there. A client also needs the client-id claim: its
  fundcore client id. An admin is named by ``sub`` (the audit trail's actor).

The key set comes from ``jwks_url``, or the ``jwks_uri`` of the discovery document
``<issuer>/.well-known/openid-configuration`` (whose ``issuer`` must be the configured one). It
is fetched on a thread of its own, never on the event loop, one fetch at a time for every
request waiting on it, and each request waits at most the HTTP timeout: a provider that is down
or silent costs a 401, never a 500 or a hung request. It is kept for ``jwks_cache_s`` and then
fetched again while the keys in hand go on being used (also while the provider cannot be
reached). A key id it does not hold makes the host fetch the set again at once (a rotated key),
but two fetches are always at least ``jwks_cooldown_s`` apart, so a flood of made-up key ids
costs the provider at most one request per cool-down.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import jwt
from jwt import PyJWK

from ..config import OidcSettings
from ..token import Claims, Role, is_role
from .principal import Principal, TokenRefusedError, reason_of

log = logging.getLogger("fundcore_host.auth")

NAME = "oidc"

#: The algorithms a provider's token may be signed with: asymmetric only.
ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: The largest discovery document or key set read.
MAX_DOCUMENT_BYTES = 1 << 20
#: A longer key id is refused without a look at the key set.
MAX_KID_CHARS = 256
#: Hosts a provider URL may name over plain ``http://``.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DISCOVERY_PATH = "/.well-known/openid-configuration"


class ProviderUnavailableError(Exception):
    """The provider's discovery document or key set could not be had; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the keys come from the URL configured or discovered, nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _usable_url(url: str) -> bool:
    """``https://``, or ``http://`` to this machine."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return host is not None and (parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS))


def _describe(error: BaseException) -> str:
    """A short reason for a failed request (no URL credentials are ever configured here)."""
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    text = str(cause)[:200]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def fetch_json(url: str, timeout_s: float) -> dict[str, Any]:
    """The JSON object at ``url`` (GET, no redirects, at most :data:`MAX_DOCUMENT_BYTES`, about
    ``timeout_s`` in all); raises :class:`ProviderUnavailableError`. Blocks: call it off the loop."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "fundcore-host"})
    opener = urllib.request.build_opener(_NoRedirects)
    body = bytearray()
    try:
        with opener.open(request, timeout=timeout_s) as response:
            while chunk := response.read1(65_536):  # what has arrived: the deadline is checked as bytes trickle in
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnavailableError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise ProviderUnavailableError("timed out")
    except urllib.error.HTTPError as error:
        error.close()
        raise ProviderUnavailableError(f"HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        raise ProviderUnavailableError(_describe(error)) from None
    try:
        document = json.loads(body)
    except ValueError:
        raise ProviderUnavailableError("not JSON") from None
    if not isinstance(document, dict):
        raise ProviderUnavailableError("not a JSON object")
    return document


def parse_key_set(document: Mapping[str, Any]) -> dict[str, tuple[PyJWK, ...]]:
    """The signing keys of a JWKS by key id. Keys without an id, for another use than ``sig``,
    of an algorithm outside :data:`ALGORITHMS` (a symmetric ``oct`` key above all) or that do not
    parse are left out."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ProviderUnavailableError("the key set has no keys list")
    keys: dict[str, tuple[PyJWK, ...]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS or entry.get("use") not in (None, "sig"):
            continue
        try:
            key = PyJWK(entry)
        except Exception:  # any key PyJWT or cryptography cannot read is simply not used
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[kid] = (*keys.get(kid, ()), key)
    return keys


class ProviderKeys:
    """The provider's signing keys: fetched off the loop, cached, refreshed for an unknown key
    id, never fetched twice within the cool-down (module docstring)."""

    def __init__(
        self,
        settings: OidcSettings,
        fetch: Callable[[str, float], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._fetch_json = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[PyJWK, ...]] = {}
        self._jwks_url = settings.jwks_url
        self._fetched_at: float | None = None  # the last successful fetch
        self._attempted_at: float | None = None  # the last fetch started
        self._inflight: Future[None] | None = None

    async def key(self, kid: str, algorithm: str) -> PyJWK:
        """The signing key ``kid`` of ``algorithm``; raises :class:`TokenRefusedError`."""
        if self._fetched_at is None:
            await self._refresh()  # nothing in hand yet: wait (at most the timeout)
        elif self._clock() - self._fetched_at >= self._settings.jwks_cache_s:
            self._start_fetch()  # the keys in hand are used while newer ones are fetched
        candidates = self._keys.get(kid)
        if candidates is None:
            await self._refresh()  # a rotated key? (nothing happens within the cool-down)
            candidates = self._keys.get(kid)
        if candidates is None:
            raise TokenRefusedError("unknown_key" if self._fetched_at is not None else "keys_unavailable", NAME)
        for candidate in candidates:
            if candidate.algorithm_name == algorithm:
                return candidate
        raise TokenRefusedError("algorithm_mismatch", NAME)

    async def sole_key(self, algorithm: str) -> PyJWK:
        """The one key of ``algorithm`` in the set, for a token that names none; raises
        :class:`TokenRefusedError` when the set has none or several (never a guess)."""
        if self._fetched_at is None:
            await self._refresh()
        found = [key for keys in self._keys.values() for key in keys if key.algorithm_name == algorithm]
        if len(found) != 1:
            raise TokenRefusedError("no_key_id", NAME)
        return found[0]

    def _start_fetch(self) -> Future[None] | None:
        """The fetch under way, or a new one unless the cool-down forbids it (then ``None``)."""
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._settings.jwks_cooldown_s:
                return None
            self._attempted_at = now
            future: Future[None] = Future()
            self._inflight = future
        threading.Thread(target=self._fetch, args=(future,), name="fundcore-oidc-keys", daemon=True).start()
        return future

    async def _refresh(self) -> None:
        """Wait for a fetch (a new one, or the one under way) at most the HTTP timeout."""
        future = self._start_fetch()
        if future is None:
            return
        # past the timeout the fetch goes on for later requests; this one has waited long enough
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._settings.http_timeout_s)

    def _fetch(self, future: Future[None]) -> None:
        """On the fetch's own thread: discovery when needed, then the key set."""
        try:
            url = self._jwks_url or self._discover()
            keys = parse_key_set(self._fetch_json(url, self._settings.http_timeout_s))
        except ProviderUnavailableError as error:
            log.warning(
                "the keys of the OpenID Connect provider %s could not be fetched (%s); tokens are checked "
                "against the keys in hand (%d), another fetch in %g s at the earliest",
                self._settings.issuer,
                error.reason,
                len(self._keys),
                self._settings.jwks_cooldown_s,
            )
        except Exception:
            log.exception("fetching the keys of the OpenID Connect provider %s failed", self._settings.issuer)
        else:
            with self._lock:
                self._keys = keys
                self._fetched_at = self._clock()
            log.info("OpenID Connect keys of %s: %s", self._settings.issuer, ", ".join(sorted(keys)) or "none")
        finally:
            with self._lock:
                self._inflight = None
            future.set_result(None)

    def _discover(self) -> str:
        """The ``jwks_uri`` of the issuer's discovery document (kept once found)."""
        issuer = self._settings.issuer
        document = self._fetch_json(issuer.rstrip("/") + DISCOVERY_PATH, self._settings.http_timeout_s)
        if document.get("issuer") != issuer:
            raise ProviderUnavailableError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _usable_url(jwks_uri):
            raise ProviderUnavailableError("the discovery document has no https jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri


def claim(claims: Claims, name: str) -> object:
    """The claim ``name``; when no claim has that name, a dotted path into objects
    (``realm_access.roles``). ``None`` when absent."""
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class OidcVerifier:
    """Verifies the tokens of one OpenID Connect provider (module docstring)."""

    def __init__(self, settings: OidcSettings, keys: ProviderKeys | None = None) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else ProviderKeys(settings)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    async def verify(self, token: str, header: Mapping[str, Any]) -> Principal:
        """The caller ``token`` names (``header``: its unverified header); raises :class:`TokenRefusedError`."""
        algorithm = header.get("alg")
        key = await self.signing_key(algorithm, header.get("kid"))
        assert isinstance(algorithm, str)
        settings = self.settings
        audience_in_aud = settings.audience_claim == "aud"
        try:
            claims: Claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=settings.issuer,
                audience=settings.audience if audience_in_aud else None,
                leeway=settings.leeway_s,
                options={
                    "require": ["exp", "iss", "sub", *(["aud"] if audience_in_aud else [])],
                    "verify_aud": audience_in_aud,
                },
            )
        except jwt.PyJWTError as error:
            raise TokenRefusedError(reason_of(error), NAME) from None
        if not audience_in_aud and not self._audience_matches(claim(claims, settings.audience_claim)):
            raise TokenRefusedError("wrong_audience", NAME)
        return self.principal_of(claims)

    async def signing_key(self, algorithm: object, kid: object) -> PyJWK:
        """The provider's key named by a token's header, for one of the allowed algorithms;
        raises :class:`TokenRefusedError`."""
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise TokenRefusedError("algorithm_not_allowed", NAME)
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
            raise TokenRefusedError("no_key_id", NAME)
        return await self.keys.key(kid, algorithm)

    def _audience_matches(self, value: object) -> bool:
        if isinstance(value, str):
            return value == self.settings.audience
        return isinstance(value, list) and self.settings.audience in value

    def _roles(self, value: object) -> set[Role]:
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        role_map = self.settings.role_map
        roles: set[Role] = set()
        for name in names:
            if not isinstance(name, str):
                continue
            role = role_map.get(name) if role_map is not None else name
            if is_role(role):
                roles.add(role)
        return roles

    def principal_of(self, claims: Claims) -> Principal:
        """The caller of verified ``claims``: its role and client id as configured."""
        roles = self._roles(claim(claims, self.settings.role_claim))
        if "admin" in roles:
            subject = claims.get("sub")
            if not isinstance(subject, str) or not subject:
                raise TokenRefusedError("missing_claim", NAME)
            return Principal(sub=subject, role="admin")
        if "client" in roles:
            client_id = claim(claims, self.settings.client_id_claim)
            if not isinstance(client_id, str) or not client_id:
                raise TokenRefusedError("no_client_id", NAME)
            return Principal(sub=client_id, role="client")
        raise TokenRefusedError("no_role", NAME)
