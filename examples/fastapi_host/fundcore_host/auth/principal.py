"""What every verifier of bearer tokens shares: the caller a token names (:class:`Principal`) and
the refusal of a token (:class:`TokenRefusedError`, with a reason class that may be logged)."""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from ..token import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its subject (a client's fundcore client id) and role."""

    sub: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenRefusedError(Exception):
    """A bearer token the host does not accept.

    ``reason`` is a short class of the refusal (``expired``, ``wrong_audience``, ``unknown_key``,
    ...) and ``verifier`` the verifier that refused it (``shared_secret``, ``oidc`` or ``none``):
    both may be logged. Neither ever holds the token, a claim's value or a key.
    """

    def __init__(self, reason: str, verifier: str) -> None:
        super().__init__(f"{verifier}: {reason}")
        self.reason = reason
        self.verifier = verifier


#: PyJWT's refusals as reason classes, the most specific first (a subclass before its base).
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidKeyError, "bad_key"),
    (jwt.DecodeError, "malformed"),
)


def reason_of(error: jwt.PyJWTError) -> str:
    """The reason class of a PyJWT refusal (``invalid`` for one not listed)."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "invalid"
