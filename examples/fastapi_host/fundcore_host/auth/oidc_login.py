"""The pages' sign-in through the OpenID Connect provider: the authorization code flow with PKCE
(RFC 7636, ``S256``), ending in a page session (:mod:`.sessions`).

1. ``/sign-in/provider`` sends the browser to the provider's ``authorization_endpoint`` with a
   random ``state``, kept in the ``fundcore_oidc`` cookie (``HttpOnly``, ``SameSite=Lax`` so that
   it comes back with the provider's redirect, 10 minutes); the PKCE verifier and the ``nonce``
   are derived from it with HMAC-SHA256 under ``FUNDCORE_JWT_SECRET``, so neither travels in a
   URL and nothing is kept on the server.
2. ``/auth/oidc/callback`` takes the code only with the ``state`` of the browser's own cookie,
   exchanges it at the ``token_endpoint`` (no redirects followed, at most
   ``FUNDCORE_OIDC_HTTP_TIMEOUT_S``), and verifies the **ID token** as
   :class:`~.oidc.OidcVerifier` verifies access tokens (the provider's keys, issuer, signature,
   times), with the host's login client id as its audience and the ``nonce`` of this sign-in.
   The role and the client id come from its claims as configured for access tokens
   (``FUNDCORE_OIDC_ROLE_CLAIM``, ``FUNDCORE_OIDC_CLIENT_ID_CLAIM``, ``FUNDCORE_OIDC_ROLE_MAP``).

Nothing here logs a code, a token or a claim's value.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt

from ..config import OidcSettings, Settings
from .bearer import Authenticator
from .oidc import (
    ALGORITHMS,
    DISCOVERY_PATH,
    MAX_DOCUMENT_BYTES,
    NAME,
    OidcVerifier,
    ProviderUnavailableError,
    _NoRedirects,
    _usable_url,
    fetch_json,
)
from .principal import Principal, TokenRefusedError, reason_of

log = logging.getLogger("fundcore_host.auth")

#: The cookie that carries a sign-in's ``state`` from its start to the provider's redirect.
STATE_COOKIE = "fundcore_oidc"
#: Seconds a started sign-in may take at the provider.
STATE_TTL_S = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


@dataclass(frozen=True)
class SignedIn:
    """Who the provider signed in: the pages act as ``principal``, showing ``label``."""

    principal: Principal
    label: str


class LoginRefusedError(Exception):
    """The provider's sign-in did not complete; ``reason`` is a class of the failure that may be logged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderLogin:
    """The authorization code flow with the provider of ``verifier`` (module docstring)."""

    def __init__(self, settings: OidcSettings, verifier: OidcVerifier, secret: str) -> None:
        if settings.login_client_id is None:
            raise ValueError("the provider sign-in needs FUNDCORE_OIDC_LOGIN_CLIENT_ID")
        self.settings = settings
        self.client_id = settings.login_client_id
        self.verifier = verifier
        self._secret = secret.encode()
        self._endpoints: Endpoints | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the values of one sign-in

    def new_state(self) -> str:
        return secrets.token_urlsafe(32)

    def _derived(self, purpose: str, state: str) -> str:
        return _b64(hmac.new(self._secret, f"fundcore-oidc-{purpose}:{state}".encode(), hashlib.sha256).digest())

    def code_verifier(self, state: str) -> str:
        return self._derived("pkce", state)

    def nonce(self, state: str) -> str:
        return self._derived("nonce", state)

    # ------------------------------------------------------------------ the provider's endpoints

    def _discover(self) -> Endpoints:
        with self._lock:
            if self._endpoints is not None:
                return self._endpoints
        issuer = self.settings.issuer
        document = fetch_json(issuer.rstrip("/") + DISCOVERY_PATH, self.settings.http_timeout_s)
        if document.get("issuer") != issuer:
            raise ProviderUnavailableError("the discovery document names another issuer")
        found = [document.get("authorization_endpoint"), document.get("token_endpoint")]
        if not all(isinstance(url, str) and _usable_url(url) for url in found):
            raise ProviderUnavailableError("the discovery document has no https authorization or token endpoint")
        endpoints = Endpoints(str(found[0]), str(found[1]))
        with self._lock:
            self._endpoints = endpoints
        return endpoints

    async def endpoints(self) -> Endpoints:
        """The provider's authorization and token endpoints (discovered once, off the loop)."""
        if self._endpoints is not None:
            return self._endpoints
        return await asyncio.to_thread(self._discover)

    async def authorization_url(self, state: str, redirect_uri: str) -> str:
        """Where the browser goes to sign in at the provider."""
        endpoint = (await self.endpoints()).authorization
        challenge = _b64(hashlib.sha256(self.code_verifier(state).encode()).digest())
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.login_scope,
                "state": state,
                "nonce": self.nonce(state),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    # ------------------------------------------------------------------ the provider's answer

    def _exchange(self, token_endpoint: str, code: str, state: str, redirect_uri: str) -> dict[str, Any]:
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.code_verifier(state),
        }
        if self.settings.login_client_secret is not None:
            fields["client_secret"] = self.settings.login_client_secret
        request = urllib.request.Request(
            token_endpoint,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=self.settings.http_timeout_s) as response:
                body = response.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            raise LoginRefusedError(f"token_endpoint_http_{error.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
            raise LoginRefusedError("token_endpoint_unreachable") from None
        try:
            answer = json.loads(body) if len(body) <= MAX_DOCUMENT_BYTES else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise LoginRefusedError("token_endpoint_not_json")
        return answer

    async def finish(self, code: str, state: str, redirect_uri: str) -> SignedIn:
        """Who signed in, from the code the provider sent back for ``state``; raises
        :class:`LoginRefusedError` (with a reason class) for anything else."""
        try:
            endpoints = await self.endpoints()
        except ProviderUnavailableError as error:
            raise LoginRefusedError(f"discovery: {error}") from None
        answer = await asyncio.to_thread(self._exchange, endpoints.token, code, state, redirect_uri)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefusedError("no_id_token")
        try:
            claims = await self._verify(id_token)
            if not hmac.compare_digest(str(claims.get("nonce", "")), self.nonce(state)):
                raise TokenRefusedError("wrong_nonce", NAME)
            principal = self.verifier.principal_of(claims)
        except TokenRefusedError as refused:
            raise LoginRefusedError(f"id_token: {refused.reason}") from None
        label = next(
            (
                str(claims[name])
                for name in ("email", "name", "preferred_username")
                if isinstance(claims.get(name), str)
            ),
            principal.sub,
        )
        return SignedIn(principal, label)

    async def _verify(self, id_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise TokenRefusedError("malformed", NAME) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if kid is None and isinstance(algorithm, str) and algorithm in ALGORITHMS:
            # An ID token comes straight from the token endpoint, not from the caller, and some
            # providers leave its key id out: the set's only key of that algorithm checks it.
            key = await self.verifier.keys.sole_key(algorithm)
        else:
            key = await self.verifier.signing_key(algorithm, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[str(algorithm)],
                issuer=self.settings.issuer,
                audience=self.client_id,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRefusedError(reason_of(error), NAME) from None
        return claims


def provider_login(settings: Settings, authenticator: Authenticator) -> ProviderLogin | None:
    """The pages' provider sign-in, when the provider and ``FUNDCORE_OIDC_LOGIN_CLIENT_ID`` are set."""
    oidc = settings.oidc
    if oidc is None or oidc.login_client_id is None:
        return None
    return ProviderLogin(oidc, authenticator.providers[oidc.issuer], settings.jwt_secret.get_secret_value())
