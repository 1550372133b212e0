"""The host's own accounts (fundcore_host/auth/accounts.py): ``POST /auth/sign-up``,
``POST /auth/sign-in``, ``POST /auth/refresh`` and ``POST /auth/sign-out``.

None of them takes a bearer token; each is counted by the host's rate limiter under the
caller's address, like a failed authentication. Token responses carry ``Cache-Control:
no-store`` (RFC 6749, 5.1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..auth.accounts import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    RegistrationIncompleteError,
    SignInLimitedError,
    WeakPasswordError,
)
from ..auth.store import AccountExistsError, AccountStoreError, Registration
from ..auth.tokens import TOKEN_TYPE, IssuedTokens
from ..dependencies import AccountsDep, EngineDep, PublicCallerAddress, host_state
from ..errors import STORE_RETRY_AFTER_S, HostError, error_responses, host_message
from ..json_body import MoneySafeRoute
from ..models import ClientOut, RegisterClientRequest, Text, _JsonBody
from ..token import Role

log = logging.getLogger("fundcore_host.accounts")

router = APIRouter(route_class=MoneySafeRoute, prefix="/auth", tags=["accounts"])

_PASSWORD_SCHEMA = {"format": "password", "writeOnly": True}
#: The password of the document's examples (the sign-in example signs in the sign-up example).
EXAMPLE_PASSWORD = "a long passphrase of yours"
#: A new password: what sign-up accepts (operators get the same rule from the command).
NewPassword = Annotated[
    StrictStr,
    Field(
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        description=f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
        json_schema_extra=_PASSWORD_SCHEMA,
    ),
]
#: A password to check: any length up to the cap (the rule of the day is not revealed).
Password = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_PASSWORD_CHARS,
        description=f"at most {MAX_PASSWORD_CHARS} characters",
        json_schema_extra=_PASSWORD_SCHEMA,
    ),
]
RefreshToken = Annotated[
    Text,
    Field(description="the refresh token of a sign-in or of the last refresh", json_schema_extra=_PASSWORD_SCHEMA),
]


class SignUpRequest(RegisterClientRequest):
    """A new client and its account: the contact data as for ``POST /clients`` (the document
    states the engine's rules on them), and the account's password."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Ana",
                    "email": "ana@example.com",
                    "phone": "+573001234567",
                    "channel": "email",
                    "password": EXAMPLE_PASSWORD,
                }
            ]
        },
    )

    password: NewPassword


class SignInRequest(_JsonBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "ana@example.com", "password": EXAMPLE_PASSWORD}]},
    )

    email: Text
    password: Password


class RefreshRequest(_JsonBody):
    model_config = ConfigDict(extra="forbid")

    refresh_token: RefreshToken


class _Tokens(BaseModel):
    access_token: str = Field(..., description="send as `Authorization: Bearer <access_token>`")
    token_type: Literal["Bearer"]
    expires_in: int = Field(..., description="seconds the access token is valid")
    refresh_token: str = Field(
        ..., description="for `POST /auth/refresh`, once; a second use revokes this sign-in's tokens"
    )


class TokenResponse(_Tokens):
    """A sign-in's or a refresh's tokens, and who they are for."""

    role: Role
    client_id: str | None = Field(..., description="the client's id; null for an operator (role admin)")


class SignUpResponse(_Tokens):
    """The client registered, and the tokens of its first sign-in."""

    client: ClientOut


def locale(request: Request) -> str:
    return host_state(request).settings.locale


def _refresh_links(token: str) -> dict[str, object]:
    """Links from an answer with a refresh token to the calls that take it."""
    body = {"refresh_token": token}
    return {
        "refreshTokens": {"operationId": "refreshTokens", "requestBody": body},
        "signOut": {"operationId": "signOut", "requestBody": body},
    }


_SIGNED_UP_LINKS = {
    "signIn": {
        "operationId": "signIn",
        "requestBody": {"email": "$request.body#/email", "password": "$request.body#/password"},
    },
    "getClient": {"operationId": "getClient", "parameters": {"client_id": "$response.body#/client/id"}},
    **_refresh_links("$response.body#/refresh_token"),
}


def _token_fields(tokens: IssuedTokens) -> dict[str, object]:
    return {
        "access_token": tokens.access_token,
        "token_type": TOKEN_TYPE,
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@contextmanager
def _account_errors(locale: str) -> Iterator[None]:
    """The accounts' failures as the host's error envelope. The account store's failures take
    the engine's 503 codes: ``STORAGE_ERROR`` (nothing saved) and, for a sign-up whose client was
    registered and whose account is not complete, ``OUTCOME_UNKNOWN`` (the same request repeated
    completes it), each with ``Retry-After`` and a text of the host's."""
    retry = {"Retry-After": str(STORE_RETRY_AFTER_S)}
    try:
        yield
    except AccountExistsError:
        raise HostError("ACCOUNT_EXISTS") from None
    except InvalidCredentialsError:
        raise HostError("INVALID_CREDENTIALS", headers={"WWW-Authenticate": "Bearer"}) from None
    except InvalidRefreshTokenError:
        raise HostError("INVALID_REFRESH_TOKEN", headers={"WWW-Authenticate": "Bearer"}) from None
    except SignInLimitedError as limited:
        raise HostError("RATE_LIMITED", headers={"Retry-After": str(limited.retry_after_s)}) from None
    except WeakPasswordError as weak:
        raise HostError("VALIDATION_ERROR", errors={"password": str(weak)}) from None
    except RegistrationIncompleteError:
        message = host_message("REGISTRATION_INCOMPLETE", locale)
        raise HostError("OUTCOME_UNKNOWN", message, status=503, headers=retry) from None
    except AccountStoreError as error:
        log.error("account store: %s", error)
        message = host_message("ACCOUNT_STORE_FAILED", locale)
        raise HostError("STORAGE_ERROR", message, status=503, headers=retry) from None


@router.post(
    "/sign-up",
    status_code=201,
    summary="Sign up: register a client with an account of its own, and sign it in",
    description=(
        "The client is registered by the engine (its contact data decided as for `POST /clients`) and the "
        "account in the same step: a refusal leaves neither. After a 503 the same sign-up again (same email "
        "and password), or a sign-in, completes it; it never makes a second client. An email that has an "
        "account is `ACCOUNT_EXISTS`. Sign-up never makes an operator."
    ),
    operation_id="signUp",
    responses={**error_responses(409, 422, 429, 503), 201: {"links": _SIGNED_UP_LINKS}},
)
async def sign_up(
    body: SignUpRequest,
    request: Request,
    response: Response,
    address: PublicCallerAddress,
    accounts: AccountsDep,
    engine: EngineDep,
) -> SignUpResponse:
    registration = Registration(name=body.name, email=body.email, phone=body.phone, channel=body.channel)
    with _account_errors(locale(request)):
        client, tokens = await accounts.sign_up(engine, registration, body.password)
    _no_store(response)
    return SignUpResponse(client=ClientOut.from_record(client), **_token_fields(tokens))  # type: ignore[arg-type]


@router.post(
    "/sign-in",
    summary="Sign in with email and password: an access token and a refresh token",
    description=(
        "An unknown email and a wrong password get the same 401 `INVALID_CREDENTIALS`. Attempts are counted "
        "per account and per address in fixed windows; past the limit, 429 `RATE_LIMITED` with `Retry-After`."
    ),
    operation_id="signIn",
    responses={**error_responses(401, 422, 429, 503), 200: {"links": _refresh_links("$response.body#/refresh_token")}},
)
async def sign_in(
    body: SignInRequest,
    request: Request,
    response: Response,
    address: PublicCallerAddress,
    accounts: AccountsDep,
    engine: EngineDep,
) -> TokenResponse:
    with _account_errors(locale(request)):
        tokens = await accounts.sign_in(engine, body.email, body.password, address)
    _no_store(response)
    account = tokens.account
    return TokenResponse(role=account.role, client_id=account.client_id, **_token_fields(tokens))  # type: ignore[arg-type]


@router.post(
    "/refresh",
    summary="A new access token and a new refresh token for a refresh token, used once",
    description=(
        "A refresh token is single use: the answer has the next one. A refresh token presented a second "
        "time is refused and revokes every token of its sign-in (`INVALID_REFRESH_TOKEN`)."
    ),
    operation_id="refreshTokens",
    responses={**error_responses(401, 422, 429, 503), 200: {"links": _refresh_links("$response.body#/refresh_token")}},
)
async def refresh(
    body: RefreshRequest, request: Request, response: Response, address: PublicCallerAddress, accounts: AccountsDep
) -> TokenResponse:
    with _account_errors(locale(request)):
        tokens = await accounts.refresh(body.refresh_token)
    _no_store(response)
    account = tokens.account
    return TokenResponse(role=account.role, client_id=account.client_id, **_token_fields(tokens))  # type: ignore[arg-type]


@router.post(
    "/sign-out",
    status_code=204,
    response_class=Response,
    summary="Sign out: revoke the refresh tokens of a sign-in",
    description=(
        "Every refresh token of the sign-in is refused from then on; an access token already issued stays "
        "valid until it expires. An unknown token is answered 204 as well (RFC 7009)."
    ),
    operation_id="signOut",
    responses=error_responses(422, 429, 503),
)
async def sign_out(
    body: RefreshRequest, request: Request, address: PublicCallerAddress, accounts: AccountsDep
) -> Response:
    with _account_errors(locale(request)):
        await accounts.sign_out(body.refresh_token)
    return Response(status_code=204)
