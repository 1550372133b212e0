"""Python notifiers through the core's outbox: success, retryable, permanent, max attempts,
and awaitables (an `async def send`), which are refused, never counted as delivered."""

from __future__ import annotations

import asyncio
import gc
import time
import types
import warnings
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, RecordingNotifier


class Scripted:
    """Raises the scripted exceptions in order, then delivers."""

    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls: list[fundcore.Notification] = []

    def send(self, notification):
        self.calls.append(notification)
        if self.failures:
            raise self.failures.pop(0)


def fast_engine(store=None, **kwargs):
    """An engine that retries at once, on `store` (a temporary embedded store without one)."""
    settings = {"retry_base_delay_ms": 0, "retry_max_delay_ms": 0, **kwargs}
    return store.open(**settings) if store is not None else fundcore.Engine(**settings)


def test_successful_delivery(engine, ana):
    tx = engine.subscribe(ana.id, 1, Decimal("80000"))
    notifier = RecordingNotifier()
    report = engine.dispatch_notifications(notifier, limit=100)
    assert isinstance(report, fundcore.DispatchReport)
    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    assert report.to_dict() == {"delivered": 1, "retried": 0, "failed": 0}
    [sent] = notifier.sent
    assert isinstance(sent, fundcore.Notification)
    assert sent.transaction_id == tx.id and sent.client_id == ana.id
    assert sent.channel == "email" and sent.recipient == "ana@example.com"
    assert "FPV_BTG_PACTUAL_RECAUDADORA" in sent.body and tx.id in sent.body
    assert "COP $80.000" in sent.body and "COP $420.000" in sent.body
    [stored] = engine.notifications(ana.id)
    assert stored.id == sent.id
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 1, None)
    assert stored.delivered_at is not None and stored.delivered_at.tzinfo is not None
    # Nothing left to deliver.
    assert engine.dispatch_notifications(notifier).delivered == 0
    assert len(notifier.sent) == 1


def test_sms_channel_and_cancellation_notice(engine):
    bo = engine.register_client("Bo", "bo@example.com", "+573009876543", channel="sms")
    engine.subscribe(bo.id, 3)
    engine.cancel(bo.id, 3)
    notifier = RecordingNotifier()
    assert engine.dispatch_notifications(notifier).delivered == 2
    assert {n.recipient for n in notifier.sent} == {"+573009876543"}
    assert all(n.channel == "sms" and len(n.body) <= 160 for n in notifier.sent)


def test_retryable_failure_then_success(store):
    with fast_engine(store) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = Scripted(ConnectionRefusedError("smtp down"))
        report = eng.dispatch_notifications(notifier)
        assert (report.delivered, report.retried, report.failed) == (0, 1, 0)
        [n] = eng.notifications(c.id)
        assert (n.status, n.attempts) == ("pending", 1)
        assert n.last_error == "ConnectionRefusedError: smtp down"
        # The financial transaction stands whatever happens to the notification.
        assert eng.client(c.id).balance == Decimal("425000.00")
        report = eng.dispatch_notifications(notifier)
        assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
        [n] = eng.notifications(c.id)
        assert (n.status, n.attempts) == ("delivered", 2)
        assert notifier.calls[0].id == notifier.calls[1].id  # same id: receivers can dedupe


def test_retry_waits_for_the_backoff_delay(store):
    with store.open(retry_base_delay_ms=1500, retry_max_delay_ms=3000) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = Scripted(TimeoutError("gateway timeout"))
        assert eng.dispatch_notifications(notifier).retried == 1
        [n] = eng.notifications(c.id)
        assert n.next_attempt_at is not None and n.next_attempt_at > n.created_at
        assert eng.dispatch_notifications(notifier).delivered == 0  # not due yet
        assert len(notifier.calls) == 1
        time.sleep(1.6)
        assert eng.dispatch_notifications(notifier).delivered == 1


def test_permanent_failure_fails_the_entry_at_once(store):
    with fast_engine(store) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = Scripted(fundcore.PermanentDeliveryError("mailbox does not exist"))
        report = eng.dispatch_notifications(notifier)
        assert (report.delivered, report.retried, report.failed) == (0, 0, 1)
        [n] = eng.notifications(c.id)
        assert (n.status, n.attempts, n.last_error) == ("failed", 1, "mailbox does not exist")
        assert eng.dispatch_notifications(notifier).to_dict() == {"delivered": 0, "retried": 0, "failed": 0}
        assert len(notifier.calls) == 1
        assert eng.client(c.id).balance == Decimal("425000.00")
        # An operator can requeue failed entries.
        assert eng.retry_failed_notifications(10) == 1
        assert eng.dispatch_notifications(notifier).delivered == 1
        assert eng.notifications(c.id)[0].status == "delivered"


def test_max_attempts_then_failed(store):
    with fast_engine(store, max_attempts=3) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = Scripted(*[OSError(f"try {i}") for i in range(10)])
        reports = [eng.dispatch_notifications(notifier).to_dict() for _ in range(4)]
        assert reports == [
            {"delivered": 0, "retried": 1, "failed": 0},
            {"delivered": 0, "retried": 1, "failed": 0},
            {"delivered": 0, "retried": 0, "failed": 1},
            {"delivered": 0, "retried": 0, "failed": 0},
        ]
        [n] = eng.notifications(c.id)
        assert (n.status, n.attempts, n.last_error) == ("failed", 3, "OSError: try 2")
        assert len(notifier.calls) == 3


def test_limit_bounds_one_run(engine, ana):
    for fund in (1, 2, 3):
        engine.subscribe(ana.id, fund)
    notifier = RecordingNotifier()
    assert engine.dispatch_notifications(notifier, limit=2).delivered == 2
    assert engine.dispatch_notifications(notifier, limit=2).delivered == 1
    assert len({n.id for n in notifier.sent}) == 3


def test_a_notifier_may_use_the_engine(engine, ana):
    engine.subscribe(ana.id, 1)
    balances = []

    class Reading:
        def send(self, notification):
            balances.append(engine.client(notification.client_id).balance)

    assert engine.dispatch_notifications(Reading()).delivered == 1
    assert balances == [Decimal("425000.00")]


def test_objects_without_send_are_refused(engine):
    with pytest.raises(TypeError, match="send"):
        engine.dispatch_notifications(object())
    with pytest.raises(TypeError, match="send"):
        engine.dispatch_notifications(type("NotCallable", (), {"send": 1})())


def test_keyboard_interrupt_stops_dispatch_and_propagates(store):
    with fast_engine(store) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        eng.subscribe(c.id, 2)
        notifier = Scripted(KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            eng.dispatch_notifications(notifier)
        assert len(notifier.calls) == 1  # Python was not called again after the interrupt
        assert [n.status for n in eng.notifications(c.id)] == ["pending", "pending"]
        assert eng.dispatch_notifications(notifier).delivered == 2


def test_the_protocol_describes_notifiers():
    assert isinstance(RecordingNotifier(), fundcore.Notifier)
    assert not isinstance(object(), fundcore.Notifier)


class AsyncSend:
    """The mistake this guards against: an ``async def send`` is never run by dispatch."""

    def __init__(self):
        self.ran: list[str] = []

    async def send(self, notification):
        self.ran.append(notification.id)


def assert_refused_and_pending(eng, client_id, returned_type):
    [n] = eng.notifications(client_id)
    assert (n.status, n.attempts, n.delivered_at) == ("pending", 1, None)
    assert n.last_error is not None
    assert f"send returned an awaitable ({returned_type})" in n.last_error
    assert "must be a plain function" in n.last_error


def test_an_async_send_is_refused_never_counted_as_delivered(store):
    with fast_engine(store) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = AsyncSend()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = eng.dispatch_notifications(notifier)
            gc.collect()
        assert report.to_dict() == {"delivered": 0, "retried": 1, "failed": 0}
        assert notifier.ran == []
        assert_refused_and_pending(eng, c.id, "coroutine")
        # The coroutine was closed unrun: no "coroutine ... was never awaited" warning.
        assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
        # The entry is still there for a notifier that really delivers.
        plain = RecordingNotifier()
        assert eng.dispatch_notifications(plain).delivered == 1
        assert [n.client_id for n in plain.sent] == [c.id]
        assert eng.notifications(c.id)[0].status == "delivered"


def test_an_async_send_is_refused_inside_a_running_event_loop(store):
    """As in an async web app: dispatch called from a coroutine neither blocks the loop nor
    marks anything delivered."""
    with fast_engine(store) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        notifier = AsyncSend()

        async def dispatch_from_the_loop():
            return eng.dispatch_notifications(notifier)

        report = asyncio.run(dispatch_from_the_loop())
        assert (report.delivered, report.retried) == (0, 1)
        assert notifier.ran == []
        assert_refused_and_pending(eng, c.id, "coroutine")


class CustomAwaitable:
    def __await__(self):
        yield


@types.coroutine
def generator_based_coroutine():
    yield


def a_future():
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    return future


@pytest.mark.parametrize(
    ("make_awaitable", "returned_type"),
    [
        (CustomAwaitable, "CustomAwaitable"),
        (a_future, "Future"),
        (generator_based_coroutine, "generator"),
    ],
)
def test_any_awaitable_returned_by_send_is_refused(make_awaitable, returned_type):
    with fast_engine() as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)

        class ReturnsAwaitable:
            def send(self, notification):
                return make_awaitable()

        report = eng.dispatch_notifications(ReturnsAwaitable())
        assert (report.delivered, report.retried, report.failed) == (0, 1, 0)
        assert_refused_and_pending(eng, c.id, returned_type)


def test_an_async_send_fails_for_good_after_max_attempts(store):
    with fast_engine(store, max_attempts=2) as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)
        assert eng.dispatch_notifications(AsyncSend()).retried == 1
        assert eng.dispatch_notifications(AsyncSend()).failed == 1
        [n] = eng.notifications(c.id)
        assert (n.status, n.delivered_at) == ("failed", None)
        assert "send returned an awaitable" in n.last_error


def test_a_plain_send_may_return_a_value():
    with fast_engine() as eng:
        c = eng.register_client(*ANA, "email")
        eng.subscribe(c.id, 1)

        class ReturnsReceipt:
            def send(self, notification):
                return "250 OK: queued"

        assert eng.dispatch_notifications(ReturnsReceipt()).delivered == 1
        assert eng.notifications(c.id)[0].status == "delivered"
