"""The pages' sign-in: a session cookie, and CSRF protection for every form the pages post.

* **Session cookie** ``fundcore_session``: a random value (its SHA-256 kept in the account
  store's ``page_sessions``), ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other
  site's page sends it), ``Secure`` when the page came over HTTPS, ``Path=/``, for
  ``FUNDCORE_SESSION_TTL_S``. Signing out deletes the stored session, so a copied cookie stops
  working at once. The JSON API never reads it: its callers send bearer tokens.
* **CSRF**: every form carries a token the server derives with HMAC-SHA256 (key:
  ``FUNDCORE_JWT_SECRET``) from the session cookie, or before sign-in from a random
  ``fundcore_csrf`` cookie (so a sign-in form cannot be posted from another site either). A POST
  whose token does not match, or whose ``Origin`` names another site, is refused with 403 before
  anything runs. SameSite=Strict alone would stop most of it; the token also covers browsers and
  proxies that do not honour it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

#: The session cookie's name.
SESSION_COOKIE = "fundcore_session"
#: The cookie a form's CSRF token is derived from before sign-in.
CSRF_COOKIE = "fundcore_csrf"
#: The form field that carries the CSRF token.
CSRF_FIELD = "csrf_token"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str, max_age_s: int) -> None:
    """The session cookie of a new sign-in."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """The session cookie removed (sign-out, an expired session)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))


def session_token(request: Request) -> str | None:
    """The session cookie's value, when the request has one."""
    return request.cookies.get(SESSION_COOKIE) or None


def csrf_seed(request: Request, response: Response | None = None) -> str:
    """What a page's CSRF token is derived from: the session cookie, else the ``fundcore_csrf``
    cookie, set on ``response`` when the request had none."""
    seed = session_token(request) or request.cookies.get(CSRF_COOKIE)
    if seed:
        return seed
    seed = secrets.token_urlsafe(32)
    if response is not None:
        response.set_cookie(CSRF_COOKIE, seed, path="/", httponly=True, samesite="strict", secure=_secure(request))
    # remembered for the rest of this request, so every form of the page gets the same token
    request.cookies[CSRF_COOKIE] = seed
    return seed


def csrf_token(secret: str, seed: str) -> str:
    """The CSRF token of forms whose requests carry ``seed``."""
    return hmac.new(secret.encode(), b"fundcore-csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (when the browser sent one) is this host."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def csrf_ok(request: Request, secret: str, submitted: str | None) -> bool:
    """Whether a posted form may run: same origin, and its token is the one of its cookie."""
    seed = session_token(request) or request.cookies.get(CSRF_COOKIE)
    if not seed or not submitted or not same_origin(request):
        return False
    return hmac.compare_digest(csrf_token(secret, seed), submitted)
