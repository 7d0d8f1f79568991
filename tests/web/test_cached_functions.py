"""@cached on plain functions, sync and async, against a real redis-server: keys from the
arguments, TTL, one compute per stampede, invalidation, serving through an outage."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from berthcache import AsyncCache, Cache, ConfigurationError, SerializationError
from berthcache.caching import cached


def test_a_sync_function_is_computed_once_per_arguments(cache: Cache, raw: redis.Redis) -> None:
    calls: list[tuple[str, str]] = []

    @cached(cache, ttl=30)
    def price(sku: str, currency: str = "EUR") -> dict[str, Any]:
        calls.append((sku, currency))
        return {"sku": sku, "currency": currency, "amount": 12.5}

    first = price("A1")
    assert price("A1") == first
    assert price(sku="A1", currency="EUR") == first  # bound to the signature: the same call
    assert price("A1", "USD")["currency"] == "USD"
    assert calls == [("A1", "EUR"), ("A1", "USD")]

    assert price.key("A1") == 'sku="A1",currency="EUR"'  # type: ignore[attr-defined]
    key = f"{cache.config.key_prefix}api:fn:{__name__}.{price.__qualname__}:" + price.key("A1")  # type: ignore[attr-defined]
    assert 0 < raw.ttl(key) <= 30

    assert price.invalidate("A1") == 1  # type: ignore[attr-defined]
    price("A1")
    assert calls[-1] == ("A1", "EUR")
    assert price.invalidate_all() == 2  # type: ignore[attr-defined]


def test_none_is_cached_and_tuples_come_back_as_lists(cache: Cache) -> None:
    calls = []

    @cached(cache, name="pair")
    def pair(n: int) -> tuple[int, int] | None:
        calls.append(n)
        return (n, n) if n else None

    assert pair(0) is None
    assert pair(0) is None
    assert pair(2) == (2, 2)  # a miss returns what the function returned
    assert pair(2) == [2, 2]  # type: ignore[comparison-overlap]  # a hit: the decoded JSON
    assert calls == [0, 2]


def test_long_or_unusual_arguments_are_hashed(cache: Cache) -> None:
    @cached(cache, name="search")
    def search(query: str, filters: dict[str, Any] | None = None) -> int:
        return len(query)

    assert search.key("x" * 100).startswith("h-")  # type: ignore[attr-defined]
    assert len(search.key("x" * 100)) == 34  # type: ignore[attr-defined]
    assert search.key("a b").startswith("h-")  # type: ignore[attr-defined]
    # Dict arguments: key order does not matter; a ':' in the JSON means a hashed key.
    assert search.key("q", {"b": 1, "a": 2}) == search.key("q", {"a": 2, "b": 1})  # type: ignore[attr-defined]
    assert search("q", {"b": 1}) == 1


def test_arguments_that_are_not_json_are_refused_naming_them(cache: Cache) -> None:
    class Db: ...

    @cached(cache)
    def load(db: Db, user_id: int) -> int:
        return user_id

    with pytest.raises(TypeError, match="argument 'db' \\(Db\\) is not a JSON value"):
        load(Db(), 1)

    @cached(cache, ignore=("db",))
    def load_ignoring(db: Db, user_id: int) -> int:
        return user_id

    assert load_ignoring(Db(), 5) == 5
    assert load_ignoring.key(Db(), 5) == "user_id=5"  # type: ignore[attr-defined]

    @cached(cache, key=lambda db, user_id: f"u{user_id}")
    def load_keyed(db: Db, user_id: int) -> int:
        return user_id

    assert load_keyed.key(Db(), 5) == "u5"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="ignore"):
        cached(cache, ignore=("nope",))(load)


def test_a_value_that_is_not_json_is_a_serialization_error(cache: Cache) -> None:
    @cached(cache)
    def make() -> object:
        return object()

    with pytest.raises(SerializationError):
        make()


def test_threads_missing_together_compute_once(cache: Cache) -> None:
    calls: list[int] = []
    gate = threading.Barrier(8, timeout=10)

    @cached(cache, name="slow")
    def slow(n: int) -> int:
        calls.append(n)
        time.sleep(0.2)  # long enough for every thread to arrive while it runs
        return n * 2

    results: list[int] = []

    def worker() -> None:
        gate.wait()
        results.append(slow(21))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [42] * 8
    assert calls == [21]


@pytest.mark.asyncio
async def test_an_async_function_on_either_cache(twin: Cache | AsyncCache) -> None:
    calls: list[int] = []

    @cached(twin, ttl=60)
    async def profile(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        await asyncio.sleep(0.2)
        return {"id": user_id}

    results = await asyncio.gather(*(profile(7) for _ in range(10)))
    assert results == [{"id": 7}] * 10
    assert await profile(7) == {"id": 7}
    assert calls == [7]
    assert await profile.invalidate(7) == 1  # type: ignore[attr-defined]
    await profile(7)
    assert calls == [7, 7]
    assert await profile.invalidate_all() == 1  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_redis_down_calls_the_function(dead_twin: Cache | AsyncCache) -> None:
    calls: list[int] = []

    @cached(dead_twin)
    async def answer() -> int:
        calls.append(1)
        return 42

    started = time.monotonic()
    assert [await answer() for _ in range(3)] == [42, 42, 42]
    assert len(calls) == 3
    assert time.monotonic() - started < 6  # the response cache's budget, not a hang
    assert dead_twin.responses.stats.served_through_outage == 3


def test_redis_down_calls_a_sync_function(dead_twin: Cache | AsyncCache) -> None:
    if isinstance(dead_twin, AsyncCache):
        with pytest.raises(ConfigurationError, match=r"needs a berthcache\.Cache"):
            cached(dead_twin)(lambda: 1)()
        return
    counter = iter(range(10))

    @cached(dead_twin)
    def tick() -> int:
        return next(counter)

    assert [tick(), tick()] == [0, 1]


def test_bad_settings_are_refused_naming_them(cache: Cache) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        cached(cache, ttl=0)
    with pytest.raises(ConfigurationError, match="cache"):
        cached("redis://x")  # type: ignore[arg-type]


def test_a_cache_created_later_is_found_at_call_time(cache: Cache) -> None:
    holder: dict[str, Cache] = {}

    @cached(lambda: holder["cache"], name="later")
    def later() -> str:
        return "ok"

    holder["cache"] = cache
    assert later() == "ok"
    assert later.invalidate() == 1  # type: ignore[attr-defined]
