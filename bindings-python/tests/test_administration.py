"""Administration through the Python API: the catalogue, contact data, listings and the audit
trail, with Python's conventions (keyword arguments, the error family, pickling). The rules
themselves are in the shared scenarios (test_scenarios.py)."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import pytest

import fundcore


def test_a_taken_fund_id_is_a_conflict_with_the_status_of_the_error_table(store):
    eng = store.open()
    with pytest.raises(fundcore.ConflictError) as raised:
        eng.create_fund(1, "OTRO", Decimal("5000"), "FIC", actor="ops")
    assert raised.value.code == "FUND_ALREADY_EXISTS"
    assert raised.value.http_status == fundcore.ERROR_CODES["FUND_ALREADY_EXISTS"] == 409
    assert str(raised.value) == "Ya existe el fondo 1"
    assert [f.id for f in eng.funds()] == [1, 2, 3, 4, 5]


def test_who_asked_is_a_required_keyword_and_is_validated(store):
    eng = store.open()
    with pytest.raises(TypeError):
        eng.update_fund(1, active=False)  # type: ignore[call-arg]
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.update_fund(1, active=False, actor="  ")
    assert raised.value.field == "actor"
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.update_fund(1, active=False, actor="ops", request_id="x" * 201)
    assert raised.value.field == "request_id"
    assert eng.fund(1).active is True, "a refused change changes nothing"
    assert len(eng.audit_events()) == 0


def test_fund_changes_take_decimal_int_or_str_and_refuse_floats(store):
    eng = store.open()
    assert eng.update_fund(3, minimum=90000, actor="ops").minimum == Decimal("90000.00")
    assert eng.update_fund(3, minimum="90000.50", actor="ops").minimum == Decimal("90000.50")
    with pytest.raises(TypeError):
        eng.update_fund(3, minimum=9.5, actor="ops")
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.create_fund(9, "NUEVO", Decimal("10"), "BOND", actor="ops")  # type: ignore[arg-type]
    assert raised.value.field == "category"
    with pytest.raises(fundcore.NotFoundError):
        eng.update_fund(2**40, active=False, actor="ops")


def test_contact_changes_follow_register_client_and_unknown_ids_are_not_found(store):
    eng = store.open()
    ana = eng.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.update_client(ana.id, channel="fax", actor=ana.id)  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.code) == ("channel", "VALIDATION_ERROR")
    with pytest.raises(fundcore.NotFoundError) as missing:
        eng.update_client("not-an-id", name="X", actor="ops")
    assert missing.value.code == "CLIENT_NOT_FOUND"
    updated = eng.update_client(ana.id, channel="sms", actor=ana.id, request_id="req-9")
    assert (updated.channel, eng.client(ana.id).channel) == ("sms", "sms")


def test_the_audit_trail_reads_as_python_data_and_pickles(store):
    eng = store.open()
    ana = eng.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    eng.update_client(ana.id, phone="+573005550000", actor="support", request_id="req-1")
    eng.create_fund(6, "RENTA-FIJA", Decimal("10000"), "FIC", actor="ops")
    page = eng.audit_events(limit=1)
    assert len(page) == 1 and page.next is not None
    (created,) = page.items
    assert (created.action, created.target, created.actor) == ("fund_created", "6", "ops")
    assert created.before == {} and created.after["minimum"] == "10000.00"
    (updated,) = eng.audit_events(limit=1, before=page.next).items
    assert updated.before == {"phone": "+573001234567"} and updated.after == {"phone": "+573005550000"}
    assert updated.request_id == "req-1"
    assert pickle.loads(pickle.dumps(updated)) == updated == copy.copy(updated)
    assert eng.audit_events(limit=2).next is None, "an exactly full last page has no cursor"
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.audit_events(limit=fundcore.MAX_PAGE + 1)
    assert raised.value.field == "limit"


def test_clients_are_listed_newest_first_in_pages(store):
    eng = store.open()
    ids = [eng.register_client(f"C{i}", f"c{i}@example.com", "+573001234567", channel="email").id for i in range(5)]
    seen, before = [], None
    while True:
        page = eng.clients(limit=2, before=before)
        seen += [client.id for client in page.items]
        if page.next is None:
            break
        before = page.next
    assert seen == ids[::-1]
    with pytest.raises(fundcore.ValidationError) as raised:
        eng.clients(before="nope")
    assert raised.value.field == "before"
