"""The client's account over time: a chart of the available balance and the invested amount
(server-drawn SVG, with the same numbers in a table) and a statement for a date range as PDF and
CSV. Both come from one engine call, ``Engine.statement`` (``GET /clients/{id}/statement``):
the balances and invested amounts are the engine's, never computed here."""

from __future__ import annotations

import csv
import datetime
import io
import itertools
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from fpdf import FPDF

import fundcore

from ..dependencies import engine
from .access import ClientPage, PageRoute
from .render import Page, cop, error_text, when

router = APIRouter(include_in_schema=False, route_class=PageRoute)

FONTS = Path(__file__).resolve().parent / "fonts"

#: The chart's drawing area, in SVG user units.
WIDTH, HEIGHT, MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 900, 320, 110, 40, 16, 16


@dataclass(frozen=True)
class Point:
    """Where the client stood from ``at`` on."""

    at: datetime.datetime
    balance: Decimal
    invested: Decimal
    transaction: fundcore.Transaction | None


def points(statement: fundcore.Statement, created_at: datetime.datetime) -> list[Point]:
    """The opening position, then one point after each transaction."""
    opening = Point(max(statement.start, created_at), statement.opening_balance, statement.opening_invested, None)
    return [opening] + [
        Point(line.transaction.created_at, line.balance_after, line.invested_after, line.transaction)
        for line in statement.lines
    ]


def _path(values: list[tuple[float, float]]) -> str:
    """A step line through ``values``: each value holds until the next one."""
    if not values:
        return ""
    steps = [f"M{values[0][0]:.1f},{values[0][1]:.1f}"]
    for (_, y_before), (x, y) in itertools.pairwise(values):
        steps.append(f"H{x:.1f}V{y:.1f}" if y != y_before else f"H{x:.1f}")
    steps.append(f"H{WIDTH - MARGIN_RIGHT:.1f}")
    return "".join(steps)


def chart(series: list[Point]) -> dict[str, object]:
    """The SVG's lines and axis labels for ``series``, scaled to the largest amount. Each point
    gets the same width, in order: a client's activity comes in bursts, and on a time axis a
    month of quiet would squeeze a day's transactions into one line."""
    top = max([max(p.balance, p.invested) for p in series] + [Decimal(1)])
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(index: int) -> float:
        return MARGIN_LEFT + plot_w * index / len(series)

    def y(amount: Decimal) -> float:
        return MARGIN_TOP + plot_h * float(1 - amount / top)

    ticks = [top * Decimal(i) / 4 for i in range(5)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": MARGIN_LEFT,
        "right": WIDTH - MARGIN_RIGHT,
        "top": MARGIN_TOP,
        "bottom": HEIGHT - MARGIN_BOTTOM,
        "balance": _path([(x(i), y(p.balance)) for i, p in enumerate(series)]),
        "invested": _path([(x(i), y(p.invested)) for i, p in enumerate(series)]),
        "ticks": [(y(amount), cop(amount.quantize(Decimal(1)))) for amount in ticks],
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@router.get("/evolution")
async def evolution(page: ClientPage) -> Response:
    opened = await engine(page.request)
    assert page.principal is not None
    client = await opened.client(page.principal.sub)
    end = _now() + datetime.timedelta(seconds=1)
    statement = await opened.statement(client.id, client.created_at, end)
    series = points(statement, client.created_at)
    today = end.date()
    return page.render(
        "client/evolution.html",
        series=series,
        chart=chart(series),
        first=when(series[0].at, page.lang),
        last=when(series[-1].at, page.lang),
        default_from=today.replace(day=1).isoformat(),
        default_to=today.isoformat(),
        error=None,
    )


def _date_range(page: Page) -> tuple[datetime.datetime, datetime.datetime]:
    """The form's dates as the engine's range: from the first day's start to the end of the
    last day, UTC (``ValueError`` for a text that is not a date)."""
    query = page.request.query_params
    first = datetime.date.fromisoformat(query.get("from", ""))
    last = datetime.date.fromisoformat(query.get("to", ""))
    start = datetime.datetime.combine(first, datetime.time(), datetime.UTC)
    end = datetime.datetime.combine(last, datetime.time(), datetime.UTC) + datetime.timedelta(days=1)
    return start, end


async def _statement(page: Page) -> tuple[fundcore.Client, fundcore.Statement] | Response:
    opened = await engine(page.request)
    assert page.principal is not None
    client = await opened.client(page.principal.sub)
    try:
        start, end = _date_range(page)
        return client, await opened.statement(client.id, start, end)
    except ValueError as error:
        message = error_text(error, page.lang) if isinstance(error, fundcore.FundcoreError) else page.t("bad_date")
        return page.render("message.html", status_code=422, message=message)


def _rows(page: Page, statement: fundcore.Statement) -> list[list[str]]:
    header = [page.t(k) for k in ("date", "kind", "fund", "amount", "balance_after", "invested", "transaction")]
    rows = [
        header,
        [
            when(statement.start, page.lang),
            page.t("opening_balance"),
            "",
            "",
            cop(statement.opening_balance),
            cop(statement.opening_invested),
            "",
        ],
    ]
    for line in statement.lines:
        tx = line.transaction
        rows.append(
            [
                when(tx.created_at, page.lang),
                page.t("kind_" + tx.kind),
                tx.fund_name,
                cop(tx.amount),
                cop(line.balance_after),
                cop(line.invested_after),
                tx.id,
            ]
        )
    rows.append(
        [
            when(statement.end, page.lang),
            page.t("closing_balance"),
            "",
            "",
            cop(statement.closing_balance),
            cop(statement.closing_invested),
            "",
        ]
    )
    return rows


def _last_day(statement: fundcore.Statement) -> datetime.date:
    """The range's last day (its end is the next day's start, excluded)."""
    return (statement.end - datetime.timedelta(days=1)).date()


def _file_name(statement: fundcore.Statement, suffix: str) -> str:
    return f"statement-{statement.start.date().isoformat()}-{_last_day(statement).isoformat()}.{suffix}"


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/statement.csv")
async def statement_csv(page: ClientPage) -> Response:
    found = await _statement(page)
    if isinstance(found, Response):
        return found
    _, statement = found
    out = io.StringIO()
    csv.writer(out).writerows(_rows(page, statement))
    # with a byte-order mark, spreadsheet programs read the accents right
    return _download(("\ufeff" + out.getvalue()).encode(), "text/csv; charset=utf-8", _file_name(statement, "csv"))


@router.get("/statement.pdf")
async def statement_pdf(page: ClientPage) -> Response:
    found = await _statement(page)
    if isinstance(found, Response):
        return found
    client, statement = found
    last = _last_day(statement)
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(page.t("statement_of", name=client.name))
    pdf.set_lang(page.lang)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 9, page.t("statement_of", name=client.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(0, 6, f"{page.t('client')}: {client.id} · {client.email}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(
        0,
        6,
        page.t("period", start=statement.start.date().isoformat(), end=last.isoformat()),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    rows = _rows(page, statement)
    pdf.set_font("DejaVu", "", 8)
    with pdf.table(
        col_widths=(38, 26, 50, 30, 30, 30, 62), text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "LEFT")
    ) as table:
        for row in rows:
            table.row(row)
    return _download(bytes(pdf.output()), "application/pdf", _file_name(statement, "pdf"))
