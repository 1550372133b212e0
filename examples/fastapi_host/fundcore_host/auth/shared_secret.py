"""The host's own HS256 tokens, signed with the shared secret ``FUNDCORE_JWT_SECRET``
(``python -m fundcore_host.token`` mints them for scripts and tests; see :mod:`fundcore_host.token`).

Claims ``sub`` (the client id, or any id for an admin), ``role`` (``client`` or ``admin``) and
``exp`` are required; only HS256 is accepted.
"""

from __future__ import annotations

import jwt

from ..token import TokenVerifier, is_role
from .principal import Principal, TokenRefusedError, reason_of

NAME = "shared_secret"


class SharedSecretVerifier:
    """Verifies the host's HS256 tokens (verified tokens are remembered: :class:`TokenVerifier`)."""

    def __init__(self, secret: str) -> None:
        self._tokens = TokenVerifier(secret)

    def remembers(self, token: str) -> bool:
        """Whether ``token`` was verified before (it is then one of these tokens)."""
        return self._tokens.remembers(token)

    def verify(self, token: str) -> Principal:
        """The caller ``token`` names; raises :class:`TokenRefusedError`."""
        try:
            claims = self._tokens.verify(token)
        except jwt.PyJWTError as error:
            raise TokenRefusedError(reason_of(error), NAME) from None
        sub, role = claims.get("sub"), claims.get("role")
        if not isinstance(sub, str) or not sub:
            raise TokenRefusedError("missing_claim", NAME)
        if not is_role(role):
            raise TokenRefusedError("no_role", NAME)
        return Principal(sub=sub, role=role)
