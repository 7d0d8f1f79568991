"""check_health() and the /health ASGI app under a real uvicorn server with real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._health import HealthStatus, health_app
from berthcache.testing import serve_asgi
from tests.unit.support import config_for


def test_check_health_healthy_and_shape(config: Any) -> None:
    with Cache(config) as cache:
        status = cache.check_health()
        assert status.healthy is True
        assert status.latency_ms is not None
        assert status.latency_ms > 0
        assert status.as_dict() == {"healthy": True, "latency": status.latency_ms}
        assert cache.ping() > 0


def test_check_health_never_raises(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    cache = Cache(config_for(server, retry_strategy="none"))
    server.stop()
    status = cache.check_health()
    assert status == HealthStatus(
        healthy=False, latency_ms=None, error=status.error, reason="Redis is unreachable"
    )
    assert status.error
    assert "unreachable" in status.error
    cache.close()
    closed = cache.check_health()
    assert closed.healthy is False
    assert closed.error
    assert "closed" in closed.error


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_health_endpoint_healthy_then_unhealthy(
    server_factory: Callable[..., Any], kind: str
) -> None:
    server = server_factory()
    config = config_for(server, retry_strategy="none")
    cache: Cache | AsyncCache = Cache(config) if kind == "sync" else AsyncCache(config)
    try:
        async with serve_asgi(health_app(cache)) as base, httpx.AsyncClient(timeout=10) as http:
            ok = await http.get(f"{base}/health")
            assert ok.status_code == 200
            body = ok.json()
            assert body["status"] == "healthy"
            assert body["checks"]["cache"]["healthy"] is True
            assert body["checks"]["cache"]["latency"] > 0
            assert (await http.get(f"{base}/other")).status_code == 404

            server.stop()
            down = await http.get(f"{base}/health")
            assert down.status_code == 503
            assert down.json() == {
                "status": "unhealthy",
                "reason": "Redis is unreachable",
                "checks": {"cache": {"healthy": False, "latency": None}},
            }
    finally:
        if isinstance(cache, AsyncCache):
            await cache.close()
        else:
            cache.close()


@pytest.mark.asyncio
async def test_health_app_custom_path(config: Any) -> None:
    async with AsyncCache(config) as cache:
        app = health_app(cache, path="/_status")
        async with serve_asgi(app) as base, httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{base}/_status")).status_code == 200
            assert (await http.get(f"{base}/health")).status_code == 404
