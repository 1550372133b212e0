"""The operator console at ``/ops`` (admins only; a client gets 403): the fund catalogue (create a
fund, change a minimum, close and reopen), the clients, the audit trail, the outbox (backlog,
failures, retry) and the ledger check.

Every change makes the engine call of the matching JSON endpoint (``routers/funds.py``) with the
operator's subject as the actor and the request's id, so it is in the audit trail; amounts go to
the engine as typed, and a refusal shows the engine's message next to the form, nothing changed.
A change that succeeds answers 303 back to its page, which says what was done (``role=status``).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

import fundcore
import fundcore.aio

from ..dependencies import engine
from ..logs import printable
from .access import OperatorPage, PageRoute, checked_form
from .render import Page, cop, error_text, field_problem

log = logging.getLogger("fundcore_host")

router = APIRouter(prefix="/ops", include_in_schema=False, route_class=PageRoute)

#: Rows per page of the clients, the audit trail and the failed deliveries.
CONSOLE_PAGE = 25

#: How many failed notifications one "retry" queues again at most: the engine's page limit.
RETRY_BATCH = fundcore.MAX_PAGE

#: The create form's fields, in the engine's order of ``create_fund``.
_CREATE_FIELDS = ("id", "name", "minimum", "category")

#: Fields of an audit event's ``before``/``after`` that are amounts (shown as ``COP $75.000``):
#: a fund's minimum (a client's changes are contact data).
_MONEY_FIELDS = frozenset({"minimum"})


async def _engine(page: Page) -> fundcore.aio.Engine:
    return await engine(page.request)


def _operator(page: Page) -> str:
    """The signed-in operator's subject (an operator account's id)."""
    assert page.principal is not None
    return page.principal.sub


def _cursor(page: Page) -> str | None:
    return page.request.query_params.get("before") or None


def _number(text: str | None) -> int | None:
    """A count or an id of the page's own address (``?fund=6``, ``?retried=2``), else ``None``."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    return int(text)


# ----------------------------------------------------------------------------- catalogue


#: What a change's redirect says (``/ops?done=...&fund=<id>``), from the fund as it is now.
_DONE = ("created", "minimum", "closed", "reopened")


def _done_message(page: Page, done: str, fund: fundcore.Fund) -> str:
    if done == "created":
        return page.t("fund_created", fund=fund.name)
    detail = {
        "minimum": page.t("minimum_now", minimum=cop(fund.minimum)),
        "closed": page.t("now_closed"),
        "reopened": page.t("now_open"),
    }[done]
    return f"{page.t('fund_updated', fund=fund.name)} {detail}"


async def _notice(page: Page) -> str | None:
    query = page.request.query_params
    done, fund_id = query.get("done"), _number(query.get("fund"))
    if done not in _DONE or fund_id is None:
        return None
    try:
        fund = await (await _engine(page)).fund(fund_id)
    except fundcore.FundcoreError:
        return None
    return _done_message(page, done, fund)


def _catalogue(
    page: Page,
    funds: list[fundcore.Fund],
    *,
    status_code: int = 200,
    notice: str | None = None,
    create: dict[str, str] | None = None,
    create_error: str | None = None,
    create_invalid: dict[str, str | None] | None = None,
    row: dict[str, Any] | None = None,
) -> Response:
    values = create or {"id": "", "name": "", "minimum": "", "category": fundcore.CATEGORIES[0]}
    return page.render(
        "ops/catalogue.html",
        status_code=status_code,
        funds=funds,
        notice=notice,
        create=values,
        create_error=create_error,
        create_invalid=create_invalid or {},
        row=row or {},
    )


@router.get("")
async def catalogue(page: OperatorPage) -> Response:
    funds = await (await _engine(page)).funds()
    return _catalogue(page, funds, notice=await _notice(page))


def _fund_id(text: str) -> int | None:
    """A typed fund id as the integer the engine takes (it decides which ones exist)."""
    text = text.strip()
    digits = text.removeprefix("-")
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return None


def _refused_field(error: fundcore.FundcoreError) -> str | None:
    """The create form's field a refusal is about."""
    if error.code in ("FUND_ALREADY_EXISTS", "FUND_NOT_FOUND"):
        return "id"
    return error.field if error.field in _CREATE_FIELDS else None


@router.post("/funds")
async def create_fund(request: Request, page: OperatorPage) -> Response:
    fields = await checked_form(request, page)
    values = {name: fields.get(name, "") for name in _CREATE_FIELDS}
    opened = await _engine(page)
    fund_id = _fund_id(values["id"])
    if fund_id is None:
        # not an integer: the engine takes none other (the JSON API refuses it the same way)
        return _catalogue(
            page,
            await opened.funds(),
            status_code=422,
            create=values,
            create_error=page.host_text("VALIDATION_ERROR"),
            create_invalid={"id": None},
        )
    try:
        fund = await opened.create_fund(
            fund_id,
            values["name"],
            values["minimum"],
            values["category"],  # type: ignore[arg-type]  # the engine decides the category
            **page.actor(),
        )
    except fundcore.FundcoreError as error:
        field = _refused_field(error)
        problem = field_problem(error, page.lang) if error.field is not None else None
        return _catalogue(
            page,
            await opened.funds(),
            status_code=error.http_status,
            create=values,
            create_error=error_text(error, page.lang),
            create_invalid={field: problem} if field else {},
        )
    log.info("fund %s created by %s", fund.id, printable(_operator(page)))
    return RedirectResponse(f"/ops?done=created&fund={fund.id}", status_code=303)


@router.post("/funds/{fund_id}/minimum")
async def change_minimum(fund_id: int, request: Request, page: OperatorPage) -> Response:
    fields = await checked_form(request, page)
    minimum = fields.get("minimum", "")
    opened = await _engine(page)
    try:
        await opened.update_fund(fund_id, minimum=minimum, **page.actor())
    except fundcore.FundcoreError as error:
        problem = field_problem(error, page.lang) if error.field == "minimum" else None
        return _catalogue(
            page,
            await opened.funds(),
            status_code=error.http_status,
            row={
                "fund": fund_id,
                "form": "minimum",
                "value": minimum,
                "problem": problem,
                "error": error_text(error, page.lang),
            },
        )
    log.info("fund %s updated by %s", fund_id, printable(_operator(page)))
    return RedirectResponse(f"/ops?done=minimum&fund={fund_id}", status_code=303)


_FLAGS = {"true": True, "false": False}


@router.post("/funds/{fund_id}/active")
async def set_active(fund_id: int, request: Request, page: OperatorPage) -> Response:
    """Closes (``active=false``) or reopens (``active=true``) a fund: the form says which, so a
    form sent twice leaves the fund as the operator asked, not toggled back."""
    fields = await checked_form(request, page)
    active = _FLAGS.get(fields.get("active", ""))
    opened = await _engine(page)
    try:
        # without a flag the engine is asked no change, and says so
        await opened.update_fund(fund_id, active=active, **page.actor())
    except fundcore.FundcoreError as error:
        return _catalogue(
            page,
            await opened.funds(),
            status_code=error.http_status,
            row={"fund": fund_id, "form": "active", "error": error_text(error, page.lang)},
        )
    log.info("fund %s updated by %s", fund_id, printable(_operator(page)))
    return RedirectResponse(f"/ops?done={'reopened' if active else 'closed'}&fund={fund_id}", status_code=303)


@router.get("/funds")
@router.get("/funds/{fund_id}/minimum")
@router.get("/funds/{fund_id}/active")
async def back_to_catalogue(page: OperatorPage) -> Response:
    """A form's address asked with GET (the language link of a refusal's page, a reload after
    it): the catalogue, in the language asked."""
    query = page.request.url.query
    return RedirectResponse(f"/ops?{query}" if query else "/ops", status_code=303)


# ----------------------------------------------------------------------------- clients, audit


@router.get("/clients")
async def clients(page: OperatorPage) -> Response:
    before = _cursor(page)
    items: list[fundcore.Client] = []
    next_cursor, error = None, None
    try:
        found = await (await _engine(page)).clients(CONSOLE_PAGE, before)
        items, next_cursor = list(found.items), found.next
    except fundcore.FundcoreError as refused:
        error = error_text(refused, page.lang)
    return page.render(
        "ops/clients.html",
        status_code=422 if error else 200,
        items=items,
        next_cursor=next_cursor,
        before=before,
        error=error,
    )


def _shown(name: str, value: object) -> str:
    """One changed field of an audit event, exactly: amounts as money, the rest as JSON has it."""
    if name in _MONEY_FIELDS and isinstance(value, str | int):
        try:
            return cop(value)
        except fundcore.FundcoreError:
            return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _change_lines(fields: dict[str, object]) -> list[str]:
    return [f"{name}: {_shown(name, value)}" for name, value in sorted(fields.items())]


@router.get("/audit")
async def audit(page: OperatorPage) -> Response:
    before = _cursor(page)
    items: list[dict[str, Any]] = []
    next_cursor, error = None, None
    try:
        found = await (await _engine(page)).audit_events(CONSOLE_PAGE, before)
        next_cursor = found.next
        items = [
            {"event": event, "before": _change_lines(event.before), "after": _change_lines(event.after)}
            for event in found.items
        ]
    except fundcore.FundcoreError as refused:
        error = error_text(refused, page.lang)
    return page.render(
        "ops/audit.html",
        status_code=422 if error else 200,
        items=items,
        next_cursor=next_cursor,
        before=before,
        error=error,
    )


# ----------------------------------------------------------------------------- outbox, ledger


@router.get("/outbox")
async def outbox(page: OperatorPage) -> Response:
    opened = await _engine(page)
    state = await opened.outbox_state()
    retried = _number(page.request.query_params.get("retried"))
    notice = None
    if retried is not None:
        notice = page.t("retried_one") if retried == 1 else page.t("retried", count=retried)
    before = _cursor(page)
    failed: list[fundcore.Notification] = []
    next_cursor, error = None, None
    try:
        found = await opened.failed_notifications(CONSOLE_PAGE, before)
        failed, next_cursor = list(found.items), found.next
    except fundcore.FundcoreError as refused:
        error = error_text(refused, page.lang)
    age = state.oldest_pending_age
    return page.render(
        "ops/outbox.html",
        status_code=422 if error else 200,
        state=state,
        age_seconds=int(age.total_seconds()) if age is not None else None,
        notice=notice,
        retry_limit=RETRY_BATCH,
        failed=failed,
        next_cursor=next_cursor,
        before=before,
        error=error,
    )


@router.get("/outbox/retry")
async def back_to_outbox(page: OperatorPage) -> Response:
    """The retry's address asked with GET (a language link, a reload): the outbox page."""
    query = page.request.url.query
    return RedirectResponse(f"/ops/outbox?{query}" if query else "/ops/outbox", status_code=303)


@router.post("/outbox/retry")
async def retry_failed(request: Request, page: OperatorPage) -> Response:
    await checked_form(request, page)
    count = await (await _engine(page)).retry_failed_notifications(RETRY_BATCH)
    # the outbox keeps no actor: the log says who asked, as for POST /outbox/retry
    log.info("%d failed notifications requeued by %s", count, printable(_operator(page)))
    return RedirectResponse(f"/ops/outbox?retried={count}", status_code=303)


@router.get("/ledger")
async def ledger(page: OperatorPage) -> Response:
    """The check's form; the check itself reads every client, so it runs only when asked."""
    return page.render("ops/ledger.html", report=None, checked_at=None, outcome=None)


@router.post("/ledger")
async def check_ledger(request: Request, page: OperatorPage) -> Response:
    await checked_form(request, page)
    report = await (await _engine(page)).verify_ledger()
    count = report.violation_count
    if count == 0:
        outcome = page.t("ledger_clean")
    elif count == 1:
        outcome = page.t("ledger_violation_one")
    else:
        outcome = page.t("ledger_violations", count=count)
    return page.render(
        "ops/ledger.html", report=report, checked_at=datetime.datetime.now(datetime.UTC), outcome=outcome
    )
