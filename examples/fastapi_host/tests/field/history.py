"""A history checker for fundcore under faults (Jepsen's bank test is the model).

A load client records every request it makes: the client, the fund, the amount, the
idempotency key, and each attempt's outcome (acknowledged with its transaction id, refused with
its code, failed with STORAGE_ERROR, or unknown: a timeout, a connection error, a 5xx that may
hide a commit, OUTCOME_UNKNOWN). After the run, :func:`check` compares that history with what
the database holds (:func:`read_snapshot`) and with the notifications that were sent:

* every acknowledged change is in the database exactly once, as the transaction the caller was
  given, with the kind, fund and amount it asked for;
* a refused change is never there; neither is one answered only STORAGE_ERROR ("nothing was
  saved" must be true);
* an unknown one is there at most once (exactly once after a retry with its key succeeded: it is
  then acknowledged);
* the database holds no transaction that no request asked for;
* every client's ledger holds: balance >= 0, balance + active subscriptions = initial balance,
  and the balance is the initial balance less the subscriptions plus the refunds;
* every committed subscription has exactly one outbox entry (a cancellation at most one), and no
  notification was sent for a transaction that is not in the database.

One module for both field tests (failover: engine processes; several hosts behind nginx: HTTP
clients); test_history.py checks the checker on small made-up histories.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

#: Outcomes of one attempt.
OK = "ok"  # acknowledged: the caller holds a transaction id
REFUSED = "refused"  # a business refusal (4xx): nothing was changed
FAILED = "failed"  # STORAGE_ERROR: the store says nothing was saved
UNKNOWN = "unknown"  # timeout, connection error, 502/504/500, OUTCOME_UNKNOWN: may have been saved

#: Codes that mean a definite "nothing changed" besides the business refusals.
DEFINITE_FAILURES = {"STORAGE_ERROR"}


@dataclass
class Attempt:
    """One try of a request: wall-clock start and end (``time.time()``), what came back."""

    started: float
    ended: float
    outcome: str
    code: str | None = None  # error code, HTTP status or exception name
    transaction_id: str | None = None  # when acknowledged
    via: str = ""  # which process or instance answered, when known


@dataclass
class Request:
    """One logical change, tried until it is answered (each try with the same key)."""

    caller: str
    client_id: str
    fund_id: int
    kind: str  # "subscribe" | "cancel"
    amount: str | None
    key: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """OK when any attempt was acknowledged; else REFUSED when one was refused; else UNKNOWN
        when any attempt may have saved it; else FAILED (every attempt said nothing was saved)."""
        outcomes = {a.outcome for a in self.attempts}
        for candidate in (OK, REFUSED, UNKNOWN, FAILED):
            if candidate in outcomes:
                return candidate
        return UNKNOWN  # never tried: treat as may-have-been-sent

    @property
    def acknowledged_ids(self) -> set[str]:
        return {a.transaction_id for a in self.attempts if a.outcome == OK and a.transaction_id}

    @property
    def refusal(self) -> str | None:
        return next((a.code for a in self.attempts if a.outcome == REFUSED), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        attempts = [Attempt(**a) for a in data.pop("attempts")]
        return cls(**data, attempts=attempts)


class Recorder:
    """Appends finished requests to a JSON-lines file (one line per request), thread-safe, so a
    history survives its process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def record(self, request: Request) -> None:
        line = request.to_json() + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def load_history(paths: Iterable[Path]) -> list[Request]:
    requests: list[Request] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                requests.append(Request.from_dict(json.loads(line)))
    return requests


# ----------------------------------------------------------------------------- classification


def classify_http(status: int | None, body: Any) -> tuple[str, str | None, str | None]:
    """(outcome, code, transaction id) of an HTTP answer; ``status`` None: no answer at all
    (connection refused, reset, timeout). A 503 naming STORAGE_ERROR is a definite failure (the
    host says nothing was saved); any other 5xx, a 502/504 from the balancer or no answer may
    hide a commit."""
    if status is None:
        return UNKNOWN, "no-answer", None
    code = body.get("code") if isinstance(body, dict) else None
    if 200 <= status < 300 and isinstance(body, dict) and "id" in body:
        return OK, str(status), str(body["id"])
    if 400 <= status < 500 and code:
        return REFUSED, code, None
    if status == 503 and code in DEFINITE_FAILURES:
        return FAILED, code, None
    return UNKNOWN, code or str(status), None


def classify_error(error: BaseException) -> tuple[str, str]:
    """(outcome, code) of an exception from a ``fundcore.Engine`` call."""
    code = getattr(error, "code", None)
    if code is None:
        return UNKNOWN, type(error).__name__
    if code in DEFINITE_FAILURES:
        return FAILED, code
    if code == "OUTCOME_UNKNOWN":
        return UNKNOWN, code
    return REFUSED, code


# ----------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class Transaction:
    id: str
    client_id: str
    fund_id: int
    kind: str
    amount: Decimal
    balance_after: Decimal
    idempotency_key: str | None


@dataclass
class Snapshot:
    """What the database holds, read in one snapshot."""

    initial_balance: Decimal
    balances: dict[str, Decimal]
    #: (client id, fund id) -> (amount, opening transaction id) of the active subscriptions
    subscriptions: dict[tuple[str, int], tuple[Decimal, str]]
    transactions: list[Transaction]
    #: (transaction id, notification id) of every outbox entry
    outbox: list[tuple[str, str]]


def read_snapshot(url: str) -> Snapshot:
    """Everything :func:`check` needs, read from fundcore's tables in one REPEATABLE READ
    transaction (psycopg)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        (initial,) = conn.execute("SELECT initial_balance FROM fundcore_settings").fetchone() or (None,)
        assert initial is not None, "fundcore_settings is empty: not a fundcore database"
        balances = {str(c): b for c, b in conn.execute("SELECT id, balance FROM fundcore_clients")}
        subscriptions = {
            (str(c), int(f)): (a, str(t))
            for c, f, a, t in conn.execute(
                "SELECT client_id, fund_id, amount, transaction_id FROM fundcore_subscriptions"
            )
        }
        transactions = [
            Transaction(str(i), str(c), int(f), k, a, b, key)
            for i, c, f, k, a, b, key in conn.execute(
                "SELECT id, client_id, fund_id, kind, amount, balance_after, idempotency_key FROM fundcore_transactions"
            )
        ]
        outbox = [(str(t), str(i)) for t, i in conn.execute("SELECT transaction_id, id FROM fundcore_outbox")]
    return Snapshot(Decimal(initial), balances, subscriptions, transactions, outbox)


def fundcore_verify(binary: str, url: str, timeout_s: float = 120) -> tuple[int, str]:
    """``fundcore verify <url>``: its exit status and output (0: no violation)."""
    done = subprocess.run([binary, "verify", url], capture_output=True, text=True, timeout=timeout_s, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


# ----------------------------------------------------------------------------- the check


@dataclass
class Report:
    counts: dict[str, int]
    #: kind of violation -> one line per instance
    violations: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    @property
    def lost(self) -> list[str]:
        return self.violations.get("lost", [])

    def summary(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        found = {k: len(v) for k, v in self.violations.items() if v}
        return f"{counts} violations={found or 'none'}"

    def details(self, limit: int = 10) -> str:
        lines = [self.summary()]
        for kind, items in self.violations.items():
            for item in items[:limit]:
                lines.append(f"  [{kind}] {item}")
            if len(items) > limit:
                lines.append(f"  [{kind}] ... and {len(items) - limit} more")
        return "\n".join(lines)


VIOLATION_KINDS = (
    "lost",  # acknowledged, not in the database (or not as acknowledged)
    "duplicated",  # more than one transaction for one request
    "refused_present",  # refused, yet in the database
    "failed_present",  # STORAGE_ERROR ("nothing was saved"), yet in the database
    "inconsistent_ack",  # two attempts acknowledged with different transaction ids
    "mismatched",  # in the database with another kind, fund or amount than asked
    "unrequested",  # a transaction no request asked for
    "ledger",  # a client's balance or subscriptions do not add up
    "outbox",  # a subscription without exactly one outbox entry, a cancellation with several
    "notified_uncommitted",  # a notification sent for a transaction the database does not hold
)


def check(
    history: Iterable[Request],
    snapshot: Snapshot,
    notified: Iterable[str] = (),
    latency_limit_s: float | None = None,
) -> Report:
    """Compare ``history`` with ``snapshot``; ``notified`` are the transaction ids of the
    notifications that were sent; ``latency_limit_s``: no attempt may take longer."""
    requests = list(history)
    violations: dict[str, list[str]] = {kind: [] for kind in VIOLATION_KINDS}
    by_key: dict[tuple[str, str], list[Transaction]] = defaultdict(list)
    for tx in snapshot.transactions:
        if tx.idempotency_key is not None:
            by_key[(tx.client_id, tx.idempotency_key)].append(tx)
    transaction_ids = {tx.id for tx in snapshot.transactions}

    requested: set[tuple[str, str]] = set()
    for request in requests:
        where = f"{request.kind} client={request.client_id} fund={request.fund_id} key={request.key}"
        requested.add((request.client_id, request.key))
        found = by_key.get((request.client_id, request.key), [])
        outcome = request.outcome
        if len(found) > 1:
            violations["duplicated"].append(f"{where}: {len(found)} transactions {[t.id for t in found]}")
        for tx in found:
            asked_amount = Decimal(request.amount) if request.amount is not None else None
            if (
                tx.kind != ("subscription" if request.kind == "subscribe" else "cancellation")
                or tx.fund_id != request.fund_id
                or (request.kind == "subscribe" and asked_amount is not None and tx.amount != asked_amount)
            ):
                violations["mismatched"].append(f"{where}: the database holds {tx}")
        if outcome == OK:
            acked = request.acknowledged_ids
            if len(acked) > 1:
                violations["inconsistent_ack"].append(f"{where}: acknowledged as {sorted(acked)}")
            missing = acked - {tx.id for tx in found}
            if missing:
                violations["lost"].append(f"{where}: acknowledged {sorted(missing)}, not in the database")
        elif outcome == REFUSED and found:
            violations["refused_present"].append(f"{where}: refused {request.refusal}, yet {found[0].id} committed")
        elif outcome == FAILED and found:
            violations["failed_present"].append(f"{where}: answered STORAGE_ERROR, yet {found[0].id} committed")

    for tx in snapshot.transactions:
        if tx.idempotency_key is None or (tx.client_id, tx.idempotency_key) not in requested:
            violations["unrequested"].append(f"{tx} was asked for by no request")

    # the ledger of every client in the database
    moves: dict[str, list[Transaction]] = defaultdict(list)
    for tx in snapshot.transactions:
        moves[tx.client_id].append(tx)
    active: dict[str, Decimal] = defaultdict(Decimal)
    for (client, _fund), (amount, _tx) in snapshot.subscriptions.items():
        active[client] += amount
    for client, balance in snapshot.balances.items():
        if balance < 0:
            violations["ledger"].append(f"client {client}: balance {balance} < 0")
        if balance + active[client] != snapshot.initial_balance:
            violations["ledger"].append(
                f"client {client}: balance {balance} + active subscriptions {active[client]} "
                f"!= initial balance {snapshot.initial_balance}"
            )
        subscribed = sum((t.amount for t in moves[client] if t.kind == "subscription"), Decimal(0))
        refunded = sum((t.amount for t in moves[client] if t.kind == "cancellation"), Decimal(0))
        if snapshot.initial_balance - subscribed + refunded != balance:
            violations["ledger"].append(
                f"client {client}: initial {snapshot.initial_balance} - subscribed {subscribed} + refunded "
                f"{refunded} != balance {balance}"
            )
    for client in moves.keys() - snapshot.balances.keys():
        violations["ledger"].append(f"transactions of client {client}, who is not in the database")

    entries = Counter(tx_id for tx_id, _ in snapshot.outbox)
    for tx in snapshot.transactions:
        count = entries.get(tx.id, 0)
        if (tx.kind == "subscription" and count != 1) or count > 1:
            violations["outbox"].append(f"{tx.kind} {tx.id}: {count} outbox entries")
    for tx_id in entries.keys() - transaction_ids:
        violations["outbox"].append(f"outbox entry for {tx_id}, which is not in the database")

    notified_ids = list(notified)
    for tx_id in sorted(set(notified_ids) - transaction_ids):
        violations["notified_uncommitted"].append(f"a notification was sent for {tx_id}, which never committed")

    outcomes = Counter(r.outcome for r in requests)
    attempts = [a for r in requests for a in r.attempts]
    attempt_outcomes = Counter(a.outcome for a in attempts)
    counts = {
        "requests": len(requests),
        "acknowledged": outcomes[OK],
        "refused": outcomes[REFUSED],
        "failed": outcomes[FAILED],
        "unresolved": outcomes[UNKNOWN],
        "attempts": len(attempts),
        "failed_attempts": attempt_outcomes[FAILED],
        "unknown_attempts": attempt_outcomes[UNKNOWN],
        "retried": sum(1 for r in requests if len(r.attempts) > 1),
        "unknown_then_resolved": sum(
            1 for r in requests if r.outcome in (OK, REFUSED) and any(a.outcome == UNKNOWN for a in r.attempts)
        ),
        "transactions": len(snapshot.transactions),
        "notified": len(notified_ids),
        "lost": len(violations["lost"]),
    }
    if latency_limit_s is not None:
        slow = [a for a in attempts if a.ended - a.started > latency_limit_s]
        counts["slowest_ms"] = int(max((a.ended - a.started for a in attempts), default=0) * 1000)
        violations["too_slow"] = [
            f"an attempt took {a.ended - a.started:.1f} s ({a.outcome} {a.code} via {a.via})" for a in slow
        ]
    return Report(counts, violations)
