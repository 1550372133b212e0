"""Who is looking at a page: the session cookie read through the account store, a sign-in asked
for when there is none, operators only on the console, and every posted form's CSRF check."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

import fundcore

from ..auth import Principal
from ..auth.accounts import Accounts
from ..auth.sessions import CSRF_FIELD, clear_session_cookie, csrf_ok, session_token
from ..auth.store import AccountStoreError
from ..dependencies import host_state
from . import i18n
from .render import Page, error_text


class SignInRequiredError(Exception):
    """The page needs a signed-in visitor: answered with a redirect to the sign-in page."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


class OperatorsOnlyError(Exception):
    """A client asked for a console page: answered 403 with a page saying so."""

    def __init__(self, page: Page) -> None:
        self.page = page


class FormRefusedError(Exception):
    """A posted form without a valid CSRF token (or from another site): answered 403."""

    def __init__(self, page: Page) -> None:
        self.page = page


def _accounts(request: Request) -> Accounts:
    accounts = host_state(request).accounts
    if accounts is None:
        raise RuntimeError("the accounts are not set up: build the app with fundcore_host.app.create_app")
    return accounts


async def visitor(request: Request) -> Page:
    """The page of any visitor, signed in or not (the sign-in and sign-up pages)."""
    page = Page(request, i18n.language(request))
    token = session_token(request)
    if token is not None:
        try:
            session = await _accounts(request).session(token)
        except AccountStoreError:
            session = None
        if session is not None:
            page.principal = Principal(session.subject, session.role)
            page.email = session.label
    return page


async def signed_in(page: Annotated[Page, Depends(visitor)]) -> Page:
    """The page of a signed-in visitor; otherwise the visitor is sent to the sign-in page."""
    if page.principal is None:
        raise SignInRequiredError(expired=session_token(page.request) is not None)
    return page


async def operator(page: Annotated[Page, Depends(signed_in)]) -> Page:
    """The page of a signed-in operator; a client gets 403."""
    if page.principal is None or not page.principal.is_admin:
        raise OperatorsOnlyError(page)
    return page


async def checked_form(request: Request, page: Page) -> dict[str, str]:
    """A posted form's text fields, once its CSRF token and origin are checked (else 403)."""
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    secret = host_state(request).settings.jwt_secret.get_secret_value()
    if not csrf_ok(request, secret, fields.get(CSRF_FIELD)):
        raise FormRefusedError(page)
    return fields


VisitorPage = Annotated[Page, Depends(visitor)]
ClientPage = Annotated[Page, Depends(signed_in)]
OperatorPage = Annotated[Page, Depends(operator)]


def install_page_handlers(app: FastAPI) -> None:
    """The answers to :class:`SignInRequiredError`, :class:`OperatorsOnlyError` and
    :class:`FormRefusedError`."""

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequiredError)
        target = "/sign-in?expired=1" if exc.expired else "/sign-in"
        response = RedirectResponse(target, status_code=303)
        if exc.expired:
            clear_session_cookie(response, request)
        return response

    async def operators_only(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OperatorsOnlyError)
        return exc.page.render("message.html", status_code=403, message=exc.page.t("forbidden"))

    async def form_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormRefusedError)
        return exc.page.render("message.html", status_code=403, message=exc.page.t("csrf_refused"))

    app.add_exception_handler(SignInRequiredError, sign_in_required)
    app.add_exception_handler(OperatorsOnlyError, operators_only)
    app.add_exception_handler(FormRefusedError, form_refused)


class PageRoute(APIRoute):
    """A page's route: an engine error nobody handled (a store that failed, an unknown fund in
    the address) is a page with the engine's message in the visitor's language, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except fundcore.FundcoreError as error:
                page = Page(request, i18n.language(request))
                return page.render("message.html", status_code=error.http_status, message=error_text(error, page.lang))

        return handle
