"""The tokens of the host's own accounts.

* **Access token**: the host's HS256 JWT (:func:`fundcore_host.token.make_token`, signed with
  ``FUNDCORE_JWT_SECRET``), short-lived (``FUNDCORE_ACCESS_TOKEN_TTL_S``, 15 minutes by default):
  ``sub`` is the client id and ``role`` ``client``, or for an operator the account's id and
  ``admin``. It is not revocable: it ends with its ``exp``.
* **Refresh token**: 32 random bytes (:func:`secrets.token_urlsafe`), stored only as their
  SHA-256 (:func:`refresh_token_digest`), used once: ``POST /auth/refresh`` gives a new access
  token and a new refresh token of the same family (one family per sign-in, which ends
  ``FUNDCORE_REFRESH_TOKEN_TTL_S`` after the sign-in, however often it is refreshed). A refresh
  token presented a second time revokes its whole family.

SHA-256 without a salt is enough for a refresh token (unlike a password): it is 256 random
bits, so no dictionary or table reaches it, and a leaked table of digests gives nobody a token.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from ..token import make_token
from .store import Account, StoredSession

#: Bytes of randomness in a refresh token.
REFRESH_TOKEN_BYTES = 32
#: The ``token_type`` of the token responses (RFC 6750).
TOKEN_TYPE = "Bearer"


@dataclass(frozen=True)
class IssuedTokens:
    """What a sign-in or a refresh answers. ``repr`` shows neither token."""

    access_token: str
    refresh_token: str
    expires_in: int
    account: Account

    def __repr__(self) -> str:
        return f"IssuedTokens(account={self.account!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class PageSession:
    """A sign-in through the pages: the session cookie's value (random, like a refresh token,
    stored only as its SHA-256) and the session. ``repr`` hides the value."""

    token: str
    session: StoredSession

    def __repr__(self) -> str:
        return f"PageSession(session={self.session!r})"


def new_refresh_token() -> str:
    """A new refresh token: :data:`REFRESH_TOKEN_BYTES` random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def refresh_token_digest(token: str) -> str:
    """What the store keeps of a refresh token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_family_id() -> str:
    """The id of a new sign-in's token family."""
    return str(uuid.uuid4())


def access_token(secret: str, account: Account, ttl_s: int, now: float) -> str:
    """The account's access token: ``sub`` its client id (an operator: its account id), its role."""
    return make_token(secret, account.subject, account.role, ttl_s, now=now)
