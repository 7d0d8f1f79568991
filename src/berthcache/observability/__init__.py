"""berthcache's own signals for dashboards: hits, misses, served-through-outage, reconnects,
connection errors and rate-limit decisions, for one cache (:class:`CacheSignals`), exported by
:mod:`berthcache.observability.prometheus` (``berthcache[prometheus]``) and
:mod:`berthcache.observability.opentelemetry` (``berthcache[otel]``). This package imports
neither library: each adapter module does.
"""

from berthcache.observability._signals import (
    AsyncObservedRateLimiter,
    CacheSignals,
    ObservedRateLimiter,
    SignalListener,
)

__all__ = ["AsyncObservedRateLimiter", "CacheSignals", "ObservedRateLimiter", "SignalListener"]
