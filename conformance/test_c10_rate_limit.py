"""C10 Rate limiting: ``ratelimit:{ip}:{endpoint}``, 100 requests per 60 s window, counted and
given its TTL atomically (never INCR then a separate EXPIRE)."""

from __future__ import annotations

import pytest

from berthcache import TTL

from .support import AnyCache, aw, record_sends

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
    await aw(limiter.check("192.0.2.50", "warmup"))  # connects and loads the script once
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
