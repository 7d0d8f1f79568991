"""C11 Presence: ``presence:{userId}`` with a 5-minute TTL; online if seen in the last 5 minutes."""

from __future__ import annotations

import datetime as dt

import pytest

from berthcache import TTL

from .support import AnyCache, aw

pytestmark = [pytest.mark.clause("C11"), pytest.mark.asyncio]


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
    seen_utc = seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)
    assert (
        before - dt.timedelta(seconds=2)
        <= seen_utc
        <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    )


async def test_offline_once_the_window_passed(cache: AnyCache) -> None:
    await aw(cache.presence.touch("u8"))
    # Let the 5-minute window end now, server-side (PEXPIREAT in the past removes the key).
    await aw(cache.redis.pexpireat(f"{cache.config.key_prefix}presence:u8", 1))
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
