"""The per-endpoint index that lets ``responses.invalidate(endpoint)`` work without SCAN:
written with each entry, pruned, expiring with its newest entry, and never missing an entry
that a concurrent write left behind."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from berthcache._host import CacheHost
from berthcache._responses import AsyncResponseCache, ResponseCache

pytestmark = pytest.mark.clause("C9")


def _index(cache: CacheHost, endpoint: str) -> str:
    return f"{cache.keys.prefix}api-index:{endpoint}"


def _entries(cache: CacheHost, raw: redis.Redis, endpoint: str) -> set[str]:
    """The users with an entry of exactly ``endpoint`` — listed by the default user (the app
    user may not SCAN)."""
    head = f"{cache.keys.prefix}api:{endpoint}:"
    return {
        key.removeprefix(head)
        for key in raw.scan_iter(match=head.replace("*", "\\*") + "*", count=500)
        if ":" not in key.removeprefix(head)
    }


def test_each_write_indexes_its_user_scored_by_expiry(cache: CacheHost, raw: redis.Redis) -> None:
    responses = ResponseCache(cache)
    before_ms = time.time_ns() // 1_000_000
    responses.set("clients", 1, [1], ttl=30)
    responses.get_or_compute("clients", 2, lambda: [2], ttl=60)
    pairs: Any = raw.zrange(_index(cache, "clients"), 0, -1, withscores=True)
    scores = dict(pairs)
    assert set(scores) == {"1", "2"}
    assert before_ms + 30_000 <= scores["1"] <= time.time_ns() // 1_000_000 + 30_000
    assert scores["2"] - scores["1"] >= 29_000
    assert 55 <= raw.ttl(_index(cache, "clients")) <= 60  # extended (GT) to the longest entry
    responses.set("clients", 3, [3], ttl=5)
    assert 55 <= raw.ttl(_index(cache, "clients")) <= 60  # never shortened
    assert raw.exists(_index(cache, "clients:list")) == 0  # a nested endpoint: its own index


def test_expired_members_are_pruned_a_minute_after_their_expiry(
    cache: CacheHost, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So a hot endpoint's index holds about its live entries, not every user ever seen."""
    responses = ResponseCache(cache)
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - 200 * 10**9)  # written 200 s ago
    responses.set("clients", "old", [1], ttl=100)  # expired 100 s ago: past the margin
    responses.set("clients", "recent", [1], ttl=170)  # expired 30 s ago: within the margin
    monkeypatch.setattr(time, "time_ns", real)
    responses.set("clients", "new", [1])
    assert sorted(raw.zrange(_index(cache, "clients"), 0, -1)) == ["new", "recent"]


def test_invalidate_deletes_the_index_and_an_empty_endpoint_removes_nothing(
    cache: CacheHost, raw: redis.Redis
) -> None:
    responses = ResponseCache(cache)
    assert responses.invalidate("nothing-here") == 0
    responses.set("clients", 1, [1])
    raw.delete(f"{cache.keys.prefix}api:clients:1")  # expired (or evicted) before the index
    responses.set("clients", 2, [2])
    assert responses.invalidate("clients") == 1  # counts entries that existed
    assert raw.exists(_index(cache, "clients")) == 0


def test_writes_racing_an_invalidation_are_never_orphaned(
    cache: CacheHost, raw: redis.Redis
) -> None:
    """Every entry left after concurrent writes and invalidations is still in the index, so
    the next invalidation removes it; and the invalidations finish however busy the writers
    are (each script call is atomic: nothing to retry)."""
    responses = ResponseCache(cache)
    stop, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        n = 0
        try:
            while not stop.is_set() and n < 2000:
                responses.set("hot", f"{worker}-{n % 50}", [n])
                written.set()
                n += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            written.set()

    writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for thread in writers:
        thread.start()
    try:
        # Racing writers, not a head start for the invalidations on a busy machine.
        assert written.wait(10), "no writer wrote within 10 s"
        removed = [responses.invalidate("hot") for _ in range(20)]
    finally:
        stop.set()
        for thread in writers:
            thread.join(10)
    assert not errors
    assert not any(thread.is_alive() for thread in writers)
    assert sum(removed) > 0
    left = _entries(cache, raw, "hot")
    indexed = set(raw.zrange(_index(cache, "hot"), 0, -1))
    assert left <= indexed, f"orphaned: {sorted(left - indexed)[:5]}"
    assert responses.invalidate("hot") == len(left)
    assert _entries(cache, raw, "hot") == set()


@pytest.mark.asyncio
async def test_the_async_twin_writes_and_reads_the_same_index(
    acache: Any, raw: redis.Redis
) -> None:
    responses = AsyncResponseCache(acache)
    await responses.set("clients", 1, [1])
    await responses.get_or_compute("clients", 2, lambda: [2])
    assert sorted(raw.zrange(_index(acache, "clients"), 0, -1)) == ["1", "2"]
    assert await responses.invalidate("clients") == 2
    assert raw.exists(_index(acache, "clients")) == 0
