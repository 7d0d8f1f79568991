"""C9 API response cache: ``api:{endpoint}:{userId}``, 5-minute TTL, invalidation on change
(of exactly one endpoint's entries), hit rate above 80% on repeated reads, one computation per key
when many miss at once (also when the computation raises) — and a seed service shares the
entries (the seed side is a plain redis-py client doing what the seed does). When Redis is down
or hangs, get_or_compute serves the computed value within its step budget
(response_cache_timeout_ms, default 500 ms), counted and logged once per outage."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from berthcache import (
    TTL,
    AsyncCache,
    Cache,
    CacheConfig,
    CacheUnavailableError,
    InvalidKeyError,
)

from .hangs import HangingRedis, within
from .support import (
    WAIT,
    AnyCache,
    CacheFactory,
    api_key_part,
    aw,
    dead_port,
    plain_client,
)

pytestmark = [pytest.mark.clause("C9"), pytest.mark.asyncio]

CLIENTS = [{"id": 1, "name": "Harbour Clinic"}, {"id": 2, "name": "Dock Care"}]


async def test_key_format_and_five_minute_ttl(cache: AnyCache) -> None:
    assert TTL.API_RESPONSE == 300
    await aw(cache.responses.set("clients:list", 42, CLIENTS))
    full = cache.config.key_prefix + api_key_part(cache, "clients:list", 42)
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
    client = plain_client(conf)
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


@pytest.mark.requires("standalone")  # cluster mode hash-tags the endpoint (C9)
async def test_entries_are_shared_with_the_seed(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    seed_cache_api_response(seed, conf, "clients", 1, CLIENTS)
    assert await aw(cache.responses.get("clients", 1)) == CLIENTS
    await aw(cache.responses.set("clients", 2, CLIENTS[:1]))
    assert seed_get_cached_api_response(seed, conf, "clients", 2) == CLIENTS[:1]


@pytest.mark.requires("standalone")  # cluster mode hash-tags the endpoint (C9)
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


@pytest.mark.requires("standalone")  # cluster mode hash-tags the endpoint (C9)
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


# -- one compute per miss, also when the computation raises ----------------------------------------


class BackendDown(Exception):
    """What the computation raises: the backend behind the cache failed."""


async def test_a_raising_compute_runs_once_for_twenty_concurrent_callers(cache: AnyCache) -> None:
    """20 callers miss a cold key whose computation fails after 0.2 s: one computation runs and
    every caller gets its error — not 20 computations one after another (4 s for the last)."""
    calls: list[int] = []
    lock = threading.Lock()
    if isinstance(cache, AsyncCache):

        async def afail() -> Any:
            calls.append(1)
            await asyncio.sleep(0.2)
            raise BackendDown("backend down")

        with within(1.0):
            async with asyncio.timeout(WAIT):
                outcomes = await asyncio.gather(
                    *(cache.responses.get_or_compute("flaky", 1, afail) for _ in range(20)),
                    return_exceptions=True,
                )
    else:
        assert isinstance(cache, Cache)
        start = threading.Barrier(20)
        outcomes = []

        def fail() -> Any:
            with lock:
                calls.append(1)
            time.sleep(0.2)  # the slow backend query that then fails
            raise BackendDown("backend down")

        def worker() -> None:
            start.wait(WAIT)
            try:
                result: Any = cache.responses.get_or_compute("flaky", 1, fail)
            except BaseException as exc:
                result = exc
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        with within(1.0):
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=WAIT)
        assert not any(t.is_alive() for t in threads)
    assert len(calls) == 1
    assert len(outcomes) == 20
    assert all(isinstance(o, BackendDown) for o in outcomes), outcomes
    assert await aw(cache.responses.get_or_compute("flaky", 1, lambda: "ok")) == "ok"


# -- serving through an outage -------------------------------------------------------------------


@pytest.fixture
def hanging(local_redis_factory: Any, conf: CacheConfig) -> HangingRedis:
    return HangingRedis(local_redis_factory, conf)


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    """How many outage warnings and recovery lines the response cache logged."""
    mine = [r for r in caplog.records if r.name == "berthcache.responses"]
    down = sum(1 for r in mine if r.levelno == logging.WARNING and "unavailable" in r.message)
    up = sum(1 for r in mine if r.levelno == logging.INFO and "answers again" in r.message)
    return down, up


async def test_get_or_compute_serves_through_a_hang(
    cache_factory: CacheFactory, hanging: HangingRedis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_factory(hanging.config)  # default settings: serve through, 500 ms per step
    responses = cache.responses
    assert await aw(responses.get("clients:list", 1)) is None  # a pooled connection exists
    caplog.set_level(logging.INFO, "berthcache.responses")
    with hanging.paused():
        for n in range(1, 4):
            with within(0.5):
                value = await aw(responses.get_or_compute("clients:list", n, lambda: CLIENTS))
            assert value == CLIENTS
        assert responses.stats.served_through_outage == 3
        assert outage_lines(caplog) == (1, 0)  # one warning for the outage, not one per call
    with within(WAIT):
        assert await aw(responses.get_or_compute("clients:list", 4, lambda: CLIENTS)) == CLIENTS
    assert outage_lines(caplog) == (1, 1)
    assert await aw(responses.get("clients:list", 4)) == CLIENTS  # stored again
    assert responses.stats.served_through_outage == 3


async def test_get_or_compute_serves_while_redis_is_down(
    cache_factory: CacheFactory, conf: CacheConfig
) -> None:
    down = conf.replace(host="127.0.0.1", port=dead_port(), tls=False, tls_ca_file=None)
    cache = cache_factory(down)
    with within(0.5):
        assert await aw(cache.responses.get_or_compute("clients:list", 1, lambda: CLIENTS)) == (
            CLIENTS
        )
    assert cache.responses.stats.served_through_outage == 1
    strict = cache_factory(down, serve_through_outage=False)
    with pytest.raises(CacheUnavailableError):
        await aw(strict.responses.get_or_compute("clients:list", 1, lambda: CLIENTS))
    assert strict.responses.stats.served_through_outage == 0
