"""berthcache's signals through OpenTelemetry (``pip install 'berthcache[otel]'``; the API
only: the app's SDK and exporters decide where they go).

    instrument(CacheSignals(cache), CacheSignals(other_cache))   # the global providers

Call it once per meter provider with every cache's signals: observable instruments are
registered once per name, so a second call on the same provider would report nothing new.

Instruments (attribute ``berthcache.prefix``): observable counters
``berthcache.response_cache.hits`` / ``.misses`` / ``.served_through_outage`` (read from
``cache.responses.stats`` at each collection), counters ``berthcache.reconnects`` and
``berthcache.connection_errors``, the counter ``berthcache.rate_limit.decisions``
(``endpoint``, ``decision``) and the histogram ``berthcache.rate_limit.duration`` (s). Spans:
``berthcache.rate_limit.check`` around each observed check. Redis commands themselves are the
Redis instrumentation's (opentelemetry-instrumentation-redis), not repeated here.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import TracerProvider

from berthcache import ConnectionEvent, RateLimitResult, __version__
from berthcache.observability._signals import CacheSignals

__all__ = ["OpenTelemetryListener", "instrument"]


class OpenTelemetryListener:
    """The instruments shared by the caches' signals (what :func:`instrument` returns)."""

    def __init__(
        self,
        signals: Iterable[CacheSignals],
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._signals = list(signals)
        if not self._signals:
            raise ValueError("instrument() needs the signals of at least one cache")
        meter = metrics.get_meter("berthcache", __version__, meter_provider)
        self._tracer = trace.get_tracer("berthcache", __version__, tracer_provider)
        for name, field, doc in (
            ("hits", "hits", "Response cache lookups served from Redis."),
            ("misses", "misses", "Response cache lookups that computed."),
            (
                "served_through_outage",
                "served_through_outage",
                "Values computed and returned uncached because Redis was unavailable.",
            ),
        ):
            meter.create_observable_counter(
                f"berthcache.response_cache.{name}",
                callbacks=[self._observe(field)],
                unit="1",
                description=doc,
            )
        self._reconnects = meter.create_counter(
            "berthcache.reconnects", unit="1", description="Reconnection attempts."
        )
        self._errors = meter.create_counter(
            "berthcache.connection_errors", unit="1", description="Connection errors reported."
        )
        self._decisions = meter.create_counter(
            "berthcache.rate_limit.decisions", unit="1", description="Rate-limit decisions."
        )
        self._duration = meter.create_histogram(
            "berthcache.rate_limit.duration", unit="s", description="Rate-limit check duration."
        )
        for one in self._signals:
            one.add_listener(_Listener(self, one.prefix))

    def _observe(self, field: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for one in self._signals:
                yield Observation(getattr(one.responses, field), {_PREFIX: one.prefix})

        return callback


#: The attribute telling caches apart: their key prefix.
_PREFIX = "berthcache.prefix"


class _Listener:
    """One cache's events into the shared instruments, with its prefix attribute."""

    def __init__(self, owner: OpenTelemetryListener, prefix: str) -> None:
        self._owner = owner
        self._attributes = {_PREFIX: prefix}

    def reconnect(self, event: ConnectionEvent) -> None:
        self._owner._reconnects.add(1, self._attributes)

    def connection_error(self, event: ConnectionEvent) -> None:
        self._owner._errors.add(1, self._attributes)

    def rate_limit(self, endpoint: str, result: RateLimitResult, seconds: float) -> None:
        decision = "allowed" if result.allowed else "refused"
        attributes = {**self._attributes, "endpoint": endpoint, "decision": decision}
        self._owner._decisions.add(1, attributes)
        self._owner._duration.record(seconds, {**self._attributes, "endpoint": endpoint})

    def span(self, name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
        return self._owner._tracer.start_as_current_span(
            name, attributes={**self._attributes, **attributes}
        )


def instrument(
    *signals: CacheSignals,
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
) -> OpenTelemetryListener:
    """Report every cache's ``signals`` through OpenTelemetry (the global providers unless
    given); once per meter provider."""
    return OpenTelemetryListener(signals, meter_provider, tracer_provider)
