"""The pages' sign-in (fundcore_host/auth/sessions.py, pages/account.py), in process on a real
engine and a real SQLite account store: the session cookie's attributes; a sign-out ends the
session for every copy of the cookie; an expired or unknown cookie sends the visitor to the
sign-in page; every posted form needs the CSRF token of its own cookie and this site's origin;
a wrong password and an unknown email get the same page. What a browser does with it:
tests/pages/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingNotifier
from fastapi.testclient import TestClient
from page_forms import BEA, ORIGIN, PASSWORD, csrf_of, post_form, sign_up

from fundcore_host.auth.sessions import CSRF_COOKIE, SESSION_COOKIE


def test_sign_up_through_the_page_registers_the_client_and_sets_a_strict_http_only_session_cookie(
    site: TestClient, engine: Any
) -> None:
    answer = sign_up(site)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(value for value in answer.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http here; https pages get Secure
    home = site.get("/")
    assert home.status_code == 200
    assert "COP $500.000" in home.text and "Bea" in home.text
    [client] = engine.clients(50).items
    assert (client.name, client.email, client.channel) == ("Bea", "bea@example.com", "sms")


def test_a_refused_sign_up_shows_the_engine_problem_next_to_the_field_and_registers_nothing(
    site: TestClient, engine: Any
) -> None:
    answer = sign_up(site, phone="3001234568")
    assert answer.status_code == 422
    assert 'id="phone-problem"' in answer.text and 'aria-invalid="true"' in answer.text
    assert engine.clients(50).items == []
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(site: TestClient) -> None:
    sign_up(site)
    stolen = site.cookies.get(SESSION_COOKIE)
    assert stolen
    answer = post_form(site, "/sign-out", {}, from_page="/")
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in"
    site.cookies.set(SESSION_COOKIE, stolen)
    again = site.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/sign-in?expired=1"


def test_pages_without_a_session_send_the_visitor_to_sign_in(site: TestClient) -> None:
    for path in ("/", "/history", "/notifications", "/profile", "/funds/1/subscribe"):
        answer = site.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in"), path


def test_an_expired_session_is_refused(app_factory: Callable[..., TestClient], tmp_path: Path) -> None:
    site = app_factory(notifier=RecordingNotifier(), accounts_path=str(tmp_path / "a.sqlite3"), session_ttl_s=60)
    sign_up(site)
    accounts = site.app.state.host.accounts  # type: ignore[attr-defined]
    now = accounts._clock()
    accounts._clock = lambda: now + 61
    assert site.get("/", follow_redirects=False).headers["location"] == "/sign-in?expired=1"


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (None, ORIGIN),  # no token
        ("0" * 64, ORIGIN),  # a made-up token
        ("own", {"Origin": "http://evil.example"}),  # the right token, posted from another site
    ],
    ids=["missing", "forged", "cross-origin"],
)
def test_a_form_without_its_csrf_token_or_from_another_site_is_refused_and_changes_nothing(
    site: TestClient, engine: Any, token: str | None, headers: dict[str, str]
) -> None:
    sign_up(site)
    client_id = engine.clients(50).items[0].id
    fields = {"amount": "75000", "idempotency_key": "k"}
    if token == "own":
        fields["csrf_token"] = csrf_of(site.get("/funds/1/subscribe").text)
    elif token is not None:
        fields["csrf_token"] = token
    answer = site.post("/funds/1/subscribe", data=fields, headers=headers, follow_redirects=False)
    assert answer.status_code == 403
    assert engine.history(client_id) == []


def test_the_token_of_another_visitor_does_not_pass(app_factory: Callable[..., TestClient], tmp_path: Path) -> None:
    site = app_factory(notifier=RecordingNotifier(), accounts_path=str(tmp_path / "a.sqlite3"))
    sign_up(site)
    other = TestClient(site.app)
    foreign = csrf_of(other.get("/sign-in").text)
    assert other.cookies.get(CSRF_COOKIE)
    answer = site.post("/profile", data={"name": "Mallory", "csrf_token": foreign}, headers=ORIGIN)
    assert answer.status_code == 403


def test_a_wrong_password_and_an_unknown_email_get_the_same_page(site: TestClient) -> None:
    sign_up(site)
    post_form(site, "/sign-out", {}, from_page="/")
    wrong = post_form(site, "/sign-in", {"email": BEA["email"], "password": "not the password"})
    unknown = post_form(site, "/sign-in", {"email": "nobody@example.com", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    pick = re.compile(r'<p role="alert"[^>]*>([^<]*)</p>')
    assert pick.findall(wrong.text) == pick.findall(unknown.text) != []
    assert "El correo o la contraseña no son correctos" in wrong.text
    signed = post_form(site, "/sign-in", {"email": BEA["email"], "password": PASSWORD})
    assert signed.status_code == 303 and signed.headers["location"] == "/"


def test_a_subscription_refused_by_the_engine_shows_its_message_in_the_visitor_language(
    site: TestClient, engine: Any
) -> None:
    sign_up(site)
    client_id = engine.clients(50).items[0].id
    assert post_form(site, "/funds/4/subscribe", {"amount": "450000", "idempotency_key": "a"}).status_code == 303
    refused = post_form(site, "/funds/2/subscribe", {"amount": "125000", "idempotency_key": "b"})
    assert refused.status_code == 409
    assert "No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL" in refused.text
    site.get("/?lang=en")
    refused_en = post_form(site, "/funds/2/subscribe", {"amount": "125000", "idempotency_key": "c"})
    assert "Insufficient available balance to subscribe to fund FPV_BTG_PACTUAL_ECOPETROL" in refused_en.text
    assert [tx.fund_id for tx in engine.history(client_id)] == [4]


def test_a_confirmation_sent_twice_subscribes_once(site: TestClient, engine: Any) -> None:
    sign_up(site)
    client_id = engine.clients(50).items[0].id
    token = csrf_of(site.get("/funds/1/subscribe").text)
    form = {"amount": "80000", "idempotency_key": "one-confirmation", "csrf_token": token}
    first = site.post("/funds/1/subscribe", data=form, headers=ORIGIN, follow_redirects=False)
    second = site.post("/funds/1/subscribe", data=form, headers=ORIGIN, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]
    assert len(engine.history(client_id)) == 1


def test_an_amount_typed_the_colombian_way_is_refused_before_the_confirmation(site: TestClient, engine: Any) -> None:
    """A client who reads "Mínimo COP $125.000" and types 125.000 means 125,000: the engine's
    refusal is shown at once, never a confirmation for COP $125."""
    sign_up(site)
    client_id = engine.clients(50).items[0].id
    answer = post_form(site, "/funds/2/subscribe/confirm", {"amount": "125.000"}, from_page="/funds/2/subscribe")
    assert answer.status_code == 422
    assert "escriba el monto sin punto de miles (75000)" in answer.text
    assert "COP $125<" not in answer.text and "Confirmar" not in answer.text.split("<main", 1)[1]
    refused = post_form(site, "/funds/2/subscribe", {"amount": "125.000", "idempotency_key": "x"})
    assert refused.status_code == 422
    assert engine.history(client_id) == []
