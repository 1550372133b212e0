"""Python notifiers through the core's outbox: success, retryable, permanent, max attempts."""

from __future__ import annotations

import time
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


def fast_engine(**kwargs):
    return fundcore.Engine(retry_base_delay_ms=0, retry_max_delay_ms=0, **kwargs)


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


def test_retryable_failure_then_success():
    with fast_engine() as eng:
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


def test_retry_waits_for_the_backoff_delay():
    with fundcore.Engine(retry_base_delay_ms=1500, retry_max_delay_ms=3000) as eng:
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


def test_permanent_failure_fails_the_entry_at_once():
    with fast_engine() as eng:
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


def test_max_attempts_then_failed():
    with fast_engine(max_attempts=3) as eng:
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


def test_keyboard_interrupt_stops_dispatch_and_propagates():
    with fast_engine() as eng:
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
