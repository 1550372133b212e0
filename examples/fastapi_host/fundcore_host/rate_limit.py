"""A per-caller rate limiter (fixed one-minute windows) and the caller keys it counts.

Every request but ``GET /health``, ``GET /ready`` and the docs is counted against its caller (see
``dependencies.current_principal``): an authenticated caller by its role and token subject
(hashed), a request whose authentication failed by the peer address. Past
``FUNDCORE_RATE_LIMIT_PER_MINUTE`` requests in a caller's window the answer is 429
``RATE_LIMITED`` with ``Retry-After``.

Why not a library such as ``limits``: its in-memory storage keeps one entry per caller until
the window ends (no bound within a window) and expires them by scanning every entry from a
timer thread; this one tracks at most ``max_keys`` callers at a constant cost per request.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from .auth import Principal
from .errors import HostError, host_message


class RateLimiter:
    """Fixed windows per caller key; ``per_minute == 0`` disables it.

    Each request costs the same whatever the number of callers, and at most ``max_keys``
    callers are tracked. Windows are kept in the order they started (a caller whose window
    ended gets a new one at the end), so the windows that ended are always at the front: each
    check drops at most two of them, and a full table drops its oldest window to make room (that
    caller simply starts a new window). ``work`` counts the entries looked at, for tests.
    """

    #: Ended windows dropped from the front per check (two: faster than one is added).
    DROP_PER_CHECK = 2

    def __init__(
        self,
        per_minute: int,
        window_s: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys <= 0:
            raise ValueError("max_keys must be positive")
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_keys = max_keys
        self.work = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # key -> [start, count]

    def __len__(self) -> int:
        return len(self._windows)

    def _hit(self, key: str, now: float) -> tuple[float, float]:
        windows = self._windows
        for _ in range(self.DROP_PER_CHECK):
            if not windows:
                break
            self.work += 1
            _, (oldest_start, _) = next(iter(windows.items()))
            if now - oldest_start < self.window_s:
                break
            windows.popitem(last=False)
        self.work += 1
        entry = windows.get(key)
        if entry is not None and now - entry[0] >= self.window_s:
            entry[0], entry[1] = now, 0
            windows.move_to_end(key)  # keeps the table in window-start order
        elif entry is None:
            if len(windows) >= self.max_keys:
                self.work += 1
                windows.popitem(last=False)
            entry = windows[key] = [now, 0]
        entry[1] += 1
        return entry[0], entry[1]

    def check(self, key: str, locale: str = "es") -> None:
        """Count a request of ``key``; raises 429 RATE_LIMITED past ``per_minute`` in its window."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            start, count = self._hit(key, now)
        if count > self.per_minute:
            retry_after = max(1, math.ceil(self.window_s - (now - start)))
            raise HostError(
                "RATE_LIMITED",
                host_message("RATE_LIMITED", locale),
                headers={"Retry-After": str(retry_after)},
            )


def principal_key(principal: Principal) -> str:
    """The key an authenticated caller is counted under (its subject hashed: a key has one
    size whatever the token carries)."""
    return f"{principal.role}:{hashlib.sha256(principal.sub.encode()).hexdigest()[:32]}"


def anonymous_key(request: Request) -> str:
    """The key a request whose authentication failed is counted under: its peer address."""
    return f"anon:{request.client.host if request.client else 'unknown'}"
