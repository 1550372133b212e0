"""Background notification dispatcher: drains the engine's outbox on a fixed interval.

Started and stopped by the app's lifespan. Each round calls
``engine.dispatch_notifications(notifier, limit=batch)`` in a worker thread (the binding releases
the GIL around store work, and the notifier does blocking network I/O). A full batch is followed
at once by another round; otherwise the thread sleeps for the interval. A failing round is
logged and the loop goes on: the outbox keeps every entry until it is delivered or failed.

A store that cannot be reached (a ``StorageError``, ``OutcomeUnknownError`` included: the
database is down, restarting or failing over) is an outage, not a bug: the dispatcher logs one
WARNING when it starts, keeps trying every interval without logging, and one INFO when a round
succeeds again. Any other failure is logged with its traceback, every round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import fundcore

from .logs import printable

log = logging.getLogger("fundcore_host.dispatcher")


class Dispatcher:
    """Runs ``engine.dispatch_notifications(notifier)`` in a background thread (see the module)."""

    def __init__(
        self,
        engine: fundcore.Engine,
        notifier: fundcore.Notifier,
        interval_ms: int = 1000,
        batch: int = 100,
        redact: Callable[[str], str] = str,
    ) -> None:
        """``redact``: applied to the engine's message before it is logged (the host passes
        :meth:`Settings.redact`, so a database password never reaches the log)."""
        if interval_ms <= 0 or batch <= 0:
            raise ValueError("interval_ms and batch must be positive")
        self.engine = engine
        self.notifier = notifier
        self.interval_s = interval_ms / 1000.0
        self.batch = batch
        self.redact = redact
        self.rounds = 0
        #: Whether the last round found the store unreachable (an outage is logged once).
        self.store_unavailable = False
        self._stop = threading.Event()
        self._round_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """One dispatch round; returns ``{"delivered", "retried", "failed"}``."""
        with self._round_lock:
            report = self.engine.dispatch_notifications(self.notifier, limit=self.batch)
            self.rounds += 1
        counts = {"delivered": report.delivered, "retried": report.retried, "failed": report.failed}
        if any(counts.values()):
            log.info(
                "dispatch round: delivered=%d retried=%d failed=%d",
                counts["delivered"],
                counts["retried"],
                counts["failed"],
            )
        return counts

    def _loop(self) -> None:
        log.info("notification dispatcher started (every %.0f ms, batch %d)", self.interval_s * 1000, self.batch)
        while not self._stop.is_set():
            full = False
            try:
                counts = self.run_once()
                full = sum(counts.values()) >= self.batch
                if self.store_unavailable:
                    self.store_unavailable = False
                    log.info("the store answers again: notification dispatch resumed")
            except fundcore.StorageError as error:
                if not self.store_unavailable:
                    self.store_unavailable = True
                    log.warning(
                        "the store cannot be reached (%s: %s): notification dispatch paused, retrying every %.0f ms",
                        error.code,
                        printable(self.redact(error.message)),
                        self.interval_s * 1000,
                    )
            except Exception:
                log.exception("notification dispatch round failed; retrying next round")
            if not full:
                self._stop.wait(self.interval_s)
        log.info("notification dispatcher stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fundcore-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("dispatcher thread did not stop within %.0f s", timeout_s)
            self._thread = None
