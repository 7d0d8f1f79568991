"""The pytest plugin as an app team meets it: a separate pytest run on a small test file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.testing.plugin import LocalRedisFactory

INNER_TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.clause("C5")
    def test_writes_under_the_namespace(redis_target, redis_namespace, cache_config):
        client = redis_target.client()
        client.set(redis_namespace + "written-by-inner-run", "1")
        client.close()
        assert cache_config.key_prefix.startswith(redis_namespace)
        assert cache_config.key_prefix != redis_namespace  # the test's own, under the run's
        print("TARGET", redis_target.name, sorted(redis_target.capabilities))

    @pytest.mark.requires("replica", "tls")
    def test_needs_replica_and_tls(redis_target):
        assert redis_target.harness is not None
        assert redis_target.harness.replica is not None
        group = redis_target.harness
        print("PIDS", group.primary.pid, group.replica.pid, group.directory)

    @pytest.mark.requires("teleport")
    def test_unknown_capability():
        pass
    """
)


OWN_SERVER_TESTS = textwrap.dedent(
    """
    def test_breaks_a_server_of_its_own(local_redis_factory):
        server = local_redis_factory.server()
        server.restart()
    """
)


def _run_pytest(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    tests: str = INNER_TESTS,
    asyncio: bool = False,
) -> str:
    (tmp_path / "test_inner.py").write_text(tests)
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PYTEST_ADDOPTS")}
    environ.update(env or {})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rsxX",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "-s",
            "-o",
            "addopts=",
            # Plugins these runs do not need, for a faster start.
            "-p",
            "no:hypothesispytest",
            *(("-o", "asyncio_mode=strict") if asyncio else ("-p", "no:asyncio")),
            "-p",
            "no:anyio",
            *args,
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return f"exit={done.returncode}\n{done.stdout}\n{done.stderr}"


def test_url_target_run_skips_with_reasons_and_cleans_its_namespace(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    server = local_redis_factory.server(appendonly=False)
    admin = server.client(user=None)
    admin.set("unrelated:key", "kept")
    url = f"redis://127.0.0.1:{server.port}/0"

    out = _run_pytest(tmp_path, "--redis-url", url)

    assert "berthcache target: url (from --redis-url)" in out
    # Its default user may run CONFIG, but the suite did not start it: no "admin".
    assert "TARGET url ['standalone']" in out
    assert "requires replica, tls: the url target lacks it (it has: standalone)" in out
    known = "admin, auth, cluster, replica, standalone, tls"
    assert f"unknown capability 'teleport'; known: {known}" in out
    assert "1 passed, 1 skipped, 1 error" in out
    # The namespace was cleaned with SCAN + UNLINK; nothing else was touched.
    assert admin.keys(f"{DEFAULT_KEY_PREFIX}bc-test-*") == []
    assert admin.get("unrelated:key") == b"kept"
    assert admin.dbsize() == 1
    admin.close()


def test_local_target_run_has_every_capability_and_leaves_nothing(tmp_path: Path) -> None:
    out = _run_pytest(tmp_path, "-k", "not unknown")
    assert "berthcache target: local (from default)" in out
    assert "TARGET local ['admin', 'auth', 'replica', 'standalone', 'tls']" in out
    assert "2 passed" in out, out
    pids_line = next(line for line in out.splitlines() if "PIDS" in line)
    primary, replica, directory = pids_line.split("PIDS ", 1)[1].split()
    for pid in (primary, replica):
        assert (
            not Path(f"/proc/{pid}/cmdline").exists()
            or b"redis" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    assert not Path(directory).exists()


def test_contradictory_options_stop_the_run_with_a_usage_error(tmp_path: Path) -> None:
    out = _run_pytest(tmp_path, "--target", "local", "--redis-url", "redis://u:pw0rd@h:1/0")
    assert out.startswith("exit=4")
    assert "--redis-url only makes sense with --target url" in out
    assert "pw0rd" not in out


def test_a_stack_option_alone_selects_the_stack_target(tmp_path: Path) -> None:
    """Not the local target: `--stack-outputs FILE` used to run (and pass) on a local group."""
    missing = tmp_path / "nonexistent.json"
    out = _run_pytest(tmp_path, "--stack-outputs", str(missing), "-k", "namespace")
    assert "berthcache target: stack (from --stack-outputs)" in out, out
    assert "does not exist" in out, out
    assert "1 passed" not in out, out


def test_the_local_target_without_redis_server_stops_before_the_first_test(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-redis-server")
    out = _run_pytest(tmp_path, "--redis-server", missing)
    assert out.startswith("exit=4"), out
    assert "the local target needs redis-server >= 7" in out
    assert "apt-get install redis-server" in out
    assert "--redis-url URL (or REDIS_URL), --stack NAME" in out
    assert "no tests ran" in out, out


def test_redis_url_environment_variable_selects_the_url_target(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    server = local_redis_factory.server(appendonly=False)
    out = _run_pytest(
        tmp_path, "-k", "namespace", env={"REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
    )
    assert "berthcache target: url (from REDIS_URL)" in out
    assert "1 passed" in out, out
    client = server.client(user=None)
    assert client.dbsize() == 0
    client.close()


@pytest.mark.parametrize("target", ["docker", "stack"])
def test_unavailable_targets_skip_with_the_reason(tmp_path: Path, target: str) -> None:
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}  # no engine, on any machine
    out = _run_pytest(tmp_path, "--target", target, "-k", "namespace", env=nowhere)
    expected = {
        "docker": "no Docker engine answered at",
        "stack": "stack target: no stack given",
    }[target]
    assert expected in out
    assert "1 skipped" in out, out


def test_options_are_also_ini_settings(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    server = local_redis_factory.server(appendonly=False)
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nberthcache_redis_url = redis://127.0.0.1:{server.port}/0\n"
    )
    out = _run_pytest(tmp_path, "-k", "namespace")
    assert "berthcache target: url (from --redis-url)" in out
    assert "1 passed" in out, out


def test_local_redis_factory_runs_on_a_url_target(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    """Servers of its own need a redis-server binary, not admin rights on the target."""
    server = local_redis_factory.server(appendonly=False)
    out = _run_pytest(
        tmp_path, "--redis-url", f"redis://127.0.0.1:{server.port}/0", tests=OWN_SERVER_TESTS
    )
    assert "1 passed" in out, out


@pytest.mark.parametrize("how", ["option", "env"])
def test_local_redis_factory_without_redis_7_skips_saying_what_to_install(
    tmp_path: Path, how: str
) -> None:
    if how == "option":
        missing = str(tmp_path / "no-such-redis-server")
        out = _run_pytest(tmp_path, "--redis-server", missing, tests=OWN_SERVER_TESTS)
        assert f"redis-server not found (looked for {missing!r})" in out, out
    else:
        old = tmp_path / "redis-server-6"
        old.write_text("#!/bin/sh\necho 'Redis server v=6.2.14 sha=00000000:0 malloc=libc'\n")
        old.chmod(0o755)
        out = _run_pytest(tmp_path, env={"REDIS_SERVER": str(old)}, tests=OWN_SERVER_TESTS)
        assert "is Redis 6.2.14; Redis 7 or later is needed" in out, out
    assert "needs a local redis-server >= 7 for servers of its own" in out
    assert "apt-get install redis-server" in out
    assert "REDIS_SERVER" in out
    assert "1 skipped in" in out, out  # skipped, not an error


ISOLATION_TESTS = textwrap.dedent(
    """
    import pytest
    from berthcache import Cache

    def test_a_writes(cache):
        assert cache.get("profile:42") is None
        cache.set("profile:42", "from test_a")
        assert cache.get("profile:42") == "from test_a"

    def test_b_sees_nothing_of_a(cache):
        assert cache.get("profile:42") is None, "state leaked from test_a"
        cache.set("profile:42", "from test_b")

    def test_c_config_is_per_test_too(cache_config):
        with Cache(cache_config) as client:
            assert client.get("profile:42") is None, "state leaked through cache_config"
            client.set("profile:42", "from test_c")

    def test_d_factory_takes_settings(cache_factory):
        client = cache_factory(serve_through_outage=False)
        assert client.config.serve_through_outage is False
        assert client.get("profile:42") is None

    @pytest.mark.asyncio
    async def test_e_async_sees_nothing(async_cache):
        assert await async_cache.get("profile:42") is None, "state leaked into async_cache"
        await async_cache.set("profile:42", "from test_e")

    @pytest.mark.asyncio
    async def test_f_async_again(async_cache_factory):
        client = async_cache_factory()
        assert await client.get("profile:42") is None, "state leaked from test_e"
    """
)


def test_each_test_has_its_own_emptied_namespace(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    server = local_redis_factory.server(appendonly=False)
    admin = server.client(user=None)
    admin.set("unrelated:key", "kept")
    url = f"redis://127.0.0.1:{server.port}/0"

    out = _run_pytest(tmp_path, "--redis-url", url, tests=ISOLATION_TESTS, asyncio=True)

    assert "6 passed" in out, out
    assert "leaked" not in out
    # Every test's keys were deleted after it; nothing else was touched.
    assert admin.keys(f"{DEFAULT_KEY_PREFIX}*") == []
    assert admin.get("unrelated:key") == b"kept"
    admin.close()


def test_redis_url_in_the_environment_warns_and_names_itself_in_skips(
    tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    server = local_redis_factory.server(appendonly=False)
    out = _run_pytest(
        tmp_path, "-k", "replica", env={"REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
    )
    assert "RedisUrlTargetWarning" in out, out
    assert "WARNING: berthcache target chosen by REDIS_URL in the environment" in out
    assert (
        "lacks it (it has: standalone) (chosen by REDIS_URL in the environment; pass --target local"
        in out
    )
    assert "1 skipped" in out, out


EMPTIED_TESTS = textwrap.dedent(
    """
    seen = []

    def test_a_writes(cache, redis_test_namespace):
        cache.set("profile:42", "from test_a")
        seen.append(redis_test_namespace)

    def test_b_finds_a_namespace_emptied(redis_target):
        client = redis_target.harness.admin_client()  # the app user may not SCAN
        try:
            assert seen and list(client.scan_iter(match=seen[0] + "*")) == [], "a outlived"
        finally:
            client.close()
    """
)


def test_on_a_server_the_run_started_each_namespace_is_emptied_after_its_test(
    tmp_path: Path,
) -> None:
    out = _run_pytest(tmp_path, "--target", "local", tests=EMPTIED_TESTS)
    assert "berthcache target: local" in out
    assert "2 passed" in out, out
