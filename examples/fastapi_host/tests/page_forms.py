"""Driving the pages' forms from a test client as a browser would: the CSRF token taken from
the page that holds the form, this site's origin."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
BEA = {"name": "Bea", "email": "bea@example.com", "phone": "+573001234568", "channel": "sms"}
ORIGIN = {"Origin": "http://testserver"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def post_form(client: TestClient, path: str, fields: dict[str, str], *, from_page: str | None = None) -> Any:
    """Posts ``fields`` as the form of ``from_page`` (default ``path``) would, with its token."""
    token = csrf_of(client.get(from_page or path).text)
    return client.post(path, data={**fields, "csrf_token": token}, headers=ORIGIN, follow_redirects=False)


def sign_up(client: TestClient, **contact: str) -> Any:
    return post_form(client, "/sign-up", {**BEA, **contact, "password": PASSWORD})
