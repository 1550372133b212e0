"""Rendering a page: the templates (``fundcore_host/templates``), what every page gets (the
visitor's language and words, the CSRF token, the signed-in caller), and how values are shown.

Money is shown with :func:`fundcore.format_cop` (``COP $500.000``), the engine's own format;
a refusal with the engine's own message in the visitor's language (:func:`error_text`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import fundcore

from ..auth import Principal
from ..auth.sessions import CSRF_FIELD, csrf_seed, csrf_token
from ..dependencies import actor_of, host_state
from ..errors import host_message
from . import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

#: What a page's ``<form>`` fields may hold at most, from the engine's limits.
FORM_LIMITS = {
    "name": fundcore.MAX_NAME_CHARS,
    "email": fundcore.MAX_EMAIL_CHARS,
    "phone": fundcore.MAX_PHONE_DIGITS + 1,
    "phone_digits": (fundcore.MIN_PHONE_DIGITS, fundcore.MAX_PHONE_DIGITS),
    "channels": fundcore.CHANNELS,
    "categories": fundcore.CATEGORIES,
    # an amount as typed: digits, thousands dots or commas, the decimals (the engine decides)
    "amount": len(str(fundcore.MAX_AMOUNT)) + 8,
}


def cop(amount: Decimal | str | int) -> str:
    """Money the Colombian way, by the engine (``COP $75.000``)."""
    return fundcore.format_cop(amount)


def when(moment: datetime.datetime | None, lang: str) -> str:
    """A moment in UTC: ``2026-12-07 21:04 UTC``."""
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def error_text(error: fundcore.FundcoreError, lang: str) -> str:
    """The engine's message for ``error`` in ``lang``."""
    messages = getattr(error, "messages", None)
    if isinstance(messages, dict) and isinstance(messages.get(lang), str):
        return str(messages[lang])
    return error.message


def field_problem(error: fundcore.FundcoreError, lang: str) -> str | None:
    """For a ``VALIDATION_ERROR``, the engine's words on what is wrong with the field."""
    problems = getattr(error, "problems", None)
    if isinstance(problems, dict) and isinstance(problems.get(lang), str):
        return str(problems[lang])
    return error.problem


class ActorArgs(TypedDict):
    """The engine's keyword arguments naming who makes an administrative change."""

    actor: str
    request_id: str | None


@dataclass
class Page:
    """What a page handler knows of its request: the visitor's language, the caller when signed in."""

    request: Request
    lang: str
    principal: Principal | None = None
    #: The signed-in account's email (shown in the header).
    email: str | None = None

    def t(self, key: str, **values: Any) -> str:
        text = i18n.words(self.lang)[key]
        return text.format(**values) if values else text

    def actor(self) -> ActorArgs:
        """The signed-in visitor as the actor of a change, as the JSON API passes it to the
        engine: ``actor`` (the subject) and ``request_id``."""
        assert self.principal is not None
        who = actor_of(self.request, self.principal)
        return ActorArgs(actor=who.name, request_id=who.request_id)

    def host_text(self, code: str) -> str:
        return host_message(code, self.lang)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        response = HTMLResponse("", status_code=status_code)
        secret = host_state(self.request).settings.jwt_secret.get_secret_value()
        token = csrf_token(secret, csrf_seed(self.request, response))
        other = "en" if self.lang == "es" else "es"
        body = (
            _environment()
            .get_template(template)
            .render(
                page=self,
                lang=self.lang,
                other_lang=other,
                t=self.t,
                cop=cop,
                when=lambda moment: when(moment, self.lang),
                csrf_field=CSRF_FIELD,
                csrf_token=token,
                limits=FORM_LIMITS,
                path=self.request.url.path,
                provider_sign_in=host_state(self.request).provider_login is not None,
                **context,
            )
        )
        response.body = response.render(body)
        response.headers["content-length"] = str(len(response.body))
        _page_headers(response)
        i18n.remember_language(self.request, response)
        return response


def _page_headers(response: Response) -> None:
    """Every page: nothing from elsewhere (no script at all), not framed, not cached."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


_ENVIRONMENT: Environment | None = None


def _environment() -> Environment:
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _ENVIRONMENT
