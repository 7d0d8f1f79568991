"""Input at the edges: values nested 5,000 deep, and TTLs, windows and timeouts beyond what Redis
can store — each refused with a berthcache error naming the key or argument, before anything is
sent, so nothing is written half-way. On a real redis-server, both twins."""

from __future__ import annotations

import datetime as dt
import inspect
import math
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from berthcache import (
    TTL,
    AsyncCache,
    AsyncPresence,
    AsyncRateLimiter,
    AsyncResponseCache,
    AsyncSessionStore,
    Cache,
    ConfigurationError,
    InvalidTTLError,
    Presence,
    RateLimiter,
    ResponseCache,
    SerializationError,
    SessionStore,
)
from berthcache._ttl import MAX_TTL_SECONDS, to_seconds
from berthcache.testing import RedisServer
from tests.unit.support import config_for

AnyCache = Cache | AsyncCache
DEPTH = 5000
LLONG_MAX = 2**63 - 1


def deep_list(depth: int = DEPTH) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int = DEPTH) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


DEEP_TEXT = "[" * DEPTH + "]" * DEPTH


async def aw(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@pytest_asyncio.fixture(params=["sync", "async"])
async def cache(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[AnyCache]:
    config = config_for(redis_server)
    client: AnyCache = Cache(config) if request.param == "sync" else AsyncCache(config)
    try:
        yield client
    finally:
        await aw(client.close())


async def keys_under_prefix(cache: AnyCache) -> list[str]:
    return list(await aw(cache.redis.keys(cache.keys.pattern("*"))))


# -- deep JSON ---------------------------------------------------------------------------------

ENCODERS: dict[str, Callable[[AnyCache, Any], Any]] = {
    "set": lambda c, v: c.set("deep", v),
    "set_json": lambda c, v: c.set_json("deep", v),
    "responses.set": lambda c, v: c.responses.set("deep", 42, v),
    "sessions.create": lambda c, v: c.sessions.create(42, {"deep": v}),
    "publish": lambda c, v: c.publish("deep", v),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", [deep_list, deep_dict], ids=["list", "dict"])
@pytest.mark.parametrize("write", list(ENCODERS))
async def test_a_deep_value_is_a_serialization_error_naming_the_key(
    cache: AnyCache, write: str, shape: Callable[[], Any]
) -> None:
    with pytest.raises(SerializationError, match="nested too deeply") as info:
        await aw(ENCODERS[write](cache, shape()))
    assert "deep" in str(info.value)  # the key (or channel) is named
    assert info.value.__cause__ is None  # not a thousand-frame RecursionError traceback
    assert await keys_under_prefix(cache) == []  # nothing written


@pytest.mark.asyncio
@pytest.mark.parametrize("read", ["get(parse_json)", "get_json", "responses.get", "sessions.get"])
async def test_a_deep_stored_value_is_a_serialization_error_naming_the_key(
    cache: AnyCache, read: str
) -> None:
    if read == "sessions.get":
        sid = await aw(cache.sessions.create(42, {"ok": True}))
        await aw(cache.redis.set(cache.keys("session", sid), DEEP_TEXT))
        with pytest.raises(SerializationError, match="nested too deeply") as info:
            await aw(cache.sessions.get(sid))
        # Named without the session id's random part: the id is a bearer token.
        assert "session:user-42-session-…" in str(info.value)
        assert sid.rsplit("-session-", 1)[1] not in str(info.value)
        return
    key = "api:deep:42" if read == "responses.get" else "deep"
    await aw(cache.redis.set(cache.keys(key), DEEP_TEXT))
    reads: dict[str, Callable[[], Any]] = {
        "get(parse_json)": lambda: cache.get("deep", parse_json=True),
        "get_json": lambda: cache.get_json("deep"),
        "responses.get": lambda: cache.responses.get("deep", 42),
    }
    with pytest.raises(SerializationError, match="nested too deeply") as info:
        await aw(reads[read]())
    assert key in str(info.value)


@pytest.mark.asyncio
async def test_a_deep_message_is_delivered_as_text_and_the_subscription_lives_on(
    cache: AnyCache,
) -> None:
    """The subscriber parses JSON payloads; one too deep to parse arrives as the text sent,
    instead of killing the reader."""
    channel = f"deep-{uuid.uuid4().hex[:6]}"
    if isinstance(cache, AsyncCache):
        asub = await cache.subscribe(channel)
        try:
            await cache.redis.publish(cache.keys(channel), DEEP_TEXT)
            await cache.publish(channel, {"after": 1})
            first, second = await asub.get(timeout=5), await asub.get(timeout=5)
        finally:
            await asub.aclose()
    else:
        sub = cache.subscribe(channel)
        try:
            cache.redis.publish(cache.keys(channel), DEEP_TEXT)
            cache.publish(channel, {"after": 1})
            first, second = sub.get(timeout=5), sub.get(timeout=5)
        finally:
            sub.close()
    assert first is not None
    assert first.data == DEEP_TEXT
    assert second is not None
    assert second.data == {"after": 1}


# -- TTLs, windows, timeouts -------------------------------------------------------------------


def test_the_bound_is_redis_limit_with_margin() -> None:
    """Redis refuses ``ttl_ms + now_ms > 2**63 - 1``; the bound holds for clocks before 3000."""
    year_3000_ms = int(dt.datetime(3000, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    assert MAX_TTL_SECONDS * 1000 + year_3000_ms <= LLONG_MAX
    assert TTL.MAX == MAX_TTL_SECONDS
    assert MAX_TTL_SECONDS < 10**16  # the value the issue reported


@pytest.mark.parametrize(
    "bad",
    [
        0,
        -1,
        True,
        False,
        1.5,
        60.0,
        math.nan,
        math.inf,
        "60",
        None,
        10**16,
        MAX_TTL_SECONDS + 1,
        dt.timedelta(0),
        dt.timedelta(seconds=-5),
        dt.timedelta(milliseconds=1500),
        dt.timedelta(microseconds=1),
    ],
    ids=repr,
)
def test_every_bad_ttl_is_an_invalid_ttl_error_naming_the_argument(bad: object) -> None:
    with pytest.raises(InvalidTTLError, match=r"^window "):
        to_seconds(bad, name="window")  # type: ignore[arg-type]


def test_timedelta_is_converted_exactly() -> None:
    # total_seconds() is a float: 10**15 s + 1 s would round; the conversion does not.
    assert to_seconds(dt.timedelta(days=999_999_999)) == 999_999_999 * 86_400
    assert to_seconds(dt.timedelta(minutes=5)) == 300
    assert to_seconds(MAX_TTL_SECONDS) == MAX_TTL_SECONDS


@pytest.mark.asyncio
async def test_set_and_expire_beyond_the_limit_send_nothing(cache: AnyCache) -> None:
    with pytest.raises(InvalidTTLError, match=r"^ttl must be at most"):
        await aw(cache.set("k", "v", ttl=10**16))
    assert await aw(cache.exists("k")) is False
    with pytest.raises(InvalidTTLError, match=r"^ttl"):
        await aw(cache.set_json("k", {"a": 1}, ttl=10**16))
    await aw(cache.set("k", "v"))
    with pytest.raises(InvalidTTLError, match=r"^ttl"):
        await aw(cache.expire("k", 10**16))
    assert await aw(cache.ttl("k")) == -1  # unchanged


@pytest.mark.asyncio
async def test_the_longest_ttl_is_accepted_by_the_server(cache: AnyCache) -> None:
    await aw(cache.set("k", "v", ttl=TTL.MAX))
    assert await aw(cache.ttl("k")) > TTL.MAX - 60
    assert await aw(cache.expire("k", TTL.MAX)) is True
    await aw(cache.set("d", "v", ttl=dt.timedelta(days=999_999_999)))
    assert await aw(cache.ttl("d")) > 0


FEATURES: dict[str, tuple[type, type, str]] = {
    "RateLimiter": (RateLimiter, AsyncRateLimiter, "window"),
    "SessionStore": (SessionStore, AsyncSessionStore, "ttl"),
    "Presence": (Presence, AsyncPresence, "ttl"),
    "ResponseCache": (ResponseCache, AsyncResponseCache, "ttl"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("bad", [10**16, 0, -1, 1.5, True, dt.timedelta(milliseconds=10)], ids=repr)
async def test_feature_ttls_are_checked_when_the_feature_is_built(
    cache: AnyCache, feature: str, bad: object
) -> None:
    sync_type, async_type, argument = FEATURES[feature]
    kind = async_type if isinstance(cache, AsyncCache) else sync_type
    with pytest.raises(InvalidTTLError, match=rf"^{argument} "):
        kind(cache, **{argument: bad})


@pytest.mark.asyncio
async def test_a_rate_limiter_with_the_longest_window_counts_with_an_expiry(
    cache: AnyCache,
) -> None:
    """Before: window=10**16 left a counter without expiry and failed every later check."""
    limiter_type = AsyncRateLimiter if isinstance(cache, AsyncCache) else RateLimiter
    limiter = limiter_type(cache, limit=2, window=TTL.MAX)
    for _ in range(3):
        result = await aw(limiter.check("10.0.0.1", "login"))
    assert result.allowed is False
    assert await aw(cache.redis.pttl(cache.keys("ratelimit", "10.0.0.1", "login"))) > 0


@pytest.mark.asyncio
async def test_sessions_with_the_longest_ttl_leave_no_key_without_expiry(cache: AnyCache) -> None:
    """Before: ttl=10**16 wrote the session index with no expiry before failing."""
    store_type = AsyncSessionStore if isinstance(cache, AsyncCache) else SessionStore
    store = store_type(cache, ttl=TTL.MAX)
    sid = await aw(store.create(42, {"a": 1}))
    assert await aw(store.get(sid)) == {"a": 1}
    for key in await keys_under_prefix(cache):
        assert await aw(cache.redis.ttl(key)) > 0, key


@pytest.mark.asyncio
async def test_response_ttls_are_checked_before_sending(cache: AnyCache) -> None:
    with pytest.raises(InvalidTTLError, match=r"^ttl"):
        await aw(cache.responses.set("ep", 42, {"a": 1}, ttl=10**16))
    with pytest.raises(InvalidTTLError, match=r"^ttl"):
        await aw(cache.responses.get_or_compute("ep", 42, lambda: 1, ttl=10**16))
    assert await keys_under_prefix(cache) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("argument", ["lock_timeout", "wait_timeout"])
@pytest.mark.parametrize("bad", [math.inf, math.nan, 1e300, 0, -1.0, True], ids=repr)
async def test_response_lock_timeouts_are_bounded(
    cache: AnyCache, argument: str, bad: float
) -> None:
    kind = AsyncResponseCache if isinstance(cache, AsyncCache) else ResponseCache
    settings: dict[str, Any] = {argument: bad}
    with pytest.raises(ConfigurationError, match=rf"^{argument}"):
        kind(cache, **settings)


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", [0, -1, 2**63, True, 1.5])
async def test_rate_limit_bounds(cache: AnyCache, bad: object) -> None:
    kind = AsyncRateLimiter if isinstance(cache, AsyncCache) else RateLimiter
    with pytest.raises(ConfigurationError, match=r"^limit"):
        kind(cache, limit=bad)  # type: ignore[arg-type]
