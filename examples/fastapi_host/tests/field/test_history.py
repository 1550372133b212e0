"""The history checker (history.py) on small made-up histories and databases: it passes a clean
run and catches each kind of violation the field tests rely on it to find (a lost
acknowledgement, a duplicate, a refused or STORAGE_ERROR change that is present, an unrequested
transaction, a broken ledger, a missing outbox entry, a notification for a change that never
committed, an attempt slower than the deadline)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from history import (
    FAILED,
    OK,
    REFUSED,
    UNKNOWN,
    Attempt,
    Recorder,
    Request,
    Snapshot,
    Transaction,
    check,
    classify_http,
    load_history,
)

INITIAL = Decimal("500000.00")
ANA, LUIS = "client-ana", "client-luis"


def attempt(outcome: str, tx: str | None = None, code: str | None = None, took: float = 0.01) -> Attempt:
    return Attempt(started=100.0, ended=100.0 + took, outcome=outcome, code=code, transaction_id=tx)


def subscribe(key: str, *attempts: Attempt, client: str = ANA, fund: int = 1, amount: str = "75000") -> Request:
    return Request("t1", client, fund, "subscribe", amount, key, list(attempts))


def cancel(key: str, *attempts: Attempt, client: str = ANA, fund: int = 1) -> Request:
    return Request("t1", client, fund, "cancel", None, key, list(attempts))


def sub_tx(tx: str, key: str | None, balance_after: str, client: str = ANA, fund: int = 1) -> Transaction:
    return Transaction(tx, client, fund, "subscription", Decimal("75000.00"), Decimal(balance_after), key)


def cancel_tx(tx: str, key: str | None, balance_after: str, client: str = ANA, fund: int = 1) -> Transaction:
    return Transaction(tx, client, fund, "cancellation", Decimal("75000.00"), Decimal(balance_after), key)


def snapshot(
    transactions: list[Transaction],
    balances: dict[str, str] | None = None,
    subscriptions: dict[tuple[str, int], tuple[str, str]] | None = None,
    outbox: list[tuple[str, str]] | None = None,
) -> Snapshot:
    return Snapshot(
        initial_balance=INITIAL,
        balances={c: Decimal(b) for c, b in (balances or {ANA: "500000.00", LUIS: "500000.00"}).items()},
        subscriptions={k: (Decimal(a), t) for k, (a, t) in (subscriptions or {}).items()},
        transactions=transactions,
        outbox=outbox if outbox is not None else [(t.id, f"n-{t.id}") for t in transactions],
    )


def clean_run() -> tuple[list[Request], Snapshot]:
    """Ana subscribes (acknowledged after an unknown first try), cancels, subscribes again (that
    one unknown, committed); Luis is refused once and fails once with nothing saved."""
    history = [
        subscribe("k1", attempt(UNKNOWN, code="no-answer"), attempt(OK, "tx1")),
        cancel("k2", attempt(OK, "tx2")),
        subscribe("k3", attempt(UNKNOWN, code="OUTCOME_UNKNOWN")),
        cancel("k4", attempt(REFUSED, code="NOT_SUBSCRIBED"), client=LUIS),
        subscribe("k5", attempt(FAILED, code="STORAGE_ERROR"), client=LUIS),
    ]
    db = snapshot(
        [sub_tx("tx1", "k1", "425000.00"), cancel_tx("tx2", "k2", "500000.00"), sub_tx("tx3", "k3", "425000.00")],
        balances={ANA: "425000.00", LUIS: "500000.00"},
        subscriptions={(ANA, 1): ("75000.00", "tx3")},
    )
    return history, db


def test_a_clean_run_passes_and_is_counted() -> None:
    history, db = clean_run()
    report = check(history, db, notified=["tx1", "tx2", "tx3"])
    assert report.ok, report.details()
    assert report.counts["acknowledged"] == 2
    assert report.counts["refused"] == 1
    assert report.counts["failed"] == 1
    assert report.counts["unresolved"] == 1  # k3: unknown, committed once: allowed
    assert report.counts["retried"] == 1
    assert report.counts["unknown_then_resolved"] == 1
    assert report.counts["lost"] == 0


def test_an_unknown_change_may_also_be_absent() -> None:
    history, db = clean_run()
    db.transactions = db.transactions[:2]
    db.balances[ANA] = Decimal("500000.00")
    db.subscriptions.clear()
    db.outbox = db.outbox[:2]
    assert check(history, db).ok


def test_a_lost_acknowledgement_is_caught() -> None:
    history, db = clean_run()
    history.append(subscribe("k6", attempt(OK, "tx6"), client=LUIS, fund=2))  # never reached the database
    report = check(history, db)
    assert not report.ok
    assert len(report.lost) == 1 and "k6" in report.lost[0], report.details()
    assert report.counts["lost"] == 1


def test_an_acknowledgement_naming_another_transaction_is_lost() -> None:
    history, db = clean_run()
    history[1] = cancel("k2", attempt(OK, "tx-other"))
    report = check(history, db)
    assert [v for v in report.lost if "k2" in v], report.details()


def test_a_duplicate_is_caught() -> None:
    history, db = clean_run()
    # k1 applied twice (e.g. a retry that did not see the first commit)
    db.transactions.append(sub_tx("tx1b", "k1", "350000.00", fund=1))
    report = check(history, db)
    assert report.violations["duplicated"] and "k1" in report.violations["duplicated"][0], report.details()


def test_an_unknown_change_committed_twice_is_a_duplicate() -> None:
    history, db = clean_run()
    db.transactions.append(sub_tx("tx3b", "k3", "350000.00"))
    assert check(history, db).violations["duplicated"]


def test_a_refused_change_that_is_present_is_caught() -> None:
    history, db = clean_run()
    history[3] = subscribe("k4", attempt(REFUSED, code="INSUFFICIENT_BALANCE"), client=LUIS, fund=2)
    db.transactions.append(sub_tx("tx4", "k4", "425000.00", client=LUIS, fund=2))
    report = check(history, db)
    assert report.violations["refused_present"] and "INSUFFICIENT_BALANCE" in report.violations["refused_present"][0]


def test_a_storage_error_whose_change_committed_is_caught() -> None:
    history, db = clean_run()
    db.transactions.append(sub_tx("tx5", "k5", "425000.00", client=LUIS))
    report = check(history, db)
    assert report.violations["failed_present"], report.details()


def test_a_transaction_nobody_asked_for_is_caught() -> None:
    history, db = clean_run()
    db.transactions.append(sub_tx("tx9", None, "425000.00", client=LUIS))
    db.transactions.append(sub_tx("tx10", "k-unknown", "350000.00", client=LUIS, fund=2))
    report = check(history, db)
    assert len(report.violations["unrequested"]) == 2, report.details()


def test_a_change_with_other_contents_than_asked_is_caught() -> None:
    history, db = clean_run()
    history[0] = subscribe("k1", attempt(OK, "tx1"), fund=2)  # asked for fund 2, fund 1 committed
    assert check(history, db).violations["mismatched"]


def test_inconsistent_acknowledgements_are_caught() -> None:
    history, db = clean_run()
    history[0] = subscribe("k1", attempt(OK, "tx1"), attempt(OK, "tx1-again"))
    report = check(history, db)
    assert report.violations["inconsistent_ack"], report.details()


def test_a_broken_ledger_is_caught() -> None:
    history, db = clean_run()
    db.balances[ANA] = Decimal("426000.00")  # money out of thin air
    ledger = check(history, db).violations["ledger"]
    assert any("active subscriptions" in v for v in ledger) and any("refunded" in v for v in ledger), ledger
    history, db = clean_run()
    db.balances[LUIS] = Decimal("-1.00")
    assert any("< 0" in v for v in check(history, db).violations["ledger"])


def test_outbox_faults_are_caught() -> None:
    history, db = clean_run()
    db.outbox = [entry for entry in db.outbox if entry[0] != "tx3"]  # a subscription without its entry
    assert check(history, db).violations["outbox"]
    history, db = clean_run()
    db.outbox.append(("tx2", "n-dup"))  # a cancellation notified twice
    assert check(history, db).violations["outbox"]
    history, db = clean_run()
    db.outbox.append(("tx-gone", "n-gone"))  # an entry for nothing
    assert check(history, db).violations["outbox"]


def test_a_notification_for_a_change_that_never_committed_is_caught() -> None:
    history, db = clean_run()
    report = check(history, db, notified=["tx1", "tx-rolled-back"])
    assert (
        report.violations["notified_uncommitted"] and "tx-rolled-back" in report.violations["notified_uncommitted"][0]
    )


def test_an_attempt_slower_than_the_deadline_is_caught() -> None:
    history, db = clean_run()
    history[1] = cancel("k2", attempt(OK, "tx2", took=12.5))
    report = check(history, db, latency_limit_s=12.0)
    assert report.violations["too_slow"] and report.counts["slowest_ms"] == 12500


def test_http_answers_are_classified() -> None:
    assert classify_http(201, {"id": "tx"}) == (OK, "201", "tx")
    assert classify_http(409, {"code": "ALREADY_SUBSCRIBED"}) == (REFUSED, "ALREADY_SUBSCRIBED", None)
    assert classify_http(503, {"code": "STORAGE_ERROR"}) == (FAILED, "STORAGE_ERROR", None)
    assert classify_http(503, {"code": "OUTCOME_UNKNOWN"}) == (UNKNOWN, "OUTCOME_UNKNOWN", None)
    assert classify_http(502, b"<html>bad gateway</html>") == (UNKNOWN, "502", None)
    assert classify_http(None, None) == (UNKNOWN, "no-answer", None)


def test_a_history_survives_the_round_trip_through_its_file(tmp_path: Path) -> None:
    history, _ = clean_run()
    recorder = Recorder(tmp_path / "h.jsonl")
    for request in history:
        recorder.record(request)
    recorder.close()
    assert load_history([tmp_path / "h.jsonl", tmp_path / "missing.jsonl"]) == history
