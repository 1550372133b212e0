"""The host's own accounts: sign-up, sign-in, refresh, sign-out, and operators made by a command.

* **Sign-up** registers a client and its account in one step, across two stores: the account
  is written ``pending`` under a new client id (:func:`fundcore.new_client_id`), then the engine
  registers the client under that id, then the account becomes ``active``. The id is the
  registration's idempotency key (the engine returns the client it has under an id, unchanged),
  so a step that failed is completed by doing it again: a definite refusal of the engine
  (``VALIDATION_ERROR``, ``STORAGE_ERROR``: nothing saved) removes the pending account; an
  ``OUTCOME_UNKNOWN``, or an account store that fails after the engine registered, leaves it
  pending, and the next sign-in (or the same sign-up again) registers again under the same id
  and activates it. No path makes two clients for one account.
* **Sign-in** answers the same ``INVALID_CREDENTIALS`` for an unknown email and a wrong
  password, after the same work: an unknown email is verified against a dummy hash. Before
  any hash is verified, the attempt is counted per account (email) and per address in fixed
  windows kept in the account store (so every worker counts together); past a limit the answer
  is ``RATE_LIMITED`` with the seconds left in the window.
* Passwords are hashed with argon2id (:data:`ARGON2_MEMORY_KIB` and the rest, through pwdlib), on threads of
  their own, at most :attr:`Passwords.threads` at once (each hash takes a core and 19 MiB); a
  hash made with other parameters is replaced at the next sign-in.
* Tokens: :mod:`.tokens`. Operators (role ``admin``) are made only by
  ``python -m fundcore_host.accounts create-operator`` (:func:`create_operator`).

Nothing here logs a password, a hash or a token: accounts are logged by id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
import os
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

import fundcore
import fundcore.aio

from ..config import Settings
from ..token import Role
from .store import (
    Account,
    AccountExistsError,
    AccountStore,
    AccountStoreError,
    PostgresAccountStore,
    Registration,
    SqliteAccountStore,
    StoredSession,
    normalize_email,
)
from .tokens import IssuedTokens, PageSession, access_token, new_family_id, new_refresh_token, refresh_token_digest

log = logging.getLogger("fundcore_host.accounts")

T = TypeVar("T")

#: Seconds a request waits at most for the account store (``FUNDCORE_OPERATION_TIMEOUT`` when
#: set, as for the engine; this, the engine's default, otherwise).
DEFAULT_STORE_TIMEOUT_S = 10.0


#: The fewest characters of a new password (sign-up, operators).
MIN_PASSWORD_CHARS = 12
#: The most characters of a password: bounds the work a request can ask of the hasher.
MAX_PASSWORD_CHARS = 128

#: argon2id's cost: OWASP's first recommended setting (19 MiB, 2 passes, 1 lane), the
#: Password Storage Cheat Sheet's minimum. About 25 ms per hash on one core of this project's
#: 2-core machine, against about 200 ms for pwdlib's default (RFC 9106's low-memory setting,
#: 64 MiB, 3 passes, 4 lanes), which would let a burst of sign-ins take the host's cores and
#: 64 MiB each. The rate limit bounds online guessing; these parameters bound offline guessing
#: from a stolen table. Stored hashes carry their parameters: a change here applies to new
#: hashes, and each older one is rehashed at its account's next sign-in.
ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


class InvalidCredentialsError(Exception):
    """Unknown email or wrong password (which one is never said)."""


class InvalidRefreshTokenError(Exception):
    """A refresh token that is unknown, expired, revoked or used before."""


class SignInLimitedError(Exception):
    """Too many sign-in attempts for this account or address in the current window."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RegistrationIncompleteError(Exception):
    """The engine registered a sign-up's client and the account store then failed: the account
    is pending (or active without tokens). The same sign-up again, or a sign-in, completes it."""


class WeakPasswordError(ValueError):
    """A password outside :data:`MIN_PASSWORD_CHARS` .. :data:`MAX_PASSWORD_CHARS` characters."""


def password_hasher() -> PasswordHash:
    """argon2id with :data:`ARGON2_MEMORY_KIB`, :data:`ARGON2_TIME_COST` and :data:`ARGON2_PARALLELISM`."""
    return PasswordHash(
        (Argon2Hasher(memory_cost=ARGON2_MEMORY_KIB, time_cost=ARGON2_TIME_COST, parallelism=ARGON2_PARALLELISM),)
    )


def normalized(password: str) -> str:
    """The password as it is hashed: Unicode NFKC, so that the same characters typed on two
    keyboards that encode them differently (``é`` as one code point or as ``e`` and an accent)
    are the same password (NIST SP 800-63B, 5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


def check_new_password(password: str) -> None:
    """Raises :class:`WeakPasswordError` for a password too short or too long."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise WeakPasswordError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")


class Passwords:
    """argon2id hashing and verification on threads of their own (``fundcore-hash_N``), at most
    :attr:`threads` at once: a burst of sign-ins queues instead of taking every core and a hash's
    memory per request."""

    def __init__(self, threads: int | None = None, *, prepare: bool = True) -> None:
        self.threads = threads or max(1, min(8, os.cpu_count() or 1))
        self._hasher = password_hasher()
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="fundcore-hash")
        self._dummy_lock = threading.Lock()
        self._dummy_hash: str | None = None
        if prepare:  # made now, on a hashing thread: the first unknown email waits for it no longer
            self._executor.submit(self._dummy)

    def _dummy(self) -> str:
        """A hash of a random password, made once: what an email without an account is verified
        against, so that its answer takes the time of a wrong password's."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
            return self._dummy_hash

    def hash_blocking(self, password: str) -> str:
        return self._hasher.hash(normalized(password))

    def verify_blocking(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether ``password`` matches (never for ``None``, after the same work), and the
        hash made with the current parameters when the stored one has others."""
        password = normalized(password)
        if password_hash is None:
            self._hasher.verify_and_update(password, self._dummy())
            return False, None
        try:
            return self._hasher.verify_and_update(password, password_hash)
        except Exception:  # a stored hash pwdlib cannot read: no match, and no detail in the log
            log.error("a stored password hash cannot be read (not argon2 or damaged)")
            return False, None

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.hash_blocking, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.verify_blocking, password, password_hash
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)


@dataclass(frozen=True)
class SignInLimits:
    """Failed sign-ins allowed per account and per address in each window of ``window_s``."""

    per_account: int = 5
    per_address: int = 20
    window_s: int = 900


def accounts_path(settings: Settings) -> Path:
    """The SQLite file of the accounts on the embedded store: ``FUNDCORE_ACCOUNTS_PATH``, or
    beside the store directory (``./data/fundcore`` -> ``./data/fundcore-accounts.sqlite3``)."""
    if settings.accounts_path:
        return Path(settings.accounts_path)
    store = Path(settings.data_path)
    return store.with_name(f"{store.name}-accounts.sqlite3")


def open_account_store(settings: Settings) -> AccountStore:
    """The account store of these settings: PostgreSQL (schema ``fundcore_host`` of
    ``FUNDCORE_DATABASE_URL``) when the engine runs there, else SQLite beside the embedded
    store. Nothing is opened until the first call."""
    if settings.database_url:
        timeout_s = settings.operation_timeout or DEFAULT_STORE_TIMEOUT_S
        return PostgresAccountStore(
            settings.database_url, timeout_s=timeout_s, redact=settings.redact, label=settings.store_label
        )
    return SqliteAccountStore(accounts_path(settings))


def _counter_key(kind: str, value: str) -> str:
    """A sign-in counter's key: the email or address hashed (no contact data in the table)."""
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


class Accounts:
    """Sign-up, sign-in, refresh and sign-out over an :class:`AccountStore`, whose calls run
    on threads of their own (``fundcore-accounts_N``), never on the event loop."""

    #: Seconds between two removals of expired refresh tokens (done by a sign-in).
    CLEANUP_EVERY_S = 3600.0

    def __init__(
        self,
        store: AccountStore,
        *,
        jwt_secret: str,
        access_ttl_s: int = 900,
        refresh_ttl_s: int = 14 * 86_400,
        session_ttl_s: int = 8 * 3600,
        limits: SignInLimits | None = None,
        passwords: Passwords | None = None,
        store_threads: int = 4,
        store_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.store_timeout_s = store_timeout_s
        self.passwords = passwords or Passwords()
        self.limits = limits or SignInLimits()
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.session_ttl_s = session_ttl_s
        self._secret = jwt_secret
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=store_threads, thread_name_prefix="fundcore-accounts")
        self._last_cleanup = 0.0
        #: A test seam: called (on a store thread) after the engine registered a sign-up's
        #: client and before its account is activated.
        self.after_engine_registration: Callable[[Account], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        return cls(
            open_account_store(settings),
            jwt_secret=settings.jwt_secret.get_secret_value(),
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl_s=settings.refresh_token_ttl_s,
            session_ttl_s=settings.session_ttl_s,
            limits=SignInLimits(
                settings.sign_in_max_per_account, settings.sign_in_max_per_address, settings.sign_in_window_s
            ),
            store_timeout_s=settings.operation_timeout or DEFAULT_STORE_TIMEOUT_S,
        )

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on a store thread, waited for at most :attr:`store_timeout_s`: a
        database that stops answering (a hung server, a silent network) is a 503 in that time,
        never a request left waiting. The thread itself waits on until the driver gives up."""
        call = asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        try:
            return await asyncio.wait_for(call, self.store_timeout_s)
        except TimeoutError:
            raise AccountStoreError(f"the account store did not answer within {self.store_timeout_s:g} s") from None

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.passwords.close()
        self.store.close()

    # ------------------------------------------------------------------ sign-up

    async def register(
        self, engine: fundcore.aio.Engine, registration: Registration, password: str
    ) -> tuple[fundcore.Client, Account]:
        """Registers a client and its account (returned active); raises :class:`AccountExistsError` for an email
        that has an account (a pending one is completed instead when the password is its own),
        the engine's errors, :class:`AccountStoreError` (nothing saved) and
        :class:`RegistrationIncompleteError` (the client is registered, the account not complete)."""
        check_new_password(password)
        password_hash = await self.passwords.hash(password)
        account = Account(
            id=str(uuid.uuid4()),
            email=normalize_email(registration.email),
            role="client",
            client_id=fundcore.new_client_id(),
            password_hash=password_hash,
            status="pending",
            created_at=self._clock(),
            registration=registration,
        )
        created = True
        try:
            await self._call(self.store.insert_account, account)
        except AccountExistsError as exists:
            existing = exists.account
            if existing.status != "pending" or existing.role != "client":
                raise
            matches, _ = await self.passwords.verify(password, existing.password_hash)
            if not matches:
                raise
            # the same person again after a sign-up that did not finish: complete it, with the
            # data sent now (the engine keeps what it has if it registered the id already)
            await self._call(self.store.set_registration, existing.id, registration)
            account, created = dataclasses.replace(existing, registration=registration), False
        client = await self._complete(engine, account, registration, remove_on_refusal=created)
        return client, dataclasses.replace(account, status="active", registration=None)

    async def sign_up(
        self, engine: fundcore.aio.Engine, registration: Registration, password: str
    ) -> tuple[fundcore.Client, IssuedTokens]:
        """:meth:`register`, then the tokens of the new account's first sign-in."""
        client, account = await self.register(engine, registration, password)
        return client, await self._first_sign_in(account, self._issue(account))

    async def sign_up_session(
        self, engine: fundcore.aio.Engine, registration: Registration, password: str
    ) -> tuple[fundcore.Client, PageSession]:
        """:meth:`register`, then the new account's first page session (the pages' sign-up)."""
        client, account = await self.register(engine, registration, password)
        return client, await self._first_sign_in(account, self.start_session(account))

    async def _first_sign_in(self, account: Account, signing_in: Awaitable[T]) -> T:
        """A new account's first tokens or session; the account is complete whatever happens,
        so an account store that fails here is RegistrationIncompleteError (signing in gives
        them)."""
        try:
            return await signing_in
        except AccountStoreError as error:
            log.warning("account %s is active but its first sign-in was not stored (%s)", account.id, error)
            raise RegistrationIncompleteError() from None

    async def _complete(
        self, engine: fundcore.aio.Engine, account: Account, registration: Registration, *, remove_on_refusal: bool
    ) -> fundcore.Client:
        """Registers a pending account's client under its id (idempotent), then activates it."""
        assert account.client_id is not None
        try:
            client = await engine.register_client(
                registration.name,
                registration.email,
                registration.phone,
                registration.channel,  # type: ignore[arg-type]  # the engine decides the channel
                client_id=account.client_id,
            )
        except fundcore.OutcomeUnknownError:
            log.warning("account %s stays pending: the client's registration may or may not be saved", account.id)
            raise
        except (fundcore.ValidationError, fundcore.StorageError):
            # nothing saved by this call; an account this request made has nothing else either
            if remove_on_refusal:
                try:
                    await self._call(self.store.delete_pending, account.id)
                except AccountStoreError as error:
                    log.warning("account %s stays pending (%s)", account.id, error)
            raise
        try:
            if self.after_engine_registration is not None:
                await self._call(self.after_engine_registration, account)
            await self._call(self.store.activate, account.id)
        except AccountStoreError as error:
            log.warning("account %s stays pending: its client is registered (%s)", account.id, error)
            raise RegistrationIncompleteError() from None
        log.info("account %s active for client %s", account.id, client.id)
        return client

    # ------------------------------------------------------------------ sign-in

    async def sign_in(self, engine: fundcore.aio.Engine, email: str, password: str, address: str) -> IssuedTokens:
        """Tokens for the account of ``email`` when ``password`` is its own (see :meth:`authenticate`)."""
        return await self._issue(await self.authenticate(engine, email, password, address))

    async def sign_in_session(
        self, engine: fundcore.aio.Engine, email: str, password: str, address: str
    ) -> PageSession:
        """A page session for the account of ``email`` when ``password`` is its own (see :meth:`authenticate`)."""
        return await self.start_session(await self.authenticate(engine, email, password, address))

    async def authenticate(self, engine: fundcore.aio.Engine, email: str, password: str, address: str) -> Account:
        """The active account of ``email`` when ``password`` is its own (a pending account is
        completed first); raises :class:`SignInLimitedError`, :class:`InvalidCredentialsError`,
        :class:`AccountStoreError` and, while completing a pending account, the engine's errors
        and :class:`RegistrationIncompleteError`."""
        key = normalize_email(email)
        account_key, address_key = _counter_key("account", key), _counter_key("address", address)
        now = self._clock()
        limits = self.limits
        counted = await self._call(self.store.count_attempts, [account_key, address_key], limits.window_s, now)
        over = [
            attempts
            for attempts, limit in zip(counted, (limits.per_account, limits.per_address), strict=True)
            if attempts.count > limit
        ]
        if over:
            ends = max(attempts.window_start + limits.window_s for attempts in over)
            log.info("sign-in refused: too many attempts (%s)", "account" if counted[0] in over else "address")
            raise SignInLimitedError(max(1, math.ceil(ends - now)))
        account = await self._call(self.store.account_by_email, key)
        matches, rehashed = await self.passwords.verify(password, account.password_hash if account else None)
        if account is None or not matches:
            log.info("sign-in refused: unknown email or wrong password")
            raise InvalidCredentialsError()
        if rehashed is not None:
            await self._best_effort(self.store.replace_password_hash, account.id, account.password_hash, rehashed)
        if account.status == "pending":
            if account.registration is None:
                raise AccountStoreError(f"pending account {account.id} has no registration to complete")
            await self._complete(engine, account, account.registration, remove_on_refusal=False)
            account = dataclasses.replace(account, status="active", registration=None)
        await self._best_effort(self.store.settle_attempts, [account_key], [address_key])
        return account

    async def _best_effort(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            await self._call(function, *args)
        except AccountStoreError as error:
            log.warning("account store: %s skipped (%s)", getattr(function, "__name__", "a call"), error)

    # ------------------------------------------------------------------ tokens

    async def _issue(self, account: Account) -> IssuedTokens:
        """A new sign-in's tokens: a new family with its first refresh token."""
        now = self._clock()
        refresh = new_refresh_token()
        await self._call(
            self.store.start_family,
            new_family_id(),
            account.id,
            refresh_token_digest(refresh),
            now,
            now + self.refresh_ttl_s,
        )
        if now - self._last_cleanup >= self.CLEANUP_EVERY_S:
            self._last_cleanup = now
            await self._best_effort(self.store.drop_expired, now)
        return IssuedTokens(
            access_token(self._secret, account, self.access_ttl_s, now), refresh, self.access_ttl_s, account
        )

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """A new access token and a new refresh token for a refresh token used once; raises
        :class:`InvalidRefreshTokenError` (a second use also revokes its family)."""
        now = self._clock()
        new = new_refresh_token()
        rotation = await self._call(
            self.store.rotate_refresh_token, refresh_token_digest(refresh_token), refresh_token_digest(new), now
        )
        if rotation.outcome == "reused":
            log.warning("a refresh token was used twice: its sign-in (token family %s) is revoked", rotation.family_id)
        if rotation.account is None:
            raise InvalidRefreshTokenError(rotation.outcome)
        return IssuedTokens(
            access_token(self._secret, rotation.account, self.access_ttl_s, now),
            new,
            self.access_ttl_s,
            rotation.account,
        )

    async def sign_out(self, refresh_token: str) -> None:
        """Revokes the sign-in (token family) of a refresh token; an unknown one changes nothing."""
        await self._call(self.store.revoke_family_of, refresh_token_digest(refresh_token))

    # ------------------------------------------------------------------ page sessions

    async def start_session(self, account: Account) -> PageSession:
        """A new page session of one of the host's accounts."""
        return await self.start_session_as(account.id, account.subject, account.role, account.email)

    async def start_session_as(self, account_id: str | None, subject: str, role: Role, label: str) -> PageSession:
        """A new page session acting as ``subject`` with ``role`` (``account_id``: the host's
        account, or ``None`` for a provider's user), showing ``label``: its cookie value,
        stored only as its SHA-256."""
        now = self._clock()
        token = new_refresh_token()
        session = StoredSession(account_id, subject, role, label, now + self.session_ttl_s)
        await self._call(self.store.start_session, refresh_token_digest(token), session, now)
        return PageSession(token, session)

    async def session(self, token: str) -> StoredSession | None:
        """The page session of a cookie value, while it lasts."""
        return await self._call(self.store.session, refresh_token_digest(token), self._clock())

    async def end_session(self, token: str) -> None:
        """Ends a page session (sign-out); an unknown one changes nothing."""
        await self._call(self.store.end_session, refresh_token_digest(token))


def create_operator(store: AccountStore, email: str, password: str, passwords: Passwords | None = None) -> Account:
    """An active operator account (role ``admin``); raises :class:`AccountExistsError`,
    :class:`WeakPasswordError` and :class:`AccountStoreError`. Blocks."""
    check_new_password(password)
    key = normalize_email(email)
    if "@" not in key or any(c.isspace() for c in key) or len(key) > fundcore.MAX_EMAIL_CHARS:
        raise ValueError("not an email address")
    hasher = passwords or Passwords(threads=1, prepare=False)
    try:
        password_hash = hasher.hash_blocking(password)
    finally:
        if passwords is None:
            hasher.close()
    account = Account(
        id=str(uuid.uuid4()),
        email=key,
        role="admin",
        client_id=None,
        password_hash=password_hash,
        status="active",
        created_at=time.time(),
    )
    store.insert_account(account)
    return account
