"""The client's account over time through the pages (pages/statement.py), in process on a real
engine: the chart's table and the statement's CSV and PDF carry exactly the engine's balances
and invested amounts (``Engine.statement``), money in the Colombian format; a range is whole
days; a malformed date or a range the engine refuses is a page saying so, not a file."""

from __future__ import annotations

import csv
import datetime
import io
import re
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient
from page_forms import post_form, sign_up

import fundcore


def subscribe(site: TestClient, fund_id: int, amount: str, key: str) -> None:
    answer = post_form(site, f"/funds/{fund_id}/subscribe", {"amount": amount, "idempotency_key": key})
    assert answer.status_code == 303, answer.text


def cancel(site: TestClient, fund_id: int, key: str) -> None:
    answer = post_form(site, f"/subscriptions/{fund_id}/cancel", {"idempotency_key": key}, from_page="/")
    assert answer.status_code == 303, answer.text


@pytest.fixture
def moved(site: TestClient, engine: Any) -> tuple[TestClient, str]:
    """Bea signed up through the pages, subscribed to funds 1 and 3, then cancelled fund 1."""
    sign_up(site)
    subscribe(site, 1, "80000.50", "a")
    subscribe(site, 3, "50000", "b")
    cancel(site, 1, "c")
    return site, engine.clients(50).items[0].id


def today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def test_the_chart_table_shows_the_engine_figures_after_each_transaction(
    moved: tuple[TestClient, str], engine: Any
) -> None:
    site, client_id = moved
    page = site.get("/evolution")
    assert page.status_code == 200
    rows = re.findall(r'<td class="num">([^<]*)</td>\s*<td class="num">([^<]*)</td>', page.text)
    client = engine.client(client_id)
    lines = engine.statement(
        client_id, client.created_at, datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    ).lines
    expected = [("COP $500.000", "COP $0")] + [
        (fundcore.format_cop(line.balance_after), fundcore.format_cop(line.invested_after)) for line in lines
    ]
    assert rows == expected
    assert expected[1:] == [
        ("COP $419.999,50", "COP $80.000,50"),
        ("COP $369.999,50", "COP $130.000,50"),
        ("COP $450.000", "COP $50.000"),
    ]
    assert 'role="img"' in page.text and "4 puntos" in page.text


def test_the_csv_statement_lists_the_range_with_opening_and_closing_positions(moved: tuple[TestClient, str]) -> None:
    site, _ = moved
    answer = site.get(f"/statement.csv?from={today()}&to={today()}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="statement-{today()}-{today()}.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Fecha", "Tipo", "Fondo"]
    assert rows[1][1:] == ["Saldo inicial", "", "", "COP $500.000", "COP $0", ""]
    assert [row[1:6] for row in rows[2:5]] == [
        ["Apertura", "FPV_BTG_PACTUAL_RECAUDADORA", "COP $80.000,50", "COP $419.999,50", "COP $80.000,50"],
        ["Apertura", "DEUDAPRIVADA", "COP $50.000", "COP $369.999,50", "COP $130.000,50"],
        ["Cancelación", "FPV_BTG_PACTUAL_RECAUDADORA", "COP $80.000,50", "COP $450.000", "COP $50.000"],
    ]
    assert rows[5][1:] == ["Saldo final", "", "", "COP $450.000", "COP $50.000", ""]


def test_a_range_before_any_transaction_has_only_the_positions(moved: tuple[TestClient, str]) -> None:
    site, _ = moved
    rows = list(
        csv.reader(io.StringIO(site.get("/statement.csv?from=2020-01-01&to=2020-01-31").content.decode("utf-8-sig")))
    )
    assert [row[1] for row in rows[1:]] == ["Saldo inicial", "Saldo final"]


def test_the_pdf_statement_says_the_same_in_english(moved: tuple[TestClient, str]) -> None:
    site, client_id = moved
    site.get("/evolution?lang=en")
    answer = site.get(f"/statement.pdf?from={today()}&to={today()}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=answer.content, capture_output=True, check=True
    ).stdout.decode()
    assert "Statement of Bea" in text and client_id in text
    for needle in (
        "Opening balance",
        "COP $500.000",
        "Subscription",
        "Cancellation",
        "COP $419.999,50",
        "COP $130.000,50",
        "Closing balance",
    ):
        assert needle in text, needle


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("from=yesterday&to=2026-01-01", 422, "Escriba las fechas como AAAA-MM-DD"),
        ("from=2026-02-01&to=2026-01-01", 422, "from: el inicio del período no puede ser posterior a su fin"),
    ],
    ids=["not-a-date", "reversed"],
)
def test_a_bad_range_is_a_page_not_a_file(moved: tuple[TestClient, str], query: str, status: int, says: str) -> None:
    site, _ = moved
    answer = site.get(f"/statement.csv?{query}")
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert says in answer.text
