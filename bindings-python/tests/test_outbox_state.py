"""`Engine.outbox_state()`: the outbox's entries by status and its oldest pending entry, on both
stores."""

from __future__ import annotations

import copy
import datetime
import json
import pickle
from decimal import Decimal

from conftest import ANA

import fundcore


class FirstFailsForGood:
    """Refuses the first notification for good, accepts the rest."""

    def __init__(self):
        self.calls = 0

    def send(self, notification):
        self.calls += 1
        if self.calls == 1:
            raise fundcore.PermanentDeliveryError("no such mailbox")


def test_an_empty_outbox(engine):
    state = engine.outbox_state()
    assert isinstance(state, fundcore.OutboxState)
    assert (state.pending, state.failed, state.delivered) == (0, 0, 0)
    assert state.oldest_pending_at is None and state.oldest_pending_age is None
    assert state.to_dict() == {
        "pending": 0,
        "failed": 0,
        "delivered": 0,
        "oldest_pending_at": None,
        "oldest_pending_age": None,
    }


def test_entries_by_status_and_the_oldest_pending_one(engine):
    ana = engine.register_client(*ANA, channel="email")
    first = engine.subscribe(ana.id, 1)
    engine.subscribe(ana.id, 3)
    state = engine.outbox_state()
    assert (state.pending, state.failed, state.delivered) == (2, 0, 0)
    assert state.oldest_pending_at == first.created_at
    assert state.oldest_pending_at.tzinfo is not None
    age = state.oldest_pending_age
    assert isinstance(age, datetime.timedelta)
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=5)

    data = state.to_dict()
    assert json.loads(json.dumps(data)) == data, "JSON-ready"
    assert data["oldest_pending_at"] == first.to_dict()["created_at"]
    # The age as an ISO 8601 duration in seconds, exact (as pydantic writes a timedelta).
    seconds = data["oldest_pending_age"]
    assert seconds.startswith("PT") and seconds.endswith("S"), seconds
    assert Decimal(seconds[2:-1]) == Decimal(age // datetime.timedelta(microseconds=1)) / 1000000

    engine.dispatch_notifications(FirstFailsForGood())
    state = engine.outbox_state()
    assert (state.pending, state.failed, state.delivered) == (0, 1, 1)
    assert state.oldest_pending_at is None and state.oldest_pending_age is None

    assert engine.retry_failed_notifications() == 1
    state = engine.outbox_state()
    assert (state.pending, state.failed, state.delivered) == (1, 0, 1)
    assert state.oldest_pending_at == first.created_at


def test_the_record_is_immutable_comparable_and_picklable(engine):
    ana = engine.register_client(*ANA, channel="sms")
    engine.subscribe(ana.id, 2)
    state = engine.outbox_state()
    for again in (pickle.loads(pickle.dumps(state)), copy.deepcopy(state)):
        assert again == state and hash(again) == hash(state)
    assert repr(state).startswith("OutboxState(pending=1, failed=0, delivered=0, ")
    try:
        state.pending = 5  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("OutboxState is immutable")
