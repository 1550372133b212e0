"""Type stubs of the native module ``fundcore._fundcore`` (re-exported by ``fundcore``)."""

import datetime
import os
from decimal import Decimal
from typing import Literal, TypeAlias, TypedDict, final

from fundcore._errors import NotFoundError
from fundcore._notifier import Notifier

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "DEFAULT_INITIAL_BALANCE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RETRY_BASE_DELAY_MS",
    "DEFAULT_RETRY_MAX_DELAY_MS",
    "DEFAULT_FLUSH_INTERVAL_MS",
    "DEFAULT_CACHE_CAPACITY_BYTES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_OPERATION_TIMEOUT_MS",
    "MIN_OPERATION_TIMEOUT_MS",
    "MAX_OPERATION_TIMEOUT_MS",
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
    "AuditEvent",
    "AuditEventPage",
    "Client",
    "ClientPage",
    "DispatchReport",
    "Engine",
    "Fund",
    "HistoryPage",
    "LedgerReport",
    "Notification",
    "NotificationPage",
    "OutboxState",
    "Statement",
    "StatementLine",
    "Subscription",
    "Transaction",
    "client_not_found",
    "enable_metrics",
    "format_cop",
    "metrics",
    "new_client_id",
]

__version__: str
"""The version of the crate the extension was built from, which is the package's version."""
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
DEFAULT_INITIAL_BALANCE: Decimal
"""The balance of a new client when ``Engine(initial_balance=...)`` is not given."""
DEFAULT_MAX_ATTEMPTS: int
"""Delivery attempts before a notification is ``failed``, when ``max_attempts`` is not given."""
DEFAULT_RETRY_BASE_DELAY_MS: int
"""Milliseconds before the first retry of a delivery, when ``retry_base_delay_ms`` is not given."""
DEFAULT_RETRY_MAX_DELAY_MS: int
"""The longest delay between retries, in milliseconds, when ``retry_max_delay_ms`` is not given."""
DEFAULT_FLUSH_INTERVAL_MS: int
"""Milliseconds between flushes of a ``durability="periodic"`` embedded store, when
``flush_interval_ms`` is not given."""
DEFAULT_CACHE_CAPACITY_BYTES: int
"""The embedded store's page cache, in bytes, when ``cache_capacity_bytes`` is not given."""
DEFAULT_POOL_SIZE: int
"""Database connections of a PostgreSQL engine, when ``pool_size`` is not given."""
DEFAULT_OPERATION_TIMEOUT_MS: int
"""Milliseconds a PostgreSQL call waits on the network at most, when ``operation_timeout_ms``
is not given."""
MIN_OPERATION_TIMEOUT_MS: int
"""The shortest ``operation_timeout_ms`` accepted."""
MAX_OPERATION_TIMEOUT_MS: int
"""The longest ``operation_timeout_ms`` accepted."""

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

class _AuditEventDict(TypedDict):
    id: str
    at: str
    actor: str
    action: Literal["fund_created", "fund_updated", "client_updated"]
    target: str
    before: dict[str, object]
    after: dict[str, object]
    request_id: str | None

class _ClientPageDict(TypedDict):
    items: list[_ClientDict]
    next: str | None

class _AuditEventPageDict(TypedDict):
    items: list[_AuditEventDict]
    next: str | None

class _DispatchReportDict(TypedDict):
    delivered: int
    retried: int
    failed: int

class _OutboxStateDict(TypedDict):
    pending: int
    failed: int
    delivered: int
    oldest_pending_at: str | None
    oldest_pending_age: str | None

class _NotificationPageDict(TypedDict):
    items: list[_NotificationDict]
    next: str | None

class _StatementLineDict(TypedDict):
    transaction: _TransactionDict
    invested_after: str

# "from" and "to" are Python keywords: the functional form names them.
_StatementDict = TypedDict(
    "_StatementDict",
    {
        "client_id": str,
        "from": str,
        "to": str,
        "opening_balance": str,
        "opening_invested": str,
        "lines": list[_StatementLineDict],
        "closing_balance": str,
        "closing_invested": str,
    },
)

class _OutboxCountsDict(TypedDict):
    pending: int
    delivered: int
    failed: int

class _ViolationDict(TypedDict):
    client: str | None
    rule: Literal[
        "negative_balance",
        "reconciliation",
        "replay",
        "unique_ids",
        "outbox",
        "idempotency",
        "reference",
        "store_index",
    ]
    detail: str

class _LedgerReportDict(TypedDict):
    clean: bool
    clients: int
    transactions: int
    active_subscriptions: int
    idempotency_keys: int
    outbox: _OutboxCountsDict
    audit_events: int
    violation_count: int
    violations: list[_ViolationDict]
    summary: str


def client_not_found(client_id: str, locale: Literal["es", "en"] = "es") -> NotFoundError:
    """The engine's `CLIENT_NOT_FOUND` error for `client_id`, in `locale`, without a store: what a
    host answers when a caller names a client it may not see (the same answer as for a client
    that does not exist). Returns the exception; raise it to use it.
    """
class _Counter(TypedDict):
    name: str
    type: Literal["counter"]
    labels: dict[str, str]
    value: int

class _Histogram(TypedDict):
    name: str
    type: Literal["histogram"]
    labels: dict[str, str]
    buckets: list[tuple[float, int]]
    sum: float
    count: int

def enable_metrics() -> bool:
    """Installs fundcore's metrics recorder for this process; `True` when it is the process's
    recorder (now or since an earlier call), `False` when another recorder was installed first
    (then `metrics()` stays empty).
    """
def metrics() -> list[_Counter | _Histogram]:
    """What the engine recorded since `enable_metrics()`: a list of
    `{"name", "type": "counter", "labels", "value"}` and
    `{"name", "type": "histogram", "labels", "buckets": [(upper bound, cumulative count), ...,
    (inf, count)], "sum", "count"}`. Empty when metrics are not enabled.
    """
def new_client_id() -> str:
    """A new client id (a UUIDv7), for `Engine.register_client(..., client_id=...)`."""
def format_cop(amount: _Amount) -> str:
    """Formats an amount for people, the Colombian way: `format_cop(Decimal("75000"))` is
    `"COP $75.000"`. Accepts `Decimal`, `int` or `str`.
    """

@final
class Fund:
    """An investment fund of the catalogue.

    `Fund(id, name, minimum, category, active=True)` builds one for
    `Engine(funds=[...])`; the engine's own records come from `Engine.funds()`.

    Immutable; compared by value, hashable and picklable.
    """

    def __new__(
        cls,
        id: int,
        name: str,
        minimum: _Amount,
        category: Literal["FPV", "FIC"],
        active: bool = True,
    ) -> Fund: ...
    @property
    def id(self) -> int:
        """Catalogue id (`int`)."""
    @property
    def name(self) -> str:
        """Display name, used in messages."""
    @property
    def minimum(self) -> Decimal:
        """Smallest subscription amount (`Decimal`)."""
    @property
    def category(self) -> Literal["FPV", "FIC"]:
        """`"FPV"` or `"FIC"`."""
    @property
    def active(self) -> bool:
        """Whether new subscriptions are accepted."""
    def to_dict(self) -> _FundDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Client:
    """A registered client and their available balance.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def id(self) -> str:
        """Client id (UUIDv7 string)."""
    @property
    def name(self) -> str:
        """Full name."""
    @property
    def email(self) -> str:
        """Email address."""
    @property
    def phone(self) -> str:
        """Phone in E.164 form, e.g. `+573001234567`."""
    @property
    def channel(self) -> Literal["email", "sms"]:
        """Notification channel: `"email"` or `"sms"`."""
    @property
    def balance(self) -> Decimal:
        """Available balance (`Decimal`)."""
    @property
    def created_at(self) -> datetime.datetime:
        """Registration time (UTC `datetime`)."""
    def to_dict(self) -> _ClientDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Subscription:
    """An active subscription of a client to a fund.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def client_id(self) -> str:
        """The client's id."""
    @property
    def fund_id(self) -> int:
        """The fund's id."""
    @property
    def fund_name(self) -> str:
        """The fund's name."""
    @property
    def amount(self) -> Decimal:
        """Subscribed amount (`Decimal`), refunded on cancellation."""
    @property
    def transaction_id(self) -> str:
        """Id of the opening transaction."""
    @property
    def subscribed_at(self) -> datetime.datetime:
        """When the subscription opened (UTC `datetime`)."""
    def to_dict(self) -> _SubscriptionDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Transaction:
    """One entry of a client's history: a subscription or a cancellation.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def id(self) -> str:
        """Transaction id (UUIDv7 string, time-ordered)."""
    @property
    def client_id(self) -> str:
        """The client's id."""
    @property
    def fund_id(self) -> int:
        """The fund's id."""
    @property
    def fund_name(self) -> str:
        """The fund's name."""
    @property
    def kind(self) -> Literal["subscription", "cancellation"]:
        """`"subscription"` or `"cancellation"`."""
    @property
    def amount(self) -> Decimal:
        """Amount moved (`Decimal`); for a cancellation, the refund."""
    @property
    def balance_after(self) -> Decimal:
        """The client's balance right after this transaction (`Decimal`)."""
    @property
    def created_at(self) -> datetime.datetime:
        """When it committed (UTC `datetime`)."""
    @property
    def idempotency_key(self) -> str | None:
        """The caller's idempotency key, if one was given."""
    def to_dict(self) -> _TransactionDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Notification:
    """An outbox entry: the message sent to a client after a transaction committed.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def id(self) -> str:
        """Notification id: receivers use it to drop duplicate deliveries."""
    @property
    def client_id(self) -> str:
        """The client's id."""
    @property
    def transaction_id(self) -> str:
        """The transaction it announces."""
    @property
    def channel(self) -> Literal["email", "sms"]:
        """`"email"` or `"sms"`."""
    @property
    def recipient(self) -> str:
        """Email address or phone number."""
    @property
    def subject(self) -> str:
        """Subject line (in the engine's locale)."""
    @property
    def body(self) -> str:
        """Message body (in the engine's locale)."""
    @property
    def status(self) -> Literal["pending", "delivered", "failed"]:
        """`"pending"`, `"delivered"` or `"failed"`."""
    @property
    def attempts(self) -> int:
        """Delivery attempts so far."""
    @property
    def last_error(self) -> str | None:
        """The last delivery error, if any."""
    @property
    def created_at(self) -> datetime.datetime:
        """When it was queued (UTC `datetime`)."""
    @property
    def delivered_at(self) -> datetime.datetime | None:
        """When it was delivered (UTC `datetime`), or `None`."""
    @property
    def next_attempt_at(self) -> datetime.datetime | None:
        """When it is due for its next attempt (UTC `datetime`), or `None` when not pending."""
    def to_dict(self) -> _NotificationDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DispatchReport:
    """What one `Engine.dispatch_notifications` run did.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def delivered(self) -> int:
        """Entries the notifier accepted."""
    @property
    def retried(self) -> int:
        """Entries that failed and will be tried again later."""
    @property
    def failed(self) -> int:
        """Entries given up on in this run."""
    def to_dict(self) -> _DispatchReportDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class OutboxState:
    """How the outbox stands (`Engine.outbox_state()`): entries by status, and when the oldest
    pending one was written and how long it has waited.

    `to_dict()` gives the time as an RFC 3339 string and the age as an ISO 8601 duration in
    seconds (`"PT12.5S"`, as pydantic writes a `timedelta`).

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def pending(self) -> int:
        """Entries waiting for a (further) delivery attempt."""
    @property
    def failed(self) -> int:
        """Entries given up on (`Engine.retry_failed_notifications` queues them again)."""
    @property
    def delivered(self) -> int:
        """Entries the notifier accepted."""
    @property
    def oldest_pending_at(self) -> datetime.datetime | None:
        """When the oldest pending entry was written (UTC `datetime`), or `None` when nothing
        is pending.
        """
    @property
    def oldest_pending_age(self) -> datetime.timedelta | None:
        """How long the oldest pending entry has waited (`datetime.timedelta`, by the engine's
        clock), or `None` when nothing is pending.
        """
    def to_dict(self) -> _OutboxStateDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class StatementLine:
    """One transaction of a `Statement`, with where the client stood right after it.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def invested_after(self) -> Decimal:
        """The sum of the client's active subscription amounts right after the transaction
        (`Decimal`); plus `balance_after`, the initial balance.
        """
    @property
    def transaction(self) -> Transaction:
        """The transaction (a `Transaction`)."""
    @property
    def balance_after(self) -> Decimal:
        """The client's available balance right after the transaction (`Decimal`, the
        transaction's own `balance_after`).
        """
    def to_dict(self) -> _StatementLineDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Statement:
    """A client's account over a date range (`Engine.statement()`): where it stood at `start`,
    each transaction with `start <= created_at < end` oldest first, and where it stood at
    `end`.

    `to_dict()` gives `{"client_id", "from", "to", "opening_balance", "opening_invested",
    "lines": [{"transaction": {...}, "invested_after"}], "closing_balance",
    "closing_invested"}`.

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def client_id(self) -> str:
        """The client's id."""
    @property
    def opening_balance(self) -> Decimal:
        """The available balance at `start` (`Decimal`)."""
    @property
    def opening_invested(self) -> Decimal:
        """The sum of the active subscription amounts at `start` (`Decimal`)."""
    @property
    def closing_balance(self) -> Decimal:
        """The available balance at `end` (`Decimal`)."""
    @property
    def closing_invested(self) -> Decimal:
        """The sum of the active subscription amounts at `end` (`Decimal`)."""
    @property
    def start(self) -> datetime.datetime:
        """The range's start, included (UTC `datetime`; `"from"` in `to_dict()`)."""
    @property
    def end(self) -> datetime.datetime:
        """The range's end, excluded (UTC `datetime`; `"to"` in `to_dict()`)."""
    @property
    def lines(self) -> list[StatementLine]:
        """The range's transactions, oldest first (a list of `StatementLine`)."""
    def to_dict(self) -> _StatementDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class LedgerReport:
    """What the ledger check of a live engine read and found (`Engine.verify_ledger()`).

    `to_dict()` gives `{"clean", "clients", "transactions", "active_subscriptions",
    "idempotency_keys", "outbox": {"pending", "delivered", "failed"}, "audit_events",
    "violation_count", "violations": [{"client", "rule", "detail"}], "summary"}`.
    """

    @property
    def clean(self) -> bool:
        """Whether no rule is broken."""
    @property
    def clients(self) -> int:
        """Clients checked."""
    @property
    def transactions(self) -> int:
        """Their transactions."""
    @property
    def active_subscriptions(self) -> int:
        """Their active subscriptions."""
    @property
    def idempotency_keys(self) -> int:
        """Their idempotency records."""
    @property
    def outbox(self) -> _OutboxCountsDict:
        """Their outbox entries by status: `{"pending": n, "delivered": n, "failed": n}`."""
    @property
    def audit_events(self) -> int:
        """Audit events."""
    @property
    def violation_count(self) -> int:
        """Every violation found (the list holds at most the first 1000)."""
    @property
    def violations(self) -> list[_ViolationDict]:
        """The violations listed: dicts `{"client": id or None, "rule": str, "detail": str}`."""
    @property
    def summary(self) -> str:
        """What was read and how many violations were found, in a few lines of English (as
        `fundcore verify` prints it).
        """
    def to_dict(self) -> _LedgerReportDict:
        """The report as JSON-ready plain data (see the class docs)."""

@final
class NotificationPage:
    """A page of failed notifications of every client, newest first: `items` and `next`, the
    `before` cursor of the following page (`None` on the last page).
    """

    @property
    def items(self) -> list[Notification]:
        """The records of the page, newest first."""
    @property
    def next(self) -> str | None:
        """The `before` cursor of the following page (`str`), or `None` on the last page."""
    def to_dict(self) -> _NotificationPageDict:
        """`{"items": [record dicts], "next": cursor or None}`, the REST page."""
    def __len__(self) -> int: ...

@final
class AuditEvent:
    """One administrative change, as it was made (never altered).

    Immutable; compared by value, hashable and picklable.
    """

    @property
    def id(self) -> str:
        """Event id (UUIDv7 string, in the order the changes happened)."""
    @property
    def at(self) -> datetime.datetime:
        """When the change committed (UTC `datetime`)."""
    @property
    def actor(self) -> str:
        """Who asked for it."""
    @property
    def action(self) -> Literal["fund_created", "fund_updated", "client_updated"]:
        """`"fund_created"`, `"fund_updated"` or `"client_updated"`."""
    @property
    def target(self) -> str:
        """The fund id or client id changed (`str`)."""
    @property
    def before(self) -> dict[str, object]:
        """The changed fields before the change (`dict`; empty for a fund created)."""
    @property
    def after(self) -> dict[str, object]:
        """The changed fields after the change (`dict`)."""
    @property
    def request_id(self) -> str | None:
        """The request that made the change, or `None`."""
    def to_dict(self) -> _AuditEventDict:
        """The record as JSON-ready plain data: money as strings with 2 decimals
        (`"75000.00"`), times as RFC 3339 strings, ids as strings.
        """
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ClientPage:
    """A page of clients, newest first: `items` and `next`, the `before` cursor of the
    following page (`None` on the last page).
    """

    @property
    def items(self) -> list[Client]:
        """The records of the page, newest first."""
    @property
    def next(self) -> str | None:
        """The `before` cursor of the following page (`str`), or `None` on the last page."""
    def to_dict(self) -> _ClientPageDict:
        """`{"items": [record dicts], "next": cursor or None}`, the REST page."""
    def __len__(self) -> int: ...

@final
class AuditEventPage:
    """A page of the audit trail, newest first: `items` and `next`, the `before` cursor of
    the following page (`None` on the last page).
    """

    @property
    def items(self) -> list[AuditEvent]:
        """The records of the page, newest first."""
    @property
    def next(self) -> str | None:
        """The `before` cursor of the following page (`str`), or `None` on the last page."""
    def to_dict(self) -> _AuditEventPageDict:
        """`{"items": [record dicts], "next": cursor or None}`, the REST page."""
    def __len__(self) -> int: ...

@final
class HistoryPage:
    """A page of a client's history, newest first: `items` and `next`, the `before` cursor of
    the following page (`None` on the last page, also when it is exactly full).
    """

    @property
    def items(self) -> list[Transaction]:
        """The records of the page, newest first."""
    @property
    def next(self) -> str | None:
        """The `before` cursor of the following page (`str`), or `None` on the last page."""
    def to_dict(self) -> _HistoryPageDict:
        """`{"items": [record dicts], "next": cursor or None}`, the REST page."""
    def __len__(self) -> int: ...

@final
class Engine:
    """The fund-subscription engine over an embedded store or a PostgreSQL database.

    `Engine(path)` opens (or creates and seeds) the embedded store in directory `path`;
    `Engine()` opens a temporary embedded store that is deleted when the engine is closed.
    `Engine("postgresql://user:password@host:5432/dbname")` (or `postgres://…`) connects to a
    PostgreSQL database instead, creating or upgrading fundcore's tables and seeding a new
    database; any number of engines in any number of processes and hosts may share it.

    A store directory can be open in one engine of one process at a time: it stays locked
    until `close()` is called, the `with` block ends, or the engine object is garbage-collected
    (`del engine` when nothing else refers to it). Reopening the same path before that, or
    opening one that another process holds, raises `StorageError` naming the path.

    The engine is safe to share between threads: every store operation releases the GIL and
    the core serializes what must be serialized (no overdraft, no double refund).

    An engine belongs to the process that opened it. In a child created by `fork()`
    (`multiprocessing` with the fork start method, gunicorn `--preload`, Celery prefork) every
    call on an inherited engine, of either store, raises `StorageError` at once: open the
    engine after the fork, in each child (e.g. in a post-fork hook), and with an embedded store
    none in the parent before forking (a child of a process that opened one cannot open one
    either).

    Keyword settings (`None` keeps the core's default, the module's `DEFAULT_*` constant); a
    setting of the other kind of store raises `ValidationError` (`VALIDATION_ERROR`, naming it):

    - `initial_balance`: balance of new clients (`Decimal`, `int` or `str`; default
      `DEFAULT_INITIAL_BALANCE`). With `funds`, written when the store is created and kept by
      the store afterwards.
    - `funds`: the catalogue as a list of `fundcore.Fund` (default: the five funds of the spec).
    - `locale`: `"es"` (default) or `"en"`, for error messages and notifications.
    - `notify_on_cancel`: also notify cancellations (default `True`).
    - `max_attempts`: delivery attempts before a notification is `failed` (default
      `DEFAULT_MAX_ATTEMPTS`).
    - `retry_base_delay_ms`, `retry_max_delay_ms`: first retry delay, doubled per attempt, and
      its cap (defaults `DEFAULT_RETRY_BASE_DELAY_MS` and `DEFAULT_RETRY_MAX_DELAY_MS`).
    - `durability`, embedded store only: `"every_commit"` (default: each operation is on disk
      before it returns) or `"periodic"` (flushed every `flush_interval_ms`, default
      `DEFAULT_FLUSH_INTERVAL_MS`; call `flush()` to force). A PostgreSQL commit is durable when
      it returns.
    - `cache_capacity_bytes`, embedded store only: the store's page cache (default
      `DEFAULT_CACHE_CAPACITY_BYTES`).
    - `pool_size`, PostgreSQL only: database connections the engine keeps open (default
      `DEFAULT_POOL_SIZE`, at least 1); a call that finds none free waits for one.
    - `operation_timeout_ms`, PostgreSQL only: the longest a call waits on the network (default
      `DEFAULT_OPERATION_TIMEOUT_MS`; from `MIN_OPERATION_TIMEOUT_MS` to
      `MAX_OPERATION_TIMEOUT_MS`): for a connection, a pooled connection, the database's answer
      and, when a reply was lost, for learning whether the change committed. Past it a read
      raises `StorageError` and a change whose outcome is not known `OutcomeUnknownError`.
    - `prepared_statements`, PostgreSQL only: each connection prepares its statements once
      (default `True`, the fastest); `False` sends each statement unprepared, as a pooler in
      transaction mode (PgBouncer before 1.21, RDS Proxy) needs.

    Use it as a context manager to release the store deterministically:

    ```python
    with fundcore.Engine("data/fundcore") as eng:
        ...
    ```
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
        operation_timeout_ms: int | None = None,
        prepared_statements: bool | None = None,
    ) -> Engine: ...
    @property
    def path(self) -> str | None:
        """The store directory; for a PostgreSQL database its URL without the credentials
        (`postgresql://…@host:5432/dbname`), so it is safe to log; `None` for a temporary store.
        """
    @property
    def locale(self) -> Literal["es", "en"]:
        """Language of error messages and notifications: `"es"` or `"en"`."""
    @property
    def initial_balance(self) -> Decimal:
        """Balance of a newly registered client (fixed when the store was created)."""
    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
    def close(self) -> None:
        """Closes the engine and releases the store directory (a temporary store is deleted).
        Calls already running finish first; later calls raise `ValueError`. Idempotent.
        """
    def __enter__(self) -> Engine: ...
    def __exit__(self, *args: object) -> bool: ...
    def funds(self) -> list[Fund]:
        """The fund catalogue, by id."""
    def fund(self, fund_id: int) -> Fund:
        """One fund. Raises `NotFoundError` (`FUND_NOT_FOUND`)."""
    def register_client(
        self,
        name: str,
        email: str,
        phone: str,
        channel: Literal["email", "sms"],
        *,
        client_id: str | None = None,
    ) -> Client:
        """Registers a client with the initial balance. `channel` is `"email"` or `"sms"`.

        With `client_id` (a UUIDv7 the caller made for this registration, e.g. with
        `new_client_id()`), the id is the registration's idempotency key: with an id already
        registered, the client is returned as stored and nothing changes, so the call can be
        repeated after `OutcomeUnknownError` or a crash.

        Raises `ValidationError` (`VALIDATION_ERROR`, with `field`).
        """
    def client(self, client_id: str) -> Client:
        """One client. Raises `NotFoundError` (`CLIENT_NOT_FOUND`)."""
    def subscribe(
        self,
        client_id: str,
        fund_id: int,
        amount: _Amount | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Transaction:
        """Subscribes a client to a fund for `amount` (`Decimal`, `int` or `str`; the fund's
        minimum when `None`). With `idempotency_key`, a repeated identical call returns the
        original transaction and changes nothing.

        Raises `ValidationError` (`VALIDATION_ERROR`, `BELOW_MINIMUM`), `NotFoundError`,
        `InsufficientBalanceError`, `ConflictError` (`ALREADY_SUBSCRIBED`, `FUND_INACTIVE`,
        `IDEMPOTENCY_KEY_REUSED`), `StorageError`; `TypeError` for a `float` amount.
        """
    def cancel(
        self, client_id: str, fund_id: int, *, idempotency_key: str | None = None
    ) -> Transaction:
        """Cancels the client's active subscription to a fund, refunding the subscribed amount.

        Raises `ConflictError` (`NOT_SUBSCRIBED`, `IDEMPOTENCY_KEY_REUSED`), `NotFoundError`,
        `ValidationError`, `StorageError`.
        """
    def subscriptions(self, client_id: str) -> list[Subscription]:
        """The client's active subscriptions, by fund id."""
    def history(
        self, client_id: str, limit: int = 50, before: str | None = None
    ) -> list[Transaction]:
        """The client's transactions, newest first: at most `limit` (1 to `MAX_PAGE`), all older
        than the transaction id `before` when given (an exclusive cursor for the next page).

        Raises `ValidationError` for a bad `limit` or a `before` that is not a transaction id,
        `NotFoundError` for an unknown client.
        """
    def create_fund(
        self,
        fund_id: int,
        name: str,
        minimum: _Amount,
        category: Literal["FPV", "FIC"],
        *,
        actor: str,
        request_id: str | None = None,
    ) -> Fund:
        """Adds a fund to the catalogue (active), recorded in the audit trail with `actor` and
        `request_id`. Raises `ConflictError` (`FUND_ALREADY_EXISTS`) for a taken id and
        `ValidationError` for a bad name, minimum or category.
        """
    def update_fund(
        self,
        fund_id: int,
        *,
        name: str | None = None,
        minimum: _Amount | None = None,
        active: bool | None = None,
        actor: str,
        request_id: str | None = None,
    ) -> Fund:
        """Changes a fund's `name`, `minimum` or `active` flag (the ones given), recorded in the
        audit trail. A new minimum applies to later subscriptions; an inactive fund refuses new
        subscriptions and still allows cancellations. Raises `NotFoundError` (`FUND_NOT_FOUND`).
        """
    def update_client(
        self,
        client_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        channel: Literal["email", "sms"] | None = None,
        actor: str,
        request_id: str | None = None,
    ) -> Client:
        """Changes a client's `name`, `email`, `phone` or `channel` (the ones given), validated as
        in `register_client` and recorded in the audit trail. Notifications created afterwards
        use the new channel and recipient. Raises `NotFoundError` (`CLIENT_NOT_FOUND`).
        """
    def clients(self, limit: int = 50, before: str | None = None) -> ClientPage:
        """A page of clients, newest first (`limit` 1..=MAX_PAGE), older than the client `before`."""
    def audit_events(self, limit: int = 50, before: str | None = None) -> AuditEventPage:
        """A page of the audit trail, newest first (`limit` 1..=MAX_PAGE), older than the event
        `before`.
        """
    def history_page(
        self,
        client_id: str,
        limit: int = 50,
        before: str | None = None,
        *,
        kind: Literal["subscription", "cancellation"] | None = None,
        fund_id: int | None = None,
    ) -> HistoryPage:
        """A page of the client's history, as `history()`, with the cursor of the following page:
        `page.items` (newest first) and `page.next` (`None` on the last page, also when it is
        exactly full). `to_dict()` gives `{"items": [...], "next": ...}`.

        `kind` (`"subscription"` or `"cancellation"`) and `fund_id` list only the matching
        transactions, paged by the same cursor. A `fund_id` that names no fund raises
        `NotFoundError` (`FUND_NOT_FOUND`); a `kind` of another name `ValidationError`.
        """
    def statement(self, client_id: str, start: datetime.datetime, end: datetime.datetime) -> Statement:
        """The client's statement for `start <= created_at < end` (tz-aware `datetime`s; a naive
        one raises `ValueError`): where the account stood at `start` (`opening_balance`,
        `opening_invested`), each transaction of the range oldest first with the balance and
        the invested amount (active subscriptions) right after it, and where it stood at `end`.
        From the client's `created_at` to now it charts the balance and the invested amount.

        Raises `ValidationError` when `start` is after `end`, `NotFoundError` for an unknown
        client.
        """
    def failed_notifications(self, limit: int = 50, before: str | None = None) -> NotificationPage:
        """A page of the failed notifications of every client, newest first (`limit`
        1..=MAX_PAGE), older than the notification id `before`: each with its `last_error`,
        `attempts`, `client_id`, `channel` and `recipient`. `retry_failed_notifications()`
        queues them again. Raises `ValidationError` for a bad `limit` or `before`.
        """
    def verify_ledger(self) -> LedgerReport:
        """Checks the ledger of the open store while it serves calls (a `LedgerReport`): every
        client's balance, replay, subscriptions, outbox entries and idempotency records, each
        client read whole. On the embedded store the outbox queues are not cross-checked (that
        needs the store stopped: `fundcore verify`). Reads every client: an operator's call.
        """
    def transaction(self, transaction_id: str) -> Transaction:
        """One transaction by id. Raises `NotFoundError` (`TRANSACTION_NOT_FOUND`)."""
    def notifications(self, client_id: str) -> list[Notification]:
        """The client's outbox entries, newest first, whatever their status."""
    def dispatch_notifications(self, notifier: Notifier, limit: int = 100) -> DispatchReport:
        """Delivers up to `limit` due pending notifications through `notifier`, any object with
        a `send(notification)` method, called on this thread. Returning normally means
        delivered; raising `fundcore.PermanentDeliveryError` fails the entry at once; any other
        exception is a retryable failure (retried later with exponential backoff, `failed`
        after `max_attempts`). The exception text is kept in `Notification.last_error`.

        `send` must be a plain function that delivers before it returns. An awaitable return
        value (the coroutine of an `async def send`) is not awaited: it counts as a retryable
        failure whose `last_error` says so, the entry stays pending, and a coroutine is closed.

        A `KeyboardInterrupt` or `SystemExit` raised by `send` stops the run: the remaining
        due entries of this run count as retryable failures and the exception is re-raised.
        """
    def retry_failed_notifications(self, limit: int = 100) -> int:
        """Puts up to `limit` failed notifications back in the queue, due now, with their attempt
        count reset. Returns how many were requeued.
        """
    def outbox_state(self) -> OutboxState:
        """How the outbox stands: pending, failed and delivered entries, and when the oldest
        pending one was written and how long it has waited (an `OutboxState`). On PostgreSQL,
        the outbox of every process sharing the database.
        """
    def flush(self) -> None:
        """Makes everything acknowledged so far durable (useful with `durability="periodic"`)."""
    def backup(self, dest: str | os.PathLike[str]) -> None:
        """Writes a consistent copy of the embedded store into the new directory `dest` while the
        engine serves calls (the GIL is released). Every change acknowledged before the call is
        in the copy, every change wholly in or out; the copy opens as a store of its own
        (`fundcore.Engine(dest)`) and passes `fundcore verify`. A subscribe or cancel waits at
        most for one client's copy; administrative changes wait for the backup. Raises
        `ValidationError` (field `dest`) when `dest` exists (nothing is overwritten),
        `StorageError` naming the path when it cannot be written, and `StorageError` on a
        PostgreSQL store, which is backed up with `pg_dump` (docs/stores.md).
        """

def _record_from_json(
    kind: str, json: str
) -> (
    Fund
    | Client
    | Subscription
    | Transaction
    | Notification
    | AuditEvent
    | DispatchReport
    | OutboxState
    | StatementLine
    | Statement
):
    """Rebuilds a record from its class name and JSON (the pickle/copy support of records)."""
