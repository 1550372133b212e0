"""The FUNDCORE_OIDC_* settings: read from the environment, checked at start (one line naming
the variables of a bad combination), and a served host (``python -m fundcore_host.serve``)
accepting the provider's tokens with nothing but those variables."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import ADMIN, http_call
from test_oidc import AUDIENCE, Provider, admin_token

from fundcore_host.config import ConfigError, OidcSettings

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"


def test_no_provider_unless_the_issuer_is_set(env):
    assert env().oidc is None
    assert env(FUNDCORE_OIDC_ISSUER=" ").oidc is None  # blank is unset


def test_every_oidc_variable_from_the_environment(env):
    s = env(
        FUNDCORE_OIDC_ISSUER=f" {COGNITO_ISSUER} ",
        FUNDCORE_OIDC_AUDIENCE="7abc1defg2hijk3lmn4opq5rst",
        FUNDCORE_OIDC_AUDIENCE_CLAIM="client_id",
        FUNDCORE_OIDC_JWKS_URL=COGNITO_ISSUER + "/.well-known/jwks.json",
        FUNDCORE_OIDC_ROLE_CLAIM="cognito:groups",
        FUNDCORE_OIDC_ROLE_MAP='{"fundcore-admins": "admin", "fundcore-clients": "client"}',
        FUNDCORE_OIDC_CLIENT_ID_CLAIM="custom:fundcore_client_id",
        FUNDCORE_OIDC_LEEWAY_S="10",
        FUNDCORE_OIDC_HTTP_TIMEOUT_S="2.5",
        FUNDCORE_OIDC_JWKS_CACHE_S="600",
        FUNDCORE_OIDC_JWKS_COOLDOWN_S="60",
    )
    assert s.oidc == OidcSettings(
        issuer=COGNITO_ISSUER,
        audience="7abc1defg2hijk3lmn4opq5rst",
        audience_claim="client_id",
        jwks_url=COGNITO_ISSUER + "/.well-known/jwks.json",
        role_claim="cognito:groups",
        role_map={"fundcore-admins": "admin", "fundcore-clients": "client"},
        client_id_claim="custom:fundcore_client_id",
        leeway_s=10.0,
        http_timeout_s=2.5,
        jwks_cache_s=600.0,
        jwks_cooldown_s=60.0,
    )
    defaults = env(FUNDCORE_OIDC_ISSUER="https://id.example.com/", FUNDCORE_OIDC_AUDIENCE="api").oidc
    assert defaults == OidcSettings(issuer="https://id.example.com/", audience="api")
    assert (defaults.role_claim, defaults.client_id_claim, defaults.audience_claim) == ("role", "sub", "aud")
    assert (defaults.leeway_s, defaults.http_timeout_s, defaults.jwks_cache_s, defaults.jwks_cooldown_s) == (
        30,
        5,
        3600,
        30,
    )
    # plain http only for a provider on this machine
    assert env(FUNDCORE_OIDC_ISSUER="http://localhost:8080/realms/x", FUNDCORE_OIDC_AUDIENCE="a").oidc is not None


ISSUER = {"FUNDCORE_OIDC_ISSUER": "https://id.example.com", "FUNDCORE_OIDC_AUDIENCE": "api"}


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"FUNDCORE_OIDC_ISSUER": "http://id.example.com"} | {"FUNDCORE_OIDC_AUDIENCE": "a"}, "FUNDCORE_OIDC_ISSUER: "),
        ({**ISSUER, "FUNDCORE_OIDC_ISSUER": "id.example.com"}, "FUNDCORE_OIDC_ISSUER: "),
        ({**ISSUER, "FUNDCORE_OIDC_ISSUER": "https://id.example.com/?tenant=x"}, "FUNDCORE_OIDC_ISSUER: "),
        ({**ISSUER, "FUNDCORE_OIDC_JWKS_URL": "file:///etc/keys.json"}, "FUNDCORE_OIDC_JWKS_URL: "),
        ({**ISSUER, "FUNDCORE_OIDC_JWKS_URL": "http://10.0.0.5/keys"}, "FUNDCORE_OIDC_JWKS_URL: "),
        ({**ISSUER, "FUNDCORE_OIDC_ROLE_MAP": "admins=admin"}, "FUNDCORE_OIDC_ROLE_MAP: must be a JSON object"),
        ({**ISSUER, "FUNDCORE_OIDC_ROLE_MAP": '["admin"]'}, "FUNDCORE_OIDC_ROLE_MAP: must be a JSON object"),
        ({**ISSUER, "FUNDCORE_OIDC_ROLE_MAP": "{}"}, "FUNDCORE_OIDC_ROLE_MAP: must be a JSON object"),
        ({**ISSUER, "FUNDCORE_OIDC_ROLE_MAP": '{"ops": "root"}'}, "FUNDCORE_OIDC_ROLE_MAP: "),
        ({**ISSUER, "FUNDCORE_OIDC_LEEWAY_S": "-1"}, "FUNDCORE_OIDC_LEEWAY_S: "),
        ({**ISSUER, "FUNDCORE_OIDC_LEEWAY_S": "3600"}, "FUNDCORE_OIDC_LEEWAY_S: "),
        ({**ISSUER, "FUNDCORE_OIDC_HTTP_TIMEOUT_S": "0"}, "FUNDCORE_OIDC_HTTP_TIMEOUT_S: "),
        ({**ISSUER, "FUNDCORE_OIDC_HTTP_TIMEOUT_S": "inf"}, "FUNDCORE_OIDC_HTTP_TIMEOUT_S: "),
        ({**ISSUER, "FUNDCORE_OIDC_JWKS_COOLDOWN_S": "0"}, "FUNDCORE_OIDC_JWKS_COOLDOWN_S: "),
        ({**ISSUER, "FUNDCORE_OIDC_JWKS_CACHE_S": "0.5"}, "FUNDCORE_OIDC_JWKS_CACHE_S: "),
        # combinations
        ({"FUNDCORE_OIDC_ISSUER": "https://id.example.com"}, "FUNDCORE_OIDC_AUDIENCE is required with"),
        ({"FUNDCORE_OIDC_AUDIENCE": "api"}, "FUNDCORE_OIDC_AUDIENCE set without FUNDCORE_OIDC_ISSUER"),
        (
            {"FUNDCORE_OIDC_ROLE_CLAIM": "groups", "FUNDCORE_OIDC_JWKS_URL": "https://id.example.com/k"},
            "FUNDCORE_OIDC_JWKS_URL, FUNDCORE_OIDC_ROLE_CLAIM set without FUNDCORE_OIDC_ISSUER",
        ),
        (
            {**ISSUER, "FUNDCORE_OIDC_JWKS_CACHE_S": "10"},
            "FUNDCORE_OIDC_JWKS_COOLDOWN_S (30) must not be longer than FUNDCORE_OIDC_JWKS_CACHE_S (10)",
        ),
    ],
)
def test_bad_values_and_combinations_are_refused_naming_the_variables(env, variables, message):
    with pytest.raises(ConfigError) as refused:
        env(**variables)
    assert str(refused.value).startswith(message), refused.value


@pytest.mark.parametrize(
    "variables, warned",
    [
        ({}, True),  # clients named by the provider's sub
        ({"FUNDCORE_OIDC_CLIENT_ID_CLAIM": "fundcore_client_id"}, False),
        ({"FUNDCORE_OIDC_ROLE_MAP": json.dumps({"ops": "admin"})}, False),  # no client can sign in this way
        ({"FUNDCORE_OIDC_ROLE_MAP": json.dumps({"ops": "admin", "customers": "client"})}, True),
    ],
)
def test_a_client_id_taken_from_sub_is_warned_about_at_start(env, caplog, variables, warned):
    caplog.set_level(logging.INFO, logger="fundcore_host")
    env(**ISSUER, **variables).warn_about_local_defaults()
    assert "accepting the tokens of the OpenID Connect provider https://id.example.com" in caplog.text
    assert ("FUNDCORE_OIDC_CLIENT_ID_CLAIM is sub" in caplog.text) is warned


def test_a_bad_combination_stops_the_served_host_with_one_line_and_status_2(live_host):
    host = live_host(env={"FUNDCORE_OIDC_AUDIENCE": "fundcore-api"}, wait=False)
    assert host.process.wait(timeout=60) == 2
    lines = host.log().splitlines()
    assert len(lines) == 1, lines
    assert "cannot start: FUNDCORE_OIDC_AUDIENCE set without FUNDCORE_OIDC_ISSUER" in lines[0]


def test_the_served_host_accepts_the_providers_tokens_from_its_variables_alone(live_host):
    provider = Provider()
    try:
        provider.add_key("rsa-1", "RS256")
        host = live_host(
            env={
                "FUNDCORE_OIDC_ISSUER": provider.issuer,
                "FUNDCORE_OIDC_AUDIENCE": AUDIENCE,
                "FUNDCORE_OIDC_ROLE_CLAIM": "realm_access.roles",
                "FUNDCORE_OIDC_ROLE_MAP": '{"fundcore-admin": "admin"}',
            }
        )
        status, body, _ = http_call(
            "GET", f"{host.url}/clients", headers={"Authorization": "Bearer " + admin_token(provider)}
        )
        assert status == 200, body
        forged = admin_token(provider, aud="another-api")
        status, body, _ = http_call("GET", f"{host.url}/clients", headers={"Authorization": "Bearer " + forged})
        assert status == 401 and body["code"] == "UNAUTHORIZED"
        assert http_call("GET", f"{host.url}/clients", headers=ADMIN)[0] == 200  # the host's own token too
        assert (provider.fetches("discovery"), provider.fetches("jwks")) == (1, 1)
        log = host.log()
        assert "rejected bearer token: wrong_audience (oidc)" in log and forged not in log
    finally:
        provider.close()
