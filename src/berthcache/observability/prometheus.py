"""berthcache's signals as Prometheus metrics (``pip install 'berthcache[prometheus]'``).

    signals = CacheSignals(cache)
    PrometheusCollector(signals).register()          # prometheus_client's default registry

Exposes, each labelled ``prefix`` (the cache's key prefix):

- ``berthcache_response_cache_hits_total``, ``…_misses_total``,
  ``…_served_through_outage_total`` — read from ``cache.responses.stats`` at scrape time;
- ``berthcache_reconnects_total``, ``berthcache_connection_errors_total``;
- ``berthcache_rate_limit_decisions_total{endpoint, decision="allowed"|"refused"}`` and the
  histogram ``berthcache_rate_limit_check_seconds`` (each check's round trip).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import REGISTRY, CollectorRegistry

from berthcache import ConnectionEvent, RateLimitResult
from berthcache.observability._signals import CacheSignals

__all__ = ["DEFAULT_BUCKETS", "PrometheusCollector"]

#: Seconds: a rate-limit check is one round trip, its budget 250 ms by default.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class PrometheusCollector:
    """A Prometheus collector for one cache's :class:`CacheSignals`."""

    def __init__(self, signals: CacheSignals, *, buckets: Sequence[float] = DEFAULT_BUCKETS):
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ValueError("buckets must be increasing and not empty")
        self._signals = signals
        self._bounds = [float(b) for b in buckets]
        self._lock = threading.Lock()
        self._counts = [0] * (len(self._bounds) + 1)  # the last: above every bound (+Inf)
        self._sum = 0.0
        signals.add_listener(self)

    def register(self, registry: CollectorRegistry = REGISTRY) -> PrometheusCollector:
        registry.register(self)
        return self

    # -- the listener: what is pushed ----------------------------------------------------------

    def reconnect(self, event: ConnectionEvent) -> None:
        """Counted by the signals themselves; read at scrape time."""

    def connection_error(self, event: ConnectionEvent) -> None:
        """Counted by the signals themselves; read at scrape time."""

    def rate_limit(self, endpoint: str, result: RateLimitResult, seconds: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
            self._sum += seconds

    def span(self, name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
        return contextlib.nullcontext()

    # -- the collector: what a scrape reads -------------------------------------------------------

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: names are fixed, values read at collect time

    def collect(self) -> Iterator[Metric]:
        signals = self._signals
        prefix = [signals.prefix]
        stats = signals.responses
        for name, value, doc in (
            ("response_cache_hits", stats.hits, "Response cache lookups served from Redis."),
            ("response_cache_misses", stats.misses, "Response cache lookups that computed."),
            (
                "response_cache_served_through_outage",
                stats.served_through_outage,
                "Values computed and returned uncached because Redis was unavailable.",
            ),
            ("reconnects", signals.reconnects, "Reconnection attempts (waits before a retry)."),
            ("connection_errors", signals.connection_errors, "Connection errors reported."),
        ):
            family = CounterMetricFamily(f"berthcache_{name}", doc, labels=["prefix"])
            family.add_metric(prefix, value)
            yield family
        decisions = CounterMetricFamily(
            "berthcache_rate_limit_decisions",
            "Rate-limit checks by endpoint and decision.",
            labels=["prefix", "endpoint", "decision"],
        )
        for (endpoint, decision), count in sorted(signals.rate_limit_decisions().items()):
            decisions.add_metric([signals.prefix, endpoint, decision], count)
        yield decisions
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        histogram = HistogramMetricFamily(
            "berthcache_rate_limit_check_seconds",
            "Duration of rate-limit checks.",
            labels=["prefix"],
        )
        histogram.add_metric(prefix, buckets, total)
        yield histogram
