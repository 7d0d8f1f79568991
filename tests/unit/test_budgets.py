"""Time budgets (issue 8): the settings, and the bounded client's own guarantees on a real,
paused redis-server — the pool wait is bounded too, a timed-out connection is dropped, and the
ordinary command path keeps its retries."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from berthcache._async_client import AsyncCache
from berthcache._budget import BudgetExceededError
from berthcache._client import Cache
from berthcache._config import CacheConfig
from berthcache._exceptions import CacheUnavailableError, ConfigurationError
from berthcache._health import HealthStatus, health_app
from berthcache._ratelimit import RateLimiter
from berthcache._responses import ResponseCache
from berthcache.testing import RedisServer, serve_asgi
from tests.unit.support import config_for

SLACK = 0.1


# -- settings ----------------------------------------------------------------------------------


def test_budget_defaults() -> None:
    config = CacheConfig()
    assert config.health_timeout_ms == 1000
    assert config.rate_limit_timeout_ms == 250
    assert config.response_cache_timeout_ms == 500
    assert config.serve_through_outage is True


def test_budgets_from_the_environment() -> None:
    config = CacheConfig.from_env(
        {
            "REDIS_HEALTH_TIMEOUT_MS": "750",
            "REDIS_RATE_LIMIT_TIMEOUT_MS": "100",
            "REDIS_RESPONSE_CACHE_TIMEOUT_MS": "300",
            "REDIS_SERVE_THROUGH_OUTAGE": "false",
        }
    )
    assert (config.health_timeout_ms, config.rate_limit_timeout_ms) == (750, 100)
    assert config.response_cache_timeout_ms == 300
    assert config.serve_through_outage is False


@pytest.mark.parametrize(
    ("variable", "raw", "problem"),
    [
        ("REDIS_HEALTH_TIMEOUT_MS", "1s", "integer"),
        ("REDIS_HEALTH_TIMEOUT_MS", "0", "between 10 and 60000"),
        ("REDIS_RATE_LIMIT_TIMEOUT_MS", "0.25", "integer"),
        ("REDIS_RESPONSE_CACHE_TIMEOUT_MS", "600001", "between 10 and 60000"),
        ("REDIS_SERVE_THROUGH_OUTAGE", "maybe", "true or false"),
    ],
)
def test_a_bad_budget_names_its_variable(variable: str, raw: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        CacheConfig.from_env({variable: raw})
    assert caught.value.setting == variable


def test_a_bad_budget_argument_names_the_argument(config: CacheConfig) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CacheConfig(health_timeout_ms=5)
    assert caught.value.setting == "health_timeout_ms"
    with Cache(config) as cache:
        with pytest.raises(ConfigurationError, match="timeout_ms"):
            RateLimiter(cache, timeout_ms=0)
        with pytest.raises(ConfigurationError, match="timeout_ms"):
            ResponseCache(cache, timeout_ms=1.5)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="serve_through_outage"):
            ResponseCache(cache, serve_through_outage="yes")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="timeout_ms"):
            health_app(cache, timeout_ms=0)


# -- the bounded client on a paused server ------------------------------------------------------


def test_waiting_for_a_free_connection_counts_against_the_budget(
    server_factory: Callable[..., RedisServer],
) -> None:
    """One connection, held by a check that hangs: a second check waits for it no longer than
    its own budget (the pool wait is bounded by the deadline, not by pool_timeout)."""
    server = server_factory()
    with Cache(config_for(server, max_connections=1, health_timeout_ms=300)) as cache:
        assert cache.check_health().healthy
        results: list[tuple[HealthStatus, float]] = []

        def check() -> None:
            start = time.perf_counter()
            status = cache.check_health()
            results.append((status, time.perf_counter() - start))

        with server.paused():
            threads = [threading.Thread(target=check) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=5)
        assert len(results) == 2
        for status, took in results:
            assert status.healthy is False
            assert took <= 0.3 + SLACK
        assert cache.check_health().healthy


def test_a_timed_out_connection_is_never_reused_out_of_step(
    server_factory: Callable[..., RedisServer],
) -> None:
    """The replies a paused server owes arrive after SIGCONT; a connection that kept them would
    hand the next caller the previous command's answer. Counts must stay exact."""
    server = server_factory()
    with Cache(config_for(server)) as cache:
        limiter = RateLimiter(cache, timeout_ms=100, fail_open=True)
        assert limiter.check("192.0.2.1", "a").remaining == 99
        with server.paused():
            assert limiter.check("192.0.2.1", "b").allowed  # failed open, reply still owed
            assert cache.check_health().healthy is False
        for n in range(1, 6):
            assert limiter.check("192.0.2.9", "fresh").remaining == 100 - n
            assert cache.check_health().healthy


def test_the_ordinary_command_path_keeps_its_retries(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Budgets apply to health, rate limit and response cache calls only: a plain GET still
    waits out its socket timeout (here 0.3 s) and retries."""
    server = server_factory()
    config = config_for(server, socket_timeout=0.3, max_retries_per_request=1)
    with Cache(config) as cache:
        cache.set("k", "v")
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(CacheUnavailableError):
                cache.get("k")
            assert time.perf_counter() - start >= 0.6  # two attempts of 0.3 s


@pytest.mark.asyncio
async def test_async_budget_exceeded_is_a_cache_unavailable_error(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()
    async with AsyncCache(config_for(server, response_cache_timeout_ms=200)) as cache:
        await cache.responses.set("e", 1, {"a": 1})
        with server.paused():
            start = time.perf_counter()
            with pytest.raises(BudgetExceededError, match="200 ms"):
                await cache.responses.get("e", 1)
            assert time.perf_counter() - start <= 0.2 + SLACK
        assert await cache.responses.get("e", 1) == {"a": 1}


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """A local address whose SYNs are dropped: a listener with a full accept queue that never
    accepts (what a firewall black hole looks like to the client: connect() just waits)."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            with pytest.raises(TimeoutError):
                probe.connect(address)
        finally:
            probe.close()
        yield address
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_budgets_hold_against_a_black_hole(black_hole: tuple[str, int], kind: str) -> None:
    host, port = black_hole
    config = CacheConfig(host=host, port=port, health_timeout_ms=300)
    cache: Cache | AsyncCache = Cache(config) if kind == "sync" else AsyncCache(config)

    async def timed(call: Callable[[], object]) -> tuple[object, float]:
        start = time.perf_counter()
        result = call()
        if asyncio.iscoroutine(result):
            result = await result
        return result, time.perf_counter() - start

    try:
        status, took = await timed(cache.check_health)
        assert isinstance(status, HealthStatus)
        assert status.healthy is False
        assert took <= 0.3 + SLACK
        verdict, took = await timed(lambda: cache.rate_limiter.check("192.0.2.1", "x"))
        assert getattr(verdict, "allowed", False) is True
        assert took <= 0.25 + SLACK
        value, took = await timed(lambda: cache.responses.get_or_compute("e", 1, lambda: 7))
        assert value == 7
        assert took <= 0.5 + SLACK
    finally:
        closing = cache.close()
        if asyncio.iscoroutine(closing):
            await closing


# -- the /health app's own guard ----------------------------------------------------------------


class NeverAnswers:
    """A health source that hangs (a cache without a budget): the app must still answer."""

    async def check_health(self) -> HealthStatus:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.asyncio
async def test_health_app_answers_503_when_the_check_overruns() -> None:
    app = health_app(NeverAnswers(), timeout_ms=200)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=5) as http:
        start = time.perf_counter()
        response = await http.get(f"{base}/health")
        took = time.perf_counter() - start
    assert response.status_code == 503
    assert response.json()["reason"] == "the health check did not finish within 200 ms"
    assert took <= 0.2 + SLACK
