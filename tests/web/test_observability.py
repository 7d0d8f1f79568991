"""berthcache's own signals reach Prometheus and OpenTelemetry: each counter and histogram
moves when the thing it counts happens, against a real redis-server (and a dead port)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from berthcache import AsyncCache, Cache, CacheConfig, RateLimiter
from berthcache.observability import CacheSignals
from berthcache.observability.opentelemetry import instrument
from berthcache.observability.prometheus import PrometheusCollector
from berthcache.testing import free_port, serve_asgi
from berthcache.web import RateLimitMiddleware


@pytest.fixture
def flaky() -> Iterator[Cache]:
    """A cache on a dead port that retries twice: each command reconnects twice, then fails."""
    config = CacheConfig(
        host="127.0.0.1",
        port=free_port(),
        max_retries_per_request=2,
        connect_timeout=0.2,
        socket_timeout=0.2,
    )
    with Cache(config) as cache:
        yield cache


def _prom(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_prometheus_counters_and_histogram_move(cache: Cache) -> None:
    registry = CollectorRegistry()
    signals = CacheSignals(cache)
    PrometheusCollector(signals).register(registry)
    p = {"prefix": cache.config.key_prefix}
    assert _prom(registry, "berthcache_response_cache_hits_total", **p) == 0

    cache.responses.get_or_compute("report", 1, lambda: {"rows": 3})
    cache.responses.get_or_compute("report", 1, lambda: {"rows": 3})
    assert _prom(registry, "berthcache_response_cache_misses_total", **p) == 1
    assert _prom(registry, "berthcache_response_cache_hits_total", **p) == 1

    limiter = signals.observe_rate_limiter(RateLimiter(cache, limit=1, window=60))
    assert limiter.check("203.0.113.1", "login").allowed
    assert not limiter.check("203.0.113.1", "login").allowed
    decisions = "berthcache_rate_limit_decisions_total"
    assert _prom(registry, decisions, **p, endpoint="login", decision="allowed") == 1
    assert _prom(registry, decisions, **p, endpoint="login", decision="refused") == 1
    assert _prom(registry, "berthcache_rate_limit_check_seconds_count", **p) == 2
    assert _prom(registry, "berthcache_rate_limit_check_seconds_bucket", **p, le="+Inf") == 2
    assert 0 < _prom(registry, "berthcache_rate_limit_check_seconds_sum", **p) < 1
    signals.close()


def test_prometheus_sees_reconnects_and_serving_through_an_outage(flaky: Cache) -> None:
    registry = CollectorRegistry()
    PrometheusCollector(CacheSignals(flaky)).register(registry)
    p = {"prefix": flaky.config.key_prefix}

    assert flaky.responses.get_or_compute("report", 1, lambda: "computed") == "computed"
    assert _prom(registry, "berthcache_response_cache_served_through_outage_total", **p) == 1
    with pytest.raises(Exception, match="unreachable"):
        flaky.get("k")
    assert _prom(registry, "berthcache_reconnects_total", **p) == 2
    assert _prom(registry, "berthcache_connection_errors_total", **p) >= 3


def _otel(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """``{instrument: [(attributes, point), ...]}`` from one collection."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), point))
    return found


@pytest.mark.asyncio
async def test_opentelemetry_instruments_and_spans_move(acache: AsyncCache, flaky: Cache) -> None:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[reader])
    signals = CacheSignals(acache)
    flaky_signals = CacheSignals(flaky)
    instrument(signals, flaky_signals, meter_provider=meters, tracer_provider=tracer_provider)

    async def compute() -> int:
        return 7

    await acache.responses.get_or_compute("report", 1, compute)
    await acache.responses.get_or_compute("report", 1, compute)
    limiter = signals.observe_rate_limiter(acache.rate_limiter)
    await limiter.check("203.0.113.2", "search")
    flaky.responses.get_or_compute("report", 1, lambda: 1)
    with pytest.raises(Exception, match="unreachable"):
        flaky.get("k")

    metrics = _otel(reader)
    mine = {"berthcache.prefix": acache.config.key_prefix}
    theirs = {"berthcache.prefix": flaky.config.key_prefix}

    def value(name: str, attributes: dict[str, Any]) -> Any:
        return next(p.value for a, p in metrics[name] if a == attributes)

    assert value("berthcache.response_cache.hits", mine) == 1
    assert value("berthcache.response_cache.misses", mine) == 1
    assert value("berthcache.response_cache.served_through_outage", theirs) == 1
    assert value("berthcache.reconnects", theirs) == 2
    assert value("berthcache.connection_errors", theirs) >= 3
    decision = {**mine, "endpoint": "search", "decision": "allowed"}
    assert value("berthcache.rate_limit.decisions", decision) == 1
    durations = next(
        p for a, p in metrics["berthcache.rate_limit.duration"] if a["endpoint"] == "search"
    )
    assert durations.count == 1
    (span,) = spans.get_finished_spans()
    assert span.name == "berthcache.rate_limit.check"
    assert span.attributes is not None
    assert span.attributes["endpoint"] == "search"


@pytest.mark.asyncio
async def test_the_web_middleware_reports_its_decisions(twin: Cache | AsyncCache) -> None:
    registry = CollectorRegistry()
    signals = CacheSignals(twin)
    PrometheusCollector(signals).register(registry)

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/", hello)],
        middleware=[
            Middleware(
                RateLimitMiddleware, cache=twin, limit=1, on_decision=signals.record_rate_limit
            )
        ],
    )
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
        codes = [(await http.get(f"{base}/")).status_code for _ in range(3)]
    assert codes == [200, 429, 429]
    p = {"prefix": twin.config.key_prefix, "endpoint": "all"}
    decisions = "berthcache_rate_limit_decisions_total"
    assert _prom(registry, decisions, **p, decision="allowed") == 1
    assert _prom(registry, decisions, **p, decision="refused") == 2
    assert _prom(registry, "berthcache_rate_limit_check_seconds_count", prefix=p["prefix"]) == 3
