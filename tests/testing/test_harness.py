"""The local Redis 7 harness: real redis-server processes, TLS-only, ACL users, replica,
endpoint and failover — and nothing left behind."""

from __future__ import annotations

import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.testing import LocalRedis, RedisServer
from berthcache.testing._server import (
    HarnessError,
    RedisServerNotFoundError,
    RedisServerStartError,
    find_redis_server,
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
