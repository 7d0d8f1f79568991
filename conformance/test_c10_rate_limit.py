"""C10 Rate limiting: ``ratelimit:{ip}:{endpoint}``, 100 requests per 60 s window, counted and
given its TTL atomically (never INCR then a separate EXPIRE); when Redis hangs, a decision within
the limiter's budget (rate_limit_timeout_ms, default 250 ms): fail open, or closed if asked."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from berthcache import TTL, CacheConfig, RateLimitUnavailableError

from .hangs import HangingRedis, within
from .support import WAIT, AnyCache, CacheFactory, aw, record_sends

pytestmark = [pytest.mark.clause("C10"), pytest.mark.asyncio]


async def test_100_allowed_101st_refused(cache: AnyCache) -> None:
    limiter = cache.rate_limiter
    assert (limiter.limit, limiter.window) == (100, TTL.RATE_LIMIT_WINDOW) == (100, 60)
    for n in range(1, 101):
        result = await aw(limiter.check("203.0.113.7", "login"))
        assert result.allowed, n
        assert result.remaining == 100 - n
        assert result.limit == 100
    refused = await aw(limiter.check("203.0.113.7", "login"))
    assert refused.allowed is False
    assert refused.remaining == 0
    assert 0 < refused.reset_after <= 60


async def test_counter_key_and_ttl_from_the_first_request(cache: AnyCache) -> None:
    await aw(cache.rate_limiter.check("198.51.100.4", "search"))
    full = f"{cache.config.key_prefix}ratelimit:198.51.100.4:search"
    assert await aw(cache.redis.get(full)) == "1"
    pttl = await aw(cache.redis.pttl(full))
    assert 0 < pttl <= 60_000  # the counter can never outlive its window


async def test_ips_and_endpoints_are_counted_apart(cache: AnyCache) -> None:
    limiter = cache.rate_limiter
    for _ in range(3):
        await aw(limiter.check("192.0.2.1", "login"))
    assert (await aw(limiter.check("192.0.2.2", "login"))).remaining == 99
    assert (await aw(limiter.check("192.0.2.1", "search"))).remaining == 99
    assert (await aw(limiter.check("192.0.2.1", "login"))).remaining == 96


async def test_reset(cache: AnyCache) -> None:
    limiter = cache.rate_limiter
    for _ in range(5):
        await aw(limiter.check("192.0.2.9", "login"))
    await aw(limiter.reset("192.0.2.9", "login"))
    assert (await aw(limiter.check("192.0.2.9", "login"))).remaining == 99


async def test_one_atomic_round_trip_per_check(
    cache: AnyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check is one script call in one round trip (count and TTL set together), never
    INCR followed by a separate EXPIRE that a crash could split."""
    limiter = cache.rate_limiter
    # Connects and loads the script once — on the node of this very key (cluster mode).
    await aw(limiter.check("192.0.2.50", "login"))
    await aw(limiter.reset("192.0.2.50", "login"))
    sends = record_sends(cache, monkeypatch, cache.config.key_prefix.encode())
    for _ in range(10):
        await aw(limiter.check("192.0.2.50", "login"))
    assert len(sends) == 10
    for blob in sends:
        assert b"EVALSHA" in blob.upper() or b"EVAL" in blob.upper()
        assert b"\r\nINCR\r\n" not in blob.upper()
        assert b"\r\nEXPIRE\r\n" not in blob.upper()
    full = f"{cache.config.key_prefix}ratelimit:192.0.2.50:login"
    assert await aw(cache.redis.get(full)) == "10"
    assert 0 < await aw(cache.redis.pttl(full)) <= 60_000


# -- the rate limiter's budget -------------------------------------------------------------------


@pytest.fixture
def hanging(local_redis_factory: Any, conf: CacheConfig) -> HangingRedis:
    return HangingRedis(local_redis_factory, conf)


async def test_fails_open_within_its_budget_while_redis_hangs(
    cache_factory: CacheFactory, hanging: HangingRedis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_factory(hanging.config)  # default settings: fail open, 250 ms
    limiter = cache.rate_limiter
    assert limiter.budget.ms == 250
    assert (await aw(limiter.check("192.0.2.70", "login"))).remaining == 99
    with hanging.paused(), caplog.at_level(logging.WARNING, "berthcache.ratelimit"):
        for _ in range(2):  # on the pooled connection, then on a fresh one
            with within(0.25):
                result = await aw(limiter.check("192.0.2.70", "login"))
            assert result.allowed is True
    assert "250 ms" in caplog.text  # allowed, and logged with the reason
    with within(WAIT):  # the timed-out connection was dropped, not reused out of step
        after = await aw(limiter.check("192.0.2.70", "search"))
    assert (after.allowed, after.remaining) == (True, 99)


async def test_fails_closed_within_its_budget_when_asked(
    cache_factory: CacheFactory, hanging: HangingRedis
) -> None:
    cache = cache_factory(hanging.config, rate_limit_timeout_ms=100)
    limiter = type(cache.rate_limiter)(cache, fail_open=False)
    assert limiter.budget.ms == 100
    with hanging.paused(), within(0.1), pytest.raises(RateLimitUnavailableError, match="100 ms"):
        await aw(limiter.check("192.0.2.71", "login"))
