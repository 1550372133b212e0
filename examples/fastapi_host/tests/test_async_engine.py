"""The routes await a ``fundcore.aio.Engine``: engine calls run on its threads, never through
Starlette's thread pool (``anyio.to_thread``); the benchmark switch
``FUNDCORE_BENCH_RUN_IN_THREADPOOL=1`` brings the old path back with the same answers; the
app closes the async engine's threads at shutdown and leaves a given engine open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from conftest import ADMIN, RecordingNotifier, make_engine, make_settings, register
from fastapi.testclient import TestClient

import fundcore
import fundcore.aio
from fundcore_host.app import create_app
from fundcore_host.dependencies import BENCH_RUN_IN_THREADPOOL


class ThreadPoolCalls:
    """Counts what is sent to Starlette's thread pool, and on which threads the engine runs."""

    def __init__(self) -> None:
        self.count = 0
        self.run_sync = anyio.to_thread.run_sync

    async def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return await self.run_sync(func, *args, **kwargs)


def every_route(api: TestClient) -> list[Any]:
    """One request to each engine-backed route, the answers' statuses and bodies (ids left out)."""
    ana = register(api)
    client = f"/clients/{ana['id']}"
    calls = [
        api.get("/ready"),
        api.get("/funds", headers=ADMIN),
        api.get(client, headers=ADMIN),
        api.get("/clients", headers=ADMIN),
        api.patch(client, json={"channel": "sms"}, headers=ADMIN),
        api.post(f"{client}/subscriptions", json={"fund_id": 1}, headers=ADMIN),
        api.post(f"{client}/subscriptions", json={"fund_id": 4, "amount": "600000"}, headers=ADMIN),
        api.get(f"{client}/subscriptions", headers=ADMIN),
        api.delete(f"{client}/subscriptions/1", headers=ADMIN),
        api.get(f"{client}/transactions", headers=ADMIN),
        api.get(f"{client}/notifications", headers=ADMIN),
        api.post("/funds", json={"id": 6, "name": "NUEVO", "minimum": "1000", "category": "FIC"}, headers=ADMIN),
        api.patch("/funds/6", json={"active": False}, headers=ADMIN),
        api.get("/audit", headers=ADMIN),
    ]
    return [(r.status_code, r.json().get("code") if isinstance(r.json(), dict) else len(r.json())) for r in calls]


EXPECTED = [
    (200, None),
    (200, 5),
    (200, None),
    (200, None),
    (200, None),
    (201, None),
    (409, "INSUFFICIENT_BALANCE"),
    (200, 1),
    (200, None),
    (200, None),
    (200, 2),
    (201, None),
    (200, None),
    (200, None),
]


def test_routes_await_the_async_engine_not_starlettes_thread_pool(api, monkeypatch):
    state = api.app.state.host
    assert isinstance(state.engine, fundcore.aio.Engine)
    assert state.dispatcher.engine is state.engine.blocking  # the dispatcher has a thread of its own
    calls = ThreadPoolCalls()
    monkeypatch.setattr(anyio.to_thread, "run_sync", calls)
    assert every_route(api) == EXPECTED
    assert calls.count == 0


def test_the_benchmark_switch_calls_the_engine_through_starlettes_thread_pool(app_factory, monkeypatch):
    monkeypatch.setenv(BENCH_RUN_IN_THREADPOOL, "1")
    api = app_factory(notifier=RecordingNotifier())
    assert not isinstance(api.app.state.host.engine, fundcore.aio.Engine)
    calls = ThreadPoolCalls()
    monkeypatch.setattr(anyio.to_thread, "run_sync", calls)
    assert every_route(api) == EXPECTED
    assert calls.count >= len(EXPECTED)


@pytest.mark.parametrize("switch", [None, "1"])
def test_shutdown_stops_the_engines_threads_and_leaves_a_given_engine_open(monkeypatch, switch):
    if switch:
        monkeypatch.setenv(BENCH_RUN_IN_THREADPOOL, switch)
    threads_before = set(threading.enumerate())
    given = make_engine()
    with TestClient(create_app(make_settings(), engine=given, start_dispatcher=False)) as api:
        ana = register(api)
        assert api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 3}, headers=ADMIN).status_code == 201
    for thread in set(threading.enumerate()) - threads_before:
        if thread.name.startswith(fundcore.aio.THREAD_NAME_PREFIX):
            thread.join(5)
            assert not thread.is_alive(), thread.name
    assert not given.closed
    assert given.client(ana["id"]).balance == fundcore.DEFAULT_INITIAL_BALANCE - 50000
    given.close()


def test_an_engine_opened_by_the_app_is_closed_at_shutdown(tmp_path):
    settings = make_settings(data_path=str(tmp_path / "store"))
    with TestClient(create_app(settings, notifier=RecordingNotifier())) as api:
        engine = api.app.state.host.engine
        ana = register(api)
    assert engine.closed and engine.blocking.closed
    with fundcore.Engine(settings.data_path) as again:  # the store's lock was released
        assert again.client(ana["id"]).name == "Ana"
