"""C16 Memory pressure and TTL guidelines: the TTL per use case; ``OOM command not allowed``
explained; the eviction policy is visible."""

from __future__ import annotations

import datetime as dt
import traceback
from typing import Any

import pytest
import redis

from berthcache import (
    TTL,
    AsyncPresence,
    AsyncRateLimiter,
    AsyncResponseCache,
    AsyncSessionStore,
    CacheConfig,
    InvalidTTLError,
    OutOfMemoryError,
    Presence,
    RateLimiter,
    ResponseCache,
    SessionStore,
)

from .support import (
    AnyCache,
    CacheFactory,
    aw,
    is_async,
    run_pipeline,
    server_config,
    start_server,
)

pytestmark = [pytest.mark.clause("C16"), pytest.mark.asyncio]

POLICIES = {
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
}


@pytest.mark.not_twinned(reason="the TTL table is a constant of the package: no client")
async def test_ttl_guidelines() -> None:
    assert dt.timedelta(days=7).total_seconds() == TTL.SESSION
    assert TTL.API_RESPONSE == 5 * 60
    assert TTL.RATE_LIMIT_WINDOW == 60
    assert TTL.PRESENCE == 5 * 60
    assert TTL.TEMPORARY == 3600
    assert TTL.as_dict() == {
        "session": 604800,
        "api_response": 300,
        "rate_limit_window": 60,
        "presence": 300,
        "temporary": 3600,
    }


async def test_features_use_the_guidelines(cache: AnyCache) -> None:
    assert cache.sessions.ttl == TTL.SESSION
    assert cache.rate_limiter.window == TTL.RATE_LIMIT_WINDOW
    await aw(cache.set("tmp:upload", "x", ttl=TTL.TEMPORARY))
    assert 3595 <= await aw(cache.ttl("tmp:upload")) <= 3600


async def test_eviction_policy_is_visible(cache: AnyCache) -> None:
    """The app user reads the policy with INFO (its ACL allows it). Only a target whose user is
    denied INFO skips, saying so; any other error fails the test."""
    try:
        memory = await aw(cache.redis.info("memory"))
    except redis.exceptions.NoPermissionError:
        pytest.skip("INFO is not permitted to this target's user (NOPERM)")
    assert memory["maxmemory_policy"] in POLICIES


async def test_oom_is_explained(
    local_redis_factory: Any, client_kind: str, conf: CacheConfig, cache_factory: CacheFactory
) -> None:
    """On a server of its own (never the shared target): tiny maxmemory and noeviction."""
    server = start_server(local_redis_factory)
    admin = server.client()
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(used + 256 * 1024))
    finally:
        admin.close()
    cache = cache_factory(server_config(server, conf))
    blob = "x" * 32 * 1024

    async def fill() -> None:
        for n in range(64):
            await aw(cache.set(f"fill:{n}", blob))

    with pytest.raises(OutOfMemoryError) as info:
        await fill()
    text = str(info.value)
    assert "maxmemory" in text  # what happened ...
    assert "eviction" in text  # ... and what to do about it
    # Reads still work under memory pressure.
    assert await aw(cache.get("fill:0")) == blob


async def test_feature_ttls_past_redis_limit_are_refused_when_built(cache: AnyCache) -> None:
    """Every TTL and window is checked before anything is sent (a window of 10**16 s used to
    leave a rate-limit counter without expiry, a session TTL a session index without one)."""
    sync_kinds = (RateLimiter, SessionStore, Presence, ResponseCache)
    async_kinds = (AsyncRateLimiter, AsyncSessionStore, AsyncPresence, AsyncResponseCache)
    arguments = ("window", "ttl", "ttl", "ttl")
    features = zip(async_kinds if is_async(cache) else sync_kinds, arguments, strict=True)
    for kind, argument in features:
        with pytest.raises(InvalidTTLError, match=rf"^{argument} must be at most"):
            kind(cache, **{argument: 10**16})
        assert kind(cache, **{argument: TTL.MAX}) is not None


async def test_oom_error_carries_no_stored_value(
    local_redis_factory: Any, client_kind: str, conf: CacheConfig, cache_factory: CacheFactory
) -> None:
    """A session refused under OOM (MULTI/EXEC): neither the message nor the chain a traceback
    prints holds the personal data or the session id — redis-py's pipeline error quotes the
    whole command, berthcache keeps only its position and name."""
    server = start_server(local_redis_factory)
    admin = server.client()
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
    finally:
        admin.close()
    cache = cache_factory(server_config(server, conf))
    ssn = "-".join(["123", "45", "6789"])  # built, so the traceback's source lines lack it
    with pytest.raises(OutOfMemoryError) as info:
        await aw(cache.sessions.create(42, {"ssn": ssn}))
    printed = "".join(traceback.format_exception(info.value))
    assert ssn not in printed
    assert "user-42-session-" not in printed
    assert "(pipeline command #1: SET)" in str(info.value)
    # A short key, so redis-py's 100-character quote of the command reaches the value.
    with pytest.raises(OutOfMemoryError) as info:
        await run_pipeline(cache, lambda pipe: pipe.set("p", ssn), transaction=True)
    assert ssn not in "".join(traceback.format_exception(info.value))
