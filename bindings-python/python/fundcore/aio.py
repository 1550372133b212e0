"""``fundcore.aio``: the engine for asyncio code.

:class:`Engine` has an ``async def`` for every operation of :class:`fundcore.Engine`, with the
same arguments, results and exceptions. Each call runs the blocking engine's method on a thread
of the async engine's own pool (named ``fundcore-aio_N``; never the event loop's default
executor), so the loop keeps running while the store works: the native calls release the GIL,
so the threads work in parallel.

>>> import asyncio
>>> import fundcore.aio
>>> async def main() -> str:
...     async with fundcore.aio.Engine.open() as eng:   # a temporary store; or a path, or a URL
...         ana = await eng.register_client("Ana", "ana@example.com", "+573001234567", "email")
...         await eng.subscribe(ana.id, 1)
...         return str((await eng.client(ana.id)).balance)
>>> asyncio.run(main())
'425000.00'

Opening a store (which may connect to PostgreSQL) runs on the pool too. ``Engine(engine)``
wraps an engine that is already open instead.

A call keeps the caller's :mod:`contextvars` (as :func:`asyncio.to_thread` does), so what
``logging`` filters read from them, such as a request id, reaches the engine's log records.
Cancelling a call that has started does not stop it: the operation finishes on its thread (a
change may commit); a call still waiting for a free thread is dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

import fundcore

if TYPE_CHECKING:
    import datetime
    import os
    from decimal import Decimal

    from fundcore._fundcore import (
        AuditEventPage,
        Client,
        ClientPage,
        DispatchReport,
        Fund,
        HistoryPage,
        LedgerReport,
        Notification,
        NotificationPage,
        OutboxState,
        Statement,
        Subscription,
        Transaction,
        _Amount,
    )
    from fundcore._notifier import Notifier

__all__ = ["THREAD_NAME_PREFIX", "Engine", "OpeningEngine"]

#: The names of the async engines' threads: ``fundcore-aio_0``, ``fundcore-aio_1``, ...
THREAD_NAME_PREFIX = "fundcore-aio"

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: What a call on a closed async engine raises (the blocking engine's class and words).
_CLOSED = "operation on a closed fundcore.aio.Engine"


def _thread_pool(threads: int | None, pool_size: int | None = None) -> concurrent.futures.ThreadPoolExecutor:
    """The threads of one async engine: ``threads``, else as many as the engine has database
    connections (more would only wait for one), ``DEFAULT_POOL_SIZE`` when not given."""
    if threads is None:
        threads = pool_size if pool_size is not None and pool_size >= 1 else fundcore.DEFAULT_POOL_SIZE
    return concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=THREAD_NAME_PREFIX)


def _in_context(call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Callable[[], _T]:
    """``call(*args, **kwargs)`` to run on another thread in a copy of this context."""
    return functools.partial(contextvars.copy_context().run, call, *args, **kwargs)


class Engine:
    """The fund-subscription engine for asyncio: :class:`fundcore.Engine`'s operations as
    coroutines, each run on a thread of this engine's own pool.

    ``Engine.open(path, ...)`` opens a store without blocking the event loop;
    ``Engine(engine)`` wraps a :class:`fundcore.Engine` that is already open.

    ``threads``: how many calls run at once (default: the ``pool_size`` given to
    :meth:`open`, else ``fundcore.DEFAULT_POOL_SIZE``); further calls wait for a free thread.
    ``close_engine``: whether :meth:`close` also closes the wrapped engine (default ``True``;
    ``False`` leaves it open for its owner).

    Arguments, results and exceptions are those of :class:`fundcore.Engine`'s methods of the
    same names. ``await eng.close()`` (or the end of ``async with``) waits for the calls
    already running, stops the threads and closes the engine; later calls raise
    ``ValueError``.
    """

    def __init__(self, engine: fundcore.Engine, *, threads: int | None = None, close_engine: bool = True) -> None:
        self._adopt(engine, _thread_pool(threads), close_engine)

    def _adopt(self, engine: fundcore.Engine, pool: concurrent.futures.ThreadPoolExecutor, close_engine: bool) -> None:
        self._engine = engine
        self._pool = pool
        self._close_engine = close_engine
        #: Set when close() starts: no call is sent to the pool afterwards.
        self._closing = False
        #: Resolved once the threads have stopped and the engine is closed.
        self._closed: concurrent.futures.Future[None] | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        threads: int | None = None,
        initial_balance: _Amount | None = None,
        funds: list[Fund] | None = None,
        locale: Literal["es", "en"] = "es",
        notify_on_cancel: bool = True,
        max_attempts: int | None = None,
        retry_base_delay_ms: int | None = None,
        retry_max_delay_ms: int | None = None,
        durability: Literal["every_commit", "periodic"] = "every_commit",
        flush_interval_ms: int | None = None,
        cache_capacity_bytes: int | None = None,
        pool_size: int | None = None,
        operation_timeout_ms: int | None = None,
        prepared_statements: bool | None = None,
    ) -> OpeningEngine:
        """Opens ``fundcore.Engine(path, ...)`` (same arguments) on a thread of the new async
        engine's pool, so the loop runs on while the store opens or the database connects.

        Use ``eng = await Engine.open(...)`` or ``async with Engine.open(...) as eng:``. A
        failure raises the blocking engine's exception and leaves no thread behind.
        """
        opening = functools.partial(
            fundcore.Engine,
            path,
            initial_balance=initial_balance,
            funds=funds,
            locale=locale,
            notify_on_cancel=notify_on_cancel,
            max_attempts=max_attempts,
            retry_base_delay_ms=retry_base_delay_ms,
            retry_max_delay_ms=retry_max_delay_ms,
            durability=durability,
            flush_interval_ms=flush_interval_ms,
            cache_capacity_bytes=cache_capacity_bytes,
            pool_size=pool_size,
            operation_timeout_ms=operation_timeout_ms,
            prepared_statements=prepared_statements,
        )
        return OpeningEngine(cls, opening, threads, pool_size)

    # ------------------------------------------------------------------ the async engine itself

    @property
    def blocking(self) -> fundcore.Engine:
        """The :class:`fundcore.Engine` underneath, for code on threads of its own (a
        dispatcher thread, say); calling it from the event loop blocks the loop."""
        return self._engine

    async def close(self) -> None:
        """Waits for the calls already running, stops the threads and closes the blocking
        engine (unless wrapped with ``close_engine=False``). Later calls raise ``ValueError``.
        Idempotent; the loop runs on meanwhile."""
        if self._closed is None:
            self._closing = True
            closed: concurrent.futures.Future[None] = concurrent.futures.Future()
            closed.set_running_or_notify_cancel()  # a cancelled waiter cannot cancel it
            self._closed = closed
            # The pool's own threads cannot wait for themselves: one more thread does.
            threading.Thread(target=self._shut_down, args=(closed,), name=f"{THREAD_NAME_PREFIX}-close").start()
        await asyncio.wrap_future(self._closed)

    def _shut_down(self, closed: concurrent.futures.Future[None]) -> None:
        try:
            self._pool.shutdown(wait=True)
            if self._close_engine:
                self._engine.close()
        except BaseException as error:
            closed.set_exception(error)
        else:
            closed.set_result(None)

    async def aclose(self) -> None:
        """:meth:`close`, by the name :func:`contextlib.aclosing` and asyncio code expect."""
        await self.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<fundcore.aio.Engine of {self._engine!r}{' closed' if self.closed else ''}>"

    async def _call(
        self, method: Callable[Concatenate[fundcore.Engine, _P], _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``method(blocking engine, *args, **kwargs)`` on a thread of the pool."""
        if self._closing:
            raise ValueError(_CLOSED)
        loop = asyncio.get_running_loop()
        try:
            running = loop.run_in_executor(self._pool, _in_context(method, self._engine, *args, **kwargs))
        except RuntimeError:
            if self._closing:  # closed from another thread since the check above
                raise ValueError(_CLOSED) from None
            raise
        return await running

    # ------------------------------------------------------------------ fundcore.Engine's properties

    @property
    def path(self) -> str | None:
        """:attr:`fundcore.Engine.path`."""
        return self._engine.path

    @property
    def locale(self) -> Literal["es", "en"]:
        """:attr:`fundcore.Engine.locale`."""
        return self._engine.locale

    @property
    def initial_balance(self) -> Decimal:
        """:attr:`fundcore.Engine.initial_balance`."""
        return self._engine.initial_balance

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the blocking engine was closed)."""
        return self._closing or self._engine.closed

    # ------------------------------------------------------------------ fundcore.Engine's operations

    async def funds(self) -> list[Fund]:
        """:meth:`fundcore.Engine.funds`."""
        return await self._call(fundcore.Engine.funds)

    async def fund(self, fund_id: int) -> Fund:
        """:meth:`fundcore.Engine.fund`."""
        return await self._call(fundcore.Engine.fund, fund_id)

    async def register_client(
        self,
        name: str,
        email: str,
        phone: str,
        channel: Literal["email", "sms"],
        *,
        client_id: str | None = None,
    ) -> Client:
        """:meth:`fundcore.Engine.register_client`."""
        return await self._call(fundcore.Engine.register_client, name, email, phone, channel, client_id=client_id)

    async def client(self, client_id: str) -> Client:
        """:meth:`fundcore.Engine.client`."""
        return await self._call(fundcore.Engine.client, client_id)

    async def subscribe(
        self,
        client_id: str,
        fund_id: int,
        amount: _Amount | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Transaction:
        """:meth:`fundcore.Engine.subscribe`."""
        return await self._call(fundcore.Engine.subscribe, client_id, fund_id, amount, idempotency_key=idempotency_key)

    async def cancel(self, client_id: str, fund_id: int, *, idempotency_key: str | None = None) -> Transaction:
        """:meth:`fundcore.Engine.cancel`."""
        return await self._call(fundcore.Engine.cancel, client_id, fund_id, idempotency_key=idempotency_key)

    async def subscriptions(self, client_id: str) -> list[Subscription]:
        """:meth:`fundcore.Engine.subscriptions`."""
        return await self._call(fundcore.Engine.subscriptions, client_id)

    async def history(self, client_id: str, limit: int = 50, before: str | None = None) -> list[Transaction]:
        """:meth:`fundcore.Engine.history`."""
        return await self._call(fundcore.Engine.history, client_id, limit, before)

    async def create_fund(
        self,
        fund_id: int,
        name: str,
        minimum: _Amount,
        category: Literal["FPV", "FIC"],
        *,
        actor: str,
        request_id: str | None = None,
    ) -> Fund:
        """:meth:`fundcore.Engine.create_fund`."""
        return await self._call(
            fundcore.Engine.create_fund, fund_id, name, minimum, category, actor=actor, request_id=request_id
        )

    async def update_fund(
        self,
        fund_id: int,
        *,
        name: str | None = None,
        minimum: _Amount | None = None,
        active: bool | None = None,
        actor: str,
        request_id: str | None = None,
    ) -> Fund:
        """:meth:`fundcore.Engine.update_fund`."""
        return await self._call(
            fundcore.Engine.update_fund,
            fund_id,
            name=name,
            minimum=minimum,
            active=active,
            actor=actor,
            request_id=request_id,
        )

    async def update_client(
        self,
        client_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        channel: Literal["email", "sms"] | None = None,
        actor: str,
        request_id: str | None = None,
    ) -> Client:
        """:meth:`fundcore.Engine.update_client`."""
        return await self._call(
            fundcore.Engine.update_client,
            client_id,
            name=name,
            email=email,
            phone=phone,
            channel=channel,
            actor=actor,
            request_id=request_id,
        )

    async def clients(self, limit: int = 50, before: str | None = None) -> ClientPage:
        """:meth:`fundcore.Engine.clients`."""
        return await self._call(fundcore.Engine.clients, limit, before)

    async def audit_events(self, limit: int = 50, before: str | None = None) -> AuditEventPage:
        """:meth:`fundcore.Engine.audit_events`."""
        return await self._call(fundcore.Engine.audit_events, limit, before)

    async def history_page(
        self,
        client_id: str,
        limit: int = 50,
        before: str | None = None,
        *,
        kind: Literal["subscription", "cancellation"] | None = None,
        fund_id: int | None = None,
    ) -> HistoryPage:
        """:meth:`fundcore.Engine.history_page`."""
        return await self._call(fundcore.Engine.history_page, client_id, limit, before, kind=kind, fund_id=fund_id)

    async def statement(self, client_id: str, start: datetime.datetime, end: datetime.datetime) -> Statement:
        """:meth:`fundcore.Engine.statement`."""
        return await self._call(fundcore.Engine.statement, client_id, start, end)

    async def failed_notifications(self, limit: int = 50, before: str | None = None) -> NotificationPage:
        """:meth:`fundcore.Engine.failed_notifications`."""
        return await self._call(fundcore.Engine.failed_notifications, limit, before)

    async def verify_ledger(self) -> LedgerReport:
        """:meth:`fundcore.Engine.verify_ledger`; it reads every client, on one of the engine's
        threads."""
        return await self._call(fundcore.Engine.verify_ledger)

    async def transaction(self, transaction_id: str) -> Transaction:
        """:meth:`fundcore.Engine.transaction`."""
        return await self._call(fundcore.Engine.transaction, transaction_id)

    async def notifications(self, client_id: str) -> list[Notification]:
        """:meth:`fundcore.Engine.notifications`."""
        return await self._call(fundcore.Engine.notifications, client_id)

    async def dispatch_notifications(self, notifier: Notifier, limit: int = 100) -> DispatchReport:
        """:meth:`fundcore.Engine.dispatch_notifications`; ``notifier.send`` runs on one of the
        engine's threads, so a plain blocking ``send`` does not block the loop."""
        return await self._call(fundcore.Engine.dispatch_notifications, notifier, limit)

    async def retry_failed_notifications(self, limit: int = 100) -> int:
        """:meth:`fundcore.Engine.retry_failed_notifications`."""
        return await self._call(fundcore.Engine.retry_failed_notifications, limit)

    async def outbox_state(self) -> OutboxState:
        """:meth:`fundcore.Engine.outbox_state`."""
        return await self._call(fundcore.Engine.outbox_state)

    async def flush(self) -> None:
        """:meth:`fundcore.Engine.flush`."""
        return await self._call(fundcore.Engine.flush)

    async def backup(self, dest: str | os.PathLike[str]) -> None:
        """:meth:`fundcore.Engine.backup`, on one of the engine's threads; calls made meanwhile
        go on."""
        return await self._call(fundcore.Engine.backup, dest)


class OpeningEngine:
    """What :meth:`Engine.open` returns: await it for the open :class:`Engine`, or use it in
    ``async with``, which closes the engine at the end of the block."""

    def __init__(
        self,
        engine_class: type[Engine],
        opening: Callable[[], fundcore.Engine],
        threads: int | None,
        pool_size: int | None,
    ) -> None:
        self._engine_class = engine_class
        self._opening = opening
        self._threads = threads
        self._pool_size = pool_size
        self._opened: Engine | None = None

    async def _open(self) -> Engine:
        pool = _thread_pool(self._threads, self._pool_size)
        opening = pool.submit(_in_context(self._opening))
        try:
            blocking = await asyncio.wrap_future(opening)
        except BaseException:
            # Failed, or the caller was cancelled while the store opened: close what opens.
            opening.add_done_callback(_close_opened)
            pool.shutdown(wait=False)
            raise
        engine = self._engine_class.__new__(self._engine_class)
        engine._adopt(blocking, pool, close_engine=True)
        return engine

    def __await__(self) -> Generator[Any, None, Engine]:
        return self._open().__await__()

    async def __aenter__(self) -> Engine:
        self._opened = await self._open()
        return self._opened

    async def __aexit__(self, *args: object) -> None:
        if self._opened is not None:
            await self._opened.close()


def _close_opened(opening: concurrent.futures.Future[fundcore.Engine]) -> None:
    """Closes the engine a cancelled :meth:`Engine.open` opened after all."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
