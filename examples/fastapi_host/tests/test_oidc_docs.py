"""The provider examples of examples/fastapi_host/README.md (Signing in with an OpenID Connect
provider), each block marked `<!-- run-by: examples/fastapi_host/tests/test_oidc_docs.py -->`.

Each block is run in bash as a reader runs it, and the variables it exports are given to the
real host app, with one change: FUNDCORE_OIDC_JWKS_URL names a key set served on loopback (the
documented issuers are not reachable from a test). Tokens shaped by those settings, with the
documented issuer, audience, role and client-id claims, are then accepted with the right role,
and a client's token without its client id is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingNotifier, assert_envelope
from test_oidc import Provider, bearer_of, new_client
from test_readme import marked_blocks as readme_blocks

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- run-by: examples/fastapi_host/tests/test_oidc_docs.py -->"
PROVIDERS = ("Amazon Cognito", "Keycloak", "Microsoft Entra ID", "Auth0")


def marked_blocks() -> list[str]:
    """The code blocks of the README whose marker names this file."""
    return readme_blocks(README, MARKER)


def provider_of(block: str) -> str:
    (name,) = [name for name in PROVIDERS if block.startswith(f"# {name} ")]
    return name


def exported(block: str) -> dict[str, str]:
    """The FUNDCORE_* variables after bash has run ``block``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDCORE_")}
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block + "env -0\n"],
        env=env,
        capture_output=True,
        timeout=30,
        check=True,
    )
    pairs = (item.decode().partition("=") for item in done.stdout.split(b"\0") if item)
    return {name: value for name, _, value in pairs if name.startswith("FUNDCORE_")}


def test_every_provider_has_its_block():
    assert sorted(provider_of(block) for block in marked_blocks()) == sorted(PROVIDERS)


def _set_claim(claims: dict[str, Any], name: str, value: Any) -> None:
    """``name`` as the host reads it: a whole name when it is a URL or has a colon, else a
    dotted path into objects."""
    if "://" in name or ":" in name or "." not in name:
        claims[name] = value
        return
    *parents, last = name.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


@pytest.mark.parametrize("block", marked_blocks(), ids=provider_of)
def test_the_documented_settings_accept_that_providers_tokens(app_factory, block):
    variables = exported(block)
    assert variables["FUNDCORE_OIDC_ISSUER"].startswith("https://")
    provider = Provider()
    try:
        provider.add_key("signing", "RS256")
        settings = {name.removeprefix("FUNDCORE_").lower(): value for name, value in variables.items()}
        api = app_factory(notifier=RecordingNotifier(), **settings, oidc_jwks_url=provider.jwks_url)
        oidc = api.app.state.host.settings.oidc
        assert oidc is not None and oidc.issuer == variables["FUNDCORE_OIDC_ISSUER"]
        names = {role: role for role in ("admin", "client")}
        if oidc.role_map is not None:
            names = {role: name for name, role in oidc.role_map.items()}

        def token(role: str, client_id: str | None = None) -> dict[str, str]:
            claims: dict[str, Any] = {"iss": oidc.issuer, "aud": None, "sub": f"{role}-at-the-provider"}
            audience = [oidc.audience, "another-audience"] if oidc.audience_claim == "aud" else oidc.audience
            _set_claim(claims, oidc.audience_claim, audience)
            _set_claim(claims, oidc.role_claim, [names[role], "some-other-group"])
            if client_id is not None:
                _set_claim(claims, oidc.client_id_claim, client_id)
            return bearer_of(provider.token("signing", **claims))

        ana = new_client(api, token("admin"))
        mine = token("client", ana["id"])
        assert api.get(f"/clients/{ana['id']}", headers=mine).json()["id"] == ana["id"]
        assert_envelope(api.get("/clients", headers=mine), 403, "FORBIDDEN")
        assert_envelope(api.get("/funds", headers=token("client")), 401, "UNAUTHORIZED")
        assert (provider.fetches("discovery"), provider.fetches("jwks")) == (0, 1)
    finally:
        provider.close()


def test_the_blocks_set_only_oidc_variables():
    for block in marked_blocks():
        assert all(re.fullmatch(r"FUNDCORE_OIDC_[A-Z_]+", name) for name in exported(block)), block
