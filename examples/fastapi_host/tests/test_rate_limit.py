"""The per-caller rate limiter: constant work per request and bounded memory, whatever the
number of callers (it used to rebuild its whole table per request past 100,000 callers, and
to grow without bound within one window)."""

from __future__ import annotations

import pytest

from fundcore_host.errors import HostError
from fundcore_host.rate_limit import RateLimiter


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_200000_distinct_callers_keep_memory_bounded_and_each_request_cheap():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=600, clock=clock)
    most_work = 0
    for i in range(200_000):
        before = limiter.work
        limiter.check(f"client:{i}")
        most_work = max(most_work, limiter.work - before)
        clock.now += 0.0001  # 200,000 callers within 20 s: one window
    assert len(limiter) == limiter.max_keys == 100_000
    # every request looked at a handful of entries, never at the table
    assert most_work <= RateLimiter.DROP_PER_CHECK + 2
    # a caller still tracked is still counted
    recent = "client:199999"
    for _ in range(599):
        limiter.check(recent)
    with pytest.raises(HostError) as refused:
        limiter.check(recent)
    assert refused.value.code == "RATE_LIMITED" and refused.value.status == 429


def test_ended_windows_are_dropped_a_few_per_request():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=10, window_s=60, max_keys=1_000, clock=clock)
    for i in range(1_000):
        limiter.check(f"old:{i}")
    clock.now += 61  # every window has ended
    for i in range(500):
        before = limiter.work
        limiter.check(f"new:{i}")
        assert limiter.work - before <= RateLimiter.DROP_PER_CHECK + 2
    # each new caller dropped two ended windows: 1,000 - 2 * 500 old ones left, 500 new ones
    assert len(limiter) == 500


def test_limit_retry_after_and_new_window():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=3, window_s=60, clock=clock)
    for _ in range(3):
        limiter.check("a")
    clock.now += 20.5
    with pytest.raises(HostError) as refused:
        limiter.check("a")
    assert refused.value.headers == {"Retry-After": "40"}
    limiter.check("b")  # another caller is not affected
    clock.now += 40
    limiter.check("a")  # a new window
    limiter.check("a")


def test_a_full_table_drops_the_oldest_window():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=1, window_s=60, max_keys=2, clock=clock)
    limiter.check("a")
    limiter.check("b")
    limiter.check("c")  # "a" is dropped to make room
    assert len(limiter) == 2
    limiter.check("a")  # starts again (the price of a bounded table)
    with pytest.raises(HostError):
        limiter.check("a")


def test_disabled_limiter_tracks_nothing():
    limiter = RateLimiter(per_minute=0)
    for i in range(1000):
        limiter.check(f"k{i}")
    assert len(limiter) == 0
