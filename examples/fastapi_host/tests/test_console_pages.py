"""The operator console (fundcore_host/pages/console.py, templates/ops/), in process on a real
engine and a real SQLite account store, signed in through the pages as an operator made as the
accounts command makes one: each change reaches the engine (read back from it) and the audit
trail with the operator as the actor and the request's id; the engine's refusals are shown in
the visitor's language and change nothing; a client gets 403 on every console page; a form
without its CSRF token is 403 and changes nothing; the lists page with the engine's cursors. What
a browser does with it: tests/pages/."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import wait_until
from fastapi.testclient import TestClient
from page_forms import ORIGIN, csrf_of, post_form, sign_up

import fundcore
from fundcore_host.auth.accounts import create_operator
from fundcore_host.pages import console

OPERATOR_EMAIL = "ops@example.com"
OPERATOR_PASSWORD = "operator passphrase 1"

#: Every console page a GET reaches.
PAGES = ("/ops", "/ops/clients", "/ops/audit", "/ops/outbox", "/ops/ledger")

#: Every console form: its action, its fields and the page that holds it.
FORMS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("/ops/funds", {"id": "6", "name": "FIC_NUEVO", "minimum": "90000", "category": "FIC"}, "/ops"),
    ("/ops/funds/1/minimum", {"minimum": "80000"}, "/ops"),
    ("/ops/funds/1/active", {"active": "false"}, "/ops"),
    ("/ops/outbox/retry", {}, "/ops/outbox"),
    ("/ops/ledger", {}, "/ops/ledger"),
)


def sign_in_operator(site: TestClient) -> str:
    """An operator account in the app's account store, signed in through the sign-in page; its
    subject (what the audit trail names as the actor)."""
    accounts = site.app.state.host.accounts  # type: ignore[attr-defined]
    account = create_operator(accounts.store, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    answer = post_form(site, "/sign-in", {"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/ops", answer.text
    return account.subject


@pytest.fixture
def operator(site: TestClient) -> str:
    return sign_in_operator(site)


def text_of(page: str) -> str:
    """The page's text without its tags, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def roles(page: str, role: str) -> list[str]:
    """The texts of the page's elements with ``role``."""
    return [text_of(found) for found in re.findall(rf'<p role="{role}"[^>]*>(.*?)</p>', page, re.S)]


def audit_trail(engine: Any) -> list[Any]:
    return list(engine.audit_events(fundcore.MAX_PAGE).items)


# ----------------------------------------------------------------------------- catalogue


def test_the_catalogue_lists_every_fund_with_its_forms(site: TestClient, engine: Any, operator: str) -> None:
    page = site.get("/ops")
    assert page.status_code == 200
    assert "script" not in page.text.lower().replace("noscript", "")
    for fund in engine.funds():
        assert f'<th scope="row">{fund.name}</th>' in page.text
        assert fundcore.format_cop(fund.minimum) in page.text
        # the minimum's input is labelled with the fund's name and prefilled with its minimum
        assert f'<label for="minimum-{fund.id}" class="visually-hidden">Nuevo mínimo de {fund.name} (COP)</label>' in (
            page.text
        )
        assert re.search(rf'id="minimum-{fund.id}" name="minimum"[^>]*\s+value="{fund.minimum}"', page.text)
        assert f'aria-label="Guardar el mínimo de {fund.name}">Guardar</button>' in page.text
        assert f'aria-label="Cerrar {fund.name}">Cerrar</button>' in page.text
    for label in ('for="fund-id"', 'for="fund-name"', 'for="fund-minimum"', 'for="fund-category"'):
        assert label in page.text
    for category in fundcore.CATEGORIES:
        assert f'<option value="{category}"' in page.text


def test_creating_a_fund_reaches_the_engine_and_the_audit_trail_with_the_operator(
    site: TestClient, engine: Any, operator: str
) -> None:
    answer = post_form(
        site,
        "/ops/funds",
        {"id": "6", "name": "FIC_RENTA_FIJA", "minimum": "100000", "category": "FIC"},
        from_page="/ops",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ops?done=created&fund=6"
    fund = engine.fund(6)
    assert (fund.name, str(fund.minimum), fund.category, fund.active) == ("FIC_RENTA_FIJA", "100000.00", "FIC", True)
    [event] = audit_trail(engine)
    assert (event.action, event.target, event.actor) == ("fund_created", "6", operator)
    assert event.request_id == answer.headers["x-request-id"]
    shown = site.get(answer.headers["location"])
    assert roles(shown.text, "status") == ["Fondo creado: FIC_RENTA_FIJA."]
    assert '<th scope="row">FIC_RENTA_FIJA</th>' in shown.text


def test_changing_a_minimum_reaches_the_engine_and_the_audit_trail(
    site: TestClient, engine: Any, operator: str
) -> None:
    answer = post_form(site, "/ops/funds/1/minimum", {"minimum": "80000"}, from_page="/ops")
    assert answer.status_code == 303 and answer.headers["location"] == "/ops?done=minimum&fund=1"
    assert engine.fund(1).minimum == Decimal("80000")
    [event] = audit_trail(engine)
    assert (event.action, event.target, event.actor) == ("fund_updated", "1", operator)
    assert (event.before, event.after) == ({"minimum": "75000.00"}, {"minimum": "80000.00"})
    assert event.request_id == answer.headers["x-request-id"]
    shown = site.get(answer.headers["location"])
    assert roles(shown.text, "status") == [
        "Fondo actualizado: FPV_BTG_PACTUAL_RECAUDADORA. Nuevo monto mínimo: COP $80.000."
    ]
    assert re.search(r'id="minimum-1" name="minimum"[^>]*\s+value="80000.00"', shown.text)


def test_closing_and_reopening_a_fund(site: TestClient, engine: Any, operator: str) -> None:
    closed = post_form(site, "/ops/funds/2/active", {"active": "false"}, from_page="/ops")
    assert closed.status_code == 303 and closed.headers["location"] == "/ops?done=closed&fund=2"
    assert engine.fund(2).active is False
    page = site.get(closed.headers["location"])
    assert roles(page.text, "status") == [
        "Fondo actualizado: FPV_BTG_PACTUAL_ECOPETROL. Ya no recibe suscripciones nuevas."
    ]
    assert 'aria-label="Reabrir FPV_BTG_PACTUAL_ECOPETROL">Reabrir</button>' in page.text
    # the same form sent again leaves it closed (the form says which, it does not toggle)
    again = post_form(site, "/ops/funds/2/active", {"active": "false"}, from_page="/ops")
    assert again.status_code == 303 and engine.fund(2).active is False
    reopened = post_form(site, "/ops/funds/2/active", {"active": "true"}, from_page="/ops")
    assert reopened.headers["location"] == "/ops?done=reopened&fund=2"
    assert engine.fund(2).active is True
    # two changes, two events: closing a closed fund changed nothing and recorded nothing
    events = audit_trail(engine)
    assert [(e.action, e.target, e.actor) for e in events] == [("fund_updated", "2", operator)] * 2
    assert (events[0].before, events[0].after) == ({"active": False}, {"active": True})
    assert (events[-1].before, events[-1].after) == ({"active": True}, {"active": False})


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({}, "Ya existe el fondo 1"),
        ({"params": {"lang": "en"}}, "Fund 1 already exists"),
        ({"headers": {"Accept-Language": "en-US,en;q=0.9"}}, "Fund 1 already exists"),
    ],
    ids=["es-default", "en-by-choice", "en-by-browser"],
)
def test_a_taken_fund_id_shows_the_engine_message_in_the_page_language_and_changes_nothing(
    site: TestClient, engine: Any, operator: str, how: dict[str, Any], message: str
) -> None:
    before = engine.funds()
    token = csrf_of(site.get("/ops", **how).text)
    fields = {"id": "1", "name": "OTRO", "minimum": "1000", "category": "FIC", "csrf_token": token}
    headers = {**ORIGIN, **how.get("headers", {})}
    answer = site.post("/ops/funds", data=fields, headers=headers, params=how.get("params"), follow_redirects=False)
    assert answer.status_code == 409
    assert roles(answer.text, "alert") == [message]
    # next to the form, the id marked as the refused field, what was typed kept
    assert re.search(
        r'id="fund-id" name="id"[^>]*value="1" aria-invalid="true" aria-describedby="create-refusal"', answer.text
    )
    assert 'value="OTRO"' in answer.text
    assert engine.funds() == before
    assert audit_trail(engine) == []


def test_a_bad_minimum_is_refused_by_the_engine_next_to_its_field(site: TestClient, engine: Any, operator: str) -> None:
    created = post_form(
        site, "/ops/funds", {"id": "7", "name": "F7", "minimum": "12,5.3", "category": "FIC"}, from_page="/ops"
    )
    assert created.status_code == 422
    refusal = fundcore.ValidationError  # the engine's own words, asked of the engine
    with pytest.raises(refusal) as raised:
        engine.create_fund(7, "F7", "12,5.3", "FIC", actor="probe")
    assert roles(created.text, "alert") == [raised.value.messages["es"]]
    assert f'<p class="problem" id="fund-minimum-problem">{raised.value.problems["es"]}</p>' in created.text
    assert 'aria-describedby="fund-minimum-problem"' in created.text

    changed = post_form(site, "/ops/funds/3/minimum", {"minimum": "1.234"}, from_page="/ops")
    assert changed.status_code == 422
    with pytest.raises(refusal) as raised:
        engine.update_fund(3, minimum="1.234", actor="probe")
    assert roles(changed.text, "alert") == [raised.value.problems["es"]]
    assert re.search(
        r'id="minimum-3" name="minimum"[^>]*value="1.234" aria-invalid="true" aria-describedby="minimum-3-refusal"',
        changed.text,
    )
    assert str(engine.fund(3).minimum) == "50000.00"
    with pytest.raises(fundcore.NotFoundError):
        engine.fund(7)
    assert audit_trail(engine) == []


def test_an_id_that_is_not_a_number_is_refused_and_an_unknown_fund_gets_the_engine_message(
    site: TestClient, engine: Any, operator: str
) -> None:
    answer = post_form(
        site, "/ops/funds", {"id": "seis", "name": "F", "minimum": "1000", "category": "FIC"}, from_page="/ops"
    )
    assert answer.status_code == 422
    assert roles(answer.text, "alert") == ["La solicitud no es válida"]
    missing = post_form(site, "/ops/funds/99/active", {"active": "false"}, from_page="/ops")
    assert missing.status_code == 404
    assert roles(missing.text, "alert") == ["No existe el fondo 99"]
    no_flag = post_form(site, "/ops/funds/1/active", {"active": "maybe"}, from_page="/ops")
    assert no_flag.status_code == 422
    with pytest.raises(fundcore.ValidationError) as raised:
        engine.update_fund(1, actor="probe")
    assert roles(no_flag.text, "alert") == [raised.value.messages["es"]]
    assert len(engine.funds()) == 5 and engine.fund(1).active
    assert audit_trail(engine) == []


def test_a_form_address_asked_with_get_leads_back_to_its_page_in_the_language_asked(
    site: TestClient, operator: str
) -> None:
    # the language link of a refused form's page points at the form's address
    for path, page in (
        ("/ops/funds", "/ops"),
        ("/ops/funds/1/minimum", "/ops"),
        ("/ops/funds/1/active", "/ops"),
        ("/ops/outbox/retry", "/ops/outbox"),
    ):
        answer = site.get(f"{path}?lang=en", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, f"{page}?lang=en"), path
    assert site.get("/ops/funds?lang=en").text.count("Catalogue") >= 1


def test_the_page_address_numbers_are_read_safely(site: TestClient, operator: str) -> None:
    for query in ("done=created&fund=" + "9" * 5000, "done=created&fund=99", "done=other&fund=1", "fund=1"):
        answer = site.get(f"/ops?{query}")
        assert answer.status_code == 200 and roles(answer.text, "status") == [], query
    assert roles(site.get("/ops/outbox?retried=" + "9" * 5000).text, "status") == []


# ----------------------------------------------------------------------------- who may


def test_a_client_gets_403_on_every_console_page_and_form(site: TestClient, engine: Any) -> None:
    sign_up(site)
    for path in PAGES:
        answer = site.get(path, follow_redirects=False)
        assert answer.status_code == 403, path
        assert roles(answer.text, "alert") == ["Esta página es solo para operadores."], path
    token = csrf_of(site.get("/").text)
    for action, fields, _ in FORMS:
        answer = site.post(action, data={**fields, "csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert answer.status_code == 403, action
        assert site.get(action, follow_redirects=False).status_code == 403, action
    assert len(engine.funds()) == 5 and engine.fund(1).active and str(engine.fund(1).minimum) == "75000.00"
    assert audit_trail(engine) == []


def test_without_a_session_the_console_sends_the_visitor_to_sign_in(site: TestClient) -> None:
    for path in PAGES:
        answer = site.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in"), path


def test_the_operator_home_is_the_console(site: TestClient, operator: str) -> None:
    answer = site.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ops")


@pytest.mark.parametrize(("action", "fields", "holder"), FORMS, ids=[form[0] for form in FORMS])
def test_a_console_form_without_its_csrf_token_is_refused_and_changes_nothing(
    site: TestClient, engine: Any, operator: str, action: str, fields: dict[str, str], holder: str
) -> None:
    funds = engine.funds()
    missing = site.post(action, data=fields, headers=ORIGIN, follow_redirects=False)
    forged = site.post(action, data={**fields, "csrf_token": "0" * 64}, headers=ORIGIN, follow_redirects=False)
    token = csrf_of(site.get(holder).text)
    elsewhere = site.post(
        action, data={**fields, "csrf_token": token}, headers={"Origin": "http://evil.example"}, follow_redirects=False
    )
    for answer in (missing, forged, elsewhere):
        assert answer.status_code == 403
        assert "Ya existe" not in answer.text and 'role="status"' not in answer.text
    assert engine.funds() == funds
    assert audit_trail(engine) == []


# ----------------------------------------------------------------------------- clients, audit


def test_the_clients_page_in_the_engine_order_with_next_and_first_page_links(
    site: TestClient, engine: Any, operator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "CONSOLE_PAGE", 2)
    made = [
        engine.register_client(f"Cliente {n}", f"c{n}@example.com", f"+57300123456{n}", "sms" if n % 2 else "email")
        for n in range(3)
    ]
    first = site.get("/ops/clients")
    assert first.status_code == 200
    newest = engine.clients(2)
    for client in newest.items:
        assert f'<th scope="row">{client.name}</th>' in first.text
        assert client.email in first.text and client.phone in first.text and client.id in first.text
    assert "COP $500.000" in first.text
    assert "Cliente 0" not in first.text
    assert f'href="/ops/clients?before={newest.next}">Página siguiente</a>' in first.text
    assert "Primera página" not in first.text
    second = site.get(f"/ops/clients?before={newest.next}")
    assert "Cliente 0" in second.text and made[0].id in second.text
    assert "Cliente 2" not in second.text
    assert '<a href="/ops/clients">Primera página</a>' in second.text
    assert "Página siguiente" not in second.text
    bad = site.get("/ops/clients?before=not-a-client")
    assert bad.status_code == 422
    with pytest.raises(fundcore.ValidationError) as raised:
        engine.clients(2, "not-a-client")
    assert roles(bad.text, "alert") == [raised.value.messages["es"]]


def test_the_audit_page_shows_each_change_readably_in_pages(
    site: TestClient, engine: Any, operator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_form(site, "/ops/funds/1/minimum", {"minimum": "80000"}, from_page="/ops")
    post_form(site, "/ops/funds/1/active", {"active": "false"}, from_page="/ops")
    client = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
    engine.update_client(client.id, channel="sms", actor="admin-api", request_id="req-1")
    page = site.get("/ops/audit?lang=en")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Fund updated" in text and "Client updated" in text
    assert '<pre class="change">minimum: COP $75.000</pre>' in page.text
    assert '<pre class="change">minimum: COP $80.000</pre>' in page.text
    assert '<pre class="change">active: true</pre>' in page.text
    assert '<pre class="change">channel: sms</pre>' in page.text
    assert operator in page.text and "admin-api" in page.text and "req-1" in page.text
    monkeypatch.setattr(console, "CONSOLE_PAGE", 2)
    first = site.get("/ops/audit?lang=es")
    cursor = engine.audit_events(2).next
    assert cursor and f'href="/ops/audit?before={cursor}">Página siguiente</a>' in first.text
    assert "Cliente actualizado" in first.text and "minimum: COP $80.000" not in first.text
    second = site.get(f"/ops/audit?before={cursor}")
    assert "minimum: COP $80.000" in second.text and '<a href="/ops/audit">Primera página</a>' in second.text


# ----------------------------------------------------------------------------- outbox, ledger


class RefusingNotifier:
    """Every delivery fails for good (a real notifier the engine calls)."""

    def send(self, notification: Any) -> None:
        raise fundcore.PermanentDeliveryError("buzón inexistente")


def test_the_outbox_shows_the_failures_and_retries_them(
    app_factory: Callable[..., TestClient], engine: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = app_factory(notifier=RefusingNotifier(), accounts_path=str(tmp_path / "accounts.sqlite3"))
    operator = sign_in_operator(site)
    client = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
    engine.subscribe(client.id, 1)
    engine.subscribe(client.id, 3)
    wait_until(lambda: engine.outbox_state().failed == 2)
    page = site.get("/ops/outbox")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Fallidas 2" in text and "Pendientes 0" in text
    assert text.count("buzón inexistente") == 2 and "ana@example.com" in text and client.id in text
    assert "No hay entregas fallidas." not in text
    answer = post_form(site, "/ops/outbox/retry", {}, from_page="/ops/outbox")
    assert answer.status_code == 303 and answer.headers["location"] == "/ops/outbox?retried=2"
    shown = site.get(answer.headers["location"] + "&lang=en")
    assert roles(shown.text, "status") == ["2 notifications queued again."]
    # queued again, the dispatcher tried them once more: refused again, each attempt counted anew
    wait_until(lambda: engine.outbox_state().failed == 2)
    assert [n.attempts for n in engine.failed_notifications().items] == [1, 1]
    # the outbox keeps no actor: the log names the operator who asked, as for POST /outbox/retry
    assert f"2 failed notifications requeued by {operator}" in caplog.text


def test_the_ledger_check_runs_when_asked_and_shows_the_counts(site: TestClient, engine: Any, operator: str) -> None:
    client = engine.register_client("Ana", "ana@example.com", "+573001234567", "email")
    engine.subscribe(client.id, 1, idempotency_key="k1")
    form = site.get("/ops/ledger")
    assert form.status_code == 200 and roles(form.text, "status") == []
    assert ">Verificar ahora</button>" in form.text
    answer = post_form(site, "/ops/ledger", {})
    assert answer.status_code == 200
    [status] = roles(answer.text, "status")
    assert status.startswith("Sin violaciones. Revisado el ")
    report = engine.verify_ledger()
    text = text_of(answer.text)
    assert f"Clientes {report.clients}" in text and f"Transacciones {report.transactions}" in text
    assert f"Claves de idempotencia {report.idempotency_keys}" in text
    assert "Violaciones 0" in text


class _Report:
    """A report with violations (a live store that breaks a rule cannot be made from outside)."""

    clean = False
    clients = 2
    transactions = 3
    active_subscriptions = 1
    idempotency_keys = 0
    outbox: ClassVar[dict[str, int]] = {"pending": 0, "delivered": 1, "failed": 0}
    audit_events = 0
    violation_count = 2
    violations: ClassVar[list[dict[str, str | None]]] = [
        {"client": "01a2-client", "rule": "negative_balance", "detail": "balance -1.00 is negative"},
        {"client": None, "rule": "store_index", "detail": "an index entry names no client"},
    ]


def test_the_ledger_violations_are_listed(site: TestClient, operator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> _Report:
        return _Report()

    monkeypatch.setattr(site.app.state.host.engine, "verify_ledger", broken)  # type: ignore[attr-defined]
    answer = post_form(site, "/ops/ledger?lang=en", {}, from_page="/ops/ledger?lang=en")
    [status] = roles(answer.text, "status")
    assert status.startswith("2 violations. Checked on ")
    text = text_of(answer.text)
    assert "01a2-client negative_balance balance -1.00 is negative" in text
    assert "store_index an index entry names no client" in text
