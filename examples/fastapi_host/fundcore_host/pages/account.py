"""Sign-up, sign-in and sign-out through the pages: the same :class:`~..auth.accounts.Accounts`
calls as ``/auth/*``, ending in a session cookie instead of tokens."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

import fundcore

from ..auth.accounts import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    InvalidCredentialsError,
    RegistrationIncompleteError,
    SignInLimitedError,
    WeakPasswordError,
)
from ..auth.oidc import ProviderUnavailableError
from ..auth.oidc_login import STATE_COOKIE, STATE_TTL_S, LoginRefusedError, ProviderLogin
from ..auth.sessions import clear_session_cookie, session_token, set_session_cookie
from ..auth.store import AccountExistsError, AccountStoreError, Registration
from ..auth.tokens import PageSession
from ..dependencies import engine, host_state
from ..errors import HostError
from ..rate_limit import anonymous_key
from .access import PageRoute, VisitorPage, _accounts, checked_form
from .render import Page, error_text, field_problem

log = logging.getLogger("fundcore_host.auth")

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PASSWORD_LIMITS = {"min": MIN_PASSWORD_CHARS, "max": MAX_PASSWORD_CHARS}


def _home(page: Page) -> str:
    return "/ops" if page.principal is not None and page.principal.is_admin else "/"


def _signed_in(request: Request, session: PageSession) -> Response:
    response = RedirectResponse("/ops" if session.session.role == "admin" else "/", status_code=303)
    ttl = host_state(request).settings.session_ttl_s
    set_session_cookie(response, request, session.token, ttl)
    return response


def _account_error(page: Page, error: Exception) -> str:
    """What the page says of a failed sign-in or sign-up: the host's words for its codes."""
    if isinstance(error, InvalidCredentialsError):
        return page.host_text("INVALID_CREDENTIALS")
    if isinstance(error, SignInLimitedError):
        return page.host_text("RATE_LIMITED")
    if isinstance(error, AccountExistsError):
        return page.host_text("ACCOUNT_EXISTS")
    if isinstance(error, RegistrationIncompleteError):
        return page.host_text("REGISTRATION_INCOMPLETE")
    return page.host_text("ACCOUNT_STORE_FAILED")


def _address(request: Request) -> str | None:
    """The visitor's address, counted by the host's rate limiter as the JSON API's ``/auth``
    calls are; ``None`` past its limit."""
    state = host_state(request)
    try:
        state.rate_limiter.check(anonymous_key(request), state.settings.locale)
    except HostError:
        return None
    return request.client.host if request.client else "unknown"


@router.get("/sign-in")
async def sign_in_form(page: VisitorPage) -> Response:
    if page.principal is not None:
        return RedirectResponse(_home(page), status_code=303)
    notice = page.t("session_ended") if page.request.query_params.get("expired") else None
    return page.render("account/sign_in.html", notice=notice, error=None, email="")


@router.post("/sign-in")
async def sign_in(request: Request, page: VisitorPage) -> Response:
    fields = await checked_form(request, page)
    email, password = fields.get("email", ""), fields.get("password", "")
    address = _address(request)
    try:
        if address is None:
            raise SignInLimitedError(60)
        session = await _accounts(request).sign_in_session(await engine(request), email, password, address)
    except (
        InvalidCredentialsError,
        SignInLimitedError,
        RegistrationIncompleteError,
        AccountStoreError,
    ) as error:
        status = (
            429 if isinstance(error, SignInLimitedError) else 401 if isinstance(error, InvalidCredentialsError) else 503
        )
        return page.render(
            "account/sign_in.html", status_code=status, notice=None, error=_account_error(page, error), email=email
        )
    except fundcore.FundcoreError as error:  # completing a pending account's registration
        return page.render(
            "account/sign_in.html",
            status_code=error.http_status,
            notice=None,
            error=error_text(error, page.lang),
            email=email,
        )
    return _signed_in(request, session)


_SIGN_UP_FIELDS = ("name", "email", "phone", "channel")


@router.get("/sign-up")
async def sign_up_form(page: VisitorPage) -> Response:
    if page.principal is not None:
        return RedirectResponse(_home(page), status_code=303)
    values = dict.fromkeys(_SIGN_UP_FIELDS, "") | {"channel": "email"}
    return page.render("account/sign_up.html", values=values, errors={}, error=None, password_limits=PASSWORD_LIMITS)


@router.post("/sign-up")
async def sign_up(request: Request, page: VisitorPage) -> Response:
    fields = await checked_form(request, page)
    values = {name: fields.get(name, "") for name in _SIGN_UP_FIELDS}
    registration = Registration(**values)
    errors: dict[str, str] = {}
    error: str | None = None
    status = 422
    try:
        if _address(request) is None:
            raise SignInLimitedError(60)
        _, session = await _accounts(request).sign_up_session(
            await engine(request), registration, fields.get("password", "")
        )
    except WeakPasswordError as weak:
        errors["password"] = str(weak)
    except fundcore.ValidationError as refused:
        problem = field_problem(refused, page.lang)
        if refused.field in _SIGN_UP_FIELDS and problem:
            errors[str(refused.field)] = problem
        else:
            error = error_text(refused, page.lang)
    except fundcore.FundcoreError as refused:
        error, status = error_text(refused, page.lang), refused.http_status
    except (AccountExistsError, RegistrationIncompleteError, AccountStoreError, SignInLimitedError) as failed:
        error = _account_error(page, failed)
        status = {AccountExistsError: 409, SignInLimitedError: 429}.get(type(failed), 503)
    else:
        return _signed_in(request, session)
    return page.render(
        "account/sign_up.html",
        status_code=status,
        values=values,
        errors=errors,
        error=error or page.t("form_errors"),
        password_limits=PASSWORD_LIMITS,
    )


@router.post("/sign-out")
async def sign_out(request: Request, page: VisitorPage) -> Response:
    await checked_form(request, page)
    token = session_token(request)
    if token is not None:
        try:
            await _accounts(request).end_session(token)
        except AccountStoreError:
            # the session still stands: say so rather than pretend it ended
            return page.render("message.html", status_code=503, message=page.host_text("ACCOUNT_STORE_FAILED"))
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response


# --------------------------------------------------------------------------- the provider's sign-in


def _provider(request: Request) -> ProviderLogin | None:
    return host_state(request).provider_login


@router.get("/sign-in/provider")
async def provider_sign_in(request: Request, page: VisitorPage) -> Response:
    """Off to the provider's sign-in (auth/oidc_login.py); 404 when none is configured."""
    login = _provider(request)
    if login is None:
        return page.render("message.html", status_code=404, message=page.t("not_found"))
    state = login.new_state()
    try:
        target = await login.authorization_url(state, str(request.url_for("provider_callback")))
    except ProviderUnavailableError as error:
        log.warning("provider sign-in unavailable: %s", error)
        return page.render(
            "account/sign_in.html", status_code=503, notice=None, error=page.t("provider_failed"), email=""
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_S,
        path="/auth/oidc",
        httponly=True,
        samesite="lax",  # it must come back with the provider's redirect, a cross-site navigation
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/auth/oidc/callback", name="provider_callback")
async def provider_callback(request: Request, page: VisitorPage) -> Response:
    """The provider's redirect: the code exchanged, the ID token verified, a page session."""
    login = _provider(request)
    if login is None:
        return page.render("message.html", status_code=404, message=page.t("not_found"))
    query = request.query_params
    state, code = query.get("state", ""), query.get("code", "")
    expected = request.cookies.get(STATE_COOKIE, "")
    try:
        if not expected or not hmac.compare_digest(state, expected):
            raise LoginRefusedError("state_mismatch")
        if query.get("error") or not code:
            raise LoginRefusedError("provider_error")
        signed = await login.finish(code, state, str(request.url_for("provider_callback")))
        principal = signed.principal
        session = await _accounts(request).start_session_as(None, principal.sub, principal.role, signed.label)
    except LoginRefusedError as refused:
        log.info("provider sign-in refused: %s", refused.reason)
        failed = page.render(
            "account/sign_in.html", status_code=401, notice=None, error=page.t("provider_failed"), email=""
        )
        failed.delete_cookie(STATE_COOKIE, path="/auth/oidc")
        return failed
    except AccountStoreError:
        return page.render("message.html", status_code=503, message=page.host_text("ACCOUNT_STORE_FAILED"))
    # A page of this site moves on to the portal: a redirect straight from the provider's
    # navigation would not carry the SameSite=Strict session cookie on its next request.
    home = "/ops" if principal.is_admin else "/"
    response = page.render("account/signed_in.html", target=home)
    set_session_cookie(response, request, session.token, host_state(request).settings.session_ttl_s)
    response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
    return response
