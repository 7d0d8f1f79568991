"""C14 Graceful shutdown: in-flight calls finish, subscriptions stop, every connection closes,
``end`` is emitted once, and the closed client refuses further work with CacheClosedError."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from berthcache import AsyncCache, CacheClosedError

from .support import WAIT, AnyCache, CacheFactory, Inbox, aw, on_send

pytestmark = [pytest.mark.clause("C14"), pytest.mark.asyncio]


async def test_calls_after_close_raise(cache: AnyCache) -> None:
    await aw(cache.set("k", "v"))
    await aw(cache.close())
    with pytest.raises(CacheClosedError):
        await aw(cache.get("k"))
    with pytest.raises(CacheClosedError):
        await aw(cache.set("k", "v"))
    await aw(cache.close())  # idempotent


async def test_in_flight_call_finishes_before_close(cache: AnyCache, monkeypatch: Any) -> None:
    """A slow command that started before close() completes with its real result."""
    key = cache.keys("slow:item")
    marker = cache.keys("slow:started")
    await aw(cache.set("slow:item", "late-item"))
    on_the_wire = Inbox()  # fed once the operation's first command reached the server
    on_send(cache, monkeypatch, marker.encode(), lambda: on_the_wire.put("started"))
    if isinstance(cache, AsyncCache):

        async def slow() -> Any:
            with cache._operation():
                # A slow operation: one command, work that takes a while (the app user may run
                # no blocking command such as BLPOP), then the command whose result we check.
                if cache.config.cluster:  # the commands through the cluster transport
                    await cache._transport.call(("EXISTS", marker))
                    await asyncio.sleep(0.3)
                    return await cache._transport.call(("GET", key))
                await cache.redis.exists(marker)
                await asyncio.sleep(0.3)
                return await cache.redis.get(key)

        task = asyncio.create_task(slow())
        try:
            assert await on_the_wire.get() == "started"  # queue.Empty after WAIT seconds
            async with asyncio.timeout(WAIT):
                await cache.close()
            assert task.done()  # close() waited for it
            assert await task == "late-item"
        finally:
            task.cancel()
    else:
        result: list[Any] = []

        def slow_sync() -> None:
            with cache._operation():
                if cache.config.cluster:  # the commands through the cluster transport
                    cache._transport.call(("EXISTS", marker))
                    time.sleep(0.3)
                    result.append(cache._transport.call(("GET", key)))
                    return
                cache.redis.exists(marker)
                time.sleep(0.3)
                result.append(cache.redis.get(key))

        worker = threading.Thread(target=slow_sync)
        worker.start()
        try:
            assert await on_the_wire.get() == "started"
            cache.close()  # waits for the worker's command to finish
            assert result == ["late-item"]
        finally:
            worker.join(WAIT)
        assert not worker.is_alive()
        assert result == ["late-item"]


async def test_subscriptions_stop(cache_factory: CacheFactory) -> None:
    listener, sender = cache_factory(), cache_factory()
    sub = await aw(listener.subscribe("alerts", Inbox().put))
    assert await aw(sender.publish("alerts", {"x": 1})) == 1
    await aw(listener.close())
    assert await aw(sender.publish("alerts", {"x": 2})) == 0  # nobody listens any more
    del sub


async def test_end_event_once(cache: AnyCache) -> None:
    ends: list[Any] = []
    cache.events.on("end", ends.append)
    await aw(cache.ping())
    await aw(cache.close())
    await aw(cache.close())
    assert len(ends) == 1


async def test_every_connection_closes(
    redis_target: Any, cache_factory: CacheFactory, test_prefix: str
) -> None:
    """Watched with CLIENT LIST: read-only, not on the safety rule's forbidden list, so it runs
    on every target whose user may send it (the harness admin where the suite started the
    server); where the user may not (NOPERM, e.g. a restricted app user) the test skips."""
    harness = redis_target.harness
    admin = harness.admin_client() if harness is not None else redis_target.client()
    try:
        try:
            admin.client_list()
        except redis.exceptions.NoPermissionError:
            pytest.skip(
                f"CLIENT LIST is not permitted to the {redis_target.name} target's user "
                "(NOPERM): cannot watch the server close the connections"
            )
        name = "bc-c14-" + test_prefix.rstrip(":").rsplit(":", 1)[-1]
        cache = cache_factory(client_name=name)
        sub = await aw(cache.subscribe("alerts", Inbox().put))
        for n in range(5):
            await aw(cache.set(f"k{n}", n))

        def ours() -> list[dict[str, Any]]:
            return [c for c in admin.client_list() if c.get("name") == name]

        assert ours(), "the cache's connections should carry its client name"
        await aw(cache.close())
        # The server processes our QUIT / socket close asynchronously; ask until it agrees.
        async with asyncio.timeout(WAIT):
            while ours():  # noqa: ASYNC110 -- server-side state: nothing to await
                await asyncio.sleep(0.02)
        del sub
    finally:
        admin.close()


async def test_context_manager_closes(conf: Any, client_kind: str) -> None:
    from berthcache import Cache

    if client_kind == "sync":
        with Cache(conf) as sync_cache:
            sync_cache.set("k", "v")
        with pytest.raises(CacheClosedError):
            sync_cache.get("k")
    else:
        async with AsyncCache(conf) as async_cache:
            await async_cache.set("k", "v")
        with pytest.raises(CacheClosedError):
            await async_cache.get("k")
