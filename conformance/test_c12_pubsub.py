"""C12 Pub/sub: subscribe, receive and publish JSON on the ``alerts`` channel, on a connection of
its own so the same client keeps running commands meanwhile. Channels carry the key prefix by
default; with ``prefix_channels=False`` (``REDIS_PREFIX_CHANNELS=false``) a seed service on the
bare ``alerts`` channel and berthcache hear each other (the seed side is a plain redis-py
client doing what the seed does)."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from berthcache import AsyncCache, CacheConfig

from .support import WAIT, AnyCache, CacheFactory, Inbox, aw, config_environ, server_config

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
        # One subscriber on the prefixed name (PUBSUB CHANNELS is introspection: not granted).
        assert await aw(cache.redis.publish(f"{cache.config.key_prefix}alerts", "x")) == 1
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


# -- interop with the seed ---------------------------------------------------------------------
# The seed publishes on the bare channel name. The target's application user may only use
# channels under its key prefix (the ACL's &prefix*), so these tests run on a plain server of
# their own, where a bare channel is allowed.


@pytest.fixture
def bare_conf(local_redis_factory: Any, conf: CacheConfig) -> CacheConfig:
    """``conf`` pointed at a plain local server of this test's own (no ACL, no TLS)."""
    return server_config(local_redis_factory.server(appendonly=False), conf)


@pytest.fixture
def seed(bare_conf: CacheConfig) -> Iterator[redis.Redis]:
    """A plain client on that server standing in for a service built from the seed."""
    client = redis.Redis(**bare_conf.connection_kwargs(), decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def seed_subscribe(seed: redis.Redis, channel: str) -> Any:
    """The seed's ``subscribe(channel)``: listening once the server confirmed it."""
    pubsub = seed.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel)
    confirmed = pubsub.get_message(timeout=WAIT)
    assert confirmed is not None
    assert confirmed["type"] == "subscribe"
    return pubsub


async def test_bare_channels_reach_the_seed(
    cache_factory: CacheFactory, bare_conf: CacheConfig, seed: redis.Redis
) -> None:
    env = config_environ(bare_conf) | {"REDIS_PREFIX_CHANNELS": "false"}
    cache = cache_factory(CacheConfig.from_env(env))
    assert cache.config.prefix_channels is False
    listener = seed_subscribe(seed, "alerts")
    try:
        assert await aw(cache.publish("alerts", ALERT)) == 1
        message = listener.get_message(timeout=WAIT)
        assert message is not None
        assert message["channel"] == "alerts"
        assert json.loads(message["data"]) == ALERT  # the seed JSON.parses the payload
    finally:
        listener.close()


async def test_the_seeds_messages_reach_bare_subscribers(
    cache_factory: CacheFactory, bare_conf: CacheConfig, seed: redis.Redis
) -> None:
    cache = cache_factory(bare_conf, prefix_channels=False)
    inbox = Inbox()
    sub = await _subscribe(cache, "alerts", inbox)
    try:
        assert seed.publish("alerts", json.dumps(ALERT)) == 1  # the seed's publish()
        message = await inbox.get()
        assert message.channel == "alerts"  # the name as sent
        assert message.data == ALERT
    finally:
        await _stop(sub)


async def test_prefixed_by_default_so_the_seed_does_not_hear(
    cache_factory: CacheFactory, bare_conf: CacheConfig, seed: redis.Redis
) -> None:
    cache = cache_factory(bare_conf)
    assert cache.config.prefix_channels is True  # the documented default
    listener = seed_subscribe(seed, "alerts")
    try:
        assert await aw(cache.publish("alerts", ALERT)) == 0  # berthcare:...:alerts, not alerts
        prefixed = seed_subscribe(seed, f"{bare_conf.key_prefix}alerts")
        try:
            assert await aw(cache.publish("alerts", ALERT)) == 1
        finally:
            prefixed.close()
    finally:
        listener.close()


@pytest.mark.requires("admin")  # kills connections on the server: only where the suite owns it
async def test_a_lost_subscription_connection_is_restored(
    cache: AnyCache, redis_target: Any
) -> None:
    """The contract's "a lost connection is retried and the channels re-subscribed": the server
    drops every subscribed connection (as a node replacement does); messages published after
    that still arrive, without the app doing anything."""
    inbox = Inbox()
    sub = await _subscribe(cache, "alerts", inbox)
    admin = redis_target.admin_client()  # local: the admin user; docker: its default user
    try:
        assert await aw(cache.publish("alerts", {"n": 1})) == 1
        assert (await inbox.get()).data == {"n": 1}
        killed = admin.client_kill_filter(_type="pubsub")
        assert killed >= 1
        delivered: list[Any] = []
        async with asyncio.timeout(WAIT):
            # Publish until the re-subscribed listener hears one (each try is one PUBLISH).
            while not delivered:
                if await aw(cache.publish("alerts", {"n": 2})) >= 1:
                    delivered.append((await inbox.get()).data)
                else:
                    await asyncio.sleep(0.05)
        assert delivered == [{"n": 2}]
    finally:
        admin.close()
        await _stop(sub)
