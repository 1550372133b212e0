"""Shared fixtures for the fundcore Python tests."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import fundcore

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "core" / "tests" / "scenarios"

ANA = ("Ana", "ana@example.com", "+573001234567")


@pytest.fixture
def engine():
    """A fresh engine on a temporary store, closed after the test."""
    with fundcore.Engine() as eng:
        yield eng


@pytest.fixture
def ana(engine):
    """A registered client notified by email."""
    return engine.register_client(*ANA, channel="email")


class RecordingNotifier:
    """Delivers everything and remembers what it was given."""

    def __init__(self):
        self.sent: list[fundcore.Notification] = []

    def send(self, notification):
        self.sent.append(notification)


def assert_attributes_match_dict(record) -> None:
    """Every attribute agrees with the record's JSON form (one wire format)."""
    data = record.to_dict()
    for key, value in data.items():
        attr = getattr(record, key)
        if isinstance(attr, Decimal):
            assert isinstance(value, str) and Decimal(value) == attr and str(attr) == value
        elif isinstance(attr, datetime.datetime):
            assert attr.tzinfo is not None and attr.utcoffset() == datetime.timedelta(0)
            assert datetime.datetime.fromisoformat(value.replace("Z", "+00:00")) == attr
        else:
            assert attr == value, key
