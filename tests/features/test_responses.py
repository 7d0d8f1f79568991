"""API response cache (C9): key, TTL, invalidation, stampede protection and hit rate."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from berthcache._exceptions import ConfigurationError, InvalidKeyError, SerializationError
from berthcache._host import CacheHost
from berthcache._responses import AsyncResponseCache, ResponseCache
from berthcache._ttl import TTL


class Counter:
    """A compute function that counts its calls (thread-safe) and can be slow."""

    def __init__(self, value: Any = None, delay: float = 0.0) -> None:
        self.calls = 0
        self.value = value if value is not None else {"clients": [1, 2, 3]}
        self.delay = delay
        self._lock = threading.Lock()
        self.started = threading.Event()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        self.started.set()
        if self.delay:
            threading.Event().wait(self.delay)  # a slow backend query
        return self.value


@pytest.mark.clause("C9")
def test_set_get_under_the_seed_key_with_five_minute_ttl(
    cache: CacheHost, raw: redis.Redis
) -> None:
    responses = ResponseCache(cache)
    responses.set("clients:list", 42, [{"id": 1, "name": "Åsa"}])

    key = f"{cache.keys.prefix}api:clients:list:42"
    assert TTL.API_RESPONSE - 5 <= raw.ttl(key) <= TTL.API_RESPONSE
    assert responses.get("clients:list", 42) == [{"id": 1, "name": "Åsa"}]
    assert responses.get("clients:list", 43) is None
    responses.set("clients:list", 42, {"x": 1}, ttl=30)
    assert raw.ttl(key) <= 30


@pytest.mark.clause("C9")
def test_invalidate_one_user_or_every_user(cache: CacheHost) -> None:
    responses = ResponseCache(cache)
    for user in range(1203):  # more than one SCAN/UNLINK batch
        responses.set("clients:list", user, {"u": user})
    responses.set("visits:list", 1, {"v": 1})

    assert responses.invalidate("clients:list", 5) == 1
    assert responses.get("clients:list", 5) is None
    assert responses.invalidate("clients:list") == 1202
    assert responses.get("clients:list", 6) is None
    assert responses.get("visits:list", 1) == {"v": 1}


def test_glob_characters_in_endpoint_are_literal(cache: CacheHost) -> None:
    responses = ResponseCache(cache)
    responses.set("report[1]*", 1, 1)
    responses.set("report1x", 1, 2)
    assert responses.invalidate("report[1]*") == 1
    assert responses.get("report1x", 1) == 2


@pytest.mark.clause("C9")
def test_get_or_compute_caches_and_counts_hits(cache: CacheHost) -> None:
    responses = ResponseCache(cache)
    compute = Counter()
    assert responses.get_or_compute("clients:list", 1, compute) == compute.value
    assert responses.get_or_compute("clients:list", 1, compute) == compute.value
    assert compute.calls == 1
    stats = responses.stats
    assert (stats.hits, stats.misses, stats.hit_rate) == (1, 1, 0.5)


def test_a_computed_none_is_cached_like_any_other_response(cache: CacheHost) -> None:
    """A backend that answers "nothing" (None) is asked once, not on every call."""
    responses = ResponseCache(cache)
    calls = []

    def nothing() -> dict[str, int] | None:
        calls.append(1)
        return None

    assert responses.get_or_compute("clients:none", 1, nothing) is None
    assert responses.get_or_compute("clients:none", 1, nothing) is None
    assert len(calls) == 1
    assert (responses.stats.hits, responses.stats.misses) == (1, 1)
    assert responses.get("clients:none", 1) is None  # get() cannot tell; stats can
    assert responses.stats.hits == 2


@pytest.mark.asyncio
async def test_async_computed_none_is_cached_too(acache: CacheHost) -> None:
    responses = AsyncResponseCache(acache)
    calls = []

    async def nothing() -> dict[str, int] | None:
        calls.append(1)
        return None

    assert await responses.get_or_compute("clients:none", 2, nothing) is None
    assert await responses.get_or_compute("clients:none", 2, nothing) is None
    assert len(calls) == 1


@pytest.mark.clause("C9")
def test_hit_rate_above_80_percent_on_a_realistic_workload(cache: CacheHost) -> None:
    """50 users reading their client list 1000 times, skewed; writes invalidate sometimes."""
    responses = ResponseCache(cache)
    rng = random.Random(7)
    users = list(range(50))
    weights = [1 / (rank + 1) for rank in range(len(users))]  # a few very active users
    for request in range(1000):
        user = rng.choices(users, weights)[0]
        responses.get_or_compute("clients:list", user, lambda: {"user": user})  # noqa: B023
        if request % 100 == 99:  # a client record changed
            responses.invalidate("clients:list", rng.choice(users))
    assert responses.stats.hit_rate > 0.8


@pytest.mark.clause("C9")
def test_concurrent_threads_on_a_cold_key_compute_once(cache: CacheHost) -> None:
    responses = ResponseCache(cache)
    compute = Counter(delay=0.2)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: responses.get_or_compute("slow", 1, compute), range(32)))
    assert compute.calls == 1
    assert all(r == compute.value for r in results)


def test_two_processes_compute_once(cache: CacheHost) -> None:
    """Two ResponseCache objects share nothing in process: only the Redis lock protects."""
    first, second = ResponseCache(cache), ResponseCache(cache)
    compute = Counter(delay=0.3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(first.get_or_compute, "shared", 1, compute)
        assert compute.started.wait(5)
        b = pool.submit(second.get_or_compute, "shared", 1, compute)
        assert a.result(timeout=10) == b.result(timeout=10) == compute.value
    assert compute.calls == 1
    assert second.stats.hits == 1


def test_a_dead_lock_holder_delays_but_does_not_block(cache: CacheHost, raw: redis.Redis) -> None:
    # Another process took the lock and died before writing the value.
    raw.set(f"{cache.keys.prefix}lock:api:orphan:1", "dead-token", px=60_000)
    responses = ResponseCache(cache, wait_timeout=0.3)
    compute = Counter()
    assert responses.get_or_compute("orphan", 1, compute) == compute.value
    assert compute.calls == 1
    # An expired lock is simply taken over.
    raw.set(f"{cache.keys.prefix}lock:api:orphan:2", "dead-token", px=100)
    assert ResponseCache(cache).get_or_compute("orphan", 2, compute) == compute.value


def test_a_failing_compute_is_not_cached_and_releases_the_lock(
    cache: CacheHost, raw: redis.Redis
) -> None:
    responses = ResponseCache(cache)

    def broken() -> Any:
        raise LookupError("backend down")

    with pytest.raises(LookupError):
        responses.get_or_compute("flaky", 1, broken)
    assert not raw.exists(f"{cache.keys.prefix}lock:api:flaky:1")
    assert responses.get_or_compute("flaky", 1, lambda: "ok") == "ok"


def test_bad_input_is_named(cache: CacheHost, raw: redis.Redis) -> None:
    responses = ResponseCache(cache)
    with pytest.raises(InvalidKeyError, match="endpoint"):
        responses.get("", 1)
    with pytest.raises(InvalidKeyError, match="user_id"):
        responses.set("x", "", 1)
    with pytest.raises(SerializationError, match="api:x:1"):
        responses.set("x", 1, object())
    with pytest.raises(ConfigurationError, match="wait_timeout"):
        ResponseCache(cache, wait_timeout=0)
    raw.set(f"{cache.keys.prefix}api:x:2", "<html>")
    with pytest.raises(SerializationError, match="api:x:2"):
        responses.get("x", 2)


@pytest.mark.clause("C9")
@pytest.mark.asyncio
async def test_64_concurrent_async_callers_compute_once(acache: CacheHost) -> None:
    responses = AsyncResponseCache(acache)
    calls = 0

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)  # a slow backend query; callers arriving later hit the cache
        return {"answer": 42}

    tasks: list[asyncio.Task[dict[str, int]]] = [
        asyncio.create_task(responses.get_or_compute("clients:list", 9, compute)) for _ in range(64)
    ]
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert calls == 1
    assert results == [{"answer": 42}] * 64
    assert await responses.get("clients:list", 9) == {"answer": 42}
    assert responses.stats.misses == 1


@pytest.mark.asyncio
async def test_async_twin_basics(acache: CacheHost) -> None:
    responses = AsyncResponseCache(acache, ttl=60)
    await responses.set("a:b", 1, [1])
    await responses.set("a:b", 2, [2])
    assert await responses.get("a:b", 1) == [1]
    assert await responses.get_or_compute("a:b", 3, lambda: [3]) == [3]
    assert await responses.invalidate("a:b", 1) == 1
    assert await responses.invalidate("a:b") == 2
    assert await responses.get("a:b", 2) is None

    async def broken() -> None:
        raise LookupError("down")

    with pytest.raises(LookupError):
        await responses.get_or_compute("a:b", 4, broken)
    assert await responses.get_or_compute("a:b", 4, lambda: "ok") == "ok"


def test_processes_retry_a_raising_compute_one_at_a_time(cache: CacheHost) -> None:
    """Across processes (two ResponseCache objects share nothing in process) a compute that
    raises releases the Redis lock: the other process then tries once — never both at once."""
    first, second = ResponseCache(cache), ResponseCache(cache)
    running = 0
    overlap = False
    lock = threading.Lock()
    started = threading.Event()

    def broken() -> Any:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        started.set()
        threading.Event().wait(0.2)  # a slow backend query that then fails
        with lock:
            running -= 1
        raise LookupError("backend down")

    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(first.get_or_compute, "shared-fail", 1, broken)
        assert started.wait(5)
        b = pool.submit(second.get_or_compute, "shared-fail", 1, broken)
        for future in (a, b):
            with pytest.raises(LookupError):
                future.result(timeout=10)
    assert not overlap


def test_an_outage_is_logged_once_not_per_call(
    dead_cache: CacheHost, caplog: pytest.LogCaptureFixture
) -> None:
    responses = ResponseCache(dead_cache)
    with caplog.at_level(logging.INFO, "berthcache.responses"):
        for user in range(10):
            assert responses.get_or_compute("clients:list", user, lambda: [1]) == [1]
    assert responses.stats.served_through_outage == 10
    lines = [r for r in caplog.records if r.name == "berthcache.responses"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
