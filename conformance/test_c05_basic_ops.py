"""C5 Basic operations: set with TTL, get, del, exists, expire, ttl (Redis semantics)."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest

from berthcache import TTL, InvalidKeyError, InvalidTTLError, SerializationError

from .support import AnyCache, aw, run_pipeline

pytestmark = [pytest.mark.clause("C5"), pytest.mark.asyncio]


async def test_set_get_roundtrip(cache: AnyCache) -> None:
    await aw(cache.set("user:1:name", "Ada"))
    assert await aw(cache.get("user:1:name")) == "Ada"
    assert await aw(cache.ttl("user:1:name")) == -1  # no TTL given: no expiry


async def test_get_missing_is_none(cache: AnyCache) -> None:
    assert await aw(cache.get("nope")) is None


async def test_set_with_ttl_seconds_and_timedelta(cache: AnyCache) -> None:
    await aw(cache.set("a", "1", ttl=120))
    await aw(cache.set("b", "2", ttl=dt.timedelta(minutes=5)))
    assert 115 <= await aw(cache.ttl("a")) <= 120
    assert 295 <= await aw(cache.ttl("b")) <= 300


async def test_overwrite_replaces_value_and_ttl(cache: AnyCache) -> None:
    await aw(cache.set("k", "old", ttl=60))
    await aw(cache.set("k", "new"))
    assert await aw(cache.get("k")) == "new"
    assert await aw(cache.ttl("k")) == -1


async def test_numbers_come_back_as_text(cache: AnyCache) -> None:
    await aw(cache.set("n", 42))
    assert await aw(cache.get("n")) == "42"


async def test_delete_counts_removed_keys(cache: AnyCache) -> None:
    await aw(cache.set("x", "1"))
    await aw(cache.set("y", "2"))
    assert await aw(cache.delete("x", "y", "never-there")) == 2
    assert await aw(cache.get("x")) is None
    assert await aw(cache.delete("x")) == 0


async def test_exists(cache: AnyCache) -> None:
    assert await aw(cache.exists("e")) is False
    await aw(cache.set("e", ""))
    assert await aw(cache.exists("e")) is True


async def test_expire_and_ttl(cache: AnyCache) -> None:
    assert await aw(cache.ttl("missing")) == -2
    assert await aw(cache.expire("missing", 10)) is False
    await aw(cache.set("t", "v"))
    assert await aw(cache.expire("t", 30)) is True
    assert 25 <= await aw(cache.ttl("t")) <= 30


async def test_expired_key_is_gone(cache: AnyCache) -> None:
    await aw(cache.set("short", "v", ttl=60))
    # Expire it from the server's point of view without waiting: EXPIRE 0 deletes (the app
    # user's allow-list has EXPIRE, not PEXPIREAT).
    await aw(cache.redis.expire(cache.keys("short"), 0))
    assert await aw(cache.get("short")) is None
    assert await aw(cache.exists("short")) is False
    assert await aw(cache.ttl("short")) == -2


async def test_incr(cache: AnyCache) -> None:
    assert await aw(cache.incr("counter")) == 1
    assert await aw(cache.incr("counter", 5)) == 6
    assert await aw(cache.get("counter")) == "6"


@pytest.mark.parametrize(
    "ttl", [0, -5, 1.5, "60", True, dt.timedelta(milliseconds=500), 10**16, TTL.MAX + 1]
)
async def test_bad_ttl_is_refused_and_named(cache: AnyCache, ttl: object) -> None:
    with pytest.raises(InvalidTTLError, match="ttl"):
        await aw(cache.set("k", "v", ttl=ttl))  # type: ignore[arg-type]
    assert await aw(cache.exists("k")) is False


async def test_ttl_past_redis_limit_is_refused_before_sending(cache: AnyCache) -> None:
    """Redis keeps expiry as 64-bit milliseconds since 1970: TTL.MAX (with margin) is the
    longest it accepts; beyond it nothing is sent and the key keeps what it had."""
    await aw(cache.set("k", "v"))
    with pytest.raises(InvalidTTLError, match=r"^ttl must be at most"):
        await aw(cache.expire("k", 10**16))
    assert await aw(cache.ttl("k")) == -1
    await aw(cache.set("k", "v", ttl=TTL.MAX))
    assert await aw(cache.ttl("k")) > TTL.MAX - 60
    assert await aw(cache.expire("k", dt.timedelta(days=999_999_999))) is True


async def test_empty_key_is_refused(cache: AnyCache) -> None:
    with pytest.raises(InvalidKeyError, match="key"):
        await aw(cache.set("", "v"))


async def test_keys_are_binary_safe_text(cache: AnyCache) -> None:
    key = "weird key:ü:\u2603:with spaces"
    await aw(cache.set(key, "snow \u2603"))
    assert await aw(cache.get(key)) == "snow \u2603"


async def test_binary_values_round_trip_through_set_bytes_and_get_bytes(cache: AnyCache) -> None:
    """Every byte value 0-255, a gzip payload and its TTL; ``get`` of it names the key and
    ``get_bytes``; text is still read by ``get`` as before."""
    every_byte = bytes(range(256))
    payload = gzip.compress(b"berthcache " * 10000)
    await aw(cache.set_bytes("bin:all", every_byte))
    await aw(cache.set_bytes("bin:gz", payload, ttl=120))
    await aw(cache.set("bin:text", "t\u00e9xt"))
    assert await aw(cache.get_bytes("bin:all")) == every_byte
    assert gzip.decompress(await aw(cache.get_bytes("bin:gz"))) == b"berthcache " * 10000
    assert 115 <= await aw(cache.ttl("bin:gz")) <= 120
    assert await aw(cache.get_bytes("bin:missing")) is None
    assert await aw(cache.get_bytes("bin:text")) == "t\u00e9xt".encode()
    assert await aw(cache.get("bin:text")) == "t\u00e9xt"
    with pytest.raises(SerializationError, match=r"key 'bin:all' is binary data.*get_bytes"):
        await aw(cache.get("bin:all"))
    replies = await run_pipeline(
        cache, lambda pipe: pipe.set_bytes("bin:p", every_byte[::-1]).get_bytes("bin:p")
    )
    assert replies == [True, every_byte[::-1]]
