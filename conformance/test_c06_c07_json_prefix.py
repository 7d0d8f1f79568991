"""C6 JSON (objects stored as JSON, get(key, parse_json) returns the object) and C7 key prefix
(every key the module writes is ``{prefix}{entity}:{id}:{attribute}``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berthcache import CacheConfig, ConfigurationError, SerializationError
from berthcache.testing.plugin import LocalRedisFactory

from .support import AnyCache, CacheFactory, api_key_part, aw, session_key_part

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


@pytest.mark.clause("C6")
@pytest.mark.parametrize("serializer", ["orjson", "json"])
async def test_stored_json_is_compact_utf8_under_either_serializer(
    cache_factory: CacheFactory, serializer: str
) -> None:
    """The same bytes from both twins and both built-in serializers: compact, non-ASCII as
    UTF-8 — what the seed's JSON.stringify writes for it."""
    cache = cache_factory(serializer=serializer)
    await aw(cache.set("client:7", DOC))
    await aw(cache.set_json("ratio", [0.25, 1e16, -0.0, 2**53]))
    assert await aw(cache.get("client:7")) == (
        '{"id":7,"name":"Zoë","tags":["a","b"],"nested":{"ok":true,"none":null,"ratio":0.25}}'
    )
    assert await aw(cache.get("ratio")) == "[0.25,1e+16,-0.0,9007199254740992]"
    assert await aw(cache.get("client:7", parse_json=True)) == DOC


@pytest.mark.clause("C6")
@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": [1.0, float("-inf")]}])
async def test_nan_and_infinity_are_refused_naming_the_key(cache: AnyCache, value: Any) -> None:
    """JSON has no NaN or Infinity (JSON.parse would fail on them): refused, nothing written."""
    with pytest.raises(SerializationError, match=r"'nan:doc'.*NaN or Infinity"):
        await aw(cache.set_json("nan:doc", value))
    assert await aw(cache.exists("nan:doc")) is False


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
        "session": p + session_key_part(cache, sid),
        "api": p + api_key_part(cache, "clients:list", 42),
        "ratelimit": f"{p}ratelimit:10.0.0.1:login",
        "presence": f"{p}presence:42",
    }


@pytest.mark.clause("C7")
async def test_every_feature_writes_under_the_prefix(cache: AnyCache) -> None:
    # Checked key by key: the app user may not list keys (SCAN would list other tenants' too).
    expected = await _write_through_every_feature(cache)
    for what, key in expected.items():
        assert await aw(cache.redis.exists(key)) == 1, f"{what} key {key!r} missing"
    assert all(key.startswith(cache.config.key_prefix) for key in expected.values())


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
async def test_nothing_written_outside_the_prefix(
    cache_factory: CacheFactory, conf: CacheConfig, local_redis_factory: LocalRedisFactory
) -> None:
    """On a server of our own, the app user (allow-listed to the prefix) runs every feature and
    the admin user lists *all* of the server's keys."""
    group = local_redis_factory(tls=False)
    cache = cache_factory(CacheConfig.from_url(group.url("app"), key_prefix=conf.key_prefix))
    await _write_through_every_feature(cache)
    admin = group.admin_client(decode_responses=True)
    try:
        everything = set(admin.scan_iter(count=500))
    finally:
        admin.close()
    assert everything
    stray = sorted(k for k in everything if not k.startswith(conf.key_prefix))
    assert stray == []


@pytest.mark.clause("C7")
@pytest.mark.not_twinned(reason="config validation: no client involved")
@pytest.mark.parametrize("prefix", ["tenant1", "berthcare", "app-", "a.b", "x/"])
async def test_a_prefix_without_a_delimiter_is_refused(prefix: str) -> None:
    """``tenant1`` would also cover ``tenant10:``: the prefix must end with ``:``."""
    with pytest.raises(ConfigurationError, match="key_prefix: must end with ':'"):
        CacheConfig(key_prefix=prefix)
    with pytest.raises(ConfigurationError, match="REDIS_KEY_PREFIX: must end with ':'"):
        CacheConfig.from_env({"REDIS_KEY_PREFIX": prefix})
