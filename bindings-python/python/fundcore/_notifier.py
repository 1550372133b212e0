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
    """

    def send(self, notification: Notification, /) -> object: ...
