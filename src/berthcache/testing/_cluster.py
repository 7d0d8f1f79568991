"""A local Redis Cluster for tests: 3 primaries x 1 replica, TLS, ACL users, ready in seconds.

It stands in for ElastiCache cluster mode and for ElastiCache Serverless, which speak the same
Redis Cluster protocol (MOVED / ASK redirections, ``CLUSTER SLOTS``, hash tags). Every node is a
:class:`~berthcache.testing._server.RedisServer` with ``cluster-enabled yes`` (and
``tls-cluster yes`` when TLS is on: the cluster bus is encrypted too, as in transit encryption on
ElastiCache). The cluster is formed the way ``redis-cli --cluster create`` does it, over the
admin user: slots split evenly with ``CLUSTER ADDSLOTSRANGE``, ``CLUSTER MEET``, then
``CLUSTER REPLICATE`` for each replica, and ``start()`` returns once every node reports
``cluster_state:ok`` with the same view of the slots and every replica's link is up.

Fault operations for tests and the faults table: :meth:`LocalCluster.failover` (a planned
``CLUSTER FAILOVER`` of one shard: its replica takes over without losing an acknowledged write)
and :meth:`LocalCluster.migrate_slot` (a live slot migration, ``SETSLOT IMPORTING / MIGRATING``,
``MIGRATE`` in batches, ``SETSLOT NODE`` — what online resharding does).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.acl import app_user_access
from berthcache.testing._certs import TLSFiles, make_tls_files
from berthcache.testing._cleanup import register_for_cleanup, unregister_for_cleanup
from berthcache.testing._server import (
    ADMIN_RULES,
    ACLUser,
    HarnessError,
    RedisServer,
    RedisServerStartError,
    StartedInWith,
    free_port,
    wait_for,
)

__all__ = ["SLOTS", "LocalCluster", "Shard", "iter_keys_in_slot"]

#: Hash slots of a Redis Cluster.
SLOTS = 16384
#: Starts tried when a port picked as free was taken before a node could bind it.
_START_ATTEMPTS = 3


class Shard:
    """One primary and its replicas (a node group, in ElastiCache's words)."""

    def __init__(self, index: int, primary: RedisServer, replicas: list[RedisServer]) -> None:
        self.index = index
        self.primary = primary
        self.replicas = replicas

    def __repr__(self) -> str:
        ports = [r.port for r in self.replicas]
        return f"Shard({self.index}, primary={self.primary.port}, replicas={ports})"


def _slot_ranges(shards: int) -> list[tuple[int, int]]:
    """The slots split as evenly as ``redis-cli --cluster create`` splits them."""
    per = SLOTS / shards
    return [(round(i * per), round((i + 1) * per) - 1) for i in range(shards)]


class LocalCluster(StartedInWith):
    """``primaries`` shards of one primary and ``replicas`` replicas each, on loopback.

    ``tls=False`` serves plain TCP; ``auth=False`` runs without passwords or ACL users. The app
    user has the rules of the deployed RBAC user in cluster mode
    (:func:`berthcache.acl.app_user_access` with ``cluster=True``). Use as a context manager or
    ``start()`` / ``close()``; ``close()`` stops every node and removes the directory.
    """

    def __init__(
        self,
        *,
        primaries: int = 3,
        replicas: int = 1,
        tls: bool = True,
        auth: bool = True,
        binary: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        maxmemory: str = "64mb",
        maxmemory_policy: str = "allkeys-lru",
        base_dir: Path | None = None,
        startup_timeout: float = 10.0,
        node_timeout_ms: int = 3000,
    ) -> None:
        if not 1 <= primaries <= 16:
            raise ValueError(f"primaries must be 1..16, got {primaries}")
        if not 0 <= replicas <= 5:
            raise ValueError(f"replicas must be 0..5, got {replicas}")
        self.primaries_count = primaries
        self.replicas_count = replicas
        self.tls = tls
        self.auth = auth
        self.key_prefix = key_prefix
        self.startup_timeout = startup_timeout
        self._binary = binary
        self._settings: dict[str, Any] = {
            "maxmemory": maxmemory,
            "maxmemory_policy": maxmemory_policy,
        }
        self._node_timeout_ms = node_timeout_ms
        self._base_dir = base_dir
        self.directory: Path | None = None
        self._tls_files: TLSFiles | None = None
        self._password: str | None = None
        self._acl: dict[str, ACLUser] = {}
        self.shards: list[Shard] = []
        self.started_in: float | None = None

    # -- facts -----------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[RedisServer]:
        return [node for shard in self.shards for node in (shard.primary, *shard.replicas)]

    @property
    def ca_file(self) -> str | None:
        return str(self._tls_files.ca_file) if self._tls_files else None

    @property
    def users(self) -> dict[str, tuple[str, str]]:
        """ACL users as ``{name: (name, password)}`` (secrets: never log this)."""
        return {name: (u.name, u.password) for name, u in self._acl.items()}

    def url(self, user: str | None = "app", *, node: RedisServer | None = None) -> str:
        """``redis[s]://user:password@host:port`` of one node — any node serves as the
        configuration endpoint: the client learns the others from ``CLUSTER SLOTS``."""
        if not self.shards:
            raise HarnessError("the cluster is not started")
        server = node or self.shards[0].primary
        scheme = "rediss" if self.tls else "redis"
        credentials = ""
        if user is not None and user in self._acl:
            acl = self._acl[user]
            credentials = f"{acl.name}:{acl.password}@"
        elif self._password is not None:
            credentials = f":{self._password}@"
        return f"{scheme}://{credentials}{server.host}:{server.port}"

    def admin_client(self, node: RedisServer, **kwargs: Any) -> redis.Redis:
        """A plain client of one node as the admin user (cluster commands, fault injection)."""
        return node.client(**kwargs)

    def cluster_client(self, user: str | None = "app", **kwargs: Any) -> RedisCluster:
        """redis-py's cluster client as ``user`` (default: the app user)."""
        first = self.shards[0].primary
        options = first.connection_kwargs(user)
        options.pop("host")
        options.pop("port")
        options.setdefault("socket_connect_timeout", 2.0)
        options.setdefault("socket_timeout", 5.0)
        options.update(kwargs)
        node = ClusterNode(first.host, first.port)  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=[node], **options)

    def shard_of(self, key: str) -> Shard:
        """The shard whose primary serves ``key`` now."""
        return self.shards_of([key])[0]

    def shards_of(self, keys: list[str]) -> list[Shard]:
        """The shard serving each of ``keys`` now (one ``CLUSTER SLOTS`` for all of them)."""
        ranges = self._slot_ranges_now()
        return [self._in(ranges, _key_slot(key)) for key in keys]

    def __repr__(self) -> str:
        state = "started" if self.shards else "not started"
        return (
            f"LocalCluster(primaries={self.primaries_count}, replicas={self.replicas_count}, "
            f"tls={self.tls}, auth={self.auth}, {state})"
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every node, form the cluster, return once it serves every slot."""
        if self.shards:
            return
        began = time.monotonic()
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.directory = Path(
                tempfile.mkdtemp(prefix="berthcache-cluster-", dir=self._base_dir)
            )
            register_for_cleanup(self, owner=True)
            try:
                self._start()
                break
            except RedisServerStartError as exc:
                self.close()
                # A free port (a node's, or its bus port) taken by another process between
                # picking it and binding it: start over on new ports, a bounded number of times.
                if attempt == _START_ATTEMPTS or "Address already in use" not in str(exc):
                    raise
            except BaseException:
                self.close()
                raise
        self.started_in = time.monotonic() - began

    def _start(self) -> None:
        assert self.directory is not None
        if self.tls:
            self._tls_files = make_tls_files(self.directory / "tls")
        if self.auth:
            self._password = secrets.token_hex(16)
            self._acl = {
                "admin": ACLUser("admin", secrets.token_hex(16), ADMIN_RULES),
                "app": ACLUser(
                    "app", secrets.token_hex(16), app_user_access(self.key_prefix, cluster=True)
                ),
            }
        for index in range(self.primaries_count):
            primary = self._node(f"shard{index}-primary")
            replicas = [self._node(f"shard{index}-replica{r}") for r in range(self.replicas_count)]
            self.shards.append(Shard(index, primary, replicas))
        for node in self.nodes:
            node.start()
        self._form()

    def _node(self, name: str) -> RedisServer:
        assert self.directory is not None
        admin = self._acl.get("admin")
        extra = {
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(self._node_timeout_ms),
            # The bus port on a free port of its own: the default (port + 10000) may be taken
            # or, above port 55535, impossible.
            "cluster-port": str(free_port()),
            # A replica that lost its primary for a while may still take over on a planned
            # failover test; the harness never waits for automatic failover to be "safe".
            "cluster-replica-validity-factor": "0",
            "cluster-allow-replica-migration": "no",
            # Redis 7 lists a replica in CLUSTER SLOTS / SHARDS only once its replication offset
            # is above 0; on an idle primary that takes the first replication ping (10 s by
            # default). A ping a second makes a new cluster whole within a couple of seconds.
            "repl-ping-replica-period": "1",
        }
        if self.tls:
            extra["tls-cluster"] = "yes"
        return RedisServer(
            directory=self.directory / name,
            binary=self._binary,
            tls=self._tls_files,
            password=self._password,
            users=list(self._acl.values()),
            master_user=admin.name if admin else None,
            master_password=admin.password if admin else None,
            extra_config=extra,
            appendonly=False,
            startup_timeout=self.startup_timeout,
            name=name,
            **self._settings,
        )

    def _form(self) -> None:
        """Slots, MEET, REPLICATE — then wait for one consistent, healthy view on every node."""
        clients = {node.port: self.admin_client(node) for node in self.nodes}
        try:
            ids = {port: _cmd(c, "CLUSTER", "MYID") for port, c in clients.items()}
            ids = {port: (i.decode() if isinstance(i, bytes) else i) for port, i in ids.items()}
            for shard, (start, end) in zip(
                self.shards, _slot_ranges(len(self.shards)), strict=True
            ):
                _cmd(clients[shard.primary.port], "CLUSTER", "ADDSLOTSRANGE", start, end)
            # Every node meets every other: nobody waits for gossip to spread the news.
            for i, node in enumerate(self.nodes):
                for other in self.nodes[i + 1 :]:
                    bus = other.extra_config["cluster-port"]
                    _cmd(clients[node.port], "CLUSTER", "MEET", other.host, other.port, bus)
            total = len(self.nodes)

            def everyone_known() -> bool | None:
                for c in clients.values():
                    known = [
                        line
                        for line in _text(_cmd(c, "CLUSTER", "NODES")).splitlines()
                        if line and "handshake" not in line and "noaddr" not in line
                    ]
                    if len(known) < total:
                        return None
                return True

            wait_for(
                everyone_known,
                timeout=self.startup_timeout,
                what="every node to know every other (CLUSTER MEET)",
                interval=0.02,
            )
            for shard in self.shards:
                for replica in shard.replicas:
                    _cmd(clients[replica.port], "CLUSTER", "REPLICATE", ids[shard.primary.port])
            self._wait_healthy(clients, what="the cluster to form")
        finally:
            for c in clients.values():
                c.close()

    def _wait_healthy(
        self,
        clients: dict[int, redis.Redis] | None = None,
        *,
        what: str,
        timeout: float | None = None,
    ) -> None:
        """Every node: ``cluster_state:ok``, all slots assigned, the same slot map; every replica
        of every shard replicating with its link up."""
        own = clients is None
        clients = clients or {node.port: self.admin_client(node) for node in self.nodes}

        def healthy() -> bool | None:
            views = set()
            for c in clients.values():
                info = _cluster_info(c)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                    return None
                views.add(_slot_view(c))
            if len(views) != 1:
                return None
            (view,) = views
            if any(len(ports) != 1 + self.replicas_count for _, _, ports in view):
                return None  # a replica not yet announced everywhere
            for shard in self.shards:
                for replica in shard.replicas:
                    state = clients[replica.port].info("replication")
                    if state.get("role") != "slave" or state.get("master_link_status") != "up":
                        return None
                    if int(state.get("master_port", -1)) != shard.primary.port:
                        return None
            return True

        try:
            wait_for(healthy, timeout=timeout or self.startup_timeout, what=what, interval=0.02)
        finally:
            if own:
                for c in clients.values():
                    c.close()

    def close(self) -> None:
        """Stop every node and remove the directory. Idempotent."""
        try:
            for node in reversed(self.nodes):
                with contextlib.suppress(Exception):
                    node.close()
        finally:
            unregister_for_cleanup(self)
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.shards = []

    # -- planned operations ----------------------------------------------------------------------

    def failover(self, shard: int | Shard, *, timeout: float = 10.0) -> None:
        """A planned failover of one shard: its first replica runs ``CLUSTER FAILOVER`` (the
        primary pauses writes until the replica has its whole stream, then they swap roles), as
        ElastiCache's ``test_failover`` does for one node group. Returns once every node agrees
        on the new primary and the old one replicates from it."""
        group = self.shards[shard] if isinstance(shard, int) else shard
        if not group.replicas:
            raise HarnessError(f"{group!r} has no replica to fail over to")
        new = group.replicas[0]
        client = self.admin_client(new)
        try:
            _cmd(client, "CLUSTER", "FAILOVER")

            def promoted() -> bool | None:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.info("replication").get("role") == "master":
                        return True
                return None

            wait_for(
                promoted, timeout=timeout, what=f"{new.name} to take over its shard", interval=0.005
            )
        finally:
            client.close()
        old = group.primary
        group.primary = new
        group.replicas = [old, *group.replicas[1:]]
        self._wait_healthy(what=f"every node to agree on {new.name} as primary", timeout=timeout)

    def migrate_slot(
        self, slot: int, to: int | Shard, *, batch: int = 100, timeout: float = 10.0
    ) -> int:
        """Move ``slot`` with its keys to another shard while clients keep using it (online
        resharding's steps); returns how many keys moved. Clients see ASK during the move and
        MOVED after it."""
        target = self.shards[to] if isinstance(to, int) else to
        source = self._owner(slot)
        if source is target:
            return 0
        src = self.admin_client(source.primary)
        dst = self.admin_client(target.primary)
        moved = 0
        try:
            src_id, dst_id = (
                _text(_cmd(src, "CLUSTER", "MYID")),
                _text(_cmd(dst, "CLUSTER", "MYID")),
            )
            _cmd(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            _cmd(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            deadline = time.monotonic() + timeout
            while True:
                keys = _cmd(src, "CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                if time.monotonic() > deadline:
                    raise HarnessError(f"slot {slot} did not drain within {timeout:g} s")
                args: list[Any] = [target.primary.host, target.primary.port, "", 0, 5000]
                if self._acl:
                    admin = self._acl["admin"]
                    args += ["AUTH2", admin.name, admin.password]
                _cmd(src, "MIGRATE", *args, "KEYS", *keys)
                moved += len(keys)
            for c in (dst, src):  # the new owner first, as redis-cli does
                _cmd(c, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            for node in self.nodes:
                if node not in (source.primary, target.primary):
                    with (
                        contextlib.closing(self.admin_client(node)) as other,
                        contextlib.suppress(redis.ResponseError),  # a replica may refuse
                    ):
                        _cmd(other, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        finally:
            src.close()
            dst.close()
        self._wait_healthy(what=f"every node to agree that slot {slot} moved", timeout=timeout)
        return moved

    def _owner(self, slot: int) -> Shard:
        return self._in(self._slot_ranges_now(), slot)

    def _slot_ranges_now(self) -> list[tuple[int, int, int]]:
        """``(start, end, primary port)`` of every slot range, as the first live node sees it."""
        client = self.admin_client(self.shards[0].primary)
        try:
            rows = _cmd(client, "CLUSTER", "SLOTS")
        finally:
            client.close()
        return [(int(r[0]), int(r[1]), int(r[2][1])) for r in rows]

    def _in(self, ranges: list[tuple[int, int, int]], slot: int) -> Shard:
        for start, end, port in ranges:
            if start <= slot <= end:
                return next(s for s in self.shards if s.primary.port == port)
        raise HarnessError(f"no node serves slot {slot}")


def _cmd(client: redis.Redis, *args: Any) -> Any:
    """``client.execute_command(*args)``, typed (redis-py leaves it untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    raw = _text(_cmd(client, "CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)


def _slot_view(client: redis.Redis) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """Slot ranges with the ports of their primary and replicas, as this node sees them."""
    rows = _cmd(client, "CLUSTER", "SLOTS")
    return tuple(
        sorted(
            (int(r[0]), int(r[1]), (int(r[2][1]), *sorted(int(n[1]) for n in r[3:]))) for r in rows
        )
    )


def _key_slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def iter_keys_in_slot(slot: int, prefix: str, count: int) -> Iterator[str]:
    """``count`` keys under ``prefix`` that hash to ``slot`` (hash tags): test data for one slot."""
    tag = _tag_for(slot)
    for i in range(count):
        yield f"{prefix}{{{tag}}}:{i}"


def _tag_for(slot: int) -> str:
    """A short hash tag whose slot is ``slot`` (CRC16 spreads ``s0``, ``s1``, ... over every
    slot: the first hit comes within a few ten thousand tries)."""
    from redis.crc import key_slot

    for n in range(1_000_000):
        tag = f"s{n}"
        if key_slot(tag.encode()) == slot:
            return tag
    raise ValueError(f"no hash tag found for slot {slot}")
