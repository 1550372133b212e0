"""The notifier port as a typing protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fundcore._fundcore import Notification

__all__ = ["Notifier"]


@runtime_checkable
class Notifier(Protocol):
    """Anything with ``send(notification)`` can deliver notifications.

    ``send`` returns normally when the notification was delivered, raises
    :class:`fundcore.PermanentDeliveryError` when it can never be delivered, and raises any
    other exception for a failure worth retrying. It may be called more than once for the same
    notification (at-least-once delivery): use ``notification.id`` to drop duplicates.

    ``send`` must be a plain function (not ``async def``) that delivers before it returns.
    ``dispatch_notifications`` does not await what ``send`` returns: an awaitable (such as the
    coroutine of an ``async def send``) counts as a retryable failure, never as delivered; the
    entry stays pending with a ``last_error`` that says so, and the coroutine is closed unrun.
    To use an async client, run ``dispatch_notifications`` in a worker thread and have ``send``
    wait for the coroutine on your loop with
    ``asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)``.
    """

    def send(self, notification: Notification, /) -> None: ...
