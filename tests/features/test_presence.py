"""Presence (C11): presence:{userId}, 5-minute TTL, online if seen in the last 5 minutes."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from berthcache._exceptions import InvalidKeyError, SerializationError
from berthcache._host import CacheHost
from berthcache._presence import AsyncPresence, Presence
from berthcache._ttl import TTL


@pytest.mark.clause("C11")
def test_touch_marks_online_for_five_minutes(cache: CacheHost, raw: redis.Redis) -> None:
    presence = Presence(cache)
    before = dt.datetime.now(dt.UTC)
    presence.touch(42)

    key = f"{cache.keys.prefix}presence:42"
    assert TTL.PRESENCE - 5 <= raw.ttl(key) <= TTL.PRESENCE
    assert presence.is_online(42)
    seen = presence.last_seen("42")
    assert seen is not None
    assert seen.tzinfo is dt.UTC
    assert abs((seen - before).total_seconds()) < 5


@pytest.mark.clause("C11")
def test_unseen_or_expired_user_is_offline(cache: CacheHost, raw: redis.Redis) -> None:
    presence = Presence(cache)
    assert not presence.is_online(7)
    assert presence.last_seen(7) is None
    presence.touch(7)
    raw.delete(f"{cache.keys.prefix}presence:7")  # what the TTL does after 5 minutes
    assert not presence.is_online(7)


@pytest.mark.clause("C11")
def test_online_answers_for_many_users_at_once(cache: CacheHost) -> None:
    presence = Presence(cache)
    presence.touch("a")
    presence.touch(3)
    assert presence.online(["a", "b", 3]) == {"a": True, "b": False, "3": True}
    assert presence.online([]) == {}


def test_bad_input_is_named(cache: CacheHost, raw: redis.Redis) -> None:
    presence = Presence(cache)
    with pytest.raises(InvalidKeyError, match="user_id"):
        presence.touch("")
    with pytest.raises(TypeError, match="user_ids"):
        presence.online("abc")
    raw.set(f"{cache.keys.prefix}presence:9", "yesterday")
    with pytest.raises(SerializationError, match="presence:9"):
        presence.last_seen(9)


@pytest.mark.asyncio
async def test_async_twin(acache: CacheHost) -> None:
    presence = AsyncPresence(acache, ttl=60)
    await presence.touch("u1")
    assert await presence.is_online("u1")
    assert await presence.last_seen("u1") is not None
    assert await presence.online(["u1", "u2"]) == {"u1": True, "u2": False}


@pytest.mark.parametrize(
    ("stored", "ms"),
    [
        ("1764452400123", 1764452400123),  # the seed's Date.now()
        ("1764452400.123", 1764452400123),  # older berthcache: epoch seconds
        ("1764452400", 1764452400000),
        (b"1764452400123", 1764452400123),
    ],
)
def test_stored_times_in_ms_or_seconds_are_read(
    cache: CacheHost, stored: str | bytes, ms: int
) -> None:
    assert Presence(cache)._stored_ms(stored, "k") == ms


@pytest.mark.parametrize("stored", ["yesterday", "nan", "inf", "-5", ""])
def test_a_stored_value_that_is_no_time_is_named(cache: CacheHost, stored: str) -> None:
    with pytest.raises(SerializationError, match="presence:x"):
        Presence(cache)._stored_ms(stored, "presence:x")


def test_online_is_decided_by_the_stored_time_not_the_ttl(
    cache: CacheHost, raw: redis.Redis
) -> None:
    presence = Presence(cache, ttl=60)
    key = f"{cache.keys.prefix}presence:old"
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    raw.set(key, str(int(now_ms - 61_000)), ex=60)  # fresh TTL, stale value
    assert not presence.is_online("old")
    raw.set(key, str(int(now_ms - 59_000)), ex=60)
    assert presence.is_online("old")
    assert presence.offline("old") is True
    assert presence.offline("old") is False
    assert raw.exists(key) == 0
