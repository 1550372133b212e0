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
the counters and histograms of all of them. The HTTP metrics are counted as each response
starts. The engine's recorder counts per process, so each worker adds what its own engine
counted since its last look to its own prometheus_client metrics: at each scrape it answers,
every :data:`ENGINE_MIRROR_INTERVAL_S` in a background thread (so another worker's engine
counts are at most that late) and when it stops. Mirroring is kept off the request path: it
reads every series of the recorder, which costs more than counting one request. The outbox
gauges describe the shared store, the same whichever worker reads them: a scrape shows the
most recent reading, not a sum.
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
import fundcore.aio

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

#: How often each worker adds its engine's counts to the metrics a scrape reads (seconds).
ENGINE_MIRROR_INTERVAL_S = 1.0

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
        #: Per engine series: its prometheus_client child and what the engine had counted at the
        #: last look (a counter's value; a histogram's count, per-bucket counts and sum).
        self._mirrored_counters: dict[_SeriesKey, tuple[Counter, int]] = {}
        self._mirrored_histograms: dict[_SeriesKey, tuple[Histogram, int, list[int], float]] = {}
        #: The request metrics' children by their labels (``labels()`` costs more than ``inc()``).
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._outbox_warned = False
        self._stop_mirroring = threading.Event()
        self._mirror_thread: threading.Thread | None = None

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Counts one answered request and its duration (``route``: the matched route's
        template, ``None`` for none)."""
        method = method if method in METHODS else OTHER_METHOD
        route = route if route is not None else UNMATCHED_ROUTE
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method=method, route=route, status=status_class(status)),
                self.request_duration.labels(method=method, route=route),
            )
            self._request_children[(method, route, status)] = children
        requests, duration = children
        requests.inc()
        duration.observe(seconds)

    def sync_engine(self) -> None:
        """Adds what the engine counted since the last call to the mirrored metrics."""
        with self._lock:
            for series in fundcore.metrics():
                if series["type"] == "counter":
                    self._mirror_counter(series)
                else:
                    self._mirror_histogram(series)

    def start_mirroring(self, interval_s: float = ENGINE_MIRROR_INTERVAL_S) -> None:
        """Mirrors the engine every ``interval_s`` in a background thread until
        :meth:`stop_mirroring`."""
        if self._mirror_thread is not None:
            return
        self._stop_mirroring.clear()
        self._mirror_thread = threading.Thread(
            target=self._mirror_loop, args=(interval_s,), name="fundcore-metrics", daemon=True
        )
        self._mirror_thread.start()

    def stop_mirroring(self) -> None:
        """Stops the background thread, then mirrors once more (a worker's last counts stay in
        the shared files after it exits)."""
        self._stop_mirroring.set()
        if self._mirror_thread is not None:
            self._mirror_thread.join(10)
            self._mirror_thread = None
        self.sync_engine()

    def _mirror_loop(self, interval_s: float) -> None:
        while not self._stop_mirroring.wait(interval_s):
            try:
                self.sync_engine()
            except Exception:
                log.exception("mirroring the engine's metrics failed; trying again")

    async def refresh_outbox(self, engine: fundcore.aio.Engine | None) -> None:
        """Sets the outbox gauges from ``engine.outbox_state()`` (a failed read is logged once
        and the gauges keep the last reading)."""
        if engine is None:
            return
        try:
            state = await engine.outbox_state()
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

    def scrape(self) -> bytes:
        """What ``GET /metrics`` answers (after :meth:`refresh_outbox`): the engine mirrored
        first."""
        self.sync_engine()
        return self.exposition()

    # ------------------------------------------------------------------ the engine's mirror

    def _mirror_counter(self, series: _Counter) -> None:
        name, labels = series["name"], series["labels"]
        key = (name, tuple(sorted(labels.items())))
        mirrored = self._mirrored_counters.get(key)
        if mirrored is None:
            counter = self._counters.get(name)
            if counter is None:
                counter = Counter(name, _engine_help(name), sorted(labels), registry=self.registry)
                self._counters[name] = counter
            mirrored = (counter.labels(**labels) if labels else counter, 0)
        child, counted = mirrored
        if series["value"] > counted:
            child.inc(series["value"] - counted)
            self._mirrored_counters[key] = (child, series["value"])

    def _mirror_histogram(self, series: _Histogram) -> None:
        name, labels = series["name"], series["labels"]
        key = (name, tuple(sorted(labels.items())))
        mirrored = self._mirrored_histograms.get(key)
        if mirrored is not None and mirrored[1] == series["count"]:
            return  # nothing recorded since the last look
        cumulative = [count for _, count in series["buckets"]]
        per_bucket = [count - below for count, below in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
        if mirrored is None:
            histogram = self._histograms.get(name)
            if histogram is None:
                bounds = [bound for bound, _ in series["buckets"] if not math.isinf(bound)]
                histogram = Histogram(name, _engine_help(name), sorted(labels), registry=self.registry, buckets=bounds)
                self._histograms[name] = histogram
            mirrored = (histogram.labels(**labels) if labels else histogram, 0, [0] * len(per_bucket), 0.0)
        child, _, before, sum_before = mirrored
        # prometheus_client has no public call that adds counts to a bucket (observe() takes one
        # value): its per-bucket values and sum are added to directly, as observe() does.
        buckets = child._buckets
        if len(buckets) != len(per_bucket) or len(before) != len(per_bucket):
            log.warning("%s: the engine's buckets changed; its histogram is no longer mirrored", name)
            return
        for value, now, then in zip(buckets, per_bucket, before, strict=True):
            if now != then:
                value.inc(now - then)
        child._sum.inc(series["sum"] - sum_before)
        self._mirrored_histograms[key] = (child, series["count"], per_bucket, series["sum"])


def _engine_help(name: str) -> str:
    return f"{name} of the fundcore engine (docs/operations.md, Observability)"
