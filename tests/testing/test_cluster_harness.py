"""The local Redis Cluster: formed with TLS and ACL users within seconds, the app user limited to
its prefix, planned shard failover and live slot migration without losing acknowledged writes."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.testing._cluster import SLOTS, LocalCluster, _key_slot, iter_keys_in_slot

ONCE = Retry(NoBackoff(), 0)


def test_three_shards_of_primary_and_replica_ready_within_five_seconds(
    cluster: LocalCluster,
) -> None:
    assert cluster.started_in is not None
    assert cluster.started_in <= 5.0, cluster.started_in
    assert len(cluster.shards) == 3
    assert all(len(shard.replicas) == 1 for shard in cluster.shards)
    client = cluster.admin_client(cluster.shards[0].primary)
    try:
        rows = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
        assert sum(int(end) - int(start) + 1 for start, end, *_ in rows) == SLOTS
        assert all(len(nodes) == 2 for _, _, *nodes in rows)  # a primary and its replica
    finally:
        client.close()


def test_nodes_speak_only_tls_and_need_a_password(cluster: LocalCluster) -> None:
    node = cluster.shards[1].primary
    plain = redis.Redis(
        host=node.host, port=node.port, socket_timeout=1, socket_connect_timeout=1, retry=ONCE
    )
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()
    anonymous = node.client(user=None, password=None, retry=ONCE)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_app_user_works_across_slots_under_its_prefix_only(cluster: LocalCluster) -> None:
    client = cluster.cluster_client("app")
    try:
        keys = [f"{DEFAULT_KEY_PREFIX}harness:{i}" for i in range(50)]
        assert len({shard.index for shard in cluster.shards_of(keys)}) == 3  # all are used
        for i, key in enumerate(keys):
            client.set(key, i)
        assert [client.get(k) for k in keys] == [str(i).encode() for i in range(50)]
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other-tenant:key", "x")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(  # type: ignore[no-untyped-call]
                "CONFIG", "GET", "maxmemory", target_nodes=RedisCluster.RANDOM
            )
    finally:
        client.close()


def test_planned_shard_failover_keeps_every_acknowledged_write(cluster: LocalCluster) -> None:
    client = cluster.cluster_client("app")
    try:
        key = f"{DEFAULT_KEY_PREFIX}failover:{{f}}"
        shard = cluster.shard_of(key)
        old_primary = shard.primary
        client.set(key, "before")
        cluster.failover(shard)
        assert shard.primary is not old_primary
        assert cluster.shard_of(key).primary.port == shard.primary.port
        role = cluster.admin_client(shard.primary)
        assert role.info("replication")["role"] == "master"
        role.close()
        # redis-py follows MOVED to the new primary; the write acknowledged before is there.
        assert client.get(key) == b"before"
        client.set(key, "after")
        assert client.get(key) == b"after"
    finally:
        client.close()


def test_live_slot_migration_moves_every_key(cluster: LocalCluster) -> None:
    client = cluster.cluster_client("app")
    try:
        keys = list(iter_keys_in_slot(1234, f"{DEFAULT_KEY_PREFIX}migrate:", 250))
        assert {_key_slot(k) for k in keys} == {1234}
        for key in keys:
            client.set(key, key)
        source = cluster.shard_of(keys[0])
        target = next(s for s in cluster.shards if s is not source)
        moved = cluster.migrate_slot(1234, target)
        assert moved == 250
        assert cluster.shard_of(keys[0]) is target
        assert client.mget(keys) == [k.encode() for k in keys]  # nothing lost
    finally:
        client.close()
