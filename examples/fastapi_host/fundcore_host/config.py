"""Host configuration: :class:`Settings`, read from ``FUNDCORE_*`` environment variables
(pydantic-settings; all optional, safe local defaults).

Each variable is the field of the same name with the ``FUNDCORE_`` prefix, upper case
(``smtp_host`` is ``FUNDCORE_SMTP_HOST``); ``data_path`` is ``FUNDCORE_DATA``. An empty or blank
value counts as unset. The README of the host lists them all (Configuration).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypedDict

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import fundcore
import fundcore.aio

from .logs import LogFormat
from .token import ROLES, Role

log = logging.getLogger("fundcore_host")

#: Used only when FUNDCORE_JWT_SECRET is unset; fine on a laptop, never in production.
LOCAL_DEV_JWT_SECRET = "fundcore-local-development-secret-do-not-deploy"

ENV_PREFIX = "FUNDCORE_"

TlsMode = Literal["starttls", "ssl", "none"]
Locale = Literal["es", "en"]

_TLS_DEFAULT_PORT: dict[TlsMode, int] = {"starttls": 587, "ssl": 465, "none": 25}
#: Fields whose values are never repeated in a message.
_SECRET_FIELDS = frozenset({"jwt_secret", "smtp_password", "sms_gateway_token", "database_url"})
#: Fields taken as they are written (a password may start or end with a space).
_UNTRIMMED_FIELDS = frozenset(
    {"jwt_secret", "smtp_user", "smtp_password", "sms_gateway_token", "oidc_login_client_secret"}
)


class ConfigError(ValueError):
    """An environment variable has a value the host cannot use."""


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = urllib.parse.quote(parts.username or "", safe="")
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "<unparseable database URL>"


class EngineOptions(TypedDict):
    """The keyword settings the host passes to ``fundcore.Engine`` and ``fundcore.aio.Engine.open``."""

    locale: Locale
    max_attempts: int | None
    retry_base_delay_ms: int | None
    retry_max_delay_ms: int | None
    pool_size: int | None
    operation_timeout_ms: int | None
    prepared_statements: bool | None


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how email notifications are sent."""

    host: str | None = None
    port: int = 587
    tls: TlsMode = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str = "fundcore@localhost"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SmsSettings:
    """The HTTP gateway SMS notifications are posted to."""

    gateway_url: str | None = None
    token: str | None = None
    timeout_s: float = 10.0


#: Hosts an OpenID Connect URL may name over plain ``http://`` (a provider on the same machine).
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class OidcSettings:
    """The OpenID Connect provider whose tokens the host accepts (fundcore_host/auth/oidc.py)."""

    issuer: str
    audience: str
    audience_claim: str = "aud"
    jwks_url: str | None = None
    role_claim: str = "role"
    role_map: Mapping[str, Role] | None = None
    client_id_claim: str = "sub"
    leeway_s: float = 30.0
    http_timeout_s: float = 5.0
    jwks_cache_s: float = 3600.0
    jwks_cooldown_s: float = 30.0
    #: The pages' sign-in through the provider (authorization code with PKCE): the host's client
    #: id at the provider (``None``: the pages offer no provider sign-in), its secret for a
    #: confidential client, the scopes asked for.
    login_client_id: str | None = None
    login_client_secret: str | None = field(default=None, repr=False)
    login_scope: str = "openid"


class Settings(BaseSettings):
    """The host's settings; ``Settings()`` reads the environment, keywords override it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        populate_by_name=True,
        extra="forbid",
    )

    #: The embedded store's directory (one process per store).
    data_path: str = Field("./data/fundcore", validation_alias="FUNDCORE_DATA")
    #: ``postgresql://user:password@host:5432/db``: the PostgreSQL store instead of ``data_path``.
    database_url: str | None = Field(None, repr=False)
    #: PostgreSQL connections each engine (each worker) keeps open; unset: the engine's default.
    pool_size: int | None = None
    #: Seconds a PostgreSQL call waits on the network at most (fractions allowed; the engine
    #: decides the range); unset: the engine's default.
    operation_timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    #: ``false`` behind a pooler in transaction mode (PgBouncer, RDS Proxy); unset: the engine's
    #: default (prepared statements on).
    pg_prepared_statements: bool | None = None
    #: HS256 key of the bearer tokens; unset: a fixed local-only secret (a warning is logged).
    jwt_secret: SecretStr = SecretStr(LOCAL_DEV_JWT_SECRET)
    #: Language of the engine's and the host's messages.
    locale: Locale = "es"
    #: The SMTP server; unset: email is written to the log, not sent.
    smtp_host: str | None = None
    #: Unset: 587 for starttls, 465 for ssl, 25 for none.
    smtp_port: int | None = Field(None, ge=1)
    smtp_tls: TlsMode = "starttls"
    #: Login only when a user is set.
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    #: The sender address.
    smtp_from: str = "fundcore@localhost"
    smtp_timeout_s: int = Field(10, ge=1)
    #: Receives a JSON POST per SMS; unset: SMS is written to the log, not sent.
    sms_gateway_url: str | None = None
    #: Sent as ``Authorization: Bearer <token>`` to the gateway.
    sms_gateway_token: SecretStr | None = None
    sms_timeout_s: int = Field(10, ge=1)
    #: Pause between two dispatch rounds.
    dispatch_interval_ms: int = Field(1000, ge=1)
    #: Notifications per dispatch round.
    dispatch_batch: int = Field(100, ge=1)
    #: Requests per minute per caller; 0 turns the limit off.
    rate_limit_per_minute: int = Field(600, ge=0)
    #: The engine's notification retry policy; unset: the engine's defaults.
    retry_base_delay_ms: int | None = Field(None, ge=1)
    retry_max_delay_ms: int | None = Field(None, ge=1)
    max_attempts: int | None = Field(None, ge=1)
    #: The host's log level.
    log_level: str = "INFO"
    #: ``text`` lines, or ``json``: one JSON object per line (fundcore_host/logs.py).
    log_format: LogFormat = "text"
    # An OpenID Connect provider whose tokens are accepted beside the host's own (README: Signing
    # in with an OpenID Connect provider). Only the issuer turns it on; the others need it.
    #: The provider's ``iss``, exactly as its tokens write it; unset: only the host's own tokens.
    oidc_issuer: str | None = None
    #: Required with the issuer: what the audience claim of the provider's tokens must hold.
    oidc_audience: str | None = None
    #: The claim holding the audience: ``aud``, or ``client_id`` for Cognito's access tokens.
    oidc_audience_claim: str = "aud"
    #: The provider's JSON Web Key Set; unset: the ``jwks_uri`` of its discovery document.
    oidc_jwks_url: str | None = None
    #: The claim with the caller's role or roles (a dotted path reaches into objects).
    oidc_role_claim: str = "role"
    #: A JSON object from the provider's role or group names to ``client`` or ``admin``; unset:
    #: the claim's values are the host's role names.
    oidc_role_map: Annotated[dict[str, Role] | None, NoDecode] = None
    #: The claim holding a client's fundcore client id (a provider's ``sub`` is not one).
    oidc_client_id_claim: str = "sub"
    #: Seconds of clock difference allowed for ``exp``, ``nbf`` and ``iat``.
    oidc_leeway_s: float = Field(30, ge=0, le=300, allow_inf_nan=False)
    #: Seconds a request waits at most for the provider's discovery document or keys.
    oidc_http_timeout_s: float = Field(5, gt=0, le=60, allow_inf_nan=False)
    #: Seconds the key set is used before it is fetched again.
    oidc_jwks_cache_s: float = Field(3600, ge=1, le=86_400, allow_inf_nan=False)
    #: Seconds between two fetches at least, whatever the tokens name (a flood of unknown key ids
    #: causes at most one fetch per this time).
    oidc_jwks_cooldown_s: float = Field(30, ge=1, le=3600, allow_inf_nan=False)
    #: The pages' sign-in through the provider: the host's client id there (unset: none), the
    #: client secret (a confidential client), the scopes (docs/pages.md).
    oidc_login_client_id: str | None = None
    oidc_login_client_secret: SecretStr | None = None
    oidc_login_scope: str = "openid"
    # The host's own accounts (README: The host's own accounts; fundcore_host/auth/accounts.py).
    #: The accounts' SQLite file on the embedded store; unset: beside FUNDCORE_DATA
    #: (``./data/fundcore-accounts.sqlite3``). On PostgreSQL they live in FUNDCORE_DATABASE_URL.
    accounts_path: str | None = None
    #: Seconds an access token of a sign-in or a refresh is valid.
    access_token_ttl_s: int = Field(900, ge=30, le=86_400)
    #: Seconds a sign-in's refresh tokens are valid (refreshing does not extend it).
    refresh_token_ttl_s: int = Field(14 * 86_400, ge=60, le=366 * 86_400)
    #: Seconds a sign-in through the pages lasts (its session cookie; signing out ends it sooner).
    session_ttl_s: int = Field(8 * 3600, ge=60, le=31 * 86_400)
    #: Sign-in attempts per account (email) in a window; past it, 429 until the window ends.
    sign_in_max_per_account: int = Field(5, ge=1)
    #: Sign-in attempts per client address in a window (a successful one is not counted).
    sign_in_max_per_address: int = Field(20, ge=1)
    #: Seconds of a sign-in window.
    sign_in_window_s: int = Field(900, ge=1, le=86_400)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: object) -> object:
        """Surrounding blanks are dropped (secrets excepted) and a blank value counts as unset."""
        if not isinstance(values, dict):
            return values
        cleaned: dict[object, object] = {}
        for key, value in values.items():
            if isinstance(value, str) and key not in _UNTRIMMED_FIELDS:
                value = value.strip()
            if value != "":
                cleaned[key] = value
        return cleaned

    @field_validator("locale", "smtp_tls", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"must be a logging level such as INFO or DEBUG, got {value!r}")
        return level

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"must start with postgresql:// or postgres://, got {redact_url(value)!r}")
        return value

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _provider_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parts = urllib.parse.urlsplit(value)
            host = parts.hostname
        except ValueError:
            host = None
        if host is None or parts.scheme not in ("https", "http") or parts.query or parts.fragment:
            raise ValueError(f"must be an https:// URL without a query or fragment, got {value!r}")
        if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
            raise ValueError(f"must be https:// (plain http:// only for localhost), got {value!r}")
        return value

    @field_validator("oidc_role_map", mode="before")
    @classmethod
    def _role_map_json(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not parsed:
            raise ValueError(f'must be a JSON object such as {{"fundcore-admins": "admin"}}, got {value!r}')
        return parsed

    @field_validator("oidc_role_map")
    @classmethod
    def _role_map_not_empty(cls, value: dict[str, Role] | None) -> dict[str, Role] | None:
        if value is not None and not value:
            raise ValueError(f"must map at least one name to one of {', '.join(ROLES)}")
        return value

    @model_validator(mode="after")
    def _oidc_settings_together(self) -> Settings:
        others = sorted(name for name in self.model_fields_set if name.startswith("oidc_") and name != "oidc_issuer")
        if self.oidc_issuer is None:
            if others:
                names = ", ".join(env_name(name) for name in others)
                raise ValueError(f"{names} set without FUNDCORE_OIDC_ISSUER: set the provider's issuer, or unset them")
            return self
        if self.oidc_audience is None:
            raise ValueError(
                "FUNDCORE_OIDC_AUDIENCE is required with FUNDCORE_OIDC_ISSUER: the audience the provider "
                "issues the host's tokens for (an API identifier or an app client id)"
            )
        if self.oidc_jwks_cooldown_s > self.oidc_jwks_cache_s:
            raise ValueError(
                f"FUNDCORE_OIDC_JWKS_COOLDOWN_S ({self.oidc_jwks_cooldown_s:g}) must not be longer than "
                f"FUNDCORE_OIDC_JWKS_CACHE_S ({self.oidc_jwks_cache_s:g})"
            )
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of the environment; raises :class:`ConfigError` naming the variable."""
        try:
            return cls()
        except ValidationError as error:
            raise ConfigError(_explain(error)) from None

    @property
    def jwt_secret_is_default(self) -> bool:
        """Whether tokens are signed with the built-in local development secret."""
        return self.jwt_secret.get_secret_value() == LOCAL_DEV_JWT_SECRET

    @property
    def oidc(self) -> OidcSettings | None:
        """The OpenID Connect provider, when ``oidc_issuer`` is set."""
        if self.oidc_issuer is None or self.oidc_audience is None:
            return None
        return OidcSettings(
            issuer=self.oidc_issuer,
            audience=self.oidc_audience,
            audience_claim=self.oidc_audience_claim,
            jwks_url=self.oidc_jwks_url,
            role_claim=self.oidc_role_claim,
            role_map=dict(self.oidc_role_map) if self.oidc_role_map is not None else None,
            client_id_claim=self.oidc_client_id_claim,
            leeway_s=self.oidc_leeway_s,
            http_timeout_s=self.oidc_http_timeout_s,
            jwks_cache_s=self.oidc_jwks_cache_s,
            jwks_cooldown_s=self.oidc_jwks_cooldown_s,
            login_client_id=self.oidc_login_client_id,
            login_client_secret=(
                self.oidc_login_client_secret.get_secret_value() if self.oidc_login_client_secret else None
            ),
            login_scope=self.oidc_login_scope,
        )

    @property
    def smtp(self) -> SmtpSettings:
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port if self.smtp_port is not None else _TLS_DEFAULT_PORT[self.smtp_tls],
            tls=self.smtp_tls,
            user=self.smtp_user,
            password=self.smtp_password.get_secret_value() if self.smtp_password is not None else None,
            sender=self.smtp_from,
            timeout_s=float(self.smtp_timeout_s),
        )

    @property
    def sms(self) -> SmsSettings:
        return SmsSettings(
            gateway_url=self.sms_gateway_url,
            token=self.sms_gateway_token.get_secret_value() if self.sms_gateway_token is not None else None,
            timeout_s=float(self.sms_timeout_s),
        )

    @property
    def store(self) -> str:
        """What ``fundcore.Engine`` opens: the database URL if set, else the store directory."""
        return self.database_url or self.data_path

    @property
    def store_label(self) -> str:
        """The store as it may be logged (a database URL without its password)."""
        return redact_url(self.database_url) if self.database_url else self.data_path

    def redact(self, text: str) -> str:
        """``text`` with the database password, if any, replaced by ``***``."""
        if self.database_url:
            try:
                password = urllib.parse.urlsplit(self.database_url).password
            except ValueError:
                password = None
            if password:
                text = text.replace(password, "***").replace(urllib.parse.quote(password, safe=""), "***")
        return text

    def engine_options(self) -> EngineOptions:
        """The keyword settings of the engine (``None``: the engine's default)."""
        return EngineOptions(
            locale=self.locale,
            max_attempts=self.max_attempts,
            retry_base_delay_ms=self.retry_base_delay_ms,
            retry_max_delay_ms=self.retry_max_delay_ms,
            pool_size=self.pool_size,
            operation_timeout_ms=self.operation_timeout_ms,
            prepared_statements=self.pg_prepared_statements,
        )

    def open_engine(self) -> fundcore.Engine:
        """The engine on :attr:`store` with these settings (blocks while the store opens)."""
        return fundcore.Engine(self.store, **self.engine_options())

    def open_async_engine(self) -> fundcore.aio.OpeningEngine:
        """The async engine on :attr:`store` with these settings, opened on its own threads when
        awaited (one thread per database connection)."""
        return fundcore.aio.Engine.open(self.store, **self.engine_options())

    @property
    def operation_timeout_ms(self) -> int | None:
        """:attr:`operation_timeout` in the engine's unit (whole milliseconds). The engine decides
        the range; a value far beyond any is passed as a large one it refuses too (not as an
        integer too big to pass)."""
        if self.operation_timeout is None:
            return None
        return min(round(self.operation_timeout * 1000), 2**63)

    def warn_about_local_defaults(self) -> None:
        if self.jwt_secret_is_default:
            log.warning(
                "FUNDCORE_JWT_SECRET is not set: using the built-in local development secret. "
                "Anyone can mint tokens for this server; set FUNDCORE_JWT_SECRET before deploying."
            )
        elif len(self.jwt_secret.get_secret_value().encode()) < 32:
            log.warning("FUNDCORE_JWT_SECRET is shorter than 32 bytes; use a longer random secret")
        oidc = self.oidc
        if oidc is not None:
            log.info(
                "accepting the tokens of the OpenID Connect provider %s (audience %s, keys from %s)",
                oidc.issuer,
                oidc.audience,
                oidc.jwks_url or "its discovery document",
            )
            clients_possible = oidc.role_map is None or "client" in oidc.role_map.values()
            if clients_possible and oidc.client_id_claim == "sub":
                log.warning(
                    "FUNDCORE_OIDC_CLIENT_ID_CLAIM is sub: a client's token names its fundcore client id by "
                    "the provider's subject, which is only right if the provider's subjects are fundcore "
                    "client ids; set it to the claim that holds the client id (e.g. fundcore_client_id)"
                )
        if self.smtp_host is None:
            log.warning("FUNDCORE_SMTP_HOST is not set: email notifications are written to the log, not sent")
        if self.sms_gateway_url is None:
            log.warning("FUNDCORE_SMS_GATEWAY_URL is not set: SMS notifications are written to the log, not sent")


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field."""
    alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()


def _explain(error: ValidationError) -> str:
    """One line per refused variable: its name, the problem and (unless secret) the value."""
    fields_by_alias = {
        field.validation_alias: name
        for name, field in Settings.model_fields.items()
        if isinstance(field.validation_alias, str)
    }
    problems = []
    for item in error.errors(include_url=False):
        located = str(item["loc"][0]) if item["loc"] else ""
        field = fields_by_alias.get(located, located)
        message = item["msg"].removeprefix("Value error, ")
        shown = "" if field in _SECRET_FIELDS or item["type"] == "value_error" else f", got {item['input']!r}"
        # a rule over several variables (no location) names them in its message
        problems.append(f"{env_name(field)}: {message}{shown}" if located else message)
    return "; ".join(problems)
