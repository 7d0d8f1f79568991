"""The public names of berthcache.web, berthcache.caching and berthcache.observability, pinned
(as tests/unit/test_public_api.py pins berthcache's): adding or removing one is a decision."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "berthcache.web": [
        "RateLimit",
        "RateLimitMiddleware",
        "Session",
        "SessionMiddleware",
        "cache_response",
        "client_ip",
        "forwarded_client_ip",
        "get_session",
        "health_app",
        "rate_limit_headers",
    ],
    "berthcache.caching": ["cached"],
    "berthcache.observability": [
        "AsyncObservedRateLimiter",
        "CacheSignals",
        "ObservedRateLimiter",
        "SignalListener",
    ],
    "berthcache.observability.prometheus": ["DEFAULT_BUCKETS", "PrometheusCollector"],
    "berthcache.observability.opentelemetry": ["OpenTelemetryListener", "instrument"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_public_names_are_pinned_and_importable(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == EXPECTED[module]
    for name in imported.__all__:
        assert getattr(imported, name) is not None


def test_web_health_app_is_the_cache_modules() -> None:
    import berthcache
    import berthcache.web

    assert berthcache.web.health_app is berthcache.health_app
