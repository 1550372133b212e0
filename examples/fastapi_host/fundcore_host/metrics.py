"""Prometheus metrics of the host, served by ``GET /metrics`` in the text format (prometheus_client).

What a scrape shows:

* ``http_requests_total{method, route, status}``: requests answered, by the route's template
  (``/clients/{client_id}``; :data:`UNMATCHED_ROUTE` for a path no route has), the method as
  sent and the status class (``2xx``, ``4xx``, ...);
* ``http_request_duration_seconds{method, route}``: a histogram of the time to the response's
  start;
* the engine's own metrics (docs/operations.md, Observability) under their names and labels,
  mirrored from ``fundcore.metrics()``: counters as counters, duration histograms as histograms
  with the engine's buckets;
* :data:`OUTBOX_ENTRIES` and :data:`OUTBOX_OLDEST_PENDING_AGE`: the store's outbox, read when
  scraped.

Several workers (``python -m fundcore_host.serve --workers N``): ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, so prometheus_client
keeps each worker's values in files there and a scrape, whichever worker answers it, adds up
the counters and histograms of all of them. The engine's recorder counts per process, so each
worker adds what its own engine counted since its last look (at each response's start, after
each dispatch round and at a scrape) to its own prometheus_client metrics. The outbox gauges
describe the shared store, the same whichever worker reads them: a scrape shows the most
recent reading, not a sum.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import fundcore

if TYPE_CHECKING:
    from fundcore._fundcore import _Counter, _Histogram

log = logging.getLogger("fundcore_host.metrics")

#: Where prometheus_client's multiprocess mode keeps the workers' values (its own variable; the
#: lower-case spelling is read too, as prometheus_client does).
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_MULTIPROCESS_DIR_VARIABLES = (MULTIPROCESS_DIR_VARIABLE, MULTIPROCESS_DIR_VARIABLE.lower())

#: The ``route`` label of a request no route matched (so unknown paths add no series).
UNMATCHED_ROUTE = "<unmatched>"
#: The ``method`` labels; any other method a caller sends is counted as :data:`OTHER_METHOD`.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"

HTTP_REQUESTS = "http_requests_total"
HTTP_REQUEST_DURATION = "http_request_duration_seconds"
OUTBOX_ENTRIES = "fundcore_outbox_entries"
OUTBOX_OLDEST_PENDING_AGE = "fundcore_outbox_oldest_pending_age_seconds"

#: One series of the engine's: its name and its labels, sorted.
_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when the environment sets one."""
    for name in _MULTIPROCESS_DIR_VARIABLES:
        if name in os.environ:
            return os.environ[name]
    return None


def status_class(status: int) -> str:
    """``2xx`` for 200, ``4xx`` for 404, ..."""
    return f"{status // 100}xx"


class HostMetrics:
    """The host's prometheus_client metrics, in a registry of their own (so several apps in one
    process do not collide), and the mirror of the engine's recorder into them."""

    def __init__(self) -> None:
        #: Set when the workers share their values through files (see the module).
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            HTTP_REQUESTS,
            "HTTP requests answered, by route template, method and status class",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.request_duration = Histogram(
            HTTP_REQUEST_DURATION,
            "Time from a request's arrival to its response's start, by route template and method",
            ("method", "route"),
            registry=self.registry,
        )
        self.outbox_entries = Gauge(
            OUTBOX_ENTRIES,
            "Notifications in the store's outbox, by status (pending, failed, delivered)",
            ("status",),
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.outbox_oldest_pending_age = Gauge(
            OUTBOX_OLDEST_PENDING_AGE,
            "Age of the oldest pending notification in the store's outbox (0 when none is pending)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        #: What the engine had counted at the last look, per series.
        self._counted: dict[_SeriesKey, int] = {}
        #: Per-bucket (not cumulative) counts and the sum at the last look, per series.
        self._distributions: dict[_SeriesKey, tuple[list[int], float]] = {}
        self._outbox_warned = False

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Counts one answered request and its duration (``route``: the matched route's
        template, ``None`` for none)."""
        method = method if method in METHODS else OTHER_METHOD
        route = route if route is not None else UNMATCHED_ROUTE
        self.requests.labels(method=method, route=route, status=status_class(status)).inc()
        self.request_duration.labels(method=method, route=route).observe(seconds)

    def on_response(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """The middleware's observer: the request counted and the engine's counts mirrored, so a
        scrape made after this response (by any worker) includes both."""
        self.observe_request(method, route, status, seconds)
        self.sync_engine()

    def sync_engine(self) -> None:
        """Adds what the engine counted since the last call to the mirrored metrics."""
        with self._lock:
            for series in fundcore.metrics():
                if series["type"] == "counter":
                    self._mirror_counter(series)
                else:
                    self._mirror_histogram(series)

    def refresh_outbox(self, engine: fundcore.Engine | None) -> None:
        """Sets the outbox gauges from ``engine.outbox_state()`` (a failed read is logged once
        and the gauges keep the last reading)."""
        if engine is None:
            return
        try:
            state = engine.outbox_state()
        except fundcore.FundcoreError as error:
            if not self._outbox_warned:
                log.warning("cannot read the outbox state for /metrics: %s", error.code)
                self._outbox_warned = True
            return
        self._outbox_warned = False
        self.outbox_entries.labels(status="pending").set(state.pending)
        self.outbox_entries.labels(status="failed").set(state.failed)
        self.outbox_entries.labels(status="delivered").set(state.delivered)
        age = state.oldest_pending_age
        self.outbox_oldest_pending_age.set(age.total_seconds() if age is not None else 0.0)

    def exposition(self) -> bytes:
        """The text format of every metric: this process's, or every worker's added up."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def scrape(self, engine: fundcore.Engine | None) -> bytes:
        """What ``GET /metrics`` answers: the outbox read and the engine mirrored first."""
        self.refresh_outbox(engine)
        self.sync_engine()
        return self.exposition()

    # ------------------------------------------------------------------ the engine's mirror

    def _mirror_counter(self, series: _Counter) -> None:
        name, labels = series["name"], series["labels"]
        key = (name, tuple(sorted(labels.items())))
        added = series["value"] - self._counted.get(key, 0)
        if added <= 0:
            return
        counter = self._counters.get(name)
        if counter is None:
            counter = Counter(name, _engine_help(name), sorted(labels), registry=self.registry)
            self._counters[name] = counter
        (counter.labels(**labels) if labels else counter).inc(added)
        self._counted[key] = series["value"]

    def _mirror_histogram(self, series: _Histogram) -> None:
        name, labels = series["name"], series["labels"]
        key = (name, tuple(sorted(labels.items())))
        cumulative = [count for _, count in series["buckets"]]
        per_bucket = [count - below for count, below in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
        before, sum_before = self._distributions.get(key, ([0] * len(per_bucket), 0.0))
        if per_bucket == before:
            return
        histogram = self._histograms.get(name)
        if histogram is None:
            bounds = [bound for bound, _ in series["buckets"] if not math.isinf(bound)]
            histogram = Histogram(name, _engine_help(name), sorted(labels), registry=self.registry, buckets=bounds)
            self._histograms[name] = histogram
        child = histogram.labels(**labels) if labels else histogram
        # prometheus_client has no public call that adds counts to a bucket (observe() takes one
        # value): its per-bucket values and sum are added to directly, as observe() does.
        buckets = child._buckets
        if len(buckets) != len(per_bucket):
            log.warning("%s: the engine's buckets changed; its histogram is no longer mirrored", name)
            return
        for value, now, then in zip(buckets, per_bucket, before, strict=True):
            if now != then:
                value.inc(now - then)
        child._sum.inc(series["sum"] - sum_before)
        self._distributions[key] = (per_bucket, series["sum"])


def _engine_help(name: str) -> str:
    return f"{name} of the fundcore engine (docs/operations.md, Observability)"
