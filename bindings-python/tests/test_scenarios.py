"""The shared conformance scenarios of core/tests/scenarios, run through the Python API on
every kind of store."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import pytest

import fundcore
from conftest import SCENARIOS, RecordingNotifier, Store, assert_attributes_match_dict

FILES = sorted(SCENARIOS.glob("*.json"))


def test_the_shared_scenarios_are_there():
    assert len(FILES) >= 12


def engine_for(store: Store, config: dict) -> fundcore.Engine:
    kwargs = {}
    if "initial_balance" in config:
        kwargs["initial_balance"] = config["initial_balance"]
    if "locale" in config:
        kwargs["locale"] = config["locale"]
    if "notify_on_cancel" in config:
        kwargs["notify_on_cancel"] = config["notify_on_cancel"]
    if "funds" in config:
        kwargs["funds"] = [
            fundcore.Fund(f["id"], f["name"], f["minimum"], f["category"], f.get("active", True))
            for f in config["funds"]
        ]
    return store.open(**kwargs)


def money(text: str):
    """Amounts go in as Decimal when they are numbers (as an application would pass them)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def run_op(eng: fundcore.Engine, op: str, args: dict):
    key = args.get("idempotency_key")
    if op == "funds":
        return eng.funds()
    if op == "fund":
        return eng.fund(args["fund_id"])
    if op == "register_client":
        return eng.register_client(args["name"], args["email"], args["phone"], channel=args["channel"])
    if op == "client":
        return eng.client(args["client"])
    if op == "subscribe":
        amount = money(args["amount"]) if "amount" in args else None
        return eng.subscribe(args["client"], args["fund_id"], amount, idempotency_key=key)
    if op == "cancel":
        return eng.cancel(args["client"], args["fund_id"], idempotency_key=key)
    if op == "subscriptions":
        return eng.subscriptions(args["client"])
    if op == "history":
        return eng.history(args["client"], limit=args["limit"], before=args.get("before"))
    if op == "transaction":
        return eng.transaction(args["id"])
    if op == "notifications":
        return eng.notifications(args["client"])
    if op == "dispatch":
        return eng.dispatch_notifications(RecordingNotifier(), limit=args["limit"])
    who = {"actor": args.get("actor"), "request_id": args.get("request_id")}
    if op == "create_fund":
        return eng.create_fund(args["fund_id"], args["name"], money(args["minimum"]), args["category"], **who)
    if op == "update_fund":
        changes = {k: args[k] for k in ("name", "active") if k in args}
        if "minimum" in args:
            changes["minimum"] = money(args["minimum"])
        return eng.update_fund(args["fund_id"], **changes, **who)
    if op == "update_client":
        changes = {k: args[k] for k in ("name", "email", "phone", "channel") if k in args}
        return eng.update_client(args["client"], **changes, **who)
    if op == "clients":
        return eng.clients(limit=args["limit"], before=args.get("before"))
    if op == "audit_events":
        return eng.audit_events(limit=args["limit"], before=args.get("before"))
    raise AssertionError(f"unknown op {op}")


def substitute(value, saved: dict):
    if isinstance(value, str) and value.startswith("$") and value[1:] in saved:
        return saved[value[1:]]
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, saved) for k, v in value.items()}
    return value


def assert_matches(expected, actual, path="result"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert_matches(v, actual.get(k), f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, got {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_matches(e, a, f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def to_json(result):
    if isinstance(result, (fundcore.ClientPage, fundcore.AuditEventPage)):
        items = [to_json(item) for item in result.items]
        assert result.to_dict() == {"items": items, "next": result.next}
        return {"items": items, "next": result.next}
    if isinstance(result, list):
        for item in result:
            assert_attributes_match_dict(item)
        return [item.to_dict() for item in result]
    assert_attributes_match_dict(result)
    data = result.to_dict()
    json.dumps(data)  # JSON-ready as it is
    return data


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path, store):
    scenario = json.loads(path.read_text())
    saved: dict[str, str] = {}
    with engine_for(store, scenario.get("config", {})) as eng:
        for i, step in enumerate(scenario["steps"]):
            op = step["op"]
            args = substitute(step.get("args", {}), saved)
            at = f"{path.name} step {i} ({op})"
            if "expect_error" in step:
                expected = step["expect_error"]
                with pytest.raises(fundcore.FundcoreError) as info:
                    run_op(eng, op, args)
                got = {"code": info.value.code, "message": info.value.message}
                assert_matches(expected, got, f"{at} error")
                assert str(info.value) == info.value.message
                continue
            result = to_json(run_op(eng, op, args))
            if "expect" in step:
                assert_matches(substitute(step["expect"], saved), result, at)
            if "save_as" in step:
                saved[step["save_as"]] = result["id"]
