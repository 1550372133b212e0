"""Baseline: the business rules of docs/rules.md in plain Python over the standard library's
sqlite3.

This is what a Python team would write instead of using fundcore, and it is what the benchmarks
compare fundcore against. It keeps the same rules and the same Python API shape (docs/apis.md,
Python):

* one SQL transaction per operation (``BEGIN IMMEDIATE``): the balance is read, checked and
  updated inside it, together with the subscription row, the transaction record, the
  idempotency record and the outbox entry;
* WAL journal; ``durable=True`` is ``synchronous=FULL`` (the WAL is fsynced at every commit),
  ``durable=False`` is ``synchronous=NORMAL`` (fsync only at checkpoints: the periodic mode);
* money is ``decimal.Decimal`` in the API and integer cents in the database, never a float;
* ids are UUIDv7 (48-bit millisecond time, version 7, monotonic counter, random tail).
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Optional

__all__ = [
    "Engine", "Fund", "Client", "Transaction", "Subscription",
    "FundcoreError", "ValidationError", "NotFoundError", "ConflictError",
    "InsufficientBalanceError", "StorageError", "DEFAULT_FUNDS",
]

MAX_AMOUNT = Decimal("1000000000000")
CENT = Decimal("0.01")

DEFAULT_FUNDS = [
    (1, "FPV_BTG_PACTUAL_RECAUDADORA", Decimal("75000"), "FPV"),
    (2, "FPV_BTG_PACTUAL_ECOPETROL", Decimal("125000"), "FPV"),
    (3, "DEUDAPRIVADA", Decimal("50000"), "FIC"),
    (4, "FDO-ACCIONES", Decimal("250000"), "FIC"),
    (5, "FPV_BTG_PACTUAL_DINAMICA", Decimal("100000"), "FPV"),
]


# ----------------------------------------------------------------------------- errors
class FundcoreError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ValidationError(FundcoreError):
    pass


class NotFoundError(FundcoreError):
    pass


class ConflictError(FundcoreError):
    pass


class InsufficientBalanceError(ConflictError):
    pass


class StorageError(FundcoreError):
    pass


# ----------------------------------------------------------------------------- money and ids
def to_amount(value) -> Decimal:
    """int, str or Decimal -> Decimal with 2 places; float is refused."""
    if isinstance(value, bool):
        raise TypeError("amount must be Decimal, int or str, not bool")
    if isinstance(value, float):
        raise TypeError("amount must not be a float: use Decimal, int or str")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, str)):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise ValidationError("VALIDATION_ERROR", "monto inválido") from None
    else:
        raise TypeError("amount must be Decimal, int or str")
    if not d.is_finite() or d <= 0 or d > MAX_AMOUNT or d.as_tuple().exponent < -2 and d != d.quantize(CENT):
        raise ValidationError("VALIDATION_ERROR", "monto inválido")
    return d.quantize(CENT)


def to_cents(d: Decimal) -> int:
    return int(d * 100)


def from_cents(c: int) -> Decimal:
    return (Decimal(c) / 100).quantize(CENT)


def format_cop(d: Decimal) -> str:
    """COP $75.000 / COP $75.000,50 (Colombian separators)."""
    q = d.quantize(CENT)
    units, frac = f"{q:,.2f}".split(".")
    units = units.replace(",", ".")
    return f"COP ${units}" if frac == "00" else f"COP ${units},{frac}"


class _Uuid7:
    """UUIDv7: unix ms in the top 48 bits, a 12-bit counter for order within a millisecond."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def new(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq > 0xFFF:
                    ms += 1
                    self._seq = 0
            else:
                self._seq = 0
            self._last_ms = ms
            seq = self._seq
        rand = int.from_bytes(secrets.token_bytes(8), "big") & ((1 << 62) - 1)
        n = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ids = _Uuid7()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Fund:
    id: int
    name: str
    minimum: Decimal
    category: str
    active: bool

    def to_dict(self):
        d = asdict(self)
        d["minimum"] = f"{self.minimum:.2f}"
        return d


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    email: str
    phone: str
    channel: str
    balance: Decimal
    created_at: str

    def to_dict(self):
        d = asdict(self)
        d["balance"] = f"{self.balance:.2f}"
        return d


@dataclass(frozen=True)
class Subscription:
    client_id: str
    fund_id: int
    fund_name: str
    amount: Decimal
    transaction_id: str
    subscribed_at: str

    def to_dict(self):
        d = asdict(self)
        d["amount"] = f"{self.amount:.2f}"
        return d


@dataclass(frozen=True)
class Transaction:
    id: str
    client_id: str
    fund_id: int
    fund_name: str
    kind: str
    amount: Decimal
    balance_after: Decimal
    created_at: str
    idempotency_key: Optional[str]

    def to_dict(self):
        d = asdict(self)
        d["amount"] = f"{self.amount:.2f}"
        d["balance_after"] = f"{self.balance_after:.2f}"
        return d


def _tx(row) -> Transaction:
    return Transaction(row[0], row[1], row[2], row[3], row[4], from_cents(row[5]),
                       from_cents(row[6]), row[7], row[8])


_TX_COLS = "id, client_id, fund_id, fund_name, kind, amount, balance_after, created_at, idempotency_key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS funds (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, minimum INTEGER NOT NULL,
    category TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,
    channel TEXT NOT NULL, balance INTEGER NOT NULL CHECK (balance >= 0), created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    client_id TEXT NOT NULL, fund_id INTEGER NOT NULL, amount INTEGER NOT NULL,
    transaction_id TEXT NOT NULL, subscribed_at TEXT NOT NULL,
    PRIMARY KEY (client_id, fund_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, fund_id INTEGER NOT NULL, fund_name TEXT NOT NULL,
    kind TEXT NOT NULL, amount INTEGER NOT NULL, balance_after INTEGER NOT NULL,
    created_at TEXT NOT NULL, idempotency_key TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transactions_by_client ON transactions (client_id, id);
CREATE TABLE IF NOT EXISTS idempotency (
    client_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL, transaction_id TEXT NOT NULL,
    PRIMARY KEY (client_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, transaction_id TEXT NOT NULL, channel TEXT NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, last_error TEXT, created_at TEXT NOT NULL, delivered_at TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, id);
"""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


# ----------------------------------------------------------------------------- engine
class Engine:
    """``Engine(path)`` opens (or creates) the store in the directory ``path``;
    ``Engine()`` uses a temporary directory. ``durable=True`` fsyncs every commit."""

    def __init__(self, path: Optional[str] = None, *, durable: bool = True,
                 initial_balance=Decimal("500000"), notify_on_cancel: bool = True):
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="baseline-")
            path = self._tmp.name
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.db_path = os.path.join(path, "baseline.sqlite3")
        self.synchronous = "FULL" if durable else "NORMAL"
        self.initial_balance = to_cents(to_amount(initial_balance))
        self.notify_on_cancel = notify_on_cancel
        self._local = threading.local()
        con = self._con()
        con.executescript(_SCHEMA)
        con.execute("BEGIN IMMEDIATE")
        for fid, name, minimum, cat in DEFAULT_FUNDS:
            con.execute("INSERT OR IGNORE INTO funds VALUES (?,?,?,?,1)", (fid, name, to_cents(minimum), cat))
        con.execute("COMMIT")
        self._funds = {r[0]: Fund(r[0], r[1], from_cents(r[2]), r[3], bool(r[4]))
                       for r in con.execute("SELECT id, name, minimum, category, active FROM funds")}

    # one connection per thread (sqlite3 connections are not shared between threads)
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.db_path, isolation_level=None, timeout=30.0, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={self.synchronous}")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    def close(self):
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ reads
    def funds(self):
        return sorted(self._funds.values(), key=lambda f: f.id)

    def fund(self, fund_id: int) -> Fund:
        try:
            return self._funds[fund_id]
        except KeyError:
            raise NotFoundError("FUND_NOT_FOUND", f"El fondo {fund_id} no existe") from None

    def client(self, client_id: str) -> Client:
        row = self._con().execute(
            "SELECT id, name, email, phone, channel, balance, created_at FROM clients WHERE id = ?",
            (client_id,)).fetchone()
        if row is None:
            raise NotFoundError("CLIENT_NOT_FOUND", f"El cliente {client_id} no existe")
        return Client(row[0], row[1], row[2], row[3], row[4], from_cents(row[5]), row[6])

    def subscriptions(self, client_id: str):
        con = self._con()
        self._require_client(con, client_id)
        rows = con.execute(
            "SELECT fund_id, amount, transaction_id, subscribed_at FROM subscriptions "
            "WHERE client_id = ? ORDER BY fund_id", (client_id,)).fetchall()
        return [Subscription(client_id, r[0], self._funds[r[0]].name, from_cents(r[1]), r[2], r[3]) for r in rows]

    def history(self, client_id: str, limit: int = 50, before: Optional[str] = None):
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            raise ValidationError("VALIDATION_ERROR", "limit debe estar entre 1 y 200")
        con = self._con()
        self._require_client(con, client_id)
        if before is None:
            rows = con.execute(f"SELECT {_TX_COLS} FROM transactions WHERE client_id = ? "
                               "ORDER BY id DESC LIMIT ?", (client_id, limit)).fetchall()
        else:
            rows = con.execute(f"SELECT {_TX_COLS} FROM transactions WHERE client_id = ? AND id < ? "
                               "ORDER BY id DESC LIMIT ?", (client_id, before, limit)).fetchall()
        return [_tx(r) for r in rows]

    def transaction(self, tx_id: str) -> Transaction:
        row = self._con().execute(f"SELECT {_TX_COLS} FROM transactions WHERE id = ?", (tx_id,)).fetchone()
        if row is None:
            raise NotFoundError("TRANSACTION_NOT_FOUND", f"La transacción {tx_id} no existe")
        return _tx(row)

    def notifications(self, client_id: str):
        con = self._con()
        self._require_client(con, client_id)
        return con.execute("SELECT id, transaction_id, channel, recipient, subject, body, status "
                           "FROM outbox WHERE client_id = ? ORDER BY id DESC", (client_id,)).fetchall()

    @staticmethod
    def _require_client(con, client_id):
        if con.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone() is None:
            raise NotFoundError("CLIENT_NOT_FOUND", f"El cliente {client_id} no existe")

    # ------------------------------------------------------------------ writes
    def register_client(self, name: str, email: str, phone: str, channel: str = "email") -> Client:
        if not name or not name.strip() or len(name) > 200:
            raise ValidationError("VALIDATION_ERROR", "nombre inválido")
        if not _EMAIL.match(email or ""):
            raise ValidationError("VALIDATION_ERROR", "correo inválido")
        if not _PHONE.match(phone or ""):
            raise ValidationError("VALIDATION_ERROR", "teléfono inválido")
        if channel not in ("email", "sms"):
            raise ValidationError("VALIDATION_ERROR", "canal inválido")
        cid, now = _ids.new(), _now()
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("INSERT INTO clients VALUES (?,?,?,?,?,?,?)",
                        (cid, name.strip(), email, phone, channel, self.initial_balance, now))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return Client(cid, name.strip(), email, phone, channel, from_cents(self.initial_balance), now)

    def subscribe(self, client_id: str, fund_id: int, amount=None, idempotency_key: Optional[str] = None) -> Transaction:
        fund = self.fund(fund_id)
        amt = fund.minimum if amount is None else to_amount(amount)
        request = f"subscribe:{fund_id}:{amt}"
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            replay = self._replay(con, client_id, idempotency_key, request)
            if replay is not None:
                con.execute("COMMIT")
                return replay
            client = con.execute("SELECT balance, channel, email, phone FROM clients WHERE id = ?",
                                 (client_id,)).fetchone()
            if client is None:
                raise NotFoundError("CLIENT_NOT_FOUND", f"El cliente {client_id} no existe")
            if not fund.active:
                raise ConflictError("FUND_INACTIVE", f"El fondo {fund.name} no está activo")
            if amt < fund.minimum:
                raise ValidationError("BELOW_MINIMUM", f"El monto mínimo para vincularse al fondo {fund.name} "
                                                       f"es {format_cop(fund.minimum)}")
            if con.execute("SELECT 1 FROM subscriptions WHERE client_id = ? AND fund_id = ?",
                           (client_id, fund_id)).fetchone() is not None:
                raise ConflictError("ALREADY_SUBSCRIBED", f"Ya está vinculado al fondo {fund.name}")
            cents = to_cents(amt)
            balance = client[0]
            if balance < cents:
                raise InsufficientBalanceError(
                    "INSUFFICIENT_BALANCE", f"No tiene saldo disponible para vincularse al fondo {fund.name}")
            new_balance = balance - cents
            tx = Transaction(_ids.new(), client_id, fund_id, fund.name, "subscription", from_cents(cents),
                             from_cents(new_balance), _now(), idempotency_key)
            con.execute("UPDATE clients SET balance = ? WHERE id = ?", (new_balance, client_id))
            con.execute("INSERT INTO subscriptions VALUES (?,?,?,?,?)",
                        (client_id, fund_id, cents, tx.id, tx.created_at))
            self._record(con, tx, cents, new_balance, client, idempotency_key, request)
            con.execute("COMMIT")
            return tx
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def cancel(self, client_id: str, fund_id: int, idempotency_key: Optional[str] = None) -> Transaction:
        fund = self.fund(fund_id)
        request = f"cancel:{fund_id}"
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            replay = self._replay(con, client_id, idempotency_key, request)
            if replay is not None:
                con.execute("COMMIT")
                return replay
            client = con.execute("SELECT balance, channel, email, phone FROM clients WHERE id = ?",
                                 (client_id,)).fetchone()
            if client is None:
                raise NotFoundError("CLIENT_NOT_FOUND", f"El cliente {client_id} no existe")
            sub = con.execute("SELECT amount FROM subscriptions WHERE client_id = ? AND fund_id = ?",
                              (client_id, fund_id)).fetchone()
            if sub is None:
                raise ConflictError("NOT_SUBSCRIBED", f"No está vinculado al fondo {fund.name}")
            cents = sub[0]  # the stored subscribed amount, not the fund's current minimum
            new_balance = client[0] + cents
            tx = Transaction(_ids.new(), client_id, fund_id, fund.name, "cancellation", from_cents(cents),
                             from_cents(new_balance), _now(), idempotency_key)
            con.execute("UPDATE clients SET balance = ? WHERE id = ?", (new_balance, client_id))
            con.execute("DELETE FROM subscriptions WHERE client_id = ? AND fund_id = ?", (client_id, fund_id))
            self._record(con, tx, cents, new_balance, client, idempotency_key, request,
                         notify=self.notify_on_cancel)
            con.execute("COMMIT")
            return tx
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _replay(self, con, client_id, key, request) -> Optional[Transaction]:
        if key is None:
            return None
        row = con.execute("SELECT request, transaction_id FROM idempotency WHERE client_id = ? AND key = ?",
                          (client_id, key)).fetchone()
        if row is None:
            return None
        if row[0] != request:
            raise ConflictError("IDEMPOTENCY_KEY_REUSED", "La clave de idempotencia ya se usó con otra solicitud")
        return _tx(con.execute(f"SELECT {_TX_COLS} FROM transactions WHERE id = ?", (row[1],)).fetchone())

    def _record(self, con, tx: Transaction, cents, new_balance, client, key, request, notify=True):
        con.execute(f"INSERT INTO transactions ({_TX_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    (tx.id, tx.client_id, tx.fund_id, tx.fund_name, tx.kind, cents, new_balance,
                     tx.created_at, key))
        if key is not None:
            con.execute("INSERT INTO idempotency VALUES (?,?,?,?)", (tx.client_id, key, request, tx.id))
        if notify:
            channel = client[1]
            recipient = client[2] if channel == "email" else client[3]
            verb = "Suscripción" if tx.kind == "subscription" else "Cancelación"
            subject = f"{verb} al fondo {tx.fund_name}"
            body = (f"{verb} {tx.fund_name} por {format_cop(tx.amount)}. Tx {tx.id}. "
                    f"Saldo: {format_cop(tx.balance_after)}")
            if channel == "sms":
                body = body[:160]
            con.execute("INSERT INTO outbox VALUES (?,?,?,?,?,?,?,'pending',0,NULL,?,NULL)",
                        (_ids.new(), tx.client_id, tx.id, channel, recipient, subject, body, tx.created_at))

    def flush(self):
        """Checkpoint the WAL into the database file, fsynced."""
        self._con().execute("PRAGMA wal_checkpoint(FULL)")
