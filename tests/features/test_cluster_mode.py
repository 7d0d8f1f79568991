"""Cache and AsyncCache in cluster mode (``cluster=True``) on a real local Redis Cluster (3
primaries x 1 replica, TLS, the cluster-mode app user): every feature is right across hash
slots — a user's sessions and index share the user's slot, invalidate-all runs there, the
response cache's endpoint index shares the endpoint's slot, presence reads many users' keys
spread over every shard, pipelines cross slots, and health answers for every node."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from berthcache import DEFAULT_KEY_PREFIX
from berthcache._async_client import AsyncCache
from berthcache._client import Cache
from berthcache._cluster_transport import (
    AsyncClusterTransport,
    ClusterTransport,
    CrossSlotError,
    hash_slot,
)
from berthcache._config import CacheConfig
from berthcache._exceptions import CacheError
from berthcache.testing._cluster import LocalCluster


@pytest.fixture
def config(cluster: LocalCluster) -> CacheConfig:
    return CacheConfig.from_url(
        cluster.url("app"),
        tls_ca_file=cluster.ca_file,
        cluster=True,
        key_prefix=f"{DEFAULT_KEY_PREFIX}t{uuid.uuid4().hex[:8]}:",
    )


@pytest.fixture
def cache(config: CacheConfig) -> Iterator[Cache]:
    client = Cache(config)
    try:
        yield client
    finally:
        client.close()


def _spread(cache: Cache | AsyncCache, n: int) -> list[str]:
    return [f"k{i}" for i in range(n)]


def test_cluster_config_picks_the_cluster_transport(cache: Cache, config: CacheConfig) -> None:
    assert isinstance(cache._transport, ClusterTransport)
    assert isinstance(AsyncCache(config)._transport, AsyncClusterTransport)


def test_data_methods_and_pipelines_across_slots(cache: Cache, cluster: LocalCluster) -> None:
    keys = _spread(cache, 30)
    full = [cache.keys(k) for k in keys]
    assert len({cluster.shard_of(k).index for k in full[:12]}) == 3
    for i, key in enumerate(keys):
        cache.set(key, {"n": i}, ttl=60)
    assert [cache.get_json(k) for k in keys] == [{"n": i} for i in range(30)]
    assert cache.incr("counter", 3) == 3
    assert cache.exists(keys[0])
    with cache.pipeline() as pipe:
        for key in keys:
            pipe.get(key, parse_json=True)
        pipe.delete(*keys)
        results = pipe.execute()
    assert results[:-1] == [{"n": i} for i in range(30)]
    assert results[-1] == 30
    # A transaction across slots is refused with a clear error; within one slot it runs.
    with cache.pipeline(transaction=True) as pipe:
        pipe.set("a", 1)
        pipe.set("b", 2)
        with pytest.raises(CacheError, match="hash-tag"):
            pipe.execute()
    with cache.pipeline(transaction=True) as pipe:
        pipe.set("{same}:a", 1)
        pipe.incr("{same}:b", 2)
        assert pipe.execute() == [True, 2]


def test_sessions_keep_a_user_in_one_slot_and_invalidate_all_there(
    cache: Cache, cluster: LocalCluster
) -> None:
    store = cache.sessions
    users = [f"u{i}" for i in range(12)]
    ids = {user: [store.create(user, {"user": user, "n": n}) for n in range(3)] for user in users}
    # Each user's sessions and index share the user's slot; users spread over the shards.
    shards = set()
    for user, sessions in ids.items():
        index = store._index_key(user)
        assert index == cache.keys("session-index", f"{{user-{user}}}")
        slots = {hash_slot(store._key(s)) for s in sessions} | {hash_slot(index)}
        assert slots == {hash_slot(f"user-{user}")}
        shards.add(cluster.shard_of(index).index)
    assert shards == {0, 1, 2}
    first = ids[users[0]][0]
    assert store.get(first) == {"user": users[0], "n": 0}
    assert store.refresh(first) is True
    assert store.invalidate(first) is True
    assert store.get(first) is None
    assert store.invalidate_all(users[0]) == 2
    assert all(store.get(s) is None for s in ids[users[0]])
    assert store.invalidate_all(users[0]) == 0
    # Other users untouched.
    assert store.get(ids[users[1]][2]) == {"user": users[1], "n": 2}


def test_invalidate_all_races_with_creates_and_orphans_nothing(cache: Cache) -> None:
    store = cache.sessions
    created: list[str] = []
    stop = threading.Event()

    def creator() -> None:
        while not stop.is_set():
            created.append(store.create("racer", {"x": 1}))

    thread = threading.Thread(target=creator)
    thread.start()
    try:
        removed = 0
        for _ in range(20):
            removed += store.invalidate_all("racer")
    finally:
        stop.set()
        thread.join(timeout=10)
    removed += store.invalidate_all("racer")
    assert removed == len(created)
    assert all(store.get(s) is None for s in created)


def test_response_cache_endpoint_index_shares_the_endpoint_slot(
    cache: Cache, cluster: LocalCluster
) -> None:
    responses = cache.responses
    for user in range(40):
        responses.set("clients", user, {"user": user})
        responses.set("clients:list", user, {"nested": user})
    key = responses._key("clients", 7)
    assert key == cache.keys("api", "{clients}", "7")
    assert hash_slot(key) == hash_slot(responses._index_key("clients")) == hash_slot("clients")
    assert responses.get("clients", 7) == {"user": 7}
    assert responses.invalidate("clients") == 40
    assert responses.get("clients", 7) is None
    assert responses.get("clients:list", 7) == {"nested": 7}  # a nested endpoint keeps its own
    assert responses.invalidate("clients:list", 7) == 1
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"v": len(calls)}

    assert responses.get_or_compute("slow", 1, compute) == {"v": 1}
    assert responses.get_or_compute("slow", 1, compute) == {"v": 1}
    assert len(calls) == 1


def test_rate_limiter_presence_publish_and_health(cache: Cache, cluster: LocalCluster) -> None:
    limiter = cache.rate_limiter
    results = [limiter.check("10.0.0.1", "login") for _ in range(3)]
    assert all(r.allowed for r in results)
    limiter.reset("10.0.0.1", "login")
    presence = cache.presence
    users = [f"p{i}" for i in range(30)]
    for user in users[:20]:
        presence.touch(user)
    assert len({cluster.shard_of(presence._key(u)).index for u in users}) == 3
    online = presence.online(users)
    assert online == {u: u in users[:20] for u in users}
    assert presence.offline(users[0]) is True
    received: list[Any] = []
    got = threading.Event()

    def on_message(message: Any) -> None:
        received.append(message.data)
        got.set()

    subscription = cache.subscribe("alerts", on_message)
    try:
        # PUBLISH reaches subscribers on every node; the count is the receiving node's only.
        assert cache.publish("alerts", {"level": "high"}) in (0, 1)
        assert got.wait(5)
    finally:
        subscription.close()
    assert received == [{"level": "high"}]
    status = cache.check_health()
    assert status.healthy, status
    assert cache.ping() > 0


def test_health_names_a_node_that_does_not_answer(config: CacheConfig) -> None:
    cache = Cache(config.replace(max_retries_per_request=0, health_timeout_ms=300))
    try:
        assert cache.check_health().healthy
        transport = cache._transport
        assert isinstance(transport, ClusterTransport)
        # One primary of the map replaced by an address nobody listens on: unhealthy.
        transport._primaries = [*transport._primaries[:2], ("127.0.0.1", 1)]
        status = cache.check_health()
        assert not status.healthy
        assert status.error
    finally:
        cache.close()


def test_async_cache_features_across_slots(config: CacheConfig, cluster: LocalCluster) -> None:
    async def main() -> None:
        cache = AsyncCache(config)
        try:
            keys = [f"a{i}" for i in range(20)]
            await asyncio.gather(*(cache.set(k, i) for i, k in enumerate(keys)))
            assert await asyncio.gather(*(cache.get(k) for k in keys)) == [
                str(i) for i in range(20)
            ]
            pipe = cache.pipeline()
            for key in keys:
                pipe.incr(key, 1)
            assert await pipe.execute() == [i + 1 for i in range(20)]
            assert await cache.delete(*keys) == 20
            sessions = cache.sessions
            ids = [await sessions.create("amy", {"n": n}) for n in range(4)]
            assert await sessions.get(ids[0]) == {"n": 0}
            assert await sessions.invalidate_all("amy") == 4
            assert await sessions.get(ids[1]) is None
            responses = cache.responses
            for user in range(10):
                await responses.set("orders", user, [user])
            assert await responses.invalidate("orders") == 10
            presence = cache.presence
            await presence.touch("x")
            assert await presence.online(["x", "y", "z"]) == {"x": True, "y": False, "z": False}
            assert (await cache.check_health()).healthy
            with pytest.raises(CrossSlotError):
                await cache._transport.batch([("SET", "x", 1), ("SET", "y", 1)], transaction=True)
        finally:
            await cache.close()

    asyncio.run(main())
