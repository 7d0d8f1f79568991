"""berthcache's own signals for one cache, with no metrics library: what the Prometheus and
OpenTelemetry adapters read (pull) and are told (push).

- response cache hits, misses and responses served through an outage: read from
  ``cache.responses.stats`` when a collector asks (so ``@cached`` and ``cache_response`` count,
  as they use ``cache.responses``);
- reconnects and connection errors: counted from ``cache.events`` as they happen;
- rate-limit decisions and how long each check took: recorded by :meth:`observe_rate_limiter`'s
  wrapper, or by ``berthcache.web``'s middleware and dependency given ``on_decision=``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, overload

from berthcache import (
    AsyncCache,
    AsyncRateLimiter,
    Cache,
    CacheStats,
    ConfigurationError,
    ConnectionEvent,
    RateLimiter,
    RateLimitResult,
)

__all__ = ["CacheSignals", "SignalListener"]


class SignalListener(Protocol):
    """What an adapter is told as signals happen (every method optional to act on)."""

    def reconnect(self, event: ConnectionEvent) -> None: ...
    def connection_error(self, event: ConnectionEvent) -> None: ...
    def rate_limit(self, endpoint: str, result: RateLimitResult, seconds: float) -> None: ...
    def span(self, name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]: ...


class CacheSignals:
    """The signals of one cache. ``close()`` stops listening to its events."""

    def __init__(self, cache: Cache | AsyncCache) -> None:
        given: object = cache
        if not isinstance(given, Cache | AsyncCache):
            raise ConfigurationError("cache", f"must be a Cache or AsyncCache, got {given!r}")
        self.cache = cache
        #: The key prefix: the label that tells caches of one process apart.
        self.prefix = cache.config.key_prefix
        self._lock = threading.Lock()
        self._reconnects = 0
        self._errors = 0
        self._decisions: Counter[tuple[str, str]] = Counter()
        self._listeners: list[SignalListener] = []
        cache.events.on("reconnecting", self._on_reconnecting)
        cache.events.on("error", self._on_error)

    def close(self) -> None:
        self.cache.events.off("reconnecting", self._on_reconnecting)
        self.cache.events.off("error", self._on_error)

    # -- what the adapters read -----------------------------------------------------------------

    @property
    def responses(self) -> CacheStats:
        """The response cache's hits, misses and served-through-outage counts so far."""
        return self.cache.responses.stats

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def connection_errors(self) -> int:
        return self._errors

    def rate_limit_decisions(self) -> dict[tuple[str, str], int]:
        """``{(endpoint, "allowed" | "refused"): count}``."""
        with self._lock:
            return dict(self._decisions)

    def add_listener(self, listener: SignalListener) -> None:
        self._listeners.append(listener)

    # -- what happens -------------------------------------------------------------------------

    def _on_reconnecting(self, event: ConnectionEvent) -> None:
        with self._lock:
            self._reconnects += 1
        for listener in self._listeners:
            listener.reconnect(event)

    def _on_error(self, event: ConnectionEvent) -> None:
        with self._lock:
            self._errors += 1
        for listener in self._listeners:
            listener.connection_error(event)

    def record_rate_limit(self, endpoint: str, result: RateLimitResult, seconds: float) -> None:
        """Count one rate-limit decision (``berthcache.web`` calls this with ``on_decision``)."""
        decision = "allowed" if result.allowed else "refused"
        with self._lock:
            self._decisions[(endpoint, decision)] += 1
        for listener in self._listeners:
            listener.rate_limit(endpoint, result, seconds)

    @contextlib.contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[None]:
        """Every listener's span around a step (OpenTelemetry's, when instrumented)."""
        with contextlib.ExitStack() as stack:
            for listener in self._listeners:
                stack.enter_context(listener.span(name, attributes))
            yield

    @overload
    def observe_rate_limiter(self, limiter: AsyncRateLimiter) -> AsyncObservedRateLimiter: ...
    @overload
    def observe_rate_limiter(self, limiter: RateLimiter) -> ObservedRateLimiter: ...
    def observe_rate_limiter(
        self, limiter: RateLimiter | AsyncRateLimiter
    ) -> ObservedRateLimiter | AsyncObservedRateLimiter:
        """A limiter with the same ``check`` / ``reset`` whose checks are counted, timed and
        traced (span ``berthcache.rate_limit.check``)."""
        if isinstance(limiter, AsyncRateLimiter):
            return AsyncObservedRateLimiter(limiter, self)
        return ObservedRateLimiter(limiter, self)


class _Observed:
    def __init__(self, limiter: Any, signals: CacheSignals) -> None:
        self._limiter = limiter
        self._signals = signals
        self.limit: int = limiter.limit
        self.window: int = limiter.window

    def __getattr__(self, name: str) -> Any:
        return getattr(self._limiter, name)

    def __repr__(self) -> str:
        return f"observed {self._limiter!r}"


class ObservedRateLimiter(_Observed):
    """A sync :class:`~berthcache.RateLimiter` whose decisions are recorded."""

    def check(self, ip: str, endpoint: str) -> RateLimitResult:
        with self._signals.span("berthcache.rate_limit.check", endpoint=endpoint):
            started = time.perf_counter()
            result: RateLimitResult = self._limiter.check(ip, endpoint)
            self._signals.record_rate_limit(endpoint, result, time.perf_counter() - started)
        return result


class AsyncObservedRateLimiter(_Observed):
    """An :class:`~berthcache.AsyncRateLimiter` whose decisions are recorded."""

    async def check(self, ip: str, endpoint: str) -> RateLimitResult:
        with self._signals.span("berthcache.rate_limit.check", endpoint=endpoint):
            started = time.perf_counter()
            result: RateLimitResult = await self._limiter.check(ip, endpoint)
            self._signals.record_rate_limit(endpoint, result, time.perf_counter() - started)
        return result


#: What berthcache.web's helpers accept as ``on_decision``.
DecisionHook = Callable[[str, RateLimitResult, float], None]
