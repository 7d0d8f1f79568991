"""C12 Pub/sub: subscribe, receive and publish JSON on the ``alerts`` channel, on a connection of
its own so the same client keeps running commands meanwhile."""

from __future__ import annotations

import asyncio
import queue
from typing import Any

import pytest

from berthcache import AsyncCache

from .support import WAIT, AnyCache, CacheFactory, Inbox, aw

pytestmark = [pytest.mark.clause("C12"), pytest.mark.asyncio]

ALERT = {"level": "critical", "patient": "bed-7", "vitals": {"hr": 142}, "note": "Zoë"}


async def _subscribe(cache: AnyCache, channel: str, inbox: Inbox) -> Any:
    return await aw(cache.subscribe(channel, inbox.put))


async def _stop(sub: Any) -> None:
    if hasattr(sub, "aclose"):
        await sub.aclose()
    else:
        sub.close()


async def test_json_round_trip_on_alerts(cache: AnyCache) -> None:
    inbox = Inbox()
    sub = await _subscribe(cache, "alerts", inbox)
    try:
        assert await aw(cache.publish("alerts", ALERT)) == 1  # one subscriber got it
        message = await inbox.get()
        assert message.channel == "alerts"  # the prefix is not shown to the app
        assert message.data == ALERT
    finally:
        await _stop(sub)


async def test_same_client_keeps_running_commands(cache: AnyCache) -> None:
    inbox = Inbox()
    sub = await _subscribe(cache, "alerts", inbox)
    try:
        # While subscribed, the same client still reads and writes (pub/sub has its own
        # connection; the seed's subscribed-connection bug would fail here).
        await aw(cache.set("k", "v"))
        assert await aw(cache.get("k")) == "v"
        for n in range(3):
            await aw(cache.publish("alerts", {"n": n}))
            assert await aw(cache.incr("published")) == n + 1
        got = [(await inbox.get()).data for _ in range(3)]
        assert got == [{"n": 0}, {"n": 1}, {"n": 2}]  # in order
    finally:
        await _stop(sub)


async def test_channel_is_prefixed_on_the_server(cache: AnyCache) -> None:
    sub = await _subscribe(cache, "alerts", Inbox())
    try:
        channels = await aw(cache.redis.pubsub_channels(cache.keys.pattern("*")))
        assert f"{cache.config.key_prefix}alerts" in channels
    finally:
        await _stop(sub)


async def test_other_clients_messages_arrive(cache_factory: CacheFactory) -> None:
    listener, sender = cache_factory(), cache_factory()
    inbox = Inbox()
    sub = await _subscribe(listener, "alerts", inbox)
    try:
        await aw(sender.publish("alerts", ALERT))
        assert (await inbox.get()).data == ALERT
        await aw(sender.publish("other", {"x": 1}))  # another channel: not delivered
        await aw(sender.publish("alerts", "plain text"))
        assert (await inbox.get()).data == "plain text"
    finally:
        await _stop(sub)


async def test_unsubscribe_stops_delivery(cache: AnyCache) -> None:
    inbox = Inbox()
    sub = await _subscribe(cache, "alerts", inbox)
    if hasattr(sub, "aclose"):
        await sub.aclose()
    else:
        sub.unsubscribe()
    assert await aw(cache.publish("alerts", ALERT)) == 0
    with pytest.raises(queue.Empty):
        await inbox.get(within=0.2)


# `async for` is the asyncio client's idiom: this test runs on AsyncCache only.
@pytest.mark.not_twinned(reason="`async for` is the asyncio client's own idiom")
@pytest.mark.parametrize("client_kind", ["async"], indirect=True)
async def test_async_iteration(cache: AsyncCache) -> None:
    sub = await cache.subscribe("alerts")
    async with sub:
        await cache.publish("alerts", ALERT)
        async with asyncio.timeout(WAIT):
            async for message in sub:
                assert message.data == ALERT
                break
