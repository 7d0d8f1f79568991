"""Targets: what a URL endpoint proves it can do, the docker and stack skips, masking, and the
namespace clean-up that is the only thing the suite does on endpoints it did not start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import redis

from berthcache import DEFAULT_KEY_PREFIX
from berthcache._config import CacheConfig
from berthcache.testing._stack import stack_target
from berthcache.testing._target import Target, UsageError, mask_url
from berthcache.testing._targets import docker_target, stop_docker_target, url_target
from berthcache.testing.plugin import LocalRedisFactory, delete_namespace


def test_url_target_is_never_admin_even_where_its_user_may_run_config(
    local_redis_factory: LocalRedisFactory,
) -> None:
    """The default user of a plain Redis may run CONFIG — and that is exactly someone else's
    server, where the suite must not: "admin" means "this run started it"."""
    server = local_redis_factory.server(appendonly=False)
    target = url_target(f"redis://127.0.0.1:{server.port}/0")
    assert target.capabilities == frozenset({"standalone"})
    assert target.started_by_us is False
    assert target.harness is None


def test_url_target_proves_auth_and_replica_for_app_and_admin_users_alike(
    local_redis_factory: LocalRedisFactory,
) -> None:
    group = local_redis_factory(tls=False, replica=True)
    target = url_target(group.url("app"))
    assert target.capabilities == frozenset({"auth", "replica", "standalone"})
    admin = url_target(group.url("admin"))  # may run anything: still not a server we started
    assert admin.capabilities == frozenset({"auth", "replica", "standalone"})


def test_admin_is_refused_on_a_target_the_run_did_not_start() -> None:
    with pytest.raises(ValueError, match=r"'admin' is only for a server this run started"):
        Target(name="url", url="redis://h:1/0", capabilities=frozenset({"admin"}))
    with pytest.raises(ValueError, match=r"known: admin, auth, cluster, replica, standalone, tls"):
        Target(name="url", url="redis://h:1/0", capabilities=frozenset({"teleport"}))
    ours = Target(
        name="docker", url="redis://h:1/0", capabilities=frozenset({"admin"}), started_by_us=True
    )
    assert ours.missing("admin", "tls") == ["tls"]


def test_url_target_over_tls_with_a_ca_file(local_redis_factory: LocalRedisFactory) -> None:
    group = local_redis_factory()  # TLS + AUTH, no replica
    target = url_target(group.url("app"), tls_ca_file=group.ca_file)
    assert target.capabilities == frozenset({"tls", "auth", "standalone"})
    config = target.cache_config(key_prefix=f"{DEFAULT_KEY_PREFIX}x:")
    assert isinstance(config, CacheConfig)
    assert (config.tls, config.tls_ca_file, config.username) == (True, group.ca_file, "app")
    assert config.key_prefix == f"{DEFAULT_KEY_PREFIX}x:"


def test_unreachable_url_is_a_clear_error_without_the_password(
    local_redis_factory: LocalRedisFactory,
) -> None:
    server = local_redis_factory.server(appendonly=False)
    port = server.port
    server.stop()
    with pytest.raises(UsageError, match=r"does not answer PING") as info:
        url_target(f"redis://app:pa55word@127.0.0.1:{port}/0")
    assert "pa55word" not in str(info.value)
    assert "app:***@127.0.0.1" in str(info.value)


def test_target_repr_masks_the_url() -> None:
    target = Target(name="url", url="rediss://app:t0ken@h.example:6379/0")
    assert "t0ken" not in repr(target)
    assert "t0ken" not in str(target)
    assert "rediss://app:***@h.example:6379/0" in repr(target)
    assert mask_url("redis://h:1/0") == "redis://h:1/0"
    assert mask_url("redis://:pw@h:1") == "redis://:***@h:1"


def test_docker_target_skips_with_the_reason_when_no_engine_answers(tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path}/docker.sock"  # no engine here, whatever this machine runs
    with pytest.raises(pytest.skip.Exception) as info:
        docker_target(env={"DOCKER_HOST": nowhere})
    assert str(info.value).startswith(f"docker target: no Docker engine answered at {nowhere}: ")


def test_docker_target_without_its_packages_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing package is an installation error, not a missing engine: no silent skip."""
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker -> ImportError
    with pytest.raises(UsageError, match=r"needs testcontainers\[redis\].*berthcache\[testing\]"):
        docker_target(env={})


def test_stack_target_without_a_stack_skips_saying_what_to_give() -> None:
    with pytest.raises(pytest.skip.Exception, match="stack target: no stack given: pass --stack"):
        stack_target()


def test_namespace_cleanup_deletes_only_the_namespace(
    local_redis_factory: LocalRedisFactory,
) -> None:
    group = local_redis_factory(tls=False)
    # The app user may not SCAN (its allow-list: SCAN lists every tenant's keys); a url target
    # whose user may (here: admin) gets its namespace deleted.
    target = Target(name="url", url=group.url("admin"))
    app = target.client()
    admin = group.admin_client()
    try:
        namespace = f"{DEFAULT_KEY_PREFIX}bc-test-0badcafe:"
        app.mset({f"{namespace}k{i}": i for i in range(1200)})
        app.set(
            f"{DEFAULT_KEY_PREFIX}bc-test-0badcafe-other:k", "not ours"
        )  # same prefix, other run
        admin.set("someone-else:k", "not ours")
        assert delete_namespace(target, namespace) == 1200
        assert app.get(f"{DEFAULT_KEY_PREFIX}bc-test-0badcafe-other:k") == b"not ours"
        assert admin.get("someone-else:k") == b"not ours"
        assert admin.dbsize() == 2
    finally:
        app.close()
        admin.close()


def test_namespace_cleanup_refuses_anything_but_a_test_namespace() -> None:
    target = Target(name="url", url="redis://127.0.0.1:1/0")
    for bad in ("", DEFAULT_KEY_PREFIX, "other:bc-test-1:"):
        with pytest.raises(ValueError, match="refusing to delete"):
            delete_namespace(target, bad)


@pytest.mark.requires("tls", "auth")
def test_session_target_fixtures_work_together(
    redis_target: Target,
    redis_namespace: str,
    redis_test_namespace: str,
    cache_config: CacheConfig,
) -> None:
    assert redis_namespace.startswith(f"{DEFAULT_KEY_PREFIX}bc-test-")
    assert redis_namespace.endswith(":")
    # The test's own namespace sits under the run's.
    assert redis_test_namespace.startswith(redis_namespace)
    assert redis_test_namespace != redis_namespace
    assert cache_config.key_prefix == redis_test_namespace
    client = redis.Redis(**cache_config.connection_kwargs())
    try:
        client.set(redis_namespace + "fixture-check", "1", ex=60)
        assert client.get(redis_namespace + "fixture-check") == b"1"
    finally:
        client.close()


def test_the_plugin_loads_without_the_stack_targets_ops_helpers() -> None:
    """Only the stack target needs berthcache.ops (boto3 in the ops extra): app teams with just
    berthcache[testing] must be able to load the plugin."""
    code = (
        "import sys, berthcache.testing.plugin\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('berthcache.ops', "
        "'berthcache.testing._stack')))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


class FakeEngine:
    def __init__(self, base_url: str, timeout: int) -> None:
        self.base_url = base_url

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


class FakeRedisContainer:
    """Records how the docker target configures testcontainers' RedisContainer."""

    made: ClassVar[list[FakeRedisContainer]] = []

    def __init__(self, image: str, port: int = 6379, password: str | None = None) -> None:
        self.image, self.port, self.password = image, port, password
        self.command: list[str] | str | None = None
        self.state = "new"
        FakeRedisContainer.made.append(self)

    def with_command(self, command: list[str] | str) -> FakeRedisContainer:
        self.command = command
        return self

    def start(self) -> FakeRedisContainer:
        self.state = "started"
        return self

    def stop(self) -> None:
        self.state = "stopped"

    def get_container_host_ip(self) -> str:
        return "127.0.0.1"

    def get_exposed_port(self, port: int) -> int:
        return 49153


@pytest.mark.parametrize(
    ("image", "server"), [("redis:7.0", "redis-server"), ("valkey/valkey:8.1", "valkey-server")]
)
def test_docker_target_runs_the_image_it_is_given(
    monkeypatch: pytest.MonkeyPatch, image: str, server: str
) -> None:
    """No Docker engine here: a fake engine and container show what testcontainers is asked."""
    import docker  # type: ignore[import-untyped]
    import testcontainers.community.redis as tc_redis

    monkeypatch.setattr(docker, "DockerClient", FakeEngine)
    monkeypatch.setattr(tc_redis, "RedisContainer", FakeRedisContainer)
    FakeRedisContainer.made.clear()
    target = docker_target(image=image, env={})
    (container,) = FakeRedisContainer.made
    assert container.image == image
    assert container.state == "started"
    assert isinstance(container.command, list)
    password = container.command[-1]
    assert container.command == [server, "--requirepass", password]
    assert container.password == password  # testcontainers' readiness PING authenticates
    assert target.url == f"redis://:{password}@127.0.0.1:49153/0"
    assert target.capabilities == frozenset({"admin", "auth", "standalone"})
    assert password not in repr(target)
    stop_docker_target(target)
    assert container.state == "stopped"


def test_a_docker_image_option_reaches_the_target_and_the_header(tmp_path: Path) -> None:
    """Through the plugin: --docker-image alone means the docker target, with that image."""
    from tests.testing.test_plugin import _run_pytest

    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}
    out = _run_pytest(
        tmp_path, "--docker-image", "valkey/valkey:8.1", "-k", "namespace", env=nowhere
    )
    assert "berthcache target: docker (from --docker-image) image valkey/valkey:8.1" in out
    assert "no Docker engine answered at" in out
    assert "(image valkey/valkey:8.1)" in out
    assert "1 skipped" in out, out


def test_admin_client_only_where_the_run_started_the_server(
    local_redis_factory: LocalRedisFactory,
) -> None:
    """requires("admin") tests (e.g. C12's connection kill) get their client here, on the local
    and the docker target alike; an endpoint someone else runs never hands one out."""
    server = local_redis_factory.server(appendonly=False)
    url = f"redis://127.0.0.1:{server.port}/0"
    docker_like = Target(
        name="docker", url=url, capabilities=frozenset({"admin"}), started_by_us=True
    )
    admin = docker_like.admin_client()
    try:
        assert admin.config_get("maxmemory-policy")  # CONFIG: an admin's command
    finally:
        admin.close()
    with pytest.raises(ValueError, match="the url target has no 'admin' capability"):
        url_target(url).admin_client()
