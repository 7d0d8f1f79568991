"""Rate limiting (C10): 100 per 60 s, one atomic script, TTL always set, fail open/closed."""

from __future__ import annotations

import ipaddress
import logging
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berthcache._client import Cache
from berthcache._exceptions import (
    AuthenticationError,
    CacheServerError,
    ConfigurationError,
    InvalidKeyError,
    RateLimitUnavailableError,
)
from berthcache._host import CacheHost
from berthcache._ratelimit import AsyncRateLimiter, RateLimiter, normalize_ip
from berthcache.testing._server import free_port
from berthcache.testing.plugin import LocalRedisFactory
from tests.unit.support import config_for


def _key(cache: CacheHost, ip: str, endpoint: str) -> str:
    return f"{cache.keys.prefix}ratelimit:{ip}:{endpoint}"


@pytest.mark.clause("C10")
def test_the_101st_request_in_the_window_is_refused(cache: CacheHost, raw: redis.Redis) -> None:
    limiter = RateLimiter(cache)
    results = [limiter.check("203.0.113.9", "/api/login") for _ in range(101)]

    assert all(r.allowed for r in results[:100])
    assert [r.remaining for r in results[:3]] == [99, 98, 97]
    refused = results[100]
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.limit == 100
    assert 0 < refused.reset_after <= 60
    assert refused.headers()["Retry-After"] == str(round(refused.reset_after))
    # Another client and another endpoint have their own counters.
    assert limiter.check("203.0.113.10", "/api/login").allowed
    assert limiter.check("203.0.113.9", "/api/other").allowed
    assert raw.exists(_key(cache, "203.0.113.9", "/api/login"))


@pytest.mark.clause("C10")
def test_the_counter_always_has_a_ttl(cache: CacheHost, raw: redis.Redis) -> None:
    limiter = RateLimiter(cache, limit=5, window=60)
    key = _key(cache, "198.51.100.1", "search")
    for _ in range(8):
        limiter.check("198.51.100.1", "search")
        assert 0 < raw.pttl(key) <= 60_000


def test_a_counter_left_without_ttl_is_repaired(cache: CacheHost, raw: redis.Redis) -> None:
    # What the seed's INCR-then-EXPIRE leaves behind when the process dies in between.
    key = _key(cache, "198.51.100.2", "search")
    raw.set(key, 500)
    result = RateLimiter(cache).check("198.51.100.2", "search")
    assert not result.allowed
    assert 0 < raw.pttl(key) <= 60_000


@pytest.mark.clause("C10")
def test_the_window_resets(cache: CacheHost, raw: redis.Redis) -> None:
    limiter = RateLimiter(cache, limit=2, window=1)
    assert [limiter.check("192.0.2.1", "x").allowed for _ in range(3)] == [True, True, False]
    deadline = time.monotonic() + 5
    key = _key(cache, "192.0.2.1", "x")
    while raw.exists(key):
        assert time.monotonic() < deadline, "the window never expired"
        time.sleep(0.05)
    assert limiter.check("192.0.2.1", "x").remaining == 1


def test_reset_forgets_the_count(cache: CacheHost) -> None:
    limiter = RateLimiter(cache, limit=1)
    limiter.check("192.0.2.2", "login")
    assert not limiter.check("192.0.2.2", "login").allowed
    limiter.reset("192.0.2.2", "login")
    assert limiter.check("192.0.2.2", "login").allowed


def test_ipv6_spellings_share_one_counter(cache: CacheHost, raw: redis.Redis) -> None:
    limiter = RateLimiter(cache, limit=2)
    limiter.check("2001:DB8:0:0::1", "api")
    limiter.check("2001:db8::1", "api")
    assert not limiter.check("2001:0db8:0000::0001", "api").allowed
    assert raw.exists(_key(cache, "2001:db8::1", "api"))
    assert normalize_ip("::ffff:10.0.0.1") == "10.0.0.1"
    assert normalize_ip("unknown") == "unknown"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=st.ip_addresses(v=6),
    endpoint=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s),
)
def test_any_ipv6_address_and_unicode_endpoint_is_limited(
    cache: CacheHost, address: ipaddress.IPv6Address, endpoint: str
) -> None:
    limiter = RateLimiter(cache, limit=1, window=60)
    ip = address.exploded.upper()  # the longest, least canonical spelling
    limiter.reset(ip, endpoint)
    assert limiter.check(ip, endpoint).allowed
    assert not limiter.check(str(address), endpoint).allowed
    limiter.reset(ip, endpoint)


def test_bad_arguments_are_named(cache: CacheHost) -> None:
    with pytest.raises(ConfigurationError, match="limit"):
        RateLimiter(cache, limit=0)
    with pytest.raises(ValueError, match="window"):
        RateLimiter(cache, window=0)
    limiter = RateLimiter(cache)
    with pytest.raises(InvalidKeyError, match="ip"):
        limiter.check("  ", "x")
    with pytest.raises(InvalidKeyError, match="endpoint"):
        limiter.check("192.0.2.1", "")


@pytest.mark.clause("C10")
def test_fails_open_when_redis_is_down(
    dead_cache: CacheHost, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="berthcache.ratelimit"):
        result = RateLimiter(dead_cache, limit=10).check("192.0.2.7", "/api/x")
    assert result.allowed
    assert result.remaining == 10
    assert "allowing the request" in caplog.text


@pytest.mark.clause("C10")
def test_fails_closed_when_asked(dead_cache: CacheHost) -> None:
    with pytest.raises(RateLimitUnavailableError, match="/api/x"):
        RateLimiter(dead_cache, fail_open=False).check("192.0.2.7", "/api/x")


@pytest.mark.asyncio
async def test_async_twin(acache: CacheHost) -> None:
    limiter = AsyncRateLimiter(acache, limit=3)
    results = [await limiter.check("2001:db8::7", "feed") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    await limiter.reset("2001:db8::7", "feed")
    assert (await limiter.check("2001:db8::7", "feed")).remaining == 2


@pytest.mark.asyncio
async def test_async_fails_open_or_closed(dead_acache: CacheHost) -> None:
    with pytest.raises(RateLimitUnavailableError):
        await AsyncRateLimiter(dead_acache, fail_open=False).check("192.0.2.7", "/api/x")
    assert (await AsyncRateLimiter(dead_acache).check("192.0.2.7", "/api/x")).allowed


def test_fails_open_on_a_read_only_node_and_raises_on_bad_credentials(
    local_redis_factory: LocalRedisFactory,
) -> None:
    """After a failover the old primary answers READONLY: Redis cannot count the request, so
    the limiter's fail-open choice applies. A wrong password is a configuration error: it is
    raised whatever the choice, never silently allowed."""
    replica = local_redis_factory.server(replicaof=("127.0.0.1", free_port()), appendonly=False)
    with Cache(config_for(replica, max_retries_per_request=0)) as cache:
        verdict = RateLimiter(cache).check("192.0.2.8", "/api/x")
        assert verdict.allowed
        with pytest.raises(RateLimitUnavailableError, match=r"READONLY|read-only"):
            RateLimiter(cache, fail_open=False).check("192.0.2.8", "/api/x")
    guarded = local_redis_factory.server(password="right-one", appendonly=False)
    wrong = config_for(guarded, password="wrong-one", max_retries_per_request=0)
    with Cache(wrong) as cache, pytest.raises(AuthenticationError):
        RateLimiter(cache).check("192.0.2.8", "/api/x")


def test_a_wrong_typed_counter_is_an_error_not_an_outage(
    cache: CacheHost, raw: redis.Redis
) -> None:
    """Only outages take the fail-open path: a key holding the wrong type (or a script error)
    must surface, or one bad key would switch limiting off for that client for good."""
    raw.rpush(cache.keys("ratelimit", "192.0.2.66", "login"), "not-a-counter")
    with pytest.raises(CacheServerError, match=r"WRONGTYPE|wrong kind"):
        RateLimiter(cache).check("192.0.2.66", "login")


@pytest.mark.parametrize("ip", [True, 1.0, ["10.0.0.1"]])
def test_non_text_addresses_are_refused_even_after_a_lookalike_was_counted(
    cache: CacheHost, ip: object
) -> None:
    limiter = RateLimiter(cache)
    limiter.check(1, "login")  # type: ignore[arg-type]  # an int id is a valid key part
    with pytest.raises(InvalidKeyError):
        limiter.check(ip, "login")  # type: ignore[arg-type]
