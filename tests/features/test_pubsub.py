"""Pub/sub (C12): dedicated connection, JSON round trip, unsubscribe, robust listeners."""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import threading
import weakref
from typing import Any

import pytest
import redis

from berthcache._exceptions import InvalidKeyError
from berthcache._host import CacheHost
from berthcache._pubsub import (
    AsyncSubscription,
    Message,
    async_publish,
    async_subscribe,
    publish,
    subscribe,
)

WAIT = 5.0


@pytest.mark.clause("C12")
def test_publish_while_subscribed_on_the_same_cache(cache: CacheHost) -> None:
    received: queue.Queue[Message] = queue.Queue()
    with subscribe(cache, "alerts", received.put) as sub:
        # The cache's own command connection still works: the subscription has its own.
        cache.redis.set(cache.keys("still-usable"), "yes")
        assert publish(cache, "alerts", {"level": "high", "tags": ["å", 1]}) == 1
        message = received.get(timeout=WAIT)
        assert message == Message(channel="alerts", data={"level": "high", "tags": ["å", 1]})
        assert cache.redis.get(cache.keys("still-usable")) == "yes"
    assert sub.closed


@pytest.mark.clause("C12")
def test_strings_arrive_as_sent_and_json_is_optional(cache: CacheHost) -> None:
    with subscribe(cache, "news") as parsed, subscribe(cache, "news", parse_json=False) as text:
        publish(cache, "news", "plain text")
        publish(cache, "news", [1, 2])
        assert [parsed.get(WAIT), parsed.get(WAIT)] == [
            Message("news", "plain text"),
            Message("news", [1, 2]),
        ]
        assert [m.data for m in (text.get(WAIT), text.get(WAIT)) if m] == ["plain text", "[1,2]"]


@pytest.mark.clause("C12")
def test_channels_are_namespaced_by_the_key_prefix(cache: CacheHost, raw: redis.Redis) -> None:
    with subscribe(cache, "alerts") as sub:
        assert raw.publish("alerts", "someone else's") == 0  # un-prefixed: not ours
        assert raw.publish(f"{cache.keys.prefix}alerts", "ours") == 1
        assert sub.get(WAIT) == Message("alerts", "ours")


@pytest.mark.clause("C12")
def test_unsubscribe_stops_delivery(cache: CacheHost) -> None:
    received: queue.Queue[Message] = queue.Queue()
    sub = subscribe(cache, "alerts", received.put)
    publish(cache, "alerts", 1)
    assert received.get(timeout=WAIT).data == 1
    sub.unsubscribe()
    assert publish(cache, "alerts", 2) == 0  # nobody is listening any more
    assert received.empty()
    assert not any(t.name.startswith("berthcache-subscription") for t in threading.enumerate())


def test_a_failing_callback_is_logged_and_the_listener_survives(
    cache: CacheHost, caplog: pytest.LogCaptureFixture
) -> None:
    received: queue.Queue[Any] = queue.Queue()

    def callback(message: Message) -> None:
        if message.data == "boom":
            raise RuntimeError("handler bug")
        received.put(message.data)

    with (
        caplog.at_level(logging.ERROR, logger="berthcache.pubsub"),
        subscribe(cache, "alerts", callback),
    ):
        publish(cache, "alerts", "boom")
        publish(cache, "alerts", "after")
        assert received.get(timeout=WAIT) == "after"
    assert "callback for channel 'alerts' failed" in caplog.text
    assert "handler bug" in caplog.text


def test_closing_the_cache_stops_subscriptions(cache: CacheHost) -> None:
    sub = subscribe(cache, "alerts")
    cache.close()  # type: ignore[attr-defined]
    assert sub.closed
    assert sub.get(timeout=0) is None


def test_iteration_and_bad_arguments(cache: CacheHost) -> None:
    with pytest.raises(InvalidKeyError, match="channel"):
        subscribe(cache, "")
    with subscribe(cache, "a", lambda m: None) as with_callback, pytest.raises(TypeError):
        with_callback.get()
    sub = subscribe(cache, "it")
    publish(cache, "it", 1)
    publish(cache, "it", 2)
    got = []
    for message in sub:
        got.append(message.data)
        if len(got) == 2:
            sub.close()
    assert got == [1, 2]


@pytest.mark.clause("C12")
@pytest.mark.asyncio
async def test_async_iterate_and_publish_from_the_same_cache(acache: CacheHost) -> None:
    async with await async_subscribe(acache, "alerts") as sub:
        assert await async_publish(acache, "alerts", {"n": 1}) == 1
        await async_publish(acache, "alerts", "two")
        got = []
        async with asyncio.timeout(WAIT):
            async for message in sub:
                got.append(message)
                if len(got) == 2:
                    break
        assert got == [Message("alerts", {"n": 1}), Message("alerts", "two")]
    assert sub.closed
    assert await async_publish(acache, "alerts", 3) == 0


@pytest.mark.asyncio
async def test_async_callbacks_sync_or_async_and_failures_logged(
    acache: CacheHost, caplog: pytest.LogCaptureFixture
) -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def on_message(message: Message) -> None:
        if message.data == "boom":
            raise RuntimeError("handler bug")
        await received.put(message.data)

    sub = await async_subscribe(acache, "alerts", on_message)
    other = await async_subscribe(acache, "alerts", lambda m: received.put_nowait(("sync", m.data)))
    with caplog.at_level(logging.ERROR, logger="berthcache.pubsub"):
        await async_publish(acache, "alerts", "boom")
        await async_publish(acache, "alerts", "after")
        async with asyncio.timeout(WAIT):
            got = {await received.get() for _ in range(3)}
    assert got == {("sync", "boom"), ("sync", "after"), "after"}
    assert "handler bug" in caplog.text
    await acache.close()  # type: ignore[attr-defined]
    assert sub.closed
    assert other.closed


@pytest.mark.asyncio
async def test_both_twins_validate_and_report_their_state_alike(
    cache: CacheHost, acache: CacheHost
) -> None:
    with pytest.raises(TypeError, match="callback must be callable"):
        subscribe(cache, "alerts", "not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback must be callable"):
        await async_subscribe(acache, "alerts", "not a function")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="channel"):
        await async_subscribe(acache, "")

    sub = subscribe(cache, "alerts")
    assert repr(sub) == "Subscription(channel='alerts', open)"
    sub.close()
    assert repr(sub) == "Subscription(channel='alerts', closed)"

    asub = AsyncSubscription(acache, "alerts", lambda m: None)
    assert repr(asub) == "AsyncSubscription(channel='alerts', not started)"
    await asub.start()
    assert repr(asub) == "AsyncSubscription(channel='alerts', open)"
    with pytest.raises(TypeError, match="delivers messages to its callback"):
        await asub.get(timeout=0)
    await asub.aclose()
    assert asub.closed
    assert repr(asub) == "AsyncSubscription(channel='alerts', closed)"


def test_a_closed_subscription_is_not_kept_alive_by_the_cache(cache: CacheHost) -> None:
    """Apps that subscribe per request or websocket close each subscription; the cache must
    drop its shutdown hook then, or every finished subscription stays in memory."""
    subs = [subscribe(cache, f"leak-{n}", lambda message: None) for n in range(3)]
    refs = [weakref.ref(sub) for sub in subs]
    for sub in subs:
        sub.close()
    del sub, subs
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


@pytest.mark.asyncio
async def test_a_closed_async_subscription_is_not_kept_alive_by_the_cache(
    acache: CacheHost,
) -> None:
    sub = await async_subscribe(acache, "leak-async")
    ref = weakref.ref(sub)
    await sub.aclose()
    del sub
    gc.collect()
    assert ref() is None
