"""Host configuration: :class:`Settings`, read from ``FUNDCORE_*`` environment variables
(pydantic-settings; all optional, safe local defaults).

Each variable is the field of the same name with the ``FUNDCORE_`` prefix, upper case
(``smtp_host`` is ``FUNDCORE_SMTP_HOST``); ``data_path`` is ``FUNDCORE_DATA``. An empty or blank
value counts as unset. The README of the host lists them all (Configuration).
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Literal, TypedDict

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import fundcore
import fundcore.aio

from .logs import LogFormat

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
_UNTRIMMED_FIELDS = frozenset({"jwt_secret", "smtp_user", "smtp_password", "sms_gateway_token"})


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
        problems.append(f"{env_name(field)}: {message}{shown}")
    return "; ".join(problems)
