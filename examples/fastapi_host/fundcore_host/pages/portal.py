"""The client portal: balance, catalogue, subscribe and cancel (each confirmed), history,
notifications and contact data. Every page makes the engine calls of the matching JSON
endpoint; amounts go to the engine as typed, and a refusal shows the engine's message."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

import fundcore
import fundcore.aio

from ..dependencies import engine
from .access import ClientPage, PageRoute, checked_form
from .render import Page, error_text, field_problem

router = APIRouter(include_in_schema=False, route_class=PageRoute)


def _client_id(page: Page) -> str:
    assert page.principal is not None
    return page.principal.sub


async def _engine(page: Page) -> fundcore.aio.Engine:
    return await engine(page.request)


def _done_message(page: Page, tx: fundcore.Transaction) -> str:
    key = "done_subscription" if tx.kind == "subscription" else "done_cancellation"
    return page.t(
        key, fund=tx.fund_name, amount=fundcore.format_cop(tx.amount), balance=fundcore.format_cop(tx.balance_after)
    )


@router.get("/")
async def home(page: ClientPage) -> Response:
    if page.principal is not None and page.principal.is_admin:
        return RedirectResponse("/ops", status_code=303)
    opened = await _engine(page)
    client_id = _client_id(page)
    client = await opened.client(client_id)
    funds = await opened.funds()
    subscriptions = {s.fund_id: s for s in await opened.subscriptions(client_id)}
    done = None
    done_id = page.request.query_params.get("tx")
    if done_id:
        try:
            tx = await opened.transaction(done_id)
        except fundcore.FundcoreError:
            tx = None
        if tx is not None and tx.client_id == client.id:
            done = _done_message(page, tx)
    return page.render("client/home.html", client=client, funds=funds, subscriptions=subscriptions, done=done)


async def _fund(page: Page, fund_id: int) -> fundcore.Fund:
    return await (await _engine(page)).fund(fund_id)


@router.get("/funds/{fund_id}/subscribe")
async def subscribe_form(fund_id: int, page: ClientPage) -> Response:
    fund = await _fund(page, fund_id)
    return page.render("client/subscribe.html", fund=fund, amount=str(fund.minimum), error=None, problem=None)


def _refused(page: Page, fund: fundcore.Fund, amount: str, error: fundcore.FundcoreError) -> Response:
    """The amount form again, with the engine's refusal next to it; nothing was changed."""
    problem = field_problem(error, page.lang) if error.field == "amount" else None
    return page.render(
        "client/subscribe.html",
        status_code=error.http_status,
        fund=fund,
        amount=amount,
        error=None if problem else error_text(error, page.lang),
        problem=problem,
    )


@router.post("/funds/{fund_id}/subscribe/confirm")
async def subscribe_confirm(fund_id: int, request: Request, page: ClientPage) -> Response:
    fields = await checked_form(request, page)
    fund = await _fund(page, fund_id)
    amount = fields.get("amount", "")
    try:
        shown = fundcore.format_cop(amount)
    except fundcore.FundcoreError as error:
        return _refused(page, fund, amount, error)
    # one key per confirmation: a form sent twice (a double click, a reload) subscribes once
    key = str(uuid.uuid4())
    return page.render("client/confirm_subscribe.html", fund=fund, amount=amount, shown=shown, idempotency_key=key)


@router.post("/funds/{fund_id}/subscribe")
async def subscribe(fund_id: int, request: Request, page: ClientPage) -> Response:
    fields = await checked_form(request, page)
    opened = await _engine(page)
    amount = fields.get("amount", "")
    try:
        tx = await opened.subscribe(
            _client_id(page), fund_id, amount, idempotency_key=fields.get("idempotency_key") or None
        )
    except fundcore.OutcomeUnknownError as error:
        return _try_again(page, request, fields, error)
    except fundcore.FundcoreError as error:
        return _refused(page, await _fund(page, fund_id), amount, error)
    return RedirectResponse(f"/?tx={tx.id}", status_code=303)


def _try_again(page: Page, request: Request, fields: dict[str, str], error: fundcore.FundcoreError) -> Response:
    """The change may have been saved: the same form again, with the same idempotency key, so
    that sending it gives the first result if it was saved and makes the change if it was not."""
    kept = {name: fields[name] for name in ("amount", "idempotency_key") if name in fields}
    return page.render(
        "client/try_again.html",
        status_code=error.http_status,
        action=request.url.path,
        fields=kept,
        error=error_text(error, page.lang),
    )


async def _subscription(page: Page, fund_id: int) -> fundcore.Subscription | None:
    subscriptions = await (await _engine(page)).subscriptions(_client_id(page))
    return next((s for s in subscriptions if s.fund_id == fund_id), None)


@router.get("/subscriptions/{fund_id}/cancel")
async def cancel_confirm(fund_id: int, page: ClientPage) -> Response:
    subscription = await _subscription(page, fund_id)
    if subscription is None:
        return RedirectResponse("/", status_code=303)
    return page.render(
        "client/confirm_cancel.html", subscription=subscription, idempotency_key=str(uuid.uuid4()), error=None
    )


@router.post("/subscriptions/{fund_id}/cancel")
async def cancel(fund_id: int, request: Request, page: ClientPage) -> Response:
    fields = await checked_form(request, page)
    opened = await _engine(page)
    try:
        tx = await opened.cancel(_client_id(page), fund_id, idempotency_key=fields.get("idempotency_key") or None)
    except fundcore.OutcomeUnknownError as error:
        return _try_again(page, request, fields, error)
    except fundcore.FundcoreError as error:
        subscription = await _subscription(page, fund_id)
        return page.render(
            "client/confirm_cancel.html" if subscription else "message.html",
            status_code=error.http_status,
            subscription=subscription,
            idempotency_key=str(uuid.uuid4()),
            error=error_text(error, page.lang),
            message=error_text(error, page.lang),
        )
    return RedirectResponse(f"/?tx={tx.id}", status_code=303)


#: Rows per history page.
HISTORY_PAGE = 20


@router.get("/history")
async def history(page: ClientPage) -> Response:
    opened = await _engine(page)
    query = page.request.query_params
    kind = query.get("kind") or None
    fund = query.get("fund") or None
    before = query.get("before") or None
    filters: dict[str, Any] = {}
    if kind is not None:
        filters["kind"] = kind
    if fund is not None:
        filters["fund_id"] = int(fund) if fund.isdigit() else fund
    error = None
    try:
        found = await opened.history_page(_client_id(page), HISTORY_PAGE, before, **filters)
        items, next_cursor = found.items, found.next
    except fundcore.FundcoreError as refused:
        items, next_cursor, error = [], None, error_text(refused, page.lang)
    funds = await opened.funds()
    return page.render(
        "client/history.html",
        items=items,
        next_cursor=next_cursor,
        kind=kind,
        fund=fund,
        before=before,
        funds=funds,
        error=error,
    )


@router.get("/notifications")
async def notifications(page: ClientPage) -> Response:
    found = await (await _engine(page)).notifications(_client_id(page))
    return page.render("client/notifications.html", items=found)


_CONTACT_FIELDS = ("name", "email", "phone", "channel")


@router.get("/profile")
async def profile(page: ClientPage) -> Response:
    client = await (await _engine(page)).client(_client_id(page))
    values = {name: getattr(client, name) for name in _CONTACT_FIELDS}
    saved = page.t("saved") if page.request.query_params.get("saved") else None
    return page.render("client/profile.html", values=values, errors={}, error=None, saved=saved)


@router.post("/profile")
async def update_profile(request: Request, page: ClientPage) -> Response:
    fields = await checked_form(request, page)
    opened = await _engine(page)
    client = await opened.client(_client_id(page))
    changes: dict[str, Any] = {
        name: fields[name] for name in _CONTACT_FIELDS if name in fields and fields[name] != getattr(client, name)
    }
    if changes:
        try:
            await opened.update_client(client.id, **changes, **page.actor())
        except fundcore.FundcoreError as error:
            values = {name: fields.get(name, getattr(client, name)) for name in _CONTACT_FIELDS}
            problem = field_problem(error, page.lang)
            errors = {str(error.field): problem} if error.field in _CONTACT_FIELDS and problem else {}
            return page.render(
                "client/profile.html",
                status_code=error.http_status,
                values=values,
                errors=errors,
                error=page.t("form_errors") if errors else error_text(error, page.lang),
                saved=None,
            )
    return RedirectResponse("/profile?saved=1", status_code=303)
