"""C6 JSON (objects stored as JSON, get(key, parse_json) returns the object) and C7 key prefix
(every key the module writes is ``{prefix}{entity}:{id}:{attribute}``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berthcache import CacheConfig, SerializationError

from .support import AnyCache, CacheFactory, aw

pytestmark = pytest.mark.asyncio

DOC: dict[str, Any] = {
    "id": 7,
    "name": "Zoë",
    "tags": ["a", "b"],
    "nested": {"ok": True, "none": None, "ratio": 0.25},
}


@pytest.mark.clause("C6")
async def test_objects_stored_as_json(cache: AnyCache) -> None:
    await aw(cache.set("client:7", DOC))
    raw = await aw(cache.get("client:7"))
    assert isinstance(raw, str)
    assert json.loads(raw) == DOC  # on the wire: JSON text other services can read
    assert await aw(cache.get("client:7", parse_json=True)) == DOC


@pytest.mark.clause("C6")
@pytest.mark.parametrize("value", [[1, "two", {"three": 3}], True, False, None, {}])
async def test_lists_bools_and_none_are_json(cache: AnyCache, value: Any) -> None:
    await aw(cache.set("v", value))
    assert await aw(cache.get("v", parse_json=True)) == value
    assert await aw(cache.exists("v")) is True


@pytest.mark.clause("C6")
async def test_set_json_get_json(cache: AnyCache) -> None:
    await aw(cache.set_json("doc", DOC, ttl=60))
    assert await aw(cache.get_json("doc")) == DOC
    assert 55 <= await aw(cache.ttl("doc")) <= 60
    assert await aw(cache.get_json("missing")) is None


@pytest.mark.clause("C6")
async def test_unserializable_value_names_the_key(cache: AnyCache) -> None:
    with pytest.raises(SerializationError, match="bad:obj"):
        await aw(cache.set("bad:obj", {"when": object()}))
    assert await aw(cache.exists("bad:obj")) is False


@pytest.mark.clause("C6")
async def test_non_json_value_names_the_key(cache: AnyCache) -> None:
    await aw(cache.set("plain", "not json {"))
    with pytest.raises(SerializationError, match="plain"):
        await aw(cache.get("plain", parse_json=True))


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [{"d": value}]
    return value


@pytest.mark.clause("C6")
async def test_a_value_nested_too_deeply_names_the_key_both_ways(cache: AnyCache) -> None:
    """5,000 levels: a SerializationError naming the key, never a RecursionError; nothing
    written. Such a value stored by another service reads back the same way."""
    with pytest.raises(SerializationError, match=r"deep:doc.*nested too deeply"):
        await aw(cache.set_json("deep:doc", _nested(5000)))
    assert await aw(cache.exists("deep:doc")) is False
    await aw(cache.redis.set(cache.keys("deep:doc"), "[" * 5000 + "]" * 5000))
    with pytest.raises(SerializationError, match=r"deep:doc.*nested too deeply"):
        await aw(cache.get("deep:doc", parse_json=True))
    await aw(cache.set_json("ok:doc", _nested(100)))  # ordinary nesting is fine
    assert await aw(cache.get_json("ok:doc")) == _nested(100)


async def _write_through_every_feature(cache: AnyCache) -> dict[str, str]:
    """Use every writing feature once; returns the full keys the contract says they use."""
    p = cache.config.key_prefix
    await aw(cache.set("user:42:profile", {"a": 1}))
    await aw(cache.incr("stats:hits"))
    sid = await aw(cache.sessions.create(42, {"role": "admin"}))
    await aw(cache.responses.set("clients:list", 42, [1, 2]))
    await aw(cache.rate_limiter.check("10.0.0.1", "login"))
    await aw(cache.presence.touch(42))
    return {
        "plain": f"{p}user:42:profile",
        "counter": f"{p}stats:hits",
        "session": f"{p}session:{sid}",
        "api": f"{p}api:clients:list:42",
        "ratelimit": f"{p}ratelimit:10.0.0.1:login",
        "presence": f"{p}presence:42",
    }


async def _scan(cache: AnyCache, match: str | None) -> set[str]:
    found: set[str] = set()
    cursor: Any = 0
    while True:
        cursor, batch = await aw(cache.redis.scan(cursor, match=match, count=500))
        found.update(k.decode() if isinstance(k, bytes) else k for k in batch)
        if int(cursor) == 0:
            return found


@pytest.mark.clause("C7")
async def test_every_feature_writes_under_the_prefix(cache: AnyCache) -> None:
    expected = await _write_through_every_feature(cache)
    keys = await _scan(cache, cache.keys.pattern("*"))
    for what, key in expected.items():
        assert key in keys, f"{what} key {key!r} missing; under the prefix: {sorted(keys)}"
    assert all(k.startswith(cache.config.key_prefix) for k in keys)


@pytest.mark.clause("C7")
async def test_keys_follow_entity_id_attribute(cache: AnyCache) -> None:
    assert cache.keys("user", 42, "profile") == f"{cache.config.key_prefix}user:42:profile"
    await aw(cache.set("user:42:profile", "x"))
    assert await aw(cache.redis.get(f"{cache.config.key_prefix}user:42:profile")) == "x"


@pytest.mark.clause("C7")
@pytest.mark.not_twinned(reason="a config default: no client involved")
async def test_default_prefix_is_berthcare() -> None:
    assert CacheConfig().key_prefix == "berthcare:"


@pytest.mark.clause("C7")
@pytest.mark.requires("admin")  # lists every key of a database: only where the suite owns it
async def test_nothing_written_outside_the_prefix(
    cache_factory: CacheFactory, conf: CacheConfig
) -> None:
    """On a server the suite started, use a database of our own and list *all* of its keys."""
    cache = cache_factory(conf, db=11)
    try:
        await _write_through_every_feature(cache)
        everything = await _scan(cache, None)
        assert everything
        stray = sorted(k for k in everything if not k.startswith(conf.key_prefix))
        assert stray == []
    finally:
        keys = await _scan(cache, cache.keys.pattern("*"))
        if keys:
            await aw(cache.redis.unlink(*keys))
