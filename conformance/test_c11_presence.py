"""C11 Presence: ``presence:{userId}`` holds ``Date.now()`` (epoch ms) with a 5-minute TTL; online
if seen in the last 5 minutes by the stored time — and a seed service reads what berthcache
writes and the reverse (the seed side is a plain redis-py client doing what the seed does)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import redis

from berthcache import TTL, CacheConfig, SerializationError

from .support import AnyCache, aw, plain_client

pytestmark = [pytest.mark.clause("C11"), pytest.mark.asyncio]

WINDOW_MS = 300_000  # the seed: online when Date.now() - lastSeen < 300000


def date_now() -> int:
    """JavaScript's ``Date.now()``."""
    return time.time_ns() // 1_000_000


@pytest.fixture
def seed(conf: CacheConfig) -> Iterator[redis.Redis]:
    """A plain client on the target standing in for a service built from the seed."""
    client = plain_client(conf)
    try:
        yield client
    finally:
        client.close()


def seed_key(conf: CacheConfig, user_id: object) -> str:
    return f"{conf.key_prefix}presence:{user_id}"  # ioredis keyPrefix + the seed's key


def seed_update_presence(seed: redis.Redis, conf: CacheConfig, user_id: object, ms: int) -> None:
    seed.set(seed_key(conf, user_id), str(ms), ex=300)


def seed_is_user_online(seed: redis.Redis, conf: CacheConfig, user_id: object) -> bool:
    last_seen = seed.get(seed_key(conf, user_id))
    return last_seen is not None and date_now() - int(last_seen) < WINDOW_MS


async def test_touch_makes_online_with_five_minute_ttl(cache: AnyCache) -> None:
    assert TTL.PRESENCE == 300
    await aw(cache.presence.touch(42))
    assert await aw(cache.presence.is_online(42)) is True
    full = f"{cache.config.key_prefix}presence:42"
    assert 295 <= await aw(cache.redis.ttl(full)) <= 300


async def test_never_seen_is_offline(cache: AnyCache) -> None:
    assert await aw(cache.presence.is_online("ghost")) is False
    assert await aw(cache.presence.last_seen("ghost")) is None


async def test_last_seen_is_now(cache: AnyCache) -> None:
    before = dt.datetime.now(dt.UTC)
    await aw(cache.presence.touch("u7"))
    seen = await aw(cache.presence.last_seen("u7"))
    assert seen is not None
    assert seen.tzinfo is not None
    assert (
        before - dt.timedelta(seconds=2)
        <= seen
        <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    )


async def test_offline_once_the_window_passed(cache: AnyCache) -> None:
    await aw(cache.presence.touch("u8"))
    # Let the 5-minute window end now, server-side (EXPIRE 0 removes the key).
    await aw(cache.redis.expire(f"{cache.config.key_prefix}presence:u8", 0))
    assert await aw(cache.presence.is_online("u8")) is False


async def test_touch_extends_the_window(cache: AnyCache) -> None:
    await aw(cache.presence.touch("u9"))
    await aw(cache.expire("presence:u9", 10))
    await aw(cache.presence.touch("u9"))
    assert await aw(cache.ttl("presence:u9")) >= 295


async def test_online_many(cache: AnyCache) -> None:
    await aw(cache.presence.touch("a"))
    await aw(cache.presence.touch("c"))
    assert await aw(cache.presence.online(["a", "b", "c"])) == {"a": True, "b": False, "c": True}


# -- interop with the seed ---------------------------------------------------------------------


async def test_the_seed_reads_what_berthcache_writes(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    before = date_now()
    await aw(cache.presence.touch(7))
    stored = seed.get(seed_key(conf, 7))
    assert stored is not None
    assert before <= int(stored) <= date_now()  # an integer string of epoch ms, as Date.now()
    assert seed_is_user_online(seed, conf, 7)


async def test_berthcache_reads_what_the_seed_writes(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    seen_ms = date_now() - 1_234
    seed_update_presence(seed, conf, 7, seen_ms)
    assert await aw(cache.presence.is_online(7)) is True
    assert await aw(cache.presence.last_seen(7)) == dt.datetime.fromtimestamp(
        seen_ms / 1000, tz=dt.UTC
    )
    assert await aw(cache.presence.online([7, 8])) == {"7": True, "8": False}


async def test_online_by_the_stored_time_not_by_existence(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    # Seen 10 minutes ago under a fresh TTL: the seed says offline, and so must berthcache.
    seed_update_presence(seed, conf, "stale", date_now() - 600_000)
    assert not seed_is_user_online(seed, conf, "stale")
    assert await aw(cache.presence.is_online("stale")) is False
    assert await aw(cache.presence.online(["stale"])) == {"stale": False}
    # Seen 4 minutes ago: online for both.
    seed_update_presence(seed, conf, "recent", date_now() - 240_000)
    assert await aw(cache.presence.is_online("recent")) is True


async def test_older_berthcache_values_in_seconds_still_read(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    seen = time.time() - 10
    seed.set(seed_key(conf, "old"), f"{seen:.3f}", ex=300)  # what berthcache wrote before
    assert await aw(cache.presence.is_online("old")) is True
    last = await aw(cache.presence.last_seen("old"))
    assert last is not None
    assert abs(last.timestamp() - seen) < 0.002


async def test_offline_removes_the_record(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    await aw(cache.presence.touch("bye"))
    assert await aw(cache.presence.offline("bye")) is True
    assert seed.exists(seed_key(conf, "bye")) == 0
    assert not seed_is_user_online(seed, conf, "bye")
    assert await aw(cache.presence.is_online("bye")) is False
    assert await aw(cache.presence.offline("bye")) is False  # nothing left to remove


async def test_a_value_that_is_no_time_is_an_error_naming_the_key(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig
) -> None:
    seed.set(seed_key(conf, "bad"), "yesterday", ex=300)
    with pytest.raises(SerializationError, match="presence:bad"):
        await aw(cache.presence.last_seen("bad"))


@pytest.mark.parametrize("stored", ["nan", "1_764_452_400_123", "-5", "yesterday"])
async def test_a_value_that_is_no_time_is_offline_as_the_seed_reads_it(
    cache: AnyCache, seed: redis.Redis, conf: CacheConfig, stored: str
) -> None:
    """The seed computes ``Date.now() - Number(v) < 300000``: for these the result is NaN or far
    above the window, so the user is offline there — and here, and one bad record does not fail a
    batch asking about other users."""
    seed.set(seed_key(conf, "odd"), stored, ex=300)
    seed.set(seed_key(conf, "fine"), str(date_now()), ex=300)
    assert await aw(cache.presence.is_online("odd")) is False
    assert await aw(cache.presence.online(["odd", "fine"])) == {"odd": False, "fine": True}
    with pytest.raises(SerializationError, match="presence:odd"):
        await aw(cache.presence.last_seen("odd"))
