"""Where the host's own accounts live: :class:`AccountStore`, with two backends.

* :class:`SqliteAccountStore` (the standard library's ``sqlite3``, WAL) when the host runs on the
  embedded store: one process serves it, so one SQLite file beside the store directory
  (``<FUNDCORE_DATA>-accounts.sqlite3``, or ``FUNDCORE_ACCOUNTS_PATH``) is enough, and the
  operator command may write it while the host runs.
* :class:`PostgresAccountStore` (psycopg 3, a small connection pool) when it runs on
  PostgreSQL: the engine's database (``FUNDCORE_DATABASE_URL``), in a schema of its own
  (:data:`PG_SCHEMA`), so every worker of every host sees the same accounts, refresh tokens and
  sign-in counters.

The tables: ``accounts`` (the email as the key, normalized by :func:`normalize_email`; the
client id; the role; the argon2id hash; ``pending`` or ``active``; while pending, the
registration to complete), ``token_families`` (one per sign-in; revoked or not; its expiry),
``refresh_tokens`` (only the SHA-256 of each token; its family; used or not) and
``sign_in_attempts`` (a counter per key in a fixed window) and ``page_sessions`` (the pages'
sign-ins, with the host's accounts or a provider's: only the SHA-256 of each session cookie; as
whom; its expiry).

Every method blocks: the app calls them on threads of its own (:class:`~.accounts.Accounts`).
A failure of the store itself (unreachable, locked, broken) is :class:`AccountStoreError`, whose
text never holds a password, hash, token or the database's password.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ..logs import printable
from ..token import Role, is_role

log = logging.getLogger("fundcore_host.accounts")

#: The PostgreSQL schema of the accounts (created when missing).
PG_SCHEMA = "fundcore_host"
#: An advisory lock key held while the schema is created, so that workers starting at once do
#: not race on the catalogue (``CREATE ... IF NOT EXISTS`` alone can fail with a duplicate).
_PG_SCHEMA_LOCK = 0x66636F7265  # "fcore"

#: The ``application_name`` of the account store's PostgreSQL connections (``pg_stat_activity``).
APPLICATION_NAME = "fundcore-accounts"

AccountStatus = Literal["pending", "active"]
#: What happened to a refresh token presented for rotation.
RotationOutcome = Literal["rotated", "unknown", "expired", "revoked", "reused"]


@dataclass(frozen=True)
class StoredSession:
    """A page session as stored: who (an account of the host's, or a provider's user: then
    ``account_id`` is ``None``), as whom (the subject and role the pages act as), the name the
    pages show, and when it ends."""

    account_id: str | None
    subject: str
    role: Role
    label: str
    expires_at: float


class AccountStoreError(Exception):
    """The account store cannot be used right now (unreachable, locked, broken)."""


class AccountExistsError(Exception):
    """An account with this email exists already (``account`` is it)."""

    def __init__(self, account: Account) -> None:
        super().__init__("an account with this email exists")
        self.account = account


@dataclass(frozen=True)
class Registration:
    """What a pending account needs to register its client with the engine."""

    name: str
    email: str
    phone: str
    channel: str

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "email": self.email, "phone": self.phone, "channel": self.channel})

    @classmethod
    def from_json(cls, text: str) -> Registration:
        data = json.loads(text)
        return cls(name=data["name"], email=data["email"], phone=data["phone"], channel=data["channel"])


@dataclass(frozen=True)
class Account:
    """One account: a client's (``client_id`` set) or an operator's (role ``admin``)."""

    id: str
    email: str
    role: Role
    client_id: str | None
    password_hash: str
    status: AccountStatus
    created_at: float
    #: While ``pending``: the registration to complete with the engine.
    registration: Registration | None = None

    @property
    def subject(self) -> str:
        """The ``sub`` of its access tokens: the client id, or the account id of an operator."""
        return self.client_id or self.id

    def __repr__(self) -> str:  # the hash stays out of reprs, and so out of any log
        return f"Account(id={self.id!r}, role={self.role!r}, client_id={self.client_id!r}, status={self.status!r})"


@dataclass(frozen=True)
class Rotation:
    """The result of :meth:`AccountStore.rotate_refresh_token`: ``account`` only when rotated."""

    outcome: RotationOutcome
    account: Account | None = None
    family_id: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class Attempts:
    """A key's counter after one more attempt: how many in the window that started at ``window_start``."""

    count: int
    window_start: float


def normalize_email(email: str) -> str:
    """The key of an account: the address trimmed and lower-cased.

    The engine trims an address and lower-cases its domain; the local part is lower-cased here
    too, so ``Ana@example.com`` and ``ana@example.com`` are one account (a second account that
    differs from the first only in case would be a trap for the person and an attacker alike).
    """
    return email.strip().lower()


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...


# One text per statement; ``{t}`` is the tables' prefix (the schema on PostgreSQL), ``?`` a parameter.
_ACCOUNT_COLUMNS = "id, email, role, client_id, password_hash, status, created_at, registration"
_SQL = {
    "insert_account": (
        f"INSERT INTO {{t}}accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING"
    ),
    "account_by_email": f"SELECT {_ACCOUNT_COLUMNS} FROM {{t}}accounts WHERE email = ?",
    "account_by_id": f"SELECT {_ACCOUNT_COLUMNS} FROM {{t}}accounts WHERE id = ?",
    "activate": "UPDATE {t}accounts SET status = 'active', registration = NULL WHERE id = ?",
    "set_registration": "UPDATE {t}accounts SET registration = ? WHERE id = ? AND status = 'pending'",
    "delete_pending": "DELETE FROM {t}accounts WHERE id = ? AND status = 'pending'",
    "set_password_hash": "UPDATE {t}accounts SET password_hash = ? WHERE id = ? AND password_hash = ?",
    "insert_family": (
        "INSERT INTO {t}token_families (id, account_id, created_at, expires_at, revoked) VALUES (?, ?, ?, ?, FALSE)"
    ),
    "insert_token": (
        "INSERT INTO {t}refresh_tokens (token_hash, family_id, account_id, issued_at, expires_at, used) "
        "VALUES (?, ?, ?, ?, ?, FALSE)"
    ),
    "token": (
        "SELECT r.family_id, r.account_id, r.expires_at, r.used, f.revoked "
        "FROM {t}refresh_tokens r JOIN {t}token_families f ON f.id = r.family_id WHERE r.token_hash = ?"
    ),
    "use_token": "UPDATE {t}refresh_tokens SET used = TRUE WHERE token_hash = ?",
    "revoke_family": "UPDATE {t}token_families SET revoked = TRUE WHERE id = ?",
    "family_of": "SELECT family_id FROM {t}refresh_tokens WHERE token_hash = ?",
    "count_attempt": (
        "INSERT INTO {t}sign_in_attempts AS a (key, window_start, count) VALUES (?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET "
        "count = CASE WHEN a.window_start <= ? THEN 1 ELSE a.count + 1 END, "
        "window_start = CASE WHEN a.window_start <= ? THEN excluded.window_start ELSE a.window_start END "
        "RETURNING count, window_start"
    ),
    "forget_attempts": "DELETE FROM {t}sign_in_attempts WHERE key = ?",
    "uncount_attempt": "UPDATE {t}sign_in_attempts SET count = count - 1 WHERE key = ? AND count > 0",
    "drop_old_attempts": "DELETE FROM {t}sign_in_attempts WHERE window_start <= ?",
    "drop_old_families": "DELETE FROM {t}token_families WHERE expires_at <= ?",
    "drop_old_tokens": "DELETE FROM {t}refresh_tokens WHERE expires_at <= ?",
    "insert_session": (
        "INSERT INTO {t}page_sessions (token_hash, account_id, subject, role, label, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    ),
    "session": (
        "SELECT s.account_id, s.subject, s.role, s.label, s.expires_at, a.status "
        "FROM {t}page_sessions s LEFT JOIN {t}accounts a ON a.id = s.account_id WHERE s.token_hash = ?"
    ),
    "end_session": "DELETE FROM {t}page_sessions WHERE token_hash = ?",
    "drop_old_sessions": "DELETE FROM {t}page_sessions WHERE expires_at <= ?",
}

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS {t}accounts ("
    " id TEXT PRIMARY KEY,"
    " email TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('client', 'admin')),"
    " client_id TEXT UNIQUE,"
    " password_hash TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('pending', 'active')),"
    " created_at DOUBLE PRECISION NOT NULL,"
    " registration TEXT,"
    " CHECK ((role = 'client') = (client_id IS NOT NULL)))",
    "CREATE TABLE IF NOT EXISTS {t}token_families ("
    " id TEXT PRIMARY KEY,"
    " account_id TEXT NOT NULL REFERENCES {t}accounts (id) ON DELETE CASCADE,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL,"
    " revoked BOOLEAN NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {t}refresh_tokens ("
    " token_hash TEXT PRIMARY KEY,"
    " family_id TEXT NOT NULL REFERENCES {t}token_families (id) ON DELETE CASCADE,"
    " account_id TEXT NOT NULL REFERENCES {t}accounts (id) ON DELETE CASCADE,"
    " issued_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL,"
    " used BOOLEAN NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON {t}refresh_tokens (family_id)",
    "CREATE TABLE IF NOT EXISTS {t}sign_in_attempts ("
    " key TEXT PRIMARY KEY,"
    " window_start DOUBLE PRECISION NOT NULL,"
    " count INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sign_in_attempts_window ON {t}sign_in_attempts (window_start)",
    # the pages' sign-ins (auth/sessions.py): only the SHA-256 of each session cookie
    "CREATE TABLE IF NOT EXISTS {t}page_sessions ("
    " token_hash TEXT PRIMARY KEY,"
    " account_id TEXT REFERENCES {t}accounts (id) ON DELETE CASCADE,"
    " subject TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('client', 'admin')),"
    " label TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS page_sessions_expiry ON {t}page_sessions (expires_at)",
]


def _account(row: Sequence[Any] | None) -> Account | None:
    if row is None:
        return None
    id_, email, role, client_id, password_hash, status, created_at, registration = row
    if not is_role(role) or status not in ("pending", "active"):
        raise AccountStoreError(f"account {id_} has an unknown role or status")
    return Account(
        id=str(id_),
        email=str(email),
        role=role,
        client_id=str(client_id) if client_id is not None else None,
        password_hash=str(password_hash),
        status="pending" if status == "pending" else "active",
        created_at=float(created_at),
        registration=Registration.from_json(registration) if registration else None,
    )


class AccountStore(ABC):
    """The accounts, refresh tokens and sign-in counters; every method blocks (call it off the
    event loop) and raises :class:`AccountStoreError` when the store cannot be used."""

    #: What the log calls this store.
    label: str

    def __init__(self, prefix: str) -> None:
        self._sql = {name: text.replace("{t}", prefix) for name, text in _SQL.items()}
        self._schema = [text.replace("{t}", prefix) for text in _SCHEMA]

    @abstractmethod
    def _transaction(self) -> Any:
        """A context manager: a cursor inside one transaction, committed when the block ends
        without an exception, rolled back otherwise; errors of the driver become
        :class:`AccountStoreError`."""

    def _run(self, cursor: _Cursor, name: str, *params: Any) -> Any:
        return cursor.execute(self._sql[name], params)

    @abstractmethod
    def _lock_token(self, cursor: _Cursor, token_hash: str) -> None:
        """Serialize the rotations of one token (PostgreSQL: its row is locked; SQLite: the whole
        write transaction already is)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the store opens them again when called after)."""

    # ------------------------------------------------------------------ accounts

    def insert_account(self, account: Account) -> None:
        """Adds ``account``; raises :class:`AccountExistsError` (with the stored one) when its email
        has one already."""
        with self._transaction() as cursor:
            self._run(
                cursor,
                "insert_account",
                account.id,
                account.email,
                account.role,
                account.client_id,
                account.password_hash,
                account.status,
                account.created_at,
                account.registration.to_json() if account.registration else None,
            )
            if cursor.rowcount == 1:
                return
            existing = _account(self._run(cursor, "account_by_email", account.email).fetchone())
        if existing is None:  # removed between the two statements: the caller tries again
            raise AccountStoreError("an account was removed while another was added with its email")
        raise AccountExistsError(existing)

    def account_by_email(self, email: str) -> Account | None:
        with self._transaction() as cursor:
            return _account(self._run(cursor, "account_by_email", email).fetchone())

    def account_by_id(self, account_id: str) -> Account | None:
        with self._transaction() as cursor:
            return _account(self._run(cursor, "account_by_id", account_id).fetchone())

    def activate(self, account_id: str) -> None:
        """The account's client is registered: ``active``, its registration data dropped."""
        with self._transaction() as cursor:
            self._run(cursor, "activate", account_id)

    def set_registration(self, account_id: str, registration: Registration) -> None:
        """A pending account's registration, replaced (a repeated sign-up's data)."""
        with self._transaction() as cursor:
            self._run(cursor, "set_registration", registration.to_json(), account_id)

    def delete_pending(self, account_id: str) -> bool:
        """Removes a pending account (nothing was registered for it); an active one stays."""
        with self._transaction() as cursor:
            return bool(self._run(cursor, "delete_pending", account_id).rowcount)

    def replace_password_hash(self, account_id: str, old_hash: str, new_hash: str) -> None:
        """The same password hashed with the current parameters (only if the hash is still ``old_hash``)."""
        with self._transaction() as cursor:
            self._run(cursor, "set_password_hash", new_hash, account_id, old_hash)

    # ------------------------------------------------------------------ refresh tokens

    def start_family(self, family_id: str, account_id: str, token_hash: str, now: float, expires_at: float) -> None:
        """A new sign-in: its family and first refresh token."""
        with self._transaction() as cursor:
            self._run(cursor, "insert_family", family_id, account_id, now, expires_at)
            self._run(cursor, "insert_token", token_hash, family_id, account_id, now, expires_at)

    def rotate_refresh_token(self, token_hash: str, new_token_hash: str, now: float) -> Rotation:
        """Uses a refresh token once: a new one in its family takes its place (same expiry).

        A token already used revokes its whole family (``reused``): one of the two users of
        the token is not its owner. An unknown, expired or revoked token changes nothing.
        Concurrent uses of one token are serialized: exactly one rotates it.
        """
        with self._transaction() as cursor:
            self._lock_token(cursor, token_hash)
            row = self._run(cursor, "token", token_hash).fetchone()
            if row is None:
                return Rotation("unknown")
            family_id, account_id, expires_at, used, revoked = row
            if revoked:
                return Rotation("revoked")
            if used:
                self._run(cursor, "revoke_family", family_id)
                return Rotation("reused", family_id=str(family_id))
            if float(expires_at) <= now:
                return Rotation("expired")
            account = _account(self._run(cursor, "account_by_id", account_id).fetchone())
            if account is None or account.status != "active":
                return Rotation("unknown")
            self._run(cursor, "use_token", token_hash)
            self._run(cursor, "insert_token", new_token_hash, family_id, account_id, now, expires_at)
            return Rotation("rotated", account, str(family_id), float(expires_at))

    def revoke_family_of(self, token_hash: str) -> bool:
        """Revokes the family of a refresh token (sign-out); false for an unknown token."""
        with self._transaction() as cursor:
            row = self._run(cursor, "family_of", token_hash).fetchone()
            if row is None:
                return False
            self._run(cursor, "revoke_family", row[0])
            return True

    # ------------------------------------------------------------------ sign-in counters

    def count_attempts(self, keys: Sequence[str], window_s: float, now: float) -> list[Attempts]:
        """One more attempt for each key, in its fixed window (a window that ended starts anew
        now): the counts after it. Counters whose window ended are dropped on the way."""
        ended = now - window_s
        with self._transaction() as cursor:
            self._run(cursor, "drop_old_attempts", ended)
            counted = []
            for key in keys:
                count, window_start = self._run(cursor, "count_attempt", key, now, ended, ended).fetchone()
                counted.append(Attempts(int(count), float(window_start)))
            return counted

    def settle_attempts(self, forget: Sequence[str], uncount: Sequence[str]) -> None:
        """After a successful sign-in: the ``forget`` counters removed, the ``uncount`` ones
        given back the attempt that succeeded."""
        with self._transaction() as cursor:
            for key in forget:
                self._run(cursor, "forget_attempts", key)
            for key in uncount:
                self._run(cursor, "uncount_attempt", key)

    def drop_expired(self, now: float) -> None:
        """Removes the refresh tokens, families and page sessions past their expiry."""
        with self._transaction() as cursor:
            self._run(cursor, "drop_old_tokens", now)
            self._run(cursor, "drop_old_families", now)
            self._run(cursor, "drop_old_sessions", now)

    # ------------------------------------------------------------------ page sessions

    def start_session(self, token_hash: str, session: StoredSession, now: float) -> None:
        """A sign-in through the pages: its session (the cookie's SHA-256)."""
        with self._transaction() as cursor:
            self._run(
                cursor,
                "insert_session",
                token_hash,
                session.account_id,
                session.subject,
                session.role,
                session.label,
                now,
                session.expires_at,
            )

    def session(self, token_hash: str, now: float) -> StoredSession | None:
        """A session that has not expired, whose account (for the host's own accounts) is
        active; ``None`` otherwise."""
        with self._transaction() as cursor:
            row = self._run(cursor, "session", token_hash).fetchone()
        if row is None:
            return None
        account_id, subject, role, label, expires_at, status = row
        if float(expires_at) <= now or not is_role(role):
            return None
        if account_id is not None and status != "active":
            return None  # the account went away (or was never completed)
        return StoredSession(
            str(account_id) if account_id is not None else None, str(subject), role, str(label), float(expires_at)
        )

    def end_session(self, token_hash: str) -> None:
        """Signs a page session out (an unknown one changes nothing)."""
        with self._transaction() as cursor:
            self._run(cursor, "end_session", token_hash)


# ---------------------------------------------------------------------------------- SQLite


class SqliteAccountStore(AccountStore):
    """The accounts in one SQLite file (WAL), for a host on the embedded store (one process).

    One connection, used by one thread at a time; it is opened at the first call (and again
    after :meth:`close` or a broken connection). Writes take the database's write lock at their
    start (``BEGIN IMMEDIATE``), so a rotation reads and marks its token under that lock.
    ``busy_timeout_s``: how long a call waits for another process's lock (the operator command)
    before it fails.
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0) -> None:
        super().__init__("")
        self.path = Path(path)
        self.label = f"SQLite {self.path}"
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("BEGIN IMMEDIATE")
            for statement in self._schema:
                connection.execute(statement)
            connection.execute("COMMIT")
        except BaseException:
            connection.close()
            raise
        with suppress(OSError):
            self.path.chmod(0o600)  # hashes and token digests: the host's user only
        self._connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            try:
                connection = self._connect()
                cursor = connection.cursor()
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                self._drop_connection()
                raise AccountStoreError(f"the account store cannot be used: {error}") from None
            try:
                yield cursor
                cursor.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback_quietly(connection)
                raise AccountStoreError(f"the account store failed: {error}") from None
            except BaseException:
                self._rollback_quietly(connection)
                raise

    def _rollback_quietly(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _lock_token(self, cursor: _Cursor, token_hash: str) -> None:
        return None  # BEGIN IMMEDIATE holds the database's write lock already

    def close(self) -> None:
        with self._lock:
            self._drop_connection()


# ---------------------------------------------------------------------------------- PostgreSQL


class PostgresAccountStore(AccountStore):
    """The accounts in the engine's PostgreSQL database, schema :data:`PG_SCHEMA`, shared by
    every worker of every host on that database.

    Connections come from a small pool (``max_connections``), opened at the first call; the
    schema is created then if missing, under an advisory lock. A rotation locks its token's row
    (``SELECT ... FOR UPDATE``), so two workers given one token at once rotate it once and the
    second sees it used. ``redact`` removes the database password from an error's text.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 4,
        timeout_s: float = 10.0,
        redact: Callable[[str], str] = lambda text: text,
        label: str = "PostgreSQL",
    ) -> None:
        super().__init__(f"{PG_SCHEMA}.")
        self.label = f"{label}, schema {PG_SCHEMA}"
        self._url = url
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        self._redact = redact
        self._lock = threading.Lock()
        self._pool: Any = None

    def _sql_for_psycopg(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _open_pool(self) -> Any:
        with self._lock:
            if self._pool is not None:
                return self._pool
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(
                self._url,
                min_size=1,
                max_size=self._max_connections,
                timeout=self._timeout_s,
                kwargs={
                    "connect_timeout": max(1, round(self._timeout_s)),
                    "autocommit": False,
                    "application_name": APPLICATION_NAME,
                    # a connection whose sent data goes unacknowledged this long is dropped (a
                    # silent network); idle ones are probed
                    "tcp_user_timeout": max(1000, round(self._timeout_s * 1000)),
                    "keepalives": 1,
                    "keepalives_idle": 30,
                },
                check=ConnectionPool.check_connection,
                open=False,
                name="fundcore-accounts",
            )
            try:
                pool.open(wait=True, timeout=self._timeout_s)
                with pool.connection() as connection, connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
                    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
                    for statement in self._schema:
                        cursor.execute(self._sql_for_psycopg(statement))
            except Exception as error:
                pool.close()
                raise AccountStoreError(
                    f"the account store cannot be used: {self._redact(type(error).__name__ + ': ' + str(error))}"
                ) from None
            self._pool = pool
            return pool

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._open_pool()
        try:
            with pool.connection() as connection, connection.cursor() as cursor:
                yield _PgCursor(cursor, self._sql_for_psycopg)
        except (psycopg.Error, PoolTimeout) as error:
            text = self._redact(f"{type(error).__name__}: {error}".strip())
            raise AccountStoreError(f"the account store failed: {printable(text)}") from None

    def _lock_token(self, cursor: _Cursor, token_hash: str) -> None:
        cursor.execute(f"SELECT 1 FROM {PG_SCHEMA}.refresh_tokens WHERE token_hash = ? FOR UPDATE", (token_hash,))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class _PgCursor:
    """A psycopg cursor that takes the ``?`` parameters of :data:`_SQL`."""

    def __init__(self, cursor: Any, translate: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _PgCursor:
        self._cursor.execute(self._translate(sql), params)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)
