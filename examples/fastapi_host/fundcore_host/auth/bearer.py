"""Which verifier a bearer token goes to: the token's issuer and algorithm decide, never a
round of "try every key".

* ``iss`` is a configured OpenID Connect provider's issuer: that provider's verifier
  (:mod:`.oidc`; asymmetric algorithms only, so an HS256 token naming the provider is refused).
* Otherwise an HS256 token: the host's own, checked with the shared secret (:mod:`.shared_secret`).
* Anything else (another issuer, another algorithm, ``none``) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from ..config import Settings
from ..token import ALGORITHM
from .oidc import OidcVerifier
from .principal import Principal, TokenRefusedError
from .shared_secret import SharedSecretVerifier


def _unverified(token: str) -> tuple[Mapping[str, Any], object]:
    """The header and the ``iss`` of ``token``, read without verifying anything (only to pick
    the verifier)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefusedError("malformed", "none") from None
    return header, claims.get("iss")


class Authenticator:
    """The caller of a bearer token, from the verifier its issuer and algorithm name."""

    def __init__(self, shared_secret: SharedSecretVerifier, providers: Iterable[OidcVerifier] = ()) -> None:
        self.shared_secret = shared_secret
        self.providers = {provider.issuer: provider for provider in providers}

    async def principal(self, token: str) -> Principal:
        """The caller ``token`` names; raises :class:`TokenRefusedError`."""
        if self.shared_secret.remembers(token):  # verified with the secret before: no parse
            return self.shared_secret.verify(token)
        header, issuer = _unverified(token)
        provider = self.providers.get(issuer) if isinstance(issuer, str) else None
        if provider is not None:
            return await provider.verify(token, header)
        if header.get("alg") == ALGORITHM:
            return self.shared_secret.verify(token)
        raise TokenRefusedError("unknown_issuer" if issuer is not None else "algorithm_not_allowed", "none")


def build_authenticator(settings: Settings) -> Authenticator:
    """The host's own tokens (``FUNDCORE_JWT_SECRET``), and the provider's when one is configured."""
    oidc = settings.oidc
    return Authenticator(
        SharedSecretVerifier(settings.jwt_secret.get_secret_value()),
        [OidcVerifier(oidc)] if oidc is not None else [],
    )
