"""The local Redis 7 harness: real redis-server processes, TLS-only, ACL users, replica,
endpoint and failover — and nothing left behind."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache import DEFAULT_KEY_PREFIX, Cache, CacheError
from berthcache.testing import LocalRedis, RedisServer
from berthcache.testing._server import (
    HarnessError,
    RedisServerNotFoundError,
    RedisServerStartError,
    find_redis_server,
    wait_for,
)
from berthcache.testing.plugin import LocalRedisFactory

NS = f"{DEFAULT_KEY_PREFIX}harness-test:"
NO_RETRY = Retry(NoBackoff(), 0)  # so a dropped connection shows instead of being retried


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait (with a timeout) for a process that is not our child to exit, via a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture(scope="module")
def group() -> Iterator[LocalRedis]:
    with LocalRedis() as started:
        yield started


@pytest.fixture
def app(group: LocalRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(group.url("app"), ssl_ca_certs=group.ca_file)
    yield client
    client.close()


def test_group_starts_well_under_two_seconds(group: LocalRedis) -> None:
    assert group.started_in is not None
    assert group.started_in < 2.0, f"harness start took {group.started_in:.2f} s"


def test_app_user_reads_and_writes_its_namespace_over_verified_tls(
    group: LocalRedis, app: redis.Redis
) -> None:
    assert group.url("app").startswith("rediss://app:")
    app.set(NS + "greeting", "hello", ex=60)
    assert app.get(NS + "greeting") == b"hello"
    assert 0 < int(app.ttl(NS + "greeting")) <= 60


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "maxmemory"),
        ("DEBUG", "SLEEP", "0"),
    ],
)
def test_app_user_cannot_run_dangerous_commands(app: redis.Redis, command: tuple[str, ...]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.execute_command(*command)  # type: ignore[no-untyped-call]


def test_app_user_cannot_touch_keys_or_channels_outside_its_pattern(
    group: LocalRedis, app: redis.Redis
) -> None:
    admin = group.admin_client()
    try:
        admin.set("other-app:secret", "x")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.get("other-app:secret")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.delete("other-app:secret")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.publish("other-app:alerts", "x")
        assert admin.get("other-app:secret") == b"x"
    finally:
        admin.delete("other-app:secret")
        admin.close()
    assert app.publish(NS + "alerts", "x") == 0  # its own channels are fine


def test_plain_tcp_and_unknown_ca_are_refused(group: LocalRedis) -> None:
    host, port = group.endpoint
    pw = group.users["app"][1]
    plain = redis.Redis(
        host=host, port=port, username="app", password=pw, socket_timeout=0.5, retry=NO_RETRY
    )
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()
    no_ca = redis.Redis.from_url(group.url("app"), socket_timeout=2, retry=NO_RETRY)
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        no_ca.ping()
    no_ca.close()


def test_auth_is_required(group: LocalRedis) -> None:
    host, port = group.endpoint
    anonymous = redis.Redis(
        host=host, port=port, ssl=True, ssl_ca_certs=group.ca_file, retry=NO_RETRY
    )
    with pytest.raises(redis.AuthenticationError):
        anonymous.get(NS + "x")
    anonymous.close()


def test_passwords_are_not_on_any_command_line(group: LocalRedis) -> None:
    secrets = [group.password, *(pw for _, pw in group.users.values())]
    assert all(secrets)
    for server in (group.primary, group.replica):
        assert server is not None
        assert server.pid is not None
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
        assert not [s for s in secrets if s and s in cmdline]
        mode = stat.S_IMODE(server.config_file.stat().st_mode)
        assert mode == 0o600, oct(mode)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not [s for s in secrets if s and s in ps]
    assert not [s for s in secrets if s and s in repr(group) + repr(group.primary)]


def test_replica_receives_writes(group: LocalRedis, app: redis.Redis) -> None:
    app.set(NS + "replicated", "yes")
    primary = group.admin_client()
    assert primary.wait(1, 5000) == 1
    primary.close()
    assert group.replica is not None
    replica = group.admin_client(group.replica)
    try:
        assert replica.get(NS + "replicated") == b"yes"
        with pytest.raises(redis.exceptions.ReadOnlyError):
            replica.set(NS + "on-replica", "no")
    finally:
        replica.close()


def test_servers_have_aof_and_the_memory_policy(group: LocalRedis) -> None:
    admin = group.admin_client()
    try:
        assert admin.config_get("appendonly") == {"appendonly": "yes"}
        assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert admin.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
    finally:
        admin.close()


def test_failover_swaps_roles_and_moves_the_endpoint(
    local_redis_factory: LocalRedisFactory,
) -> None:
    pair = local_redis_factory(replica=True)
    old_primary, old_replica = pair.primary, pair.replica
    assert old_replica is not None
    client = redis.Redis.from_url(pair.url("app"), ssl_ca_certs=pair.ca_file, retry=NO_RETRY)
    client.set(NS + "before", "1")
    assert pair.proxy.connection_count == 1

    pair.failover()

    assert pair.primary is old_replica
    assert pair.replica is old_primary
    assert pair.proxy.target == (old_replica.host, old_replica.port)
    assert pair.proxy.connection_count == 0  # connections through the endpoint were dropped
    # The old connection died, as on ElastiCache; the client's next command reconnects through
    # the same endpoint and lands on the new primary.
    assert client.get(NS + "before") == b"1"
    assert pair.proxy.connection_count == 1
    client.set(NS + "after", "2")
    roles = {}
    for server in (old_primary, old_replica):
        admin = pair.admin_client(server)
        roles[server.name] = admin.info("replication")["role"]
        admin.close()
    assert roles == {"primary": "slave", "replica": "master"}
    direct = redis.Redis.from_url(pair.url("admin", via_endpoint=False), ssl_ca_certs=pair.ca_file)
    assert direct.get(NS + "after") == b"2"
    direct.close()
    client.close()


def _unacknowledged_loss_under_writes(group: LocalRedis, fault: Callable[[], None]) -> list[str]:
    """Write unique keys from 4 threads through the endpoint while ``fault`` runs; return the
    acknowledged keys the (new) primary does not hold afterwards."""
    writers, per_writer = 4, 100_000
    acked: list[list[str]] = [[] for _ in range(writers)]
    stop = threading.Event()
    cache = Cache.from_url(group.url("app"), tls_ca_file=group.ca_file)

    def write(worker: int) -> None:
        for seq in range(per_writer):  # bounded in count; `stop` bounds it in time
            if stop.is_set():
                return
            key = f"harness-test:acked:{worker}:{seq}"
            with contextlib.suppress(CacheError):  # only acknowledged writes count
                cache.set(key, key)
                acked[worker].append(key)

    def acked_at_least(count: int) -> bool | None:
        return True if all(len(keys) >= count for keys in acked) else None

    threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in range(writers)]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: acked_at_least(200), timeout=20, what="writes before the fault")
        before = min(len(keys) for keys in acked)
        fault()
        wait_for(lambda: acked_at_least(before + 200), timeout=20, what="writes after the fault")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        cache.close()
    admin = group.admin_client()
    try:
        keys = [DEFAULT_KEY_PREFIX + key for worker in acked for key in worker]
        lost = []
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            values = admin.mget(chunk)
            lost += [k for k, v in zip(chunk, values, strict=True) if v is None]
        return lost
    finally:
        admin.close()


def test_planned_failover_under_write_load_loses_no_acknowledged_write(
    local_redis_factory: LocalRedisFactory,
) -> None:
    """FAILOVER pauses writes until the replica has them all: writers see READONLY or a dropped
    connection (retried), never an acknowledgement that the new primary lacks."""
    pair = local_redis_factory(replica=True)
    old_primary = pair.primary
    for _ in range(3):  # each failover swaps the roles back and forth
        assert _unacknowledged_loss_under_writes(pair, pair.failover) == []
    assert pair.primary is not old_primary


def test_unplanned_failover_kills_the_primary_and_promotes_the_replica(
    local_redis_factory: LocalRedisFactory,
) -> None:
    pair = local_redis_factory(replica=True)
    old_primary, old_replica = pair.primary, pair.replica
    assert old_replica is not None
    old_pid = old_primary.pid
    client = redis.Redis.from_url(pair.url("app"), ssl_ca_certs=pair.ca_file)
    client.set(NS + "before-crash", "1")
    admin = pair.admin_client()
    assert admin.wait(1, 5000) == 1
    admin.close()

    pair.unplanned_failover()

    assert pair.primary is old_replica
    assert pair.replica is old_primary
    assert old_pid is not None
    assert not _alive(old_pid)
    assert old_primary.pid not in (None, old_pid)  # rejoined as a new process
    assert pair.endpoint_moved_at is not None
    assert pair.proxy.target == (old_replica.host, old_replica.port)
    assert client.get(NS + "before-crash") == b"1"
    client.set(NS + "after-crash", "2")
    client.close()
    rejoined = pair.admin_client(old_primary)
    try:
        assert rejoined.info("replication")["role"] == "slave"
    finally:
        rejoined.close()
    # The rejoined node is a full replica: a planned failover can hand the role back to it.
    pair.failover()
    assert pair.primary is old_primary
    back = redis.Redis.from_url(pair.url("app"), ssl_ca_certs=pair.ca_file)
    assert back.get(NS + "after-crash") == b"2"
    back.close()


def test_kill_pause_and_network_cut(local_redis_factory: LocalRedisFactory) -> None:
    """The fault injections the faults suite uses do what they say and undo cleanly."""
    group = local_redis_factory(tls=False)
    quick = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3, "retry": NO_RETRY}
    client = redis.Redis.from_url(group.url("app"), **quick)
    client.set(NS + "fault", "x")

    with group.network_cut():
        assert group.proxy.is_cut
        began = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get(NS + "fault")  # a partition: no reply, no reset
        assert time.monotonic() - began >= 0.25
    client.close()
    client = redis.Redis.from_url(group.url("app"), **quick)
    assert client.get(NS + "fault") == b"x"

    with group.paused() as server:
        assert Path(f"/proc/{server.pid}/status").read_text().count("State:\tT") == 1
        with pytest.raises(redis.TimeoutError):
            client.get(NS + "fault")
    client.close()
    client = redis.Redis.from_url(group.url("app"), **quick)
    assert client.get(NS + "fault") == b"x"

    pid = group.primary.pid
    assert pid is not None
    group.kill()
    assert not _alive(pid)
    assert not group.primary.is_running()
    group.primary.start()
    assert client.get(NS + "fault") == b"x"  # the AOF kept it
    client.close()


def test_restart_keeps_port_and_data(local_redis_factory: LocalRedisFactory) -> None:
    group = local_redis_factory(tls=False)
    client = redis.Redis.from_url(group.url("app", via_endpoint=False))
    client.set(NS + "durable", "kept")
    port, pid = group.primary.port, group.primary.pid
    group.primary.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    group.primary.restart()
    assert group.primary.port == port
    assert group.primary.pid != pid
    assert client.get(NS + "durable") == b"kept"
    client.close()


def test_exit_stops_everything_and_removes_the_temp_dir_even_when_the_body_raises() -> None:
    group = LocalRedis(replica=True)
    pids: list[int] = []

    def body() -> None:
        with group:
            pids.extend(s.pid for s in (group.primary, group.replica) if s is not None and s.pid)
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        body()
    assert len(pids) == 2
    assert group.directory is not None
    assert not group.directory.exists()
    assert not [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_killed_pytest_leaves_no_server_behind(tmp_path: Path, sig: signal.Signals) -> None:
    """An interrupted (Ctrl-C), terminated (CI timeout) or killed (OOM killer) parent takes its
    servers along; unless killed it also removes its temp dir."""
    script = tmp_path / "victim.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from berthcache.testing import LocalRedis
            group = LocalRedis(replica=False, tls=False)
            group.start()
            print(group.primary.pid, group.directory, flush=True)
            time.sleep(60)
            """
        )
    )
    directory = str(tmp_path / "unknown")
    victim = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert victim.stdout is not None
        pid_text, directory = victim.stdout.readline().split()

        pid = int(pid_text)
        assert _alive(pid)
        victim.send_signal(sig)
        victim.wait(timeout=10)
        assert _wait_gone(pid), "redis-server outlived its parent"
        if sig != signal.SIGKILL:  # a killed process cannot clean its files
            assert not Path(directory).exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout=10)


def test_server_that_dies_at_start_reports_its_log_tail(tmp_path: Path) -> None:
    server = RedisServer(
        directory=tmp_path / "bad",
        password="hunter2-password",
        extra_config={"maxmemory-policy": "not-a-policy"},
    )
    with pytest.raises(RedisServerStartError) as info:
        server.start()
    text = str(info.value)
    assert "exited with code" in text
    assert "maxmemory-policy" in text  # the line redis-server complained about
    assert "hunter2-password" not in text
    server.close()


def test_missing_or_old_redis_server_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(RedisServerNotFoundError) as info:
        find_redis_server(str(tmp_path / "no-such-redis-server"))
    assert "apt-get install redis-server" in str(info.value)
    assert "REDIS_SERVER=" in str(info.value)
    old = tmp_path / "redis-server-6"
    old.write_text("#!/bin/sh\necho 'Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc'\n")
    old.chmod(0o755)
    with pytest.raises(RedisServerNotFoundError, match=r"Redis 6\.2\.14; Redis 7 or later"):
        find_redis_server(str(old))


def test_plain_no_auth_server_and_its_cleanup(tmp_path: Path) -> None:
    with RedisServer(appendonly=False) as server:
        directory = server.directory
        client = server.client(user=None)
        assert client.ping()
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
        pid = server.pid
        assert pid is not None
    assert not _alive(pid)
    assert not directory.exists()
    with pytest.raises(HarnessError, match="was closed"):
        server.start()


def test_harness_never_uses_the_system_redis_port(group: LocalRedis) -> None:
    assert 6379 not in {group.primary.port, group.endpoint[1]}
