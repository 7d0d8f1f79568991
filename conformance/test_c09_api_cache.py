"""C9 API response cache: ``api:{endpoint}:{userId}``, 5-minute TTL, invalidation on change
(of exactly one endpoint's entries), hit rate above 80% on repeated reads, one computation per key
when many miss at once — and a seed service shares the entries (the seed side is a plain
redis-py client doing what the seed does)."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from berthcache import TTL, AsyncCache, Cache, CacheConfig, InvalidKeyError

from .support import AnyCache, CacheFactory, aw

pytestmark = [pytest.mark.clause("C9"), pytest.mark.asyncio]

CLIENTS = [{"id": 1, "name": "Harbour Clinic"}, {"id": 2, "name": "Dock Care"}]


async def test_key_format_and_five_minute_ttl(cache: AnyCache) -> None:
    assert TTL.API_RESPONSE == 300
    await aw(cache.responses.set("clients:list", 42, CLIENTS))
    full = f"{cache.config.key_prefix}api:clients:list:42"
    assert 295 <= await aw(cache.redis.ttl(full)) <= 300
    assert await aw(cache.responses.get("clients:list", 42)) == CLIENTS
    assert await aw(cache.responses.get("clients:list", 43)) is None


async def test_invalidate_one_user(cache: AnyCache) -> None:
    await aw(cache.responses.set("clients:list", 1, CLIENTS))
    await aw(cache.responses.set("clients:list", 2, CLIENTS))
    assert await aw(cache.responses.invalidate("clients:list", 1)) == 1
    assert await aw(cache.responses.get("clients:list", 1)) is None
    assert await aw(cache.responses.get("clients:list", 2)) == CLIENTS


async def test_invalidate_every_user_of_an_endpoint(cache: AnyCache) -> None:
    for user in range(5):
        await aw(cache.responses.set("clients:list", user, CLIENTS))
    await aw(cache.responses.set("clients:detail", 1, CLIENTS[0]))
    assert await aw(cache.responses.invalidate("clients:list")) == 5
    for user in range(5):
        assert await aw(cache.responses.get("clients:list", user)) is None
    # Another endpoint that shares the prefix "clients:" is left alone.
    assert await aw(cache.responses.get("clients:detail", 1)) == CLIENTS[0]


async def test_hit_rate_above_80_percent_on_repeated_reads(cache: AnyCache) -> None:
    calls: list[int] = []

    def load(user: int) -> Any:
        calls.append(user)
        return [{"user": user, **c} for c in CLIENTS]

    for _ in range(20):
        for user in range(5):
            value = await aw(
                cache.responses.get_or_compute("clients:list", user, functools.partial(load, user))
            )
            assert value[0]["user"] == user
    assert sorted(calls) == [0, 1, 2, 3, 4]  # computed once per user
    stats = cache.responses.stats
    assert (stats.hits, stats.misses) == (95, 5)
    assert stats.hit_rate > 0.8


async def test_invalidate_then_recompute(cache: AnyCache) -> None:
    version = [1]

    def load() -> Any:
        return {"version": version[0]}

    assert await aw(cache.responses.get_or_compute("clients:list", 1, load)) == {"version": 1}
    version[0] = 2
    assert await aw(cache.responses.get_or_compute("clients:list", 1, load)) == {"version": 1}
    await aw(cache.responses.invalidate("clients:list", 1))  # "invalidate on change"
    assert await aw(cache.responses.get_or_compute("clients:list", 1, load)) == {"version": 2}


async def test_stampede_computes_once(cache_factory: CacheFactory) -> None:
    """Many callers on two clients (as two app processes would be) miss the same key at once."""
    first, second = cache_factory(), cache_factory()
    calls: list[int] = []
    lock = threading.Lock()

    def slow_load() -> Any:
        with lock:
            calls.append(1)
        time.sleep(0.3)  # a slow backend query: the window in which the others miss
        return CLIENTS

    if isinstance(first, AsyncCache):
        assert isinstance(second, AsyncCache)

        async def aload() -> Any:
            calls.append(1)
            await asyncio.sleep(0.3)
            return CLIENTS

        async with asyncio.timeout(10):
            results = await asyncio.gather(
                *(c.responses.get_or_compute("clients:list", 9, aload) for c in [first, second] * 8)
            )
    else:
        assert isinstance(first, Cache)
        assert isinstance(second, Cache)
        results = []
        errors: list[BaseException] = []

        def worker(c: Cache) -> None:
            try:
                value = c.responses.get_or_compute("clients:list", 9, slow_load)
                with lock:
                    results.append(value)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(c,)) for c in [first, second] * 8]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
    assert len(results) == 16
    assert all(r == CLIENTS for r in results)
    assert len(calls) == 1


# -- interop with the seed ---------------------------------------------------------------------


@pytest.fixture
def seed(conf: CacheConfig) -> Iterator[redis.Redis]:
    """A plain client on the target standing in for a service built from the seed."""
    client = redis.Redis(**conf.connection_kwargs(), decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def seed_key(conf: CacheConfig, endpoint: str, user_id: object) -> str:
    return f"{conf.key_prefix}api:{endpoint}:{user_id}"  # ioredis keyPrefix + the seed's key


def seed_cache_api_response(
    seed: redis.Redis, conf: CacheConfig, endpoint: str, user_id: object, data: Any
) -> None:
    seed.set(seed_key(conf, endpoint, user_id), json.dumps(data), ex=300)


def seed_get_cached_api_response(
    seed: redis.Redis, conf: CacheConfig, endpoint: str, user_id: object
) -> Any:
    raw = seed.get(seed_key(conf, endpoint, user_id))
    return None if raw is None else json.loads(raw)


async def test_entries_are_shared_with_the_seed(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    seed_cache_api_response(seed, conf, "clients", 1, CLIENTS)
    assert await aw(cache.responses.get("clients", 1)) == CLIENTS
    await aw(cache.responses.set("clients", 2, CLIENTS[:1]))
    assert seed_get_cached_api_response(seed, conf, "clients", 2) == CLIENTS[:1]


async def test_invalidate_removes_exactly_that_endpoints_entries(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    for user in (1, 2, 3):
        await aw(cache.responses.set("clients", user, CLIENTS))
        await aw(cache.responses.set("clients:list", user, CLIENTS))
    await aw(cache.responses.set("clients:list:archived", 1, CLIENTS))
    assert await aw(cache.responses.invalidate("clients")) == 3
    for user in (1, 2, 3):
        # The seed reads the same keys: gone for "clients", kept for the nested endpoint.
        assert seed_get_cached_api_response(seed, conf, "clients", user) is None
        assert seed_get_cached_api_response(seed, conf, "clients:list", user) == CLIENTS
    assert await aw(cache.responses.get("clients:list:archived", 1)) == CLIENTS
    assert await aw(cache.responses.invalidate("clients:list")) == 3
    assert await aw(cache.responses.get("clients:list:archived", 1)) == CLIENTS
    assert await aw(cache.responses.invalidate("clients")) == 0


async def test_invalidate_lists_no_keys_and_leaves_seed_entries_to_their_ttl(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    """Endpoint-wide invalidation reads the endpoint's index, written with each entry — no
    SCAN (the app user may not list keys). An entry a seed service wrote is not indexed: it
    stays until its 5-minute TTL (the documented trade-off)."""
    await aw(cache.responses.get_or_compute("clients", 1, lambda: CLIENTS))
    await aw(cache.responses.set("clients", 2, CLIENTS))
    seed_cache_api_response(seed, conf, "clients", 3, CLIENTS)
    index = f"{conf.key_prefix}api-index:clients"
    assert sorted(seed.zrange(index, 0, -1)) == ["1", "2"]
    assert 0 < seed.ttl(index) <= 300
    assert await aw(cache.responses.invalidate("clients")) == 2
    assert seed.exists(index) == 0
    assert seed_get_cached_api_response(seed, conf, "clients", 3) == CLIENTS
    assert 0 < seed.ttl(seed_key(conf, "clients", 3)) <= 300


async def test_invalidate_removes_many_entries(cache: AnyCache) -> None:
    pipe = cache.pipeline()
    for n in range(300):
        pipe.set(f"other:{n}", "1")  # unrelated keys around them
    await aw(pipe.execute())
    for n in range(600):
        await aw(cache.responses.set("big", n, n))
    for n in range(100):
        await aw(cache.responses.set("big:nested", n, n))
    assert await aw(cache.responses.invalidate("big")) == 600
    assert await aw(cache.responses.invalidate("big")) == 0
    assert await aw(cache.responses.get("big", 7)) is None
    assert await aw(cache.responses.invalidate("big:nested")) == 100
    assert await aw(cache.get("other:7")) == "1"


async def test_a_user_id_with_a_colon_is_refused(cache: AnyCache) -> None:
    # "api:clients:list:7" could be user "list:7" of "clients" or user 7 of "clients:list".
    with pytest.raises(InvalidKeyError, match="user_id"):
        await aw(cache.responses.set("clients", "list:7", CLIENTS))
    with pytest.raises(InvalidKeyError, match="user_id"):
        await aw(cache.responses.get("clients", "list:7"))
