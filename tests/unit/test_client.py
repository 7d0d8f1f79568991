"""Cache / AsyncCache against a real redis-server: seed semantics, JSON, prefix, pipelines,
validation and graceful shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._config import CacheConfig
from berthcache._exceptions import (
    CacheClosedError,
    CacheUnavailableError,
    ConfigurationError,
    InvalidKeyError,
    InvalidTTLError,
    SerializationError,
)
from berthcache.testing import RedisServer
from berthcache.testing._server import wait_for
from tests.unit.support import config_for


@pytest.fixture
def cache(config: CacheConfig) -> Iterator[Cache]:
    with Cache(config) as client:
        yield client


@pytest_asyncio.fixture
async def acache(config: CacheConfig) -> AsyncIterator[AsyncCache]:
    async with AsyncCache(config) as client:
        yield client


@pytest.fixture
def raw(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
    yield client
    client.close()


def test_set_get_with_ttl_and_prefix(cache: Cache, raw: redis.Redis) -> None:
    cache.set("user:1:name", "Ada", ttl=60)
    assert cache.get("user:1:name") == "Ada"
    full = cache.config.key_prefix + "user:1:name"
    assert raw.get(full) == "Ada"
    assert 0 < raw.ttl(full) <= 60
    assert raw.get("user:1:name") is None


def test_objects_stored_as_json_and_parsed_on_request(cache: Cache, raw: redis.Redis) -> None:
    cache.set("profile", {"name": "Ada", "tags": ["a", "b"]})
    assert raw.get(cache.keys("profile")) == '{"name":"Ada","tags":["a","b"]}'
    assert cache.get("profile", parse_json=True) == {"name": "Ada", "tags": ["a", "b"]}
    assert cache.get("profile") == '{"name":"Ada","tags":["a","b"]}'
    cache.set_json("s", "text")
    assert cache.get_json("s") == "text"
    assert cache.get_json("missing") is None


def test_delete_exists_expire_ttl_semantics(cache: Cache) -> None:
    assert cache.ttl("nothing") == -2
    cache.set("a", "1")
    assert cache.ttl("a") == -1
    assert cache.exists("a") is True
    assert cache.expire("a", dt.timedelta(minutes=5)) is True
    assert 290 < cache.ttl("a") <= 300
    assert cache.expire("nothing", 10) is False
    cache.set("b", 2)
    assert cache.delete("a", "b", "nothing") == 2
    assert cache.exists("a") is False
    assert cache.delete() == 0


def test_incr_counts_from_zero(cache: Cache) -> None:
    assert cache.incr("hits") == 1
    assert cache.incr("hits", 5) == 6


def test_large_value_round_trips(cache: Cache) -> None:
    big = "x" * (1024 * 1024)
    cache.set("big", big)
    assert cache.get("big") == big


@pytest.mark.parametrize("key", ["", None, 1.5, True])
def test_bad_keys_rejected_before_io(cache: Cache, key: object) -> None:
    with pytest.raises(InvalidKeyError, match="key"):
        cache.set(key, "v")  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, 1.5, dt.timedelta(0)])
def test_bad_ttls_rejected(cache: Cache, ttl: object) -> None:
    with pytest.raises(InvalidTTLError):
        cache.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    assert cache.exists("k") is False


def test_unserializable_value_names_the_key(cache: Cache) -> None:
    with pytest.raises(SerializationError, match="'weird'"):
        cache.set("weird", {"when": object()})
    with pytest.raises(SerializationError, match="'weird'"):
        cache.set("weird", object())


def test_corrupt_json_read_back_is_a_serialization_error(cache: Cache) -> None:
    cache.set("notjson", "{oops")
    with pytest.raises(SerializationError, match="'notjson'"):
        cache.get("notjson", parse_json=True)


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigurationError, match="prot"):
        Cache(prot=1)


def test_pipeline_prefixes_and_parses(cache: Cache, raw: redis.Redis) -> None:
    with cache.pipeline() as p:
        p.set("p1", {"a": 1}, ttl=30).set("p2", "two")
        p.get("p1", parse_json=True)
        p.get("p2").exists("p2").incr("n", 3).ttl("p1").delete("p2")
        assert len(p) == 8
        results = p.execute()
    assert results[:5] == [True, True, {"a": 1}, "two", True]
    assert results[5] == 3
    assert 0 < results[6] <= 30
    assert results[7] == 1
    assert raw.exists(cache.keys("p1")) == 1


def test_transaction_pipeline(cache: Cache) -> None:
    with cache.pipeline(transaction=True) as p:
        p.incr("t").incr("t")
        assert p.execute() == [1, 2]


def test_close_waits_for_in_flight_work_then_refuses(config: CacheConfig) -> None:
    cache = Cache(config)
    ended = threading.Event()
    cache.events.on("end", lambda e: ended.set())
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_call() -> None:
        with cache._operation():
            entered.set()
            assert release.wait(5)
            cache.redis.set(cache.keys("inflight"), "done")
            finished.append("done")

    worker = threading.Thread(target=slow_call)
    worker.start()
    assert entered.wait(5)
    closer = threading.Thread(target=cache.close, kwargs={"timeout": 5})
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close() must wait for the in-flight call"
    assert not ended.is_set()
    release.set()
    worker.join(5)
    closer.join(5)
    assert finished == ["done"]
    assert ended.is_set()
    with pytest.raises(CacheClosedError, match="closed"):
        cache.get("inflight")
    cache.close()  # idempotent


def test_close_runs_on_close_callbacks_and_closes_connections(
    config: CacheConfig, raw: redis.Redis
) -> None:
    cache = Cache(config.replace(client_name="bc-close-test"))
    cache.set("x", "1")
    calls: list[str] = []
    cache._on_close(lambda: calls.append("stopped"))

    def ours() -> int:
        return sum(1 for c in raw.client_list() if c.get("name") == "bc-close-test")

    assert ours() >= 1
    cache.close()
    assert calls == ["stopped"]
    # The server drops a closed socket when it next reads it: wait for that, within a bound.
    wait_for(lambda: True if ours() == 0 else None, timeout=5.0, what="connections closed")
    with pytest.raises(CacheClosedError):
        cache.pipeline()


# -- asyncio twin ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_basic_operations(acache: AsyncCache) -> None:
    await acache.set("k", {"v": 1}, ttl=60)
    assert await acache.get("k", parse_json=True) == {"v": 1}
    assert await acache.exists("k") is True
    assert 0 < await acache.ttl("k") <= 60
    assert await acache.expire("k", 120) is True
    assert await acache.incr("c", 2) == 2
    assert await acache.delete("k", "c") == 2
    assert await acache.ttl("k") == -2
    assert await acache.get("k") is None


@pytest.mark.asyncio
async def test_async_pipeline(acache: AsyncCache) -> None:
    async with acache.pipeline() as p:
        p.set("a", [1, 2]).get_json("a").exists("zz")
        assert await p.execute() == [True, [1, 2], False]


@pytest.mark.asyncio
async def test_async_close_waits_for_in_flight(config: CacheConfig) -> None:
    cache = AsyncCache(config)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow() -> str:
        with cache._operation():
            entered.set()
            await release.wait()
            await cache.redis.set(cache.keys("a"), "1")
            return "done"

    task = asyncio.create_task(slow())
    await asyncio.wait_for(entered.wait(), 5)
    closing = asyncio.create_task(cache.close(timeout=5))
    await asyncio.sleep(0)  # let close() start and block on the in-flight call
    assert not closing.done()
    with pytest.raises(CacheClosedError):
        await cache.get("a")
    release.set()
    assert await asyncio.wait_for(task, 5) == "done"
    await asyncio.wait_for(closing, 5)
    with pytest.raises(CacheClosedError):
        await cache.ping()


@pytest.mark.asyncio
async def test_async_close_callbacks_may_be_coroutines(config: CacheConfig) -> None:
    cache = AsyncCache(config)
    stopped: list[bool] = []

    async def stop() -> None:
        stopped.append(True)

    cache._on_close(stop)
    await cache.ping()
    await cache.close()
    assert stopped == [True]


@pytest.mark.asyncio
async def test_more_concurrent_callers_than_pooled_connections_wait_their_turn(
    config: CacheConfig,
) -> None:
    """200 concurrent commands on a pool of 4: callers queue for a connection instead of
    failing with "Too many connections"."""
    async with AsyncCache(config.replace(max_connections=4)) as small:
        await small.set("pool:k", "v")
        results = await asyncio.gather(*(small.get("pool:k") for _ in range(200)))
    assert results == ["v"] * 200


def pool_of(cache: Cache | AsyncCache) -> Any:
    """The connection pool of a transport that checks a connection out per call (the reference
    ``PooledTransport``); a transport without one (one multiplexed connection) skips the test."""
    pool = getattr(cache._transport, "pool", None)
    if pool is None:
        pytest.skip(f"{type(cache._transport).__name__} checks no connection out per call")
    return pool


def test_pool_timeout_bounds_the_wait_for_a_connection(config: CacheConfig) -> None:
    with Cache(config.replace(max_connections=1, pool_timeout=0.2)) as small:
        held = pool_of(small).get_connection()
        try:
            start = time.perf_counter()
            with pytest.raises(CacheUnavailableError, match="no pooled connection became free"):
                small.get("pool:k")
            assert time.perf_counter() - start < 2.0
        finally:
            pool_of(small).release(held)
        assert small.get("pool:k") is None


@pytest.mark.asyncio
async def test_async_pool_timeout_bounds_the_wait_for_a_connection(config: CacheConfig) -> None:
    async with AsyncCache(config.replace(max_connections=1, pool_timeout=0.2)) as small:
        held = await pool_of(small).get_connection()
        try:
            start = time.perf_counter()
            with pytest.raises(
                CacheUnavailableError,
                match=r"became free in time \(no free connection within 0\.2 s",
            ):
                await small.get("pool:k")
            assert time.perf_counter() - start < 2.0
        finally:
            await pool_of(small).release(held)
        assert await small.get("pool:k") is None


@pytest.mark.asyncio
async def test_async_pool_keeps_its_bound_through_an_outage(
    server_factory: Callable[..., RedisServer],
) -> None:
    """Failed connects during an outage must not leak or inflate pool slots: after the server
    returns, a burst larger than the pool waits its turn and every call succeeds."""
    server = server_factory()
    config = config_for(server, max_connections=2, max_retries_per_request=0, pool_timeout=5.0)
    async with AsyncCache(config) as cache:
        await cache.set("k", "v")
        server.stop()
        for _ in range(5):
            with pytest.raises(CacheUnavailableError):
                await cache.get("k")
        server.restart()
        assert pool_of(cache)._slots._value == 2  # every slot came back, none was added
        results = await asyncio.gather(*(cache.get("k") for _ in range(8)))
    assert results == [None] * 8  # the restart lost the key (no persistence): no errors


def _pooled_connections(pool: Any) -> int:
    """Connections a redis-py pool has made (sync blocking pool or asyncio pool)."""
    if hasattr(pool, "_connections"):
        return len(pool._connections)
    return len(pool._available_connections) + len(pool._in_use_connections)


@pytest.mark.asyncio
async def test_cache_redis_opens_no_connection_until_something_uses_it(config: CacheConfig) -> None:
    """Data methods, pipelines and features go through the transport: the pooled redis-py
    client ``cache.redis`` stays unconnected until a WATCH transaction (or a subscription, or
    the application) uses it."""
    with Cache(config) as cache:
        cache.set("lazy", "v")
        assert cache.get("lazy") == "v"
        with cache.pipeline(transaction=True) as pipe:
            pipe.incr("n").get("lazy")
            assert pipe.execute() == [1, "v"]
        sid = cache.sessions.create(7, {"a": 1})
        assert cache.sessions.get(sid) == {"a": 1}
        assert cache.rate_limiter.check("10.0.0.1", "x").allowed
        assert cache.check_health().healthy
        assert _pooled_connections(cache.redis.connection_pool) == 0
        assert cache.sessions.invalidate_all(7) == 1  # WATCH: a connection of its own
        assert _pooled_connections(cache.redis.connection_pool) == 1
    async with AsyncCache(config) as acache:
        await acache.set("lazy", "v")
        async with acache.pipeline() as apipe:
            apipe.get("lazy")
            assert await apipe.execute() == ["v"]
        sid = await acache.sessions.create(7, {"a": 1})
        assert await acache.responses.get("e", 1) is None
        assert await acache.presence.online([1]) == {"1": False}
        assert _pooled_connections(acache.redis.connection_pool) == 0
        assert await acache.sessions.invalidate_all(7) == 1
        assert _pooled_connections(acache.redis.connection_pool) == 1
