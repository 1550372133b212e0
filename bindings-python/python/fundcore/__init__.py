"""fundcore: fund subscriptions with exact money, a durable store and a notification outbox."""

from fundcore._fundcore import __version__

__all__ = ["__version__"]
