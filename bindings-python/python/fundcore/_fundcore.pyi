"""Type stubs of the native module ``fundcore._fundcore`` (re-exported by ``fundcore``)."""

import datetime
import os
from decimal import Decimal
from typing import Literal, TypeAlias, TypedDict, final

from fundcore._notifier import Notifier

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "ERROR_CODES",
    "MAX_AMOUNT",
    "MAX_EMAIL_CHARS",
    "MAX_EMAIL_LOCAL_BYTES",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_NAME_CHARS",
    "MAX_PAGE",
    "MAX_PHONE_DIGITS",
    "MIN_PHONE_DIGITS",
    "MINOR_DIGITS",
    "SMS_MAX_CHARS",
    "Client",
    "DispatchReport",
    "Engine",
    "Fund",
    "HistoryPage",
    "Notification",
    "Subscription",
    "Transaction",
    "format_cop",
]

__version__: str
MAX_PAGE: int
"""The largest page of history a caller may ask for."""
MAX_NAME_CHARS: int
"""The longest client name, in characters (after trimming)."""
MAX_EMAIL_CHARS: int
"""The longest email address, in characters."""
MAX_EMAIL_LOCAL_BYTES: int
"""The longest local part of an email address (before the ``@``), in bytes."""
MAX_IDEMPOTENCY_KEY_CHARS: int
"""The longest idempotency key, in characters."""
MIN_PHONE_DIGITS: int
"""The fewest digits of an E.164 phone number."""
MAX_PHONE_DIGITS: int
"""The most digits of an E.164 phone number."""
MINOR_DIGITS: int
"""Fractional digits of money."""
MAX_AMOUNT: Decimal
"""The largest amount of one subscription."""
SMS_MAX_CHARS: int
"""The longest SMS body."""
CHANNELS: tuple[str, ...]
"""The notification channels: ``("email", "sms")``."""
CATEGORIES: tuple[str, ...]
"""The fund categories: ``("FPV", "FIC")``."""
ERROR_CODES: dict[str, int]
"""Every error code with the HTTP status a REST API answers it with."""

_Amount: TypeAlias = Decimal | int | str
"""A money argument. ``float`` is refused with ``TypeError``."""

# What each record's ``to_dict()`` returns: its JSON form (money as strings with 2 decimals,
# times as RFC 3339 text in UTC with microseconds, ids as UUID text).

class _FundDict(TypedDict):
    id: int
    name: str
    minimum: str
    category: Literal["FPV", "FIC"]
    active: bool

class _ClientDict(TypedDict):
    id: str
    name: str
    email: str
    phone: str
    channel: Literal["email", "sms"]
    balance: str
    created_at: str

class _SubscriptionDict(TypedDict):
    client_id: str
    fund_id: int
    fund_name: str
    amount: str
    transaction_id: str
    subscribed_at: str

class _TransactionDict(TypedDict):
    id: str
    client_id: str
    fund_id: int
    fund_name: str
    kind: Literal["subscription", "cancellation"]
    amount: str
    balance_after: str
    created_at: str
    idempotency_key: str | None

class _NotificationDict(TypedDict):
    id: str
    client_id: str
    transaction_id: str
    channel: Literal["email", "sms"]
    recipient: str
    subject: str
    body: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None

class _HistoryPageDict(TypedDict):
    items: list[_TransactionDict]
    next: str | None

class _DispatchReportDict(TypedDict):
    delivered: int
    retried: int
    failed: int

def format_cop(amount: _Amount) -> str:
    """``format_cop(Decimal("75000"))`` is ``"COP $75.000"``."""

@final
class Fund:
    """An investment fund of the catalogue (immutable)."""

    def __new__(
        cls,
        id: int,
        name: str,
        minimum: _Amount,
        category: Literal["FPV", "FIC"],
        active: bool = True,
    ) -> Fund: ...
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def minimum(self) -> Decimal: ...
    @property
    def category(self) -> Literal["FPV", "FIC"]: ...
    @property
    def active(self) -> bool: ...
    def to_dict(self) -> _FundDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Client:
    """A registered client and their available balance (immutable)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def phone(self) -> str: ...
    @property
    def channel(self) -> Literal["email", "sms"]: ...
    @property
    def balance(self) -> Decimal: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    def to_dict(self) -> _ClientDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Subscription:
    """An active subscription of a client to a fund (immutable)."""

    @property
    def client_id(self) -> str: ...
    @property
    def fund_id(self) -> int: ...
    @property
    def fund_name(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def transaction_id(self) -> str: ...
    @property
    def subscribed_at(self) -> datetime.datetime: ...
    def to_dict(self) -> _SubscriptionDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Transaction:
    """A subscription or cancellation in a client's history (immutable)."""

    @property
    def id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def fund_id(self) -> int: ...
    @property
    def fund_name(self) -> str: ...
    @property
    def kind(self) -> Literal["subscription", "cancellation"]: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def balance_after(self) -> Decimal: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def idempotency_key(self) -> str | None: ...
    def to_dict(self) -> _TransactionDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Notification:
    """An outbox entry (immutable snapshot)."""

    @property
    def id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def transaction_id(self) -> str: ...
    @property
    def channel(self) -> Literal["email", "sms"]: ...
    @property
    def recipient(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def status(self) -> Literal["pending", "delivered", "failed"]: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def delivered_at(self) -> datetime.datetime | None: ...
    @property
    def next_attempt_at(self) -> datetime.datetime | None: ...
    def to_dict(self) -> _NotificationDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DispatchReport:
    """What one dispatch run did (immutable)."""

    @property
    def delivered(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def failed(self) -> int: ...
    def to_dict(self) -> _DispatchReportDict: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class HistoryPage:
    """A page of a client's history, newest first, with the cursor of the following page."""

    @property
    def items(self) -> list[Transaction]:
        """The transactions of the page, newest first."""
    @property
    def next(self) -> str | None:
        """The ``before`` cursor of the following page; ``None`` on the last page."""
    def to_dict(self) -> _HistoryPageDict:
        """``{"items": [transaction dicts], "next": cursor or None}``."""
    def __len__(self) -> int: ...

@final
class Engine:
    """The fund-subscription engine over an embedded store or a PostgreSQL database; safe to
    share between threads.

    ``Engine(path)`` opens the embedded store in directory ``path`` (``Engine()``: a temporary
    one); ``Engine("postgresql://user:password@host:5432/dbname")`` (or ``postgres://``)
    connects to a PostgreSQL database, which any number of engines in any number of processes
    and hosts may share.

    An embedded store directory stays locked until ``close()``, the end of a ``with`` block, or
    the garbage collection of the engine. One process per directory: opening one another
    process holds raises ``StorageError`` naming the path (several worker processes need the
    PostgreSQL store).

    Settings of one kind of store only: ``durability``, ``flush_interval_ms`` and
    ``cache_capacity_bytes`` (embedded store), ``pool_size`` (PostgreSQL: connections kept
    open, default 8, at least 1). Passing one to the other kind raises ``ValidationError``.

    An engine belongs to the process that opened it: in a child created by ``fork()``
    (``multiprocessing`` with the fork start method, gunicorn ``--preload``, Celery prefork)
    every call on an inherited engine, of either store, raises ``StorageError`` at once. Open
    the engine after the fork, in each child (e.g. in a post-fork hook), and with an embedded
    store none in the parent before forking: a child of a process that opened one cannot open
    one either (``StorageError`` at once).
    """

    def __new__(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        initial_balance: _Amount | None = None,
        funds: list[Fund] | None = None,
        locale: Literal["es", "en"] = "es",
        notify_on_cancel: bool = True,
        max_attempts: int | None = None,
        retry_base_delay_ms: int | None = None,
        retry_max_delay_ms: int | None = None,
        durability: Literal["every_commit", "periodic"] = "every_commit",
        flush_interval_ms: int | None = None,
        cache_capacity_bytes: int | None = None,
        pool_size: int | None = None,
    ) -> Engine: ...
    @property
    def path(self) -> str | None:
        """The store directory; a database URL without its credentials
        (``postgresql://…@host:5432/dbname``); ``None`` for a temporary store."""
    @property
    def locale(self) -> Literal["es", "en"]: ...
    @property
    def initial_balance(self) -> Decimal: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *args: object) -> bool: ...
    def funds(self) -> list[Fund]: ...
    def fund(self, fund_id: int) -> Fund: ...
    def register_client(
        self, name: str, email: str, phone: str, channel: Literal["email", "sms"]
    ) -> Client: ...
    def client(self, client_id: str) -> Client: ...
    def subscribe(
        self,
        client_id: str,
        fund_id: int,
        amount: _Amount | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Transaction: ...
    def cancel(
        self, client_id: str, fund_id: int, *, idempotency_key: str | None = None
    ) -> Transaction: ...
    def subscriptions(self, client_id: str) -> list[Subscription]: ...
    def history(
        self, client_id: str, limit: int = 50, before: str | None = None
    ) -> list[Transaction]: ...
    def history_page(
        self, client_id: str, limit: int = 50, before: str | None = None
    ) -> HistoryPage:
        """A page of the client's history, as ``history()``, with ``next``, the cursor of the
        following page (``None`` on the last page, also when it is exactly full)."""
    def transaction(self, transaction_id: str) -> Transaction: ...
    def notifications(self, client_id: str) -> list[Notification]: ...
    def dispatch_notifications(self, notifier: Notifier, limit: int = 100) -> DispatchReport:
        """Delivers up to ``limit`` due notifications through ``notifier.send``, on this thread.

        ``send`` returning normally means delivered; ``PermanentDeliveryError`` fails the entry;
        any other exception is retried with backoff. ``send`` must be a plain function: an
        awaitable it returns (an ``async def send``) is not awaited and counts as a retryable
        failure (entry pending, ``last_error`` says why), never as delivered.
        """
    def retry_failed_notifications(self, limit: int = 100) -> int: ...
    def flush(self) -> None: ...

def _record_from_json(
    kind: str, json: str
) -> Fund | Client | Subscription | Transaction | Notification | DispatchReport: ...
