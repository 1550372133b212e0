"""fundcore: fund subscriptions with exact money, a durable embedded store or a PostgreSQL
database, and a notification outbox.

>>> from decimal import Decimal
>>> import fundcore
>>> eng = fundcore.Engine()                       # temporary store; or a path, or a postgresql:// URL
>>> ana = eng.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
>>> tx = eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-1")
>>> eng.client(ana.id).balance
Decimal('420000.00')

Money is always :class:`decimal.Decimal` (``int`` and ``str`` are accepted as input; a
``float`` raises ``TypeError``). Errors are :class:`FundcoreError` subclasses with ``code``
and ``message``.
"""

from fundcore._errors import (
    ConflictError,
    FundcoreError,
    InsufficientBalanceError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    StorageError,
    ValidationError,
)
from fundcore._fundcore import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_CACHE_CAPACITY_BYTES,
    DEFAULT_FLUSH_INTERVAL_MS,
    DEFAULT_INITIAL_BALANCE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_OPERATION_TIMEOUT_MS,
    DEFAULT_POOL_SIZE,
    DEFAULT_RETRY_BASE_DELAY_MS,
    DEFAULT_RETRY_MAX_DELAY_MS,
    ERROR_CODES,
    MAX_AMOUNT,
    MAX_EMAIL_CHARS,
    MAX_EMAIL_LOCAL_BYTES,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_NAME_CHARS,
    MAX_OPERATION_TIMEOUT_MS,
    MAX_PAGE,
    MAX_PHONE_DIGITS,
    MIN_OPERATION_TIMEOUT_MS,
    MIN_PHONE_DIGITS,
    MINOR_DIGITS,
    SMS_MAX_CHARS,
    AuditEvent,
    AuditEventPage,
    Client,
    ClientPage,
    DispatchReport,
    Engine,
    Fund,
    HistoryPage,
    Notification,
    OutboxState,
    Subscription,
    Transaction,
    __version__,
    client_not_found,
    enable_metrics,
    format_cop,
    metrics,
    new_client_id,
)
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
    "ConflictError",
    "DispatchReport",
    "Engine",
    "Fund",
    "FundcoreError",
    "HistoryPage",
    "InsufficientBalanceError",
    "NotFoundError",
    "Notification",
    "Notifier",
    "OutboxState",
    "OutcomeUnknownError",
    "PermanentDeliveryError",
    "StorageError",
    "Subscription",
    "Transaction",
    "ValidationError",
    "__version__",
    "client_not_found",
    "enable_metrics",
    "format_cop",
    "metrics",
    "new_client_id",
]
