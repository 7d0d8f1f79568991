"""C4 Health: check_health() -> {healthy, latency}; never raises; /health serves
{"status": "healthy", "checks": {"cache": {...}}} under a real ASGI server (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from berthcache import CacheConfig, health_app
from berthcache.testing._server import free_port
from conformance.support import WAIT, AnyCache, CacheFactory, aw, dead_port

pytestmark = [pytest.mark.clause("C4"), pytest.mark.asyncio]


async def test_healthy_with_latency(cache: AnyCache) -> None:
    status = await aw(cache.check_health())
    assert status.healthy is True
    assert status.error is None
    assert status.latency_ms is not None
    assert 0 <= status.latency_ms < WAIT * 1000
    body = status.as_dict()
    assert set(body) == {"healthy", "latency"}
    assert body["healthy"] is True
    assert isinstance(body["latency"], float)


async def test_ping_measures_round_trip(cache: AnyCache) -> None:
    latency = await aw(cache.ping())
    assert isinstance(latency, float)
    assert 0 <= latency < WAIT * 1000


async def test_unhealthy_never_raises(cache_factory: CacheFactory, conf: CacheConfig) -> None:
    secret = "pw-" + "Hh4k" * 5
    cache = cache_factory(
        conf.replace(host="127.0.0.1", port=dead_port(), tls=False, tls_ca_file=None),
        password=secret,
        connect_timeout=0.5,
        max_retries_per_request=0,
    )
    status = await aw(cache.check_health())
    assert status.healthy is False
    assert status.error
    assert secret not in status.error
    assert status.as_dict()["healthy"] is False


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free port; stop it whatever happens."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT):
            while not server.started:  # uvicorn exposes no awaitable for "listening"
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(WAIT):
            await task


async def test_health_endpoint_under_uvicorn(cache: AnyCache) -> None:
    async with _serve(health_app(cache)) as base, httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.get(f"{base}/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy"
        assert body["checks"]["cache"]["healthy"] is True
        assert isinstance(body["checks"]["cache"]["latency"], float)


async def test_health_endpoint_reports_503_when_down(
    cache_factory: CacheFactory, conf: CacheConfig
) -> None:
    cache = cache_factory(
        conf.replace(host="127.0.0.1", port=dead_port(), tls=False, tls_ca_file=None),
        connect_timeout=0.5,
        max_retries_per_request=0,
    )
    async with _serve(health_app(cache)) as base, httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.get(f"{base}/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["cache"]["healthy"] is False
