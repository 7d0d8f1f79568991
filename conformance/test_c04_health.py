"""C4 Health: check_health() -> {healthy, latency}; never raises; /health serves
{"status": "healthy", "checks": {"cache": {...}}} under a real ASGI server (uvicorn) — and both
answer within the health budget (health_timeout_ms, default 1 s) + 100 ms whatever Redis does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from berthcache import CacheConfig, health_app
from berthcache.testing import serve_asgi

from .hangs import HangingRedis, within
from .support import WAIT, AnyCache, CacheFactory, aw, dead_port

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


async def test_health_endpoint_under_uvicorn(cache: AnyCache) -> None:
    async with serve_asgi(health_app(cache)) as base, httpx.AsyncClient(timeout=WAIT) as http:
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
    async with serve_asgi(health_app(cache)) as base, httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.get(f"{base}/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["cache"]["healthy"] is False


# -- the health budget -------------------------------------------------------------------------


@pytest.fixture
def hanging(local_redis_factory: Any, conf: CacheConfig) -> HangingRedis:
    return HangingRedis(local_redis_factory, conf)


async def test_check_health_answers_within_its_budget_while_redis_hangs(
    cache_factory: CacheFactory, hanging: HangingRedis
) -> None:
    cache = cache_factory(hanging.config)  # default settings: a 1000 ms budget
    assert (await aw(cache.check_health())).healthy  # a pooled connection now exists
    with hanging.paused():
        for _ in range(2):  # on the pooled connection, then on a fresh one
            with within(1.0):
                status = await aw(cache.check_health())
            assert status.healthy is False
            assert status.reason is not None
            assert "1000 ms" in status.reason
            assert "REDIS_HEALTH_TIMEOUT_MS" in status.reason
    with within(WAIT):  # the timed-out connection was dropped, not reused out of step
        assert (await aw(cache.check_health())).healthy


async def test_the_health_budget_is_a_setting(
    cache_factory: CacheFactory, hanging: HangingRedis
) -> None:
    cache = cache_factory(hanging.config, health_timeout_ms=200)
    with hanging.paused(), within(0.2):
        status = await aw(cache.check_health())
    assert status.healthy is False
    assert status.reason is not None
    assert "200 ms" in status.reason


async def test_health_endpoint_answers_503_within_budget_while_redis_hangs(
    cache_factory: CacheFactory, hanging: HangingRedis
) -> None:
    cache = cache_factory(hanging.config)  # default settings
    async with serve_asgi(health_app(cache)) as base, httpx.AsyncClient(timeout=WAIT) as http:
        assert (await http.get(f"{base}/health")).status_code == 200
        with hanging.paused(), within(1.0):
            response = await http.get(f"{base}/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert "1000 ms" in body["reason"]
        assert body["checks"]["cache"] == {"healthy": False, "latency": None}
        assert (await http.get(f"{base}/health")).status_code == 200
