"""Configuration from the FUNDCORE_* environment variables (pydantic-settings)."""

from __future__ import annotations

import logging

import pytest

import fundcore
from fundcore_host.config import LOCAL_DEV_JWT_SECRET, ConfigError, Settings


def test_defaults_are_local_and_safe(env, caplog):
    s = env()
    assert s.data_path == "./data/fundcore" and s.database_url is None and s.pool_size is None
    assert s.jwt_secret.get_secret_value() == LOCAL_DEV_JWT_SECRET and s.jwt_secret_is_default
    assert s.smtp.host is None and s.sms.gateway_url is None
    assert s.dispatch_interval_ms == 1000 and s.dispatch_batch == 100 and s.rate_limit_per_minute == 600
    assert (s.locale, s.log_level, s.max_attempts, s.retry_base_delay_ms) == ("es", "INFO", None, None)
    assert s.log_format == "text"
    assert (s.operation_timeout, s.operation_timeout_ms, s.pg_prepared_statements) == (None, None, None)
    caplog.set_level(logging.WARNING, logger="fundcore_host")
    s.warn_about_local_defaults()
    text = caplog.text
    assert "FUNDCORE_JWT_SECRET" in text and "FUNDCORE_SMTP_HOST" in text and "FUNDCORE_SMS_GATEWAY_URL" in text


def test_everything_from_env(env):
    s = env(
        FUNDCORE_DATA="/srv/fundcore",
        FUNDCORE_JWT_SECRET="x" * 40,
        FUNDCORE_LOCALE="en",
        FUNDCORE_SMTP_HOST="smtp.internal",
        FUNDCORE_SMTP_TLS="ssl",
        FUNDCORE_SMTP_USER="u",
        FUNDCORE_SMTP_PASSWORD=" p ",
        FUNDCORE_SMTP_FROM="fondos@example.com",
        FUNDCORE_SMTP_TIMEOUT_S="3",
        FUNDCORE_SMS_GATEWAY_URL="http://127.0.0.1:9000/sms",
        FUNDCORE_SMS_GATEWAY_TOKEN="t",
        FUNDCORE_SMS_TIMEOUT_S="4",
        FUNDCORE_DISPATCH_INTERVAL_MS="250",
        FUNDCORE_DISPATCH_BATCH="10",
        FUNDCORE_RATE_LIMIT_PER_MINUTE="0",
        FUNDCORE_RETRY_BASE_DELAY_MS="100",
        FUNDCORE_RETRY_MAX_DELAY_MS="5000",
        FUNDCORE_MAX_ATTEMPTS="5",
        FUNDCORE_LOG_LEVEL="debug",
        FUNDCORE_LOG_FORMAT=" JSON ",
        FUNDCORE_POOL_SIZE="3",
        FUNDCORE_OPERATION_TIMEOUT="2.5",
        FUNDCORE_PG_PREPARED_STATEMENTS="false",
    )
    assert s.data_path == "/srv/fundcore" and not s.jwt_secret_is_default and s.locale == "en"
    assert (s.smtp.host, s.smtp.port, s.smtp.tls, s.smtp.user, s.smtp.password, s.smtp.sender, s.smtp.timeout_s) == (
        "smtp.internal",
        465,
        "ssl",
        "u",
        " p ",
        "fondos@example.com",
        3.0,
    )
    assert (s.sms.gateway_url, s.sms.token, s.sms.timeout_s) == ("http://127.0.0.1:9000/sms", "t", 4.0)
    assert (s.dispatch_interval_ms, s.dispatch_batch, s.rate_limit_per_minute) == (250, 10, 0)
    assert (s.retry_base_delay_ms, s.retry_max_delay_ms, s.max_attempts) == (100, 5000, 5)
    assert (s.log_level, s.log_format, s.pool_size) == ("DEBUG", "json", 3)
    assert (s.operation_timeout, s.operation_timeout_ms, s.pg_prepared_statements) == (2.5, 2500, False)
    assert env(FUNDCORE_OPERATION_TIMEOUT="10", FUNDCORE_PG_PREPARED_STATEMENTS="TRUE").operation_timeout_ms == 10_000
    assert env(FUNDCORE_PG_PREPARED_STATEMENTS="true").pg_prepared_statements is True
    assert env(FUNDCORE_SMTP_TLS="starttls").smtp.port == 587
    assert env(FUNDCORE_SMTP_TLS="none", FUNDCORE_SMTP_PORT="2525").smtp.port == 2525


def test_blank_values_are_unset_and_blanks_around_values_are_dropped(env):
    s = env(
        FUNDCORE_DATA="  ",
        FUNDCORE_SMTP_HOST=" ",
        FUNDCORE_LOCALE=" EN ",
        FUNDCORE_DISPATCH_BATCH=" 7 ",
        FUNDCORE_SMTP_TLS=" SSL",
    )
    assert (s.data_path, s.smtp.host, s.locale, s.dispatch_batch, s.smtp.tls) == (
        "./data/fundcore",
        None,
        "en",
        7,
        "ssl",
    )


def test_secrets_are_not_in_the_settings_repr(env):
    shown = repr(
        env(
            FUNDCORE_JWT_SECRET="jwt-" + "s" * 40,
            FUNDCORE_SMTP_PASSWORD="smtp-pass",
            FUNDCORE_SMS_GATEWAY_TOKEN="gw-token",
            FUNDCORE_DATABASE_URL="postgresql://u:db-pass@h/db",
        )
    )
    assert not [secret for secret in ("jwt-sss", "smtp-pass", "gw-token", "db-pass") if secret in shown], shown


@pytest.mark.parametrize(
    "variables, named",
    [
        ({"FUNDCORE_SMTP_TLS": "tls13"}, "FUNDCORE_SMTP_TLS"),
        ({"FUNDCORE_SMTP_PORT": "abc"}, "FUNDCORE_SMTP_PORT"),
        ({"FUNDCORE_DISPATCH_INTERVAL_MS": "0"}, "FUNDCORE_DISPATCH_INTERVAL_MS"),
        ({"FUNDCORE_LOCALE": "fr"}, "FUNDCORE_LOCALE"),
        ({"FUNDCORE_MAX_ATTEMPTS": "0"}, "FUNDCORE_MAX_ATTEMPTS"),
        ({"FUNDCORE_POOL_SIZE": "many"}, "FUNDCORE_POOL_SIZE"),
        ({"FUNDCORE_LOG_LEVEL": "LOUD"}, "FUNDCORE_LOG_LEVEL"),
        ({"FUNDCORE_LOG_FORMAT": "yaml"}, "FUNDCORE_LOG_FORMAT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "soon"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "0"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "-5"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "nan"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "inf"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_OPERATION_TIMEOUT": "10s"}, "FUNDCORE_OPERATION_TIMEOUT"),
        ({"FUNDCORE_PG_PREPARED_STATEMENTS": "maybe"}, "FUNDCORE_PG_PREPARED_STATEMENTS"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env, variables, named):
    with pytest.raises(ConfigError) as refused:
        env(**variables)
    assert str(refused.value).startswith(f"{named}: "), refused.value


def test_a_bad_secret_is_named_but_never_shown(env):
    with pytest.raises(ConfigError) as refused:
        env(FUNDCORE_DATABASE_URL="mysql://fundcore:s3cret@db/fundcore")
    assert "FUNDCORE_DATABASE_URL" in str(refused.value) and "s3cret" not in str(refused.value)


def test_the_engine_opens_with_the_host_settings(env, tmp_path):
    """What the host passes is what fundcore.Engine accepts; unset values are the engine's defaults."""
    s = env(
        FUNDCORE_DATA=str(tmp_path / "store"),
        FUNDCORE_RETRY_BASE_DELAY_MS="100",
        FUNDCORE_RETRY_MAX_DELAY_MS="5000",
        FUNDCORE_MAX_ATTEMPTS="5",
        FUNDCORE_LOCALE="en",
    )
    with s.open_engine() as engine:
        assert engine.locale == "en" and engine.path == str(tmp_path / "store")


def test_a_pool_size_for_the_embedded_store_is_refused_by_the_engine(env, tmp_path):
    """FUNDCORE_POOL_SIZE reaches the engine, which refuses it for a store that has no pool."""
    s = env(FUNDCORE_DATA=str(tmp_path / "store"), FUNDCORE_POOL_SIZE="4")
    with pytest.raises(fundcore.ValidationError) as refused:
        s.open_engine()
    assert refused.value.field == "pool_size"


@pytest.mark.parametrize(
    "variable, value, field",
    [
        ("FUNDCORE_OPERATION_TIMEOUT", "5", "operation_timeout"),
        ("FUNDCORE_PG_PREPARED_STATEMENTS", "false", "prepared_statements"),
        ("FUNDCORE_PG_PREPARED_STATEMENTS", "true", "prepared_statements"),
    ],
)
def test_postgres_settings_for_the_embedded_store_are_refused_by_the_engine(env, tmp_path, variable, value, field):
    """The PostgreSQL settings reach the engine, which refuses them for the embedded store
    (never silently ignored)."""
    s = env(FUNDCORE_DATA=str(tmp_path / "store"), **{variable: value})
    with pytest.raises(fundcore.ValidationError) as refused:
        s.open_engine()
    assert refused.value.field == field


@pytest.mark.parametrize("seconds", ["0.05", "0.0001", "30.5", "1e30", "1e300"])
def test_an_operation_timeout_out_of_the_engines_range_is_refused_by_the_engine(env, seconds):
    """The engine decides the range (100 ms to 30 s); it refuses before connecting."""
    url = "postgresql://fundcore:s3cret@127.0.0.1:9/fundcore"
    s = env(FUNDCORE_DATABASE_URL=url, FUNDCORE_OPERATION_TIMEOUT=seconds)
    with pytest.raises(fundcore.ValidationError) as refused:
        s.open_engine()
    assert refused.value.field == "operation_timeout" and "s3cret" not in refused.value.message


def test_database_url_selects_postgres_and_is_logged_without_its_password(env):
    settings = env(FUNDCORE_DATABASE_URL="postgresql://fundcore:s3cret@db:5432/fundcore")
    assert settings.store == "postgresql://fundcore:s3cret@db:5432/fundcore"
    assert settings.store_label == "postgresql://fundcore:***@db:5432/fundcore"
    assert settings.redact("password s3cret refused") == "password *** refused"
    assert env().store == "./data/fundcore"


def test_keywords_override_the_environment(env):
    env(FUNDCORE_LOCALE="en", FUNDCORE_DATA="/from/env")
    s = Settings(data_path="/from/keyword")
    assert (s.data_path, s.locale) == ("/from/keyword", "en")
