"""The pages' sign-in through an OpenID Connect provider (auth/oidc_login.py): a real provider
on loopback (oidc-provider-mock: discovery, an authorization form, a token endpoint, RS256 ID
tokens), the host in process. A client and an operator sign in with the authorization code flow
and PKCE and land on their pages; the code is taken only with the state of the browser that
started the sign-in; a user the provider gives no role is not signed in; the sign-in page offers
the provider only when it is configured."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import oidc_provider_mock
import pytest
from conftest import RecordingNotifier
from fastapi.testclient import TestClient

from fundcore_host.auth.oidc_login import STATE_COOKIE
from fundcore_host.auth.sessions import SESSION_COOKIE


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def site(app_factory: Callable[..., TestClient], tmp_path: Path, provider: str) -> TestClient:
    return app_factory(
        notifier=RecordingNotifier(),
        accounts_path=str(tmp_path / "accounts.sqlite3"),
        oidc_issuer=provider,
        oidc_audience="fundcore-api",
        oidc_login_client_id="fundcore-pages",
        oidc_login_client_secret="the pages' client secret at the provider",
        oidc_login_scope="openid email",
        oidc_role_claim="fundcore_role",
        oidc_client_id_claim="fundcore_client_id",
    )


def provider_user(provider: str, sub: str, **claims: Any) -> None:
    answer = httpx.put(f"{provider}/users/{urllib.parse.quote(sub)}", json={"email": sub, **claims})
    assert answer.status_code == 204


def sign_in_at_provider(site: TestClient, sub: str) -> Any:
    """The browser's way: the host sends it to the provider, the user picks ``sub`` on the
    provider's form, the provider sends it back to the host with a code."""
    start = site.get("/sign-in/provider", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["fundcore-pages"]
    assert "code_verifier" not in authorize  # only its hash travels
    chosen = httpx.post(authorize, data={"sub": sub})
    assert chosen.status_code in (302, 303), chosen.text
    back = urllib.parse.urlsplit(chosen.headers["location"])
    assert back.path == "/auth/oidc/callback"
    return site.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_a_client_signs_in_through_the_provider_and_sees_its_own_portal(
    site: TestClient, engine: Any, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = engine.register_client("Carla", "carla@example.com", "+573001234569", "email")
    provider_user(provider, "carla@example.com", fundcore_role="client", fundcore_client_id=client.id)
    caplog.set_level("DEBUG", logger="fundcore_host")
    answer = sign_in_at_provider(site, "carla@example.com")
    assert answer.status_code == 200
    code = urllib.parse.parse_qs(answer.request.url.query.decode())["code"][0]
    host_lines = [r.getMessage() for r in caplog.records if r.name.startswith("fundcore_host")]
    assert any("/auth/oidc/callback?..." in line for line in host_lines)
    assert not any(code in line for line in host_lines)  # the code never reaches the host's log
    assert 'http-equiv="refresh" content="0; url=/"' in answer.text
    assert site.cookies.get(SESSION_COOKIE)
    home = site.get("/")
    assert home.status_code == 200 and "Carla" in home.text and "COP $500.000" in home.text
    assert "carla@example.com" in home.text  # the header shows who signed in


def test_an_operator_signs_in_through_the_provider_and_lands_on_the_console(site: TestClient, provider: str) -> None:
    provider_user(provider, "olga@example.com", fundcore_role="admin")
    answer = sign_in_at_provider(site, "olga@example.com")
    assert 'url=/ops"' in answer.text


def test_a_user_without_a_role_is_not_signed_in(site: TestClient, provider: str) -> None:
    provider_user(provider, "nobody@example.com")
    answer = sign_in_at_provider(site, "nobody@example.com")
    assert answer.status_code == 401
    assert "No se pudo iniciar sesión con el proveedor de identidad" in answer.text
    assert not site.cookies.get(SESSION_COOKIE)


def test_a_code_is_taken_only_with_the_state_of_the_browser_that_started(
    site: TestClient, engine: Any, provider: str
) -> None:
    client = engine.register_client("Dora", "dora@example.com", "+573001234570", "email")
    provider_user(provider, "dora@example.com", fundcore_role="client", fundcore_client_id=client.id)
    start = site.get("/sign-in/provider", follow_redirects=False)
    chosen = httpx.post(start.headers["location"], data={"sub": "dora@example.com"})
    back = urllib.parse.urlsplit(chosen.headers["location"])
    victim = TestClient(site.app)  # another browser, handed the attacker's callback link
    answer = victim.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert answer.status_code == 401 and not victim.cookies.get(SESSION_COOKIE)
    victim.get("/sign-in/provider", follow_redirects=False)  # even with a sign-in of its own under way
    assert victim.cookies.get(STATE_COOKIE)
    answer = victim.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert answer.status_code == 401 and not victim.cookies.get(SESSION_COOKIE)
    # the browser that started it completes it with that very link
    assert site.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 200


def test_the_sign_in_page_offers_the_provider_only_when_configured(
    site: TestClient, app_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    assert 'href="/sign-in/provider"' in site.get("/sign-in").text
    plain = app_factory(notifier=RecordingNotifier(), accounts_path=str(tmp_path / "plain.sqlite3"))
    assert 'href="/sign-in/provider"' not in plain.get("/sign-in").text
    assert plain.get("/sign-in/provider").status_code == 404
