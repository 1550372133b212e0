"""`fundcore.aio.Engine`: every operation of `fundcore.Engine` awaited, on threads of its own.

On both stores: each operation answers what the blocking engine answers and raises the same
exceptions; the event loop keeps running while a call is slow for real (a notifier that waits
for the loop, a row lock held by another transaction on PostgreSQL, a database that never
answers while the engine opens); calls run on the async engine's named threads, with the
caller's context, and never on the loop's default executor; concurrent calls keep the
balances right; closing waits for running calls, stops the threads and releases the store.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextvars
import doctest
import inspect
import socket
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

import fundcore
import fundcore.aio
from conftest import ANA

T = TypeVar("T")

INITIAL = Decimal("500000.00")
#: The extras of the async engine: how it is opened and closed, and the engine underneath.
OWN_NAMES = {"open", "aclose", "blocking"}
#: Of the threads of the async engines (`fundcore-aio_0`, ...).
POOL_THREAD = fundcore.aio.THREAD_NAME_PREFIX + "_"


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def operations(cls: type) -> set[str]:
    """The public methods of `cls` (its properties left out)."""
    return {name for name in public(cls) if inspect.isroutine(inspect.getattr_static(cls, name))}


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A loop's default executor that counts what it is given."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """`main()` on a fresh event loop, failing if anything was run on the loop's default
    executor (the async engine has threads of its own)."""
    default = CountingExecutor()

    async def watched() -> T:
        asyncio.get_running_loop().set_default_executor(default)
        return await main()

    result = asyncio.run(watched())
    assert default.submitted == 0, "a call ran on the loop's default executor"
    return result


async def count_ticks_until(done: Callable[[], bool], limit: int = 3000) -> int:
    """Ticks of an `asyncio.sleep(0.01)` loop before `done()` holds (at most `limit`)."""
    ticks = 0
    while not done() and ticks < limit:
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


# ----------------------------------------------------------------------------- the API's shape


def test_the_async_engine_has_exactly_the_operations_and_properties_of_the_engine():
    """A new operation of `fundcore.Engine` fails here until the async engine has it too, as an
    `async def` with the same parameters; the async engine adds only `open`, `aclose` and
    `blocking`."""
    assert public(fundcore.aio.Engine) == public(fundcore.Engine) | OWN_NAMES
    for name in operations(fundcore.Engine):
        method = getattr(fundcore.aio.Engine, name)
        assert inspect.iscoroutinefunction(method), name
        blocking = list(inspect.signature(getattr(fundcore.Engine, name)).parameters.values())[1:]
        awaited = list(inspect.signature(method).parameters.values())[1:]
        assert [(p.name, p.kind, p.default) for p in awaited] == [(p.name, p.kind, p.default) for p in blocking], name
    for name in public(fundcore.Engine) - operations(fundcore.Engine):
        assert isinstance(inspect.getattr_static(fundcore.aio.Engine, name), property), name


def test_open_takes_the_arguments_of_the_engines_constructor_and_threads():
    constructor = inspect.signature(fundcore.Engine).parameters
    opening = dict(inspect.signature(fundcore.aio.Engine.open).parameters)
    assert opening.pop("threads").kind is inspect.Parameter.KEYWORD_ONLY
    assert [(p.name, p.kind, p.default) for p in opening.values()] == [
        (p.name, p.kind, p.default) for p in constructor.values()
    ]


def stub_signatures(source: str, class_name: str) -> dict[str, tuple[str, ...]]:
    """Each method of `class_name` in `source`: its parameters' annotations and its return
    annotation, as written."""
    [cls] = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == class_name]
    found = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            parameters = [f"{a.arg}: {ast.unparse(a.annotation) if a.annotation else ''}" for a in arguments[1:]]
            found[node.name] = (*parameters, ast.unparse(node.returns) if node.returns else "")
    return found


def test_the_async_engine_is_typed_as_the_stubs_type_the_engine():
    """Each `async def` has the annotations of the blocking method in `_fundcore.pyi` (what
    mypy and IDEs read), and `open` those of the constructor."""
    package = Path(fundcore.__file__).parent
    stubs = stub_signatures((package / "_fundcore.pyi").read_text(), "Engine")
    awaited = stub_signatures(inspect.getsource(fundcore.aio), "Engine")
    for name in public(fundcore.Engine):
        assert awaited[name] == stubs[name], name
    opening = list(awaited["open"][:-1])
    opening.remove("threads: int | None")
    assert opening == list(stubs["__new__"][:-1])
    assert (awaited["open"][-1], stubs["__new__"][-1]) == ("OpeningEngine", "Engine")


def test_the_modules_example_runs():
    assert doctest.testmod(fundcore.aio).failed == 0


# ----------------------------------------------------------------------------- every operation


class Recording:
    """The async engine, remembering which of its attributes were used."""

    def __init__(self, engine: fundcore.aio.Engine) -> None:
        self.engine = engine
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self.engine, name)


class RecordingNotifier:
    """Delivers everything; remembers what, on which thread, and a context variable's value."""

    def __init__(self, variable: contextvars.ContextVar[str] | None = None) -> None:
        self.variable = variable
        self.sent: list[fundcore.Notification] = []
        self.threads: list[str] = []
        self.seen: list[str | None] = []

    def send(self, notification: fundcore.Notification) -> None:
        self.sent.append(notification)
        self.threads.append(threading.current_thread().name)
        self.seen.append(self.variable.get(None) if self.variable is not None else None)


def test_every_operation_answers_what_the_blocking_engine_answers(store, tmp_path):
    """Every operation and property through the async engine (none may be left out), each
    answer compared with the blocking engine's on the same store."""

    async def main() -> None:
        async with fundcore.aio.Engine.open(store.location, max_attempts=1) as opened:
            eng = Recording(opened)
            same = opened.blocking
            assert (eng.path, eng.locale, eng.initial_balance, eng.closed) == (
                same.path,
                same.locale,
                same.initial_balance,
                False,
            )
            assert await eng.funds() == same.funds() and await eng.fund(3) == same.fund(3)
            ana = await eng.register_client(*ANA, "email")
            assert await eng.client(ana.id) == same.client(ana.id) == ana
            tx = await eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-1")
            assert await eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-1") == tx
            assert (await eng.client(ana.id)).balance == INITIAL - Decimal("80000")
            assert await eng.subscriptions(ana.id) == same.subscriptions(ana.id)
            assert [s.fund_id for s in await eng.subscriptions(ana.id)] == [1]
            refund = await eng.cancel(ana.id, 1, idempotency_key="k-2")
            assert refund.kind == "cancellation" and refund.amount == Decimal("80000.00")
            await eng.subscribe(ana.id, 3)
            assert await eng.transaction(tx.id) == tx
            assert await eng.history(ana.id, limit=2) == same.history(ana.id, limit=2)
            page = await eng.history_page(ana.id, limit=2)
            assert len(page) == 2 and page.next is not None
            assert (await eng.history_page(ana.id, limit=2, before=page.next)).items == [tx]
            cancellations = await eng.history_page(ana.id, kind="cancellation", fund_id=1)
            assert cancellations.items == [refund]
            statement = await eng.statement(ana.id, tx.created_at, refund.created_at)
            assert statement == same.statement(ana.id, tx.created_at, refund.created_at)
            assert [line.transaction for line in statement.lines] == [tx]
            assert (await eng.verify_ledger()).to_dict() == same.verify_ledger().to_dict()

            fund = await eng.create_fund(6, "FONDO NUEVO", Decimal("60000"), "FIC", actor="ops", request_id="r-1")
            assert fund == same.fund(6)
            changed = await eng.update_fund(6, minimum=70000, actor="ops")
            assert changed.minimum == Decimal("70000.00")
            moved = await eng.update_client(ana.id, channel="sms", actor="ops")
            assert moved.channel == "sms" and moved == same.client(ana.id)
            clients = await eng.clients(limit=10)
            assert [c.id for c in clients.items] == [ana.id] and clients.next is None
            audit = await eng.audit_events(limit=10)
            assert [e.action for e in audit.items] == ["client_updated", "fund_updated", "fund_created"]

            outbox = await eng.outbox_state()
            counted = same.outbox_state()  # its age grows between two reads
            assert (outbox.pending, outbox.failed, outbox.delivered) == (3, 0, 0)
            assert (outbox.oldest_pending_at, outbox.delivered) == (counted.oldest_pending_at, counted.delivered)
            assert await eng.notifications(ana.id) == same.notifications(ana.id)

            class Refusing:
                def send(self, notification: fundcore.Notification) -> None:
                    raise RuntimeError("gateway down")

            assert (await eng.dispatch_notifications(Refusing(), limit=1)).failed == 1  # max_attempts=1
            failed = await eng.failed_notifications()
            assert [n.last_error for n in failed.items] == ["RuntimeError: gateway down"]
            assert failed.to_dict() == same.failed_notifications().to_dict()
            assert await eng.retry_failed_notifications() == 1
            notifier = RecordingNotifier()
            report = await eng.dispatch_notifications(notifier)
            assert (report.delivered, report.retried, report.failed) == (3, 0, 0)
            assert all(name.startswith(POOL_THREAD) for name in notifier.threads), notifier.threads
            assert await eng.flush() is None
            if store.kind == "sled":
                assert await eng.backup(tmp_path / "backup") is None
                with fundcore.Engine(str(tmp_path / "backup")) as copy:
                    assert copy.notifications(ana.id) == same.notifications(ana.id)
            else:
                with pytest.raises(fundcore.StorageError, match="pg_dump"):
                    await eng.backup(tmp_path / "backup")

            closed_by = eng.close  # last: the operation every other one depends on
            await closed_by()
            assert eng.closed and same.closed
            await eng.aclose()  # idempotent
            assert eng.blocking is same
            assert eng.used >= public(fundcore.Engine) | OWN_NAMES - {"open"}, public(fundcore.Engine) - eng.used

    run(main)


def test_errors_are_the_engines_own_exceptions(store):
    """A refused call raises what the blocking engine raises for it: the same class, code and
    message."""

    async def main() -> None:
        async with fundcore.aio.Engine.open(store.location, locale="en") as eng:
            ana = await eng.register_client(*ANA, "email")
            await eng.subscribe(ana.id, 1)
            refused: list[tuple[Callable[[Any], Any], type[BaseException]]] = [
                (lambda e: e.fund(99), fundcore.NotFoundError),
                (lambda e: e.client("not-an-id"), fundcore.NotFoundError),
                (lambda e: e.register_client("Bea", "bea@example.com", "300", "sms"), fundcore.ValidationError),
                (lambda e: e.subscribe(ana.id, 1), fundcore.ConflictError),
                (lambda e: e.subscribe(ana.id, 4, 600000), fundcore.InsufficientBalanceError),
                (lambda e: e.cancel(ana.id, 2), fundcore.ConflictError),
                (lambda e: e.history(ana.id, limit=0), fundcore.ValidationError),
                (lambda e: e.create_fund(1, "OTRO", 1000, "FIC", actor="ops"), fundcore.ConflictError),
                (lambda e: e.subscribe(ana.id, 3, 1.5), TypeError),
            ]
            for call, kind in refused:
                with pytest.raises(kind) as awaited:
                    await call(eng)
                with pytest.raises(kind) as blocking:
                    call(eng.blocking)
                assert type(awaited.value) is type(blocking.value)
                assert str(awaited.value) == str(blocking.value)
                assert getattr(awaited.value, "code", None) == getattr(blocking.value, "code", None)
            assert (await eng.client(ana.id)).balance == INITIAL - Decimal("75000.00")

    run(main)


def test_opening_a_held_store_raises_the_engines_error_and_leaves_no_thread(tmp_path):
    path = str(tmp_path / "store")
    threads_before = set(threading.enumerate())

    async def main() -> None:
        with fundcore.Engine(path), pytest.raises(fundcore.StorageError, match="store"):
            await fundcore.aio.Engine.open(path)
        with pytest.raises(fundcore.ValidationError) as refused:
            await fundcore.aio.Engine.open(path, pool_size=4)  # a PostgreSQL setting
        assert refused.value.field == "pool_size"
        async with fundcore.aio.Engine.open(path) as eng:  # released: it opens now
            assert len(await eng.funds()) == 5

    run(main)
    for thread in set(threading.enumerate()) - threads_before:  # the opening threads end
        assert thread.name.startswith(fundcore.aio.THREAD_NAME_PREFIX), thread.name
        thread.join(5)
        assert not thread.is_alive(), thread.name


# ----------------------------------------------------------------------------- the loop runs on


def test_the_loop_ticks_while_a_call_waits_for_it(store):
    """`dispatch_notifications` through a notifier that blocks its thread until the loop has
    ticked ten times: it completes only if the loop ran meanwhile (on the loop's own thread the
    notifier would time out, a retryable failure). `send` runs on the async engine's threads,
    in the caller's context."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    ticked = threading.Event()

    class WaitingForTheLoop(RecordingNotifier):
        def send(self, notification: fundcore.Notification) -> None:
            if not ticked.wait(5):
                raise TimeoutError("the event loop did not tick")
            super().send(notification)

    async def main() -> int:
        async with fundcore.aio.Engine.open(store.location) as eng:
            ana = await eng.register_client(*ANA, "email")
            await eng.subscribe(ana.id, 1)
            notifier = WaitingForTheLoop(request_id)
            request_id.set("req-7")
            dispatching = asyncio.ensure_future(eng.dispatch_notifications(notifier))
            ticks = await count_ticks_until(lambda: dispatching.done(), limit=10)
            ticked.set()
            assert not dispatching.done()
            report = await dispatching
            assert (report.delivered, report.retried) == (1, 0)
            [thread] = notifier.threads
            assert thread.startswith(POOL_THREAD), thread
            assert notifier.seen == ["req-7"]
            return ticks

    assert run(main) == 10


@pytest.mark.postgres
def test_the_loop_ticks_while_subscribe_waits_for_a_row_lock(database_url):
    """Another transaction holds the client's row (`SELECT … FOR UPDATE`, from psycopg's async
    connection on the same loop): `subscribe` waits in the database for it while the loop keeps
    ticking, and completes, with the right balance, once the lock is released. On the loop's
    own thread the call would block the loop, and with it the release, until its deadline."""
    import psycopg

    async def main() -> None:
        async with fundcore.aio.Engine.open(database_url, operation_timeout_ms=8000) as eng:
            ana = await eng.register_client(*ANA, "email")
            monitor = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
            locker = await psycopg.AsyncConnection.connect(database_url)
            waiting_on_lock = False

            async def engine_waits_on_a_lock() -> bool:
                cursor = await monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                row = await cursor.fetchone()
                return row is not None and row[0] >= 1

            try:
                await locker.execute("SELECT 1 FROM fundcore_clients WHERE id = %s FOR UPDATE", (ana.id,))
                subscribing = asyncio.ensure_future(eng.subscribe(ana.id, 1))
                ticks = 0
                while ticks < 500 and not subscribing.done():
                    await asyncio.sleep(0.01)
                    ticks += 1
                    if ticks >= 20 and ticks % 5 == 0 and await engine_waits_on_a_lock():
                        waiting_on_lock = True
                        break
                assert waiting_on_lock and not subscribing.done(), (ticks, subscribing)
                assert (await eng.client(ana.id)).balance == INITIAL  # other calls go on meanwhile
                await locker.commit()
                tx = await asyncio.wait_for(subscribing, 8)
            finally:
                await locker.close()
                await monitor.close()
            assert tx.balance_after == INITIAL - Decimal("75000.00")
            assert (await eng.client(ana.id)).balance == tx.balance_after

    asyncio.run(main())


def test_opening_does_not_block_the_loop():
    """A PostgreSQL server that accepts the connection and never answers: the engine waits its
    operation timeout (1 s) to say so, and the loop ticks meanwhile."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nothing answers
        url = f"postgresql://fundcore@127.0.0.1:{silent.getsockname()[1]}/fundcore"

        async def main() -> int:
            opening = asyncio.ensure_future(fundcore.aio.Engine.open(url, operation_timeout_ms=1000))
            ticks = await count_ticks_until(opening.done)
            with pytest.raises(fundcore.StorageError):
                await opening
            return ticks

        assert run(main) >= 20


# ----------------------------------------------------------------------------- concurrency and closing


def test_many_concurrent_calls_keep_the_balances_right(store):
    """Twelve clients each race ten subscriptions (every fund twice, more than the balance
    covers) at once through 8 threads, then cancel what they hold, at once: no fund taken
    twice, no overdraft, balance = initial - active subscriptions, then the initial again."""

    async def main() -> None:
        async with fundcore.aio.Engine.open(store.location, threads=8) as eng:
            clients = await asyncio.gather(
                *(eng.register_client(f"Cliente {i}", f"c{i}@example.com", "+573001234567", "sms") for i in range(12))
            )
            attempts = [(c.id, fund) for c in clients for fund in (1, 2, 3, 4, 5) * 2]
            results = await asyncio.gather(*(eng.subscribe(*attempt) for attempt in attempts), return_exceptions=True)
            for client in clients:
                answers = [r for (cid, _), r in zip(attempts, results, strict=True) if cid == client.id]
                made = [r for r in answers if isinstance(r, fundcore.Transaction)]
                refused = [r for r in answers if not isinstance(r, fundcore.Transaction)]
                assert all(isinstance(e, fundcore.ConflictError) for e in refused), refused
                assert len({t.fund_id for t in made}) == len(made) >= 1  # no fund twice
                active = await eng.subscriptions(client.id)
                assert sorted(s.fund_id for s in active) == sorted(t.fund_id for t in made)
                held = sum((s.amount for s in active), Decimal(0))
                balance = (await eng.client(client.id)).balance
                assert balance == INITIAL - held and balance >= 0
            held = [(c.id, s.fund_id) for c in clients for s in await eng.subscriptions(c.id)]
            cancelled = await asyncio.gather(*(eng.cancel(cid, fund) for cid, fund in held))
            assert all(t.kind == "cancellation" for t in cancelled)
            balances = await asyncio.gather(*(eng.client(c.id) for c in clients))
            assert {c.balance for c in balances} == {INITIAL}

    run(main)


def test_close_waits_for_running_calls_stops_the_threads_and_releases_the_store(tmp_path):
    path = str(tmp_path / "store")
    release = threading.Event()

    class Held(RecordingNotifier):
        def send(self, notification: fundcore.Notification) -> None:
            self.threads.append(threading.current_thread().name)
            assert release.wait(10)
            self.thread = threading.current_thread()

    async def main() -> None:
        eng = await fundcore.aio.Engine.open(path)
        ana = await eng.register_client(*ANA, "email")
        await eng.subscribe(ana.id, 1)
        notifier = Held()
        dispatching = asyncio.ensure_future(eng.dispatch_notifications(notifier))
        await count_ticks_until(lambda: bool(notifier.threads))
        closing = asyncio.ensure_future(eng.aclose())
        assert await count_ticks_until(closing.done, limit=20) == 20  # waits for the running call
        assert eng.closed
        with pytest.raises(ValueError, match="closed"):
            await eng.funds()
        release.set()
        assert (await dispatching).delivered == 1
        await closing
        assert eng.blocking.closed
        notifier.thread.join(5)
        assert not notifier.thread.is_alive()
        with fundcore.Engine(path) as again:  # the store's lock was released
            assert again.client(ana.id).balance == INITIAL - Decimal("75000.00")

    run(main)


def test_a_wrapped_engine_is_left_open_for_its_owner_when_asked(store):
    async def main(blocking: fundcore.Engine) -> None:
        async with fundcore.aio.Engine(blocking, threads=2, close_engine=False) as eng:
            ana = await eng.register_client(*ANA, "email")
        assert eng.closed and not blocking.closed
        assert blocking.client(ana.id) == ana
        async with fundcore.aio.Engine(blocking) as eng:
            assert await eng.client(ana.id) == ana
        assert blocking.closed

    blocking = store.open()
    run(lambda: main(blocking))
