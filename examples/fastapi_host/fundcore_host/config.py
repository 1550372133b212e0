"""Host configuration, read from environment variables (all optional, safe local defaults).

| variable | default | meaning |
|---|---|---|
| FUNDCORE_DATA | ./data/fundcore | embedded store directory (one process per store) |
| FUNDCORE_DATABASE_URL | unset | `postgresql://user:password@host:5432/db`: the PostgreSQL store instead of FUNDCORE_DATA; any number of workers and hosts may share it |
| FUNDCORE_JWT_SECRET | a fixed local-only secret (logs a warning) | HS256 key for bearer tokens |
| FUNDCORE_LOCALE | es | engine and host message locale (es / en) |
| FUNDCORE_SMTP_HOST | unset: email is written to the log, not sent | SMTP server |
| FUNDCORE_SMTP_PORT | 587 (starttls), 465 (ssl), 25 (none) | SMTP port |
| FUNDCORE_SMTP_TLS | starttls | starttls / ssl / none |
| FUNDCORE_SMTP_USER, FUNDCORE_SMTP_PASSWORD | unset | SMTP credentials (login only when a user is set) |
| FUNDCORE_SMTP_FROM | fundcore@localhost | sender address |
| FUNDCORE_SMTP_TIMEOUT_S | 10 | socket timeout |
| FUNDCORE_SMS_GATEWAY_URL | unset: SMS is written to the log, not sent | HTTP endpoint that receives a JSON POST per SMS |
| FUNDCORE_SMS_GATEWAY_TOKEN | unset | sent as `Authorization: Bearer <token>` to the gateway |
| FUNDCORE_SMS_TIMEOUT_S | 10 | gateway timeout |
| FUNDCORE_DISPATCH_INTERVAL_MS | 1000 | pause between two dispatch rounds |
| FUNDCORE_DISPATCH_BATCH | 100 | notifications per round |
| FUNDCORE_RATE_LIMIT_PER_MINUTE | 600 | requests per minute per caller (0 = off) |
| FUNDCORE_RETRY_BASE_DELAY_MS, FUNDCORE_RETRY_MAX_DELAY_MS, FUNDCORE_MAX_ATTEMPTS | engine defaults | notification retry policy of the engine |
| FUNDCORE_LOG_LEVEL | INFO | log level of the host |
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Mapping

log = logging.getLogger("fundcore_host")

#: Used only when FUNDCORE_JWT_SECRET is unset; fine on a laptop, never in production.
LOCAL_DEV_JWT_SECRET = "fundcore-local-development-secret-do-not-deploy"

_TLS_DEFAULT_PORT = {"starttls": 587, "ssl": 465, "none": 25}


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


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _opt_int(env: Mapping[str, str], name: str, minimum: int = 0) -> int | None:
    raw = env.get(name, "").strip()
    return _int(env, name, 0, minimum) if raw else None


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None = None
    port: int = 587
    tls: str = "starttls"  # starttls | ssl | none
    user: str | None = None
    password: str | None = None
    sender: str = "fundcore@localhost"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SmsSettings:
    gateway_url: str | None = None
    token: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Settings:
    data_path: str = "./data/fundcore"
    database_url: str | None = None
    jwt_secret: str = LOCAL_DEV_JWT_SECRET
    jwt_secret_is_default: bool = True
    locale: str = "es"
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    dispatch_interval_ms: int = 1000
    dispatch_batch: int = 100
    dispatch_enabled: bool = True
    rate_limit_per_minute: int = 600
    retry_base_delay_ms: int | None = None
    retry_max_delay_ms: int | None = None
    max_attempts: int | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        secret = env.get("FUNDCORE_JWT_SECRET", "")
        tls = (env.get("FUNDCORE_SMTP_TLS", "starttls").strip().lower() or "starttls")
        if tls not in _TLS_DEFAULT_PORT:
            raise ConfigError(f"FUNDCORE_SMTP_TLS must be starttls, ssl or none, got {tls!r}")
        locale = env.get("FUNDCORE_LOCALE", "es").strip().lower() or "es"
        if locale not in ("es", "en"):
            raise ConfigError(f"FUNDCORE_LOCALE must be es or en, got {locale!r}")
        smtp = SmtpSettings(
            host=env.get("FUNDCORE_SMTP_HOST", "").strip() or None,
            port=_int(env, "FUNDCORE_SMTP_PORT", _TLS_DEFAULT_PORT[tls], 1),
            tls=tls,
            user=env.get("FUNDCORE_SMTP_USER") or None,
            password=env.get("FUNDCORE_SMTP_PASSWORD") or None,
            sender=env.get("FUNDCORE_SMTP_FROM", "").strip() or "fundcore@localhost",
            timeout_s=float(_int(env, "FUNDCORE_SMTP_TIMEOUT_S", 10, 1)),
        )
        sms = SmsSettings(
            gateway_url=env.get("FUNDCORE_SMS_GATEWAY_URL", "").strip() or None,
            token=env.get("FUNDCORE_SMS_GATEWAY_TOKEN") or None,
            timeout_s=float(_int(env, "FUNDCORE_SMS_TIMEOUT_S", 10, 1)),
        )
        database_url = env.get("FUNDCORE_DATABASE_URL", "").strip() or None
        if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"FUNDCORE_DATABASE_URL must start with postgresql:// or postgres://, got {redact_url(database_url)!r}"
            )
        return cls(
            data_path=env.get("FUNDCORE_DATA", "").strip() or "./data/fundcore",
            database_url=database_url,
            jwt_secret=secret or LOCAL_DEV_JWT_SECRET,
            jwt_secret_is_default=not secret,
            locale=locale,
            smtp=smtp,
            sms=sms,
            dispatch_interval_ms=_int(env, "FUNDCORE_DISPATCH_INTERVAL_MS", 1000, 1),
            dispatch_batch=_int(env, "FUNDCORE_DISPATCH_BATCH", 100, 1),
            rate_limit_per_minute=_int(env, "FUNDCORE_RATE_LIMIT_PER_MINUTE", 600, 0),
            retry_base_delay_ms=_opt_int(env, "FUNDCORE_RETRY_BASE_DELAY_MS", 1),
            retry_max_delay_ms=_opt_int(env, "FUNDCORE_RETRY_MAX_DELAY_MS", 1),
            max_attempts=_opt_int(env, "FUNDCORE_MAX_ATTEMPTS", 1),
            log_level=env.get("FUNDCORE_LOG_LEVEL", "INFO").strip().upper() or "INFO",
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

    def engine_kwargs(self) -> dict[str, object]:
        """Keyword configuration for ``fundcore.Engine`` (only what was set)."""
        kwargs: dict[str, object] = {"locale": self.locale}
        if self.retry_base_delay_ms is not None:
            kwargs["retry_base_delay_ms"] = self.retry_base_delay_ms
        if self.retry_max_delay_ms is not None:
            kwargs["retry_max_delay_ms"] = self.retry_max_delay_ms
        if self.max_attempts is not None:
            kwargs["max_attempts"] = self.max_attempts
        return kwargs

    def warn_about_local_defaults(self) -> None:
        if self.jwt_secret_is_default:
            log.warning(
                "FUNDCORE_JWT_SECRET is not set: using the built-in local development secret. "
                "Anyone can mint tokens for this server; set FUNDCORE_JWT_SECRET before deploying."
            )
        elif len(self.jwt_secret.encode()) < 32:
            log.warning("FUNDCORE_JWT_SECRET is shorter than 32 bytes; use a longer random secret")
        if self.smtp.host is None:
            log.warning("FUNDCORE_SMTP_HOST is not set: email notifications are written to the log, not sent")
        if self.sms.gateway_url is None:
            log.warning("FUNDCORE_SMS_GATEWAY_URL is not set: SMS notifications are written to the log, not sent")
