"""Configuration from environment variables."""

from __future__ import annotations

import logging

import pytest

from fundcore_host.config import LOCAL_DEV_JWT_SECRET, ConfigError, Settings


def test_defaults_are_local_and_safe(caplog):
    s = Settings.from_env({})
    assert s.data_path == "./data/fundcore"
    assert s.jwt_secret == LOCAL_DEV_JWT_SECRET and s.jwt_secret_is_default
    assert s.smtp.host is None and s.sms.gateway_url is None
    assert s.dispatch_interval_ms == 1000 and s.dispatch_batch == 100
    assert s.engine_kwargs() == {"locale": "es"}
    caplog.set_level(logging.WARNING, logger="fundcore_host")
    s.warn_about_local_defaults()
    text = caplog.text
    assert "FUNDCORE_JWT_SECRET" in text and "FUNDCORE_SMTP_HOST" in text and "FUNDCORE_SMS_GATEWAY_URL" in text


def test_everything_from_env():
    s = Settings.from_env({
        "FUNDCORE_DATA": "/srv/fundcore", "FUNDCORE_JWT_SECRET": "x" * 40, "FUNDCORE_LOCALE": "en",
        "FUNDCORE_SMTP_HOST": "smtp.internal", "FUNDCORE_SMTP_TLS": "ssl", "FUNDCORE_SMTP_USER": "u",
        "FUNDCORE_SMTP_PASSWORD": "p", "FUNDCORE_SMTP_FROM": "fondos@example.com",
        "FUNDCORE_SMS_GATEWAY_URL": "http://127.0.0.1:9000/sms", "FUNDCORE_SMS_GATEWAY_TOKEN": "t",
        "FUNDCORE_DISPATCH_INTERVAL_MS": "250", "FUNDCORE_DISPATCH_BATCH": "10", "FUNDCORE_RATE_LIMIT_PER_MINUTE": "0",
        "FUNDCORE_RETRY_BASE_DELAY_MS": "100", "FUNDCORE_RETRY_MAX_DELAY_MS": "5000", "FUNDCORE_MAX_ATTEMPTS": "5",
    })
    assert s.data_path == "/srv/fundcore" and not s.jwt_secret_is_default and s.locale == "en"
    assert (s.smtp.host, s.smtp.port, s.smtp.tls, s.smtp.user, s.smtp.password, s.smtp.sender) == (
        "smtp.internal", 465, "ssl", "u", "p", "fondos@example.com")
    assert (s.sms.gateway_url, s.sms.token) == ("http://127.0.0.1:9000/sms", "t")
    assert (s.dispatch_interval_ms, s.dispatch_batch, s.rate_limit_per_minute) == (250, 10, 0)
    assert s.engine_kwargs() == {"locale": "en", "retry_base_delay_ms": 100, "retry_max_delay_ms": 5000,
                                 "max_attempts": 5}
    assert Settings.from_env({"FUNDCORE_SMTP_TLS": "starttls"}).smtp.port == 587
    assert Settings.from_env({"FUNDCORE_SMTP_TLS": "none", "FUNDCORE_SMTP_PORT": "2525"}).smtp.port == 2525


@pytest.mark.parametrize("env", [
    {"FUNDCORE_SMTP_TLS": "tls13"}, {"FUNDCORE_SMTP_PORT": "abc"}, {"FUNDCORE_DISPATCH_INTERVAL_MS": "0"},
    {"FUNDCORE_LOCALE": "fr"}, {"FUNDCORE_MAX_ATTEMPTS": "0"},
])
def test_bad_values_are_refused(env):
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_engine_accepts_the_host_keywords(tmp_path):
    """The keyword configuration the host passes is what fundcore.Engine accepts."""
    import fundcore

    s = Settings.from_env({"FUNDCORE_RETRY_BASE_DELAY_MS": "100", "FUNDCORE_RETRY_MAX_DELAY_MS": "5000",
                           "FUNDCORE_MAX_ATTEMPTS": "5", "FUNDCORE_LOCALE": "en"})
    engine = fundcore.Engine(str(tmp_path / "store"), **s.engine_kwargs())
    try:
        assert engine.locale == "en"
    finally:
        engine.close()


def test_database_url_selects_postgres_and_is_logged_without_its_password() -> None:
    settings = Settings.from_env({"FUNDCORE_DATABASE_URL": "postgresql://fundcore:s3cret@db:5432/fundcore"})
    assert settings.store == "postgresql://fundcore:s3cret@db:5432/fundcore"
    assert settings.store_label == "postgresql://fundcore:***@db:5432/fundcore"
    assert settings.redact("password s3cret refused") == "password *** refused"
    assert Settings.from_env({}).store == "./data/fundcore"


def test_database_url_of_another_kind_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"FUNDCORE_DATABASE_URL": "mysql://fundcore:s3cret@db/fundcore"})
    assert "FUNDCORE_DATABASE_URL" in str(error.value) and "s3cret" not in str(error.value)
