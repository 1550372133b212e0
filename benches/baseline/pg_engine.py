"""Baseline: the business rules of docs/rules.md in plain Python over PostgreSQL with psycopg 3.

This is what a Python team would write instead of using fundcore's PostgreSQL store, and it is
what the benchmarks compare that store against. Same rules, same Python API shape as
``fundcore.Engine`` (docs/apis.md), same tables:

* the schema is fundcore's own DDL (``core/src/store/postgres/migrations/0001_initial.sql``), created in
  the database the URL names when its tables are missing: money is ``NUMERIC(17, 2)`` (Python
  ``Decimal``, never a float), times ``timestamptz``, ids ``uuid`` (UUIDv7, time-ordered, so a
  client's history is a keyset range on (client, id));
* one transaction per subscribe or cancel: ``SELECT … FOR UPDATE`` on the client's row, then the
  idempotency key, the subscription, the checks, and the writes (balance, transaction,
  subscription, idempotency record, one outbox row per notification), then ``COMMIT``;
* a ``psycopg_pool.ConnectionPool`` shared by the calling threads (psycopg releases the GIL
  while it waits on the server).

Every statement is one round trip to the server, as are ``BEGIN`` and ``COMMIT``;
``round_trips`` counts them so the benchmarks can report it next to fundcore's.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

import psycopg
from psycopg_pool import ConnectionPool

from baseline.sqlite_engine import (  # the same records, errors, money and id helpers
    DEFAULT_FUNDS, Client, ConflictError, Fund, FundcoreError, InsufficientBalanceError,
    NotFoundError, StorageError, Subscription, Transaction, ValidationError, _ids, format_cop,
    to_amount,
)

__all__ = [
    "Engine", "Fund", "Client", "Transaction", "Subscription", "SCHEMA_FILE",
    "FundcoreError", "ValidationError", "NotFoundError", "ConflictError",
    "InsufficientBalanceError", "StorageError", "DEFAULT_FUNDS",
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_FILE = os.path.join(
    ROOT, "core", "src", "store", "postgres", "migrations", "0001_initial.sql"
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")

_TX_COLS = ("id, client_id, fund_id, fund_name, kind, amount, balance_after, created_at, "
            "idempotency_key")


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _tx(row) -> Transaction:
    return Transaction(str(row[0]), str(row[1]), row[2], row[3], row[4], row[5], row[6], _iso(row[7]), row[8])


class _Counted:
    """A counter shared by the calling threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int):
        with self._lock:
            self.value += n


class Engine:
    """``Engine(url)`` opens the baseline on the PostgreSQL database ``url`` names, creating
    fundcore's tables there when they are missing. ``pool_size`` connections are shared by the
    calling threads."""

    def __init__(self, url: str, *, pool_size: int = 8, initial_balance=Decimal("500000"),
                 notify_on_cancel: bool = True, locale: str = "es"):
        self.url = url
        self.initial_balance = to_amount(initial_balance)
        self.notify_on_cancel = notify_on_cancel
        self.locale = locale
        self._trips = _Counted()
        try:
            with psycopg.connect(url, autocommit=True) as con:
                self._create_schema(con)
                self._funds = {r[0]: Fund(r[0], r[1], r[2], r[3], r[4]) for r in con.execute(
                    "SELECT id, name, minimum, category, active FROM fundcore_funds ORDER BY id")}
            self._pool = ConnectionPool(url, min_size=pool_size, max_size=pool_size, open=True,
                                        kwargs={"autocommit": True}, name="baseline")
            self._pool.wait(timeout=30)
        except psycopg.Error as e:
            raise StorageError("STORAGE_ERROR", f"PostgreSQL: {e}") from e

    def _create_schema(self, con: psycopg.Connection):
        with open(SCHEMA_FILE) as f:
            ddl = f.read()
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(7365)")  # several processes may start at once
            if con.execute("SELECT to_regclass('fundcore_clients')").fetchone()[0] is None:
                con.execute(ddl)
                con.execute("INSERT INTO fundcore_settings (initial_balance) VALUES (%s)",
                            (self.initial_balance,))
                for fid, name, minimum, category in DEFAULT_FUNDS:
                    con.execute("INSERT INTO fundcore_funds (id, name, minimum, category, active) "
                                "VALUES (%s, %s, %s, %s, true)", (fid, name, minimum, category))

    @property
    def round_trips(self) -> int:
        """Statements sent, plus ``BEGIN`` and ``COMMIT``: each one waits for the server."""
        return self._trips.value

    def close(self):
        self._pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------------ reads
    def funds(self):
        return [self._funds[k] for k in sorted(self._funds)]

    def fund(self, fund_id: int) -> Fund:
        try:
            return self._funds[fund_id]
        except KeyError:
            raise NotFoundError("FUND_NOT_FOUND", f"No existe el fondo {fund_id}") from None

    def client(self, client_id: str) -> Client:
        with self._pool.connection() as con:
            self._trips.add(1)
            row = con.execute("SELECT id, name, email, phone, channel, balance, created_at "
                              "FROM fundcore_clients WHERE id = %s", (_client_uuid(client_id),)).fetchone()
        if row is None:
            raise NotFoundError("CLIENT_NOT_FOUND", f"No existe el cliente {client_id}")
        return Client(str(row[0]), row[1], row[2], row[3], row[4], row[5], _iso(row[6]))

    def subscriptions(self, client_id: str):
        with self._pool.connection() as con:
            self._require_client(con, client_id)
            rows = con.execute("SELECT fund_id, fund_name, amount, transaction_id, subscribed_at "
                               "FROM fundcore_subscriptions WHERE client_id = %s ORDER BY fund_id",
                               (_client_uuid(client_id),)).fetchall()
        return [Subscription(client_id, r[0], r[1], r[2], str(r[3]), _iso(r[4])) for r in rows]

    def history(self, client_id: str, limit: int = 50, before: Optional[str] = None):
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            raise ValidationError("VALIDATION_ERROR", "limit: debe estar entre 1 y 200")
        with self._pool.connection() as con:
            self._require_client(con, client_id)
            if before is None:
                rows = con.execute(f"SELECT {_TX_COLS} FROM fundcore_transactions WHERE client_id = %s "
                                   "ORDER BY id DESC LIMIT %s", (_client_uuid(client_id), limit)).fetchall()
            else:
                rows = con.execute(f"SELECT {_TX_COLS} FROM fundcore_transactions "
                                   "WHERE client_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
                                   (_client_uuid(client_id), _uuid(before, ValidationError("VALIDATION_ERROR", "before: debe ser el id de una transacción")), limit)).fetchall()
        return [_tx(r) for r in rows]

    def transaction(self, tx_id: str) -> Transaction:
        with self._pool.connection() as con:
            row = con.execute(f"SELECT {_TX_COLS} FROM fundcore_transactions WHERE id = %s",
                              (_uuid(tx_id, NotFoundError("TRANSACTION_NOT_FOUND", f"No existe la transacción {tx_id}")),)).fetchone()
        if row is None:
            raise NotFoundError("TRANSACTION_NOT_FOUND", f"No existe la transacción {tx_id}")
        return _tx(row)

    def notifications(self, client_id: str):
        """(id, transaction_id, channel, recipient, status) of the client's outbox rows, newest first."""
        with self._pool.connection() as con:
            self._require_client(con, client_id)
            rows = con.execute("SELECT id, transaction_id, channel, recipient, status FROM fundcore_outbox "
                               "WHERE client_id = %s ORDER BY transaction_id DESC",
                               (_client_uuid(client_id),)).fetchall()
        return [(str(r[0]), str(r[1]), r[2], r[3], r[4]) for r in rows]

    def _require_client(self, con, client_id: str):
        self._trips.add(1)
        if con.execute("SELECT 1 FROM fundcore_clients WHERE id = %s", (_client_uuid(client_id),)).fetchone() is None:
            raise NotFoundError("CLIENT_NOT_FOUND", f"No existe el cliente {client_id}")

    # ------------------------------------------------------------------ writes
    def register_client(self, name: str, email: str, phone: str, channel: str = "email") -> Client:
        if not name or not name.strip() or len(name) > 200:
            raise ValidationError("VALIDATION_ERROR", "name: nombre inválido")
        if not _EMAIL.match(email or ""):
            raise ValidationError("VALIDATION_ERROR", "email: correo inválido")
        if not _PHONE.match(phone or ""):
            raise ValidationError("VALIDATION_ERROR", "phone: teléfono inválido")
        if channel not in ("email", "sms"):
            raise ValidationError("VALIDATION_ERROR", "channel: canal inválido")
        cid, now = _ids.new(), datetime.now(timezone.utc)
        with self._pool.connection() as con:
            self._trips.add(1)
            con.execute("INSERT INTO fundcore_clients (id, name, email, phone, channel, balance, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (cid, name.strip(), email, phone, channel, self.initial_balance, now))
        return Client(cid, name.strip(), email, phone, channel, self.initial_balance, _iso(now))

    def subscribe(self, client_id: str, fund_id: int, amount=None, *,
                  idempotency_key: Optional[str] = None) -> Transaction:
        fund = self.fund(fund_id)
        amt = fund.minimum if amount is None else to_amount(amount)
        cid = _client_uuid(client_id)
        with self._pool.connection() as con, _Transaction(con, self._trips) as trips:
            client = self._lock_client(con, trips, cid, client_id)
            replay = self._replay(con, trips, cid, idempotency_key, ("subscribe", fund_id, amt))
            if replay is not None:
                return replay
            if not fund.active:
                raise ConflictError("FUND_INACTIVE", f"El fondo {fund.name} no recibe nuevas suscripciones")
            if amt < fund.minimum:
                raise ValidationError("BELOW_MINIMUM", f"El monto mínimo para vincularse al fondo "
                                                       f"{fund.name} es {format_cop(fund.minimum)}")
            trips.add(1)
            if con.execute("SELECT 1 FROM fundcore_subscriptions WHERE client_id = %s AND fund_id = %s",
                           (cid, fund_id)).fetchone() is not None:
                raise ConflictError("ALREADY_SUBSCRIBED", f"Ya tiene una suscripción activa al fondo {fund.name}")
            balance = client[0]
            if balance < amt:
                raise InsufficientBalanceError(
                    "INSUFFICIENT_BALANCE", f"No tiene saldo disponible para vincularse al fondo {fund.name}")
            tx = self._new_tx(client_id, fund, "subscription", amt, balance - amt, idempotency_key)
            self._write(con, trips, cid, tx, client, idempotency_key, ("subscribe", fund_id, amt), notify=True)
            trips.add(1)
            con.execute("INSERT INTO fundcore_subscriptions "
                        "(client_id, fund_id, fund_name, amount, transaction_id, subscribed_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (cid, fund_id, fund.name, amt, tx.id, tx.created_at))
            return tx

    def cancel(self, client_id: str, fund_id: int, *, idempotency_key: Optional[str] = None) -> Transaction:
        fund = self.fund(fund_id)
        cid = _client_uuid(client_id)
        with self._pool.connection() as con, _Transaction(con, self._trips) as trips:
            client = self._lock_client(con, trips, cid, client_id)
            replay = self._replay(con, trips, cid, idempotency_key, ("cancel", fund_id, None))
            if replay is not None:
                return replay
            trips.add(1)
            sub = con.execute("SELECT amount FROM fundcore_subscriptions WHERE client_id = %s AND fund_id = %s",
                              (cid, fund_id)).fetchone()
            if sub is None:
                raise ConflictError("NOT_SUBSCRIBED", f"No tiene una suscripción activa al fondo {fund.name}")
            refund = sub[0]  # the stored subscribed amount, not the fund's current minimum
            tx = self._new_tx(client_id, fund, "cancellation", refund, client[0] + refund, idempotency_key)
            self._write(con, trips, cid, tx, client, idempotency_key, ("cancel", fund_id, None),
                        notify=self.notify_on_cancel)
            trips.add(1)
            con.execute("DELETE FROM fundcore_subscriptions WHERE client_id = %s AND fund_id = %s", (cid, fund_id))
            return tx

    @staticmethod
    def _lock_client(con, trips, cid, client_id: str):
        trips.add(1)
        row = con.execute("SELECT balance, channel, email, phone, name FROM fundcore_clients "
                          "WHERE id = %s FOR UPDATE", (cid,)).fetchone()
        if row is None:
            raise NotFoundError("CLIENT_NOT_FOUND", f"No existe el cliente {client_id}")
        return row

    @staticmethod
    def _replay(con, trips, cid, key: Optional[str], request) -> Optional[Transaction]:
        if key is None:
            return None
        trips.add(1)
        row = con.execute(f"SELECT k.request_kind, k.request_fund_id, k.request_amount, "
                          f"{', '.join('t.' + c.strip() for c in _TX_COLS.split(','))} "
                          "FROM fundcore_idempotency_keys k JOIN fundcore_transactions t "
                          "ON t.client_id = k.client_id AND t.id = k.transaction_id "
                          "WHERE k.client_id = %s AND k.key = %s", (cid, key)).fetchone()
        if row is None:
            return None
        if tuple(row[:3]) != request:
            raise ConflictError("IDEMPOTENCY_KEY_REUSED", f"La clave de idempotencia '{key}' ya se usó "
                                                          "para otra solicitud")
        return _tx(row[3:])

    @staticmethod
    def _new_tx(client_id, fund, kind, amount, balance_after, key) -> Transaction:
        # ISO text with microseconds, as the reads return it (the server parses it as timestamptz)
        return Transaction(_ids.new(), client_id, fund.id, fund.name, kind, amount, balance_after,
                           _iso(datetime.now(timezone.utc)), key)

    def _write(self, con, trips, cid, tx: Transaction, client, key, request, notify: bool):
        trips.add(1)
        con.execute("UPDATE fundcore_clients SET balance = %s WHERE id = %s", (tx.balance_after, cid))
        trips.add(1)
        con.execute("INSERT INTO fundcore_transactions "
                    "(client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at, idempotency_key) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (cid, tx.id, tx.fund_id, tx.fund_name, tx.kind, tx.amount, tx.balance_after,
                     tx.created_at, key))
        if key is not None:
            trips.add(1)
            con.execute("INSERT INTO fundcore_idempotency_keys "
                        "(client_id, key, request_kind, request_fund_id, request_amount, transaction_id) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (cid, key, *request, tx.id))
        if notify:
            channel, email, phone, name = client[1], client[2], client[3], client[4]
            trips.add(1)
            con.execute("INSERT INTO fundcore_outbox "
                        "(client_id, transaction_id, id, channel, recipient, client_name, locale, status, "
                        "attempts, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s)",
                        (cid, tx.id, _ids.new(), channel, email if channel == "email" else phone, name,
                         self.locale, tx.created_at))


class _Transaction:
    """``BEGIN`` … ``COMMIT`` (``ROLLBACK`` on any exception); counts the round trips of one
    operation (``add``) and adds them to the engine's count at the end."""

    def __init__(self, con: psycopg.Connection, total: _Counted):
        self.con, self.total, self.trips = con, total, 0

    def add(self, n: int):
        self.trips += n

    def __enter__(self) -> "_Transaction":
        self.trips += 1
        self.con.execute("BEGIN")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.trips += 1
        try:
            self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.total.add(self.trips)
        return False


def _uuid(text: str, error: FundcoreError) -> uuid.UUID:
    """An id from the caller; ``error`` when it is not a UUID (it names no record)."""
    try:
        return uuid.UUID(text)
    except (TypeError, ValueError, AttributeError):
        raise error from None


def _client_uuid(client_id: str) -> uuid.UUID:
    return _uuid(client_id, NotFoundError("CLIENT_NOT_FOUND", f"No existe el cliente {client_id}"))
