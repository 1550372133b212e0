"""Registration under a client id the caller chose (``register_client(..., client_id=...)``): the
id is the registration's idempotency key, on every kind of store."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

import fundcore
from conftest import ANA


def test_new_client_ids_are_distinct_uuid_v7() -> None:
    ids = {fundcore.new_client_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 7 for i in ids)


def test_a_repeated_registration_returns_the_stored_client_and_changes_nothing(engine) -> None:
    client_id = fundcore.new_client_id()
    ana = engine.register_client(*ANA, channel="email", client_id=client_id)
    assert ana.id == client_id
    engine.subscribe(client_id, 1)
    stored = engine.client(client_id)
    assert stored.balance == Decimal("425000.00")
    # Repeated, even with other data: the stored client, its balance not reset, no second client.
    assert engine.register_client(*ANA, channel="email", client_id=client_id) == stored
    assert engine.register_client("Otra", "otra@example.com", "+573001112233", "sms", client_id=client_id) == stored
    assert len(engine.clients(limit=200).items) == 1


@pytest.mark.parametrize(
    "client_id",
    ["not-an-id", "", str(uuid.uuid4())],
    ids=["text", "empty", "uuid4"],
)
def test_a_chosen_id_that_is_not_a_uuid_v7_is_a_validation_error_and_nothing_is_stored(engine, client_id) -> None:
    with pytest.raises(fundcore.ValidationError) as raised:
        engine.register_client(*ANA, channel="email", client_id=client_id)
    assert raised.value.code == "VALIDATION_ERROR"
    assert raised.value.field == "client_id"
    assert engine.clients(limit=200).items == []
