"""Exceptions raised by fundcore.

Every engine error is a :class:`FundcoreError` carrying the stable ``code`` (identical in
every language), a human ``message`` in the engine's locale, the ``http_status`` a REST API
answers with and, for ``VALIDATION_ERROR``, the ``field`` at fault and the ``problem`` with it.
The class follows the kind of failure: invalid input (also a :class:`ValueError`), a conflict
with the current state, an unknown id (also a :class:`LookupError`), or a store failure.
"""

from __future__ import annotations

from fundcore._fundcore import ERROR_CODES

__all__ = [
    "FundcoreError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "InsufficientBalanceError",
    "StorageError",
    "OutcomeUnknownError",
    "PermanentDeliveryError",
]


class FundcoreError(Exception):
    """Base class of every engine error.

    Attributes:
        code: stable error code, e.g. ``"INSUFFICIENT_BALANCE"``.
        message: human message in the engine's locale (also ``str(error)``).
        field: the input at fault for ``VALIDATION_ERROR`` (e.g. ``"amount"``), else ``None``.
        problem: for ``VALIDATION_ERROR``, what is wrong with ``field``, in the engine's locale
            (the message without the field's name), else ``None``.
        http_status: the HTTP status of the code (``ERROR_CODES[code]``; 500 for a code the
            engine does not have).
        messages: the message in every locale, ``{"es": ..., "en": ...}``, for answering each
            reader in theirs (an error made without them has only ``message``, under no key).
        problems: for ``VALIDATION_ERROR``, ``problem`` in every locale, ``{"es": ..., "en":
            ...}``; else ``None``.
    """

    code: str
    message: str
    field: str | None
    problem: str | None
    http_status: int
    messages: dict[str, str]
    problems: dict[str, str] | None

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        problem: str | None = None,
        http_status: int | None = None,
        *,
        messages: dict[str, str] | None = None,
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, field)
        self.code = code
        self.message = message
        self.field = field
        self.problem = problem
        self.http_status = ERROR_CODES.get(code, 500) if http_status is None else http_status
        self.messages = dict(messages) if messages is not None else {}
        self.problems = dict(problems) if problems is not None else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", field={self.field!r}" if self.field is not None else ""
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}{extra})"


class ValidationError(FundcoreError, ValueError):
    """Malformed input (``VALIDATION_ERROR``) or an amount below the fund's minimum
    (``BELOW_MINIMUM``). Also a :class:`ValueError`."""


class NotFoundError(FundcoreError, LookupError):
    """Unknown id: ``CLIENT_NOT_FOUND``, ``FUND_NOT_FOUND`` or ``TRANSACTION_NOT_FOUND``.
    Also a :class:`LookupError`."""


class ConflictError(FundcoreError):
    """The request conflicts with the current state: ``ALREADY_SUBSCRIBED``,
    ``NOT_SUBSCRIBED``, ``FUND_INACTIVE``, ``IDEMPOTENCY_KEY_REUSED`` and, through
    :class:`InsufficientBalanceError`, ``INSUFFICIENT_BALANCE``."""


class InsufficientBalanceError(ConflictError):
    """Not enough available balance (``INSUFFICIENT_BALANCE``)."""


class StorageError(FundcoreError):
    """The store failed (``STORAGE_ERROR``); nothing was committed.

    Also raised, with a message that says what to do, when the store directory is held by
    another process, and for any call on an engine in a child process created by ``fork()``
    after the engine was opened (open it after the fork, in each child)."""


class OutcomeUnknownError(StorageError):
    """A change was sent to the database and whether it committed could not be learned
    within the operation's deadline (``OUTCOME_UNKNOWN``): it may have been saved. Repeat the
    call with the same idempotency key: it returns the first result if the change was saved,
    and makes it if it was not. Also a :class:`StorageError`."""


class PermanentDeliveryError(Exception):
    """Raise from a notifier's ``send`` to fail a notification for good (no retry).

    Any other exception raised by ``send`` is a retryable failure.
    """
