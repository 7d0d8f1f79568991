"""berthcache's pytest plugin: a real Redis 7 for your tests, locally or wherever you point it.

Installed with ``pip install berthcache[testing]`` it loads by itself (entry point ``pytest11``).
By default the session starts a local replication group — ``redis-server`` >= 7 processes,
TLS-only with a CA made for this run, AUTH + ACL users, primary + replica behind an endpoint
that moves on failover — and stops it at the end. Usage in an app's tests::

    import berthcache, pytest

    def test_profile_is_cached(cache):                 # key_prefix = this test's namespace
        cache.set("profile:42", {"name": "Ada"}, ttl=60)
        assert cache.get("profile:42", parse_json=True) == {"name": "Ada"}

    @pytest.mark.requires("replica", "admin")           # skipped where the target lacks them
    def test_survives_failover(redis_target, cache_config):
        ...
        redis_target.harness.failover()

    def test_wrong_password(local_redis_factory):       # an extra, isolated server
        group = local_redis_factory(tls=False)
        ...

Options (command line flag / ini key):

``--target`` / ``berthcache_target``
    ``local`` (default), ``docker`` (testcontainers ``redis:7``; skipped without a Docker
    engine), ``url`` (an existing endpoint), ``stack`` (the deployed group: ``--stack NAME`` or
    ``--stack-outputs FILE`` + its secret in Secrets Manager; never admin).
``--stack`` / ``berthcache_stack``, ``--stack-outputs`` / ``berthcache_stack_outputs``
    the deployed group of the ``stack`` target; without ``--target`` either selects ``stack``.
``--redis-url`` / ``berthcache_redis_url``
    endpoint of the ``url`` target; without ``--target`` it (or ``$REDIS_URL``) selects ``url``.
``--tls-ca`` / ``berthcache_tls_ca``
    CA file to verify a ``rediss://`` endpoint of the ``url`` target.
``--redis-server`` / ``berthcache_redis_server``
    the ``redis-server`` binary for local servers (also ``$REDIS_SERVER``; default: ``PATH``).
``--redis-maxmemory-policy`` / ``berthcache_redis_maxmemory_policy``
    eviction policy of the local servers (default ``allkeys-lru``).

Fixtures, per test unless marked session:

``cache`` / ``async_cache``
    a connected :class:`~berthcache.Cache` / :class:`~berthcache.AsyncCache` whose key prefix is
    this test's own namespace; closed when the test ends (``async_cache`` needs pytest-asyncio).
``cache_factory`` / ``async_cache_factory``
    ``factory(**settings)`` makes more clients on this test's namespace (settings override the
    target's, e.g. ``serve_through_outage=False``); all are closed when the test ends.
``cache_config``
    a ``CacheConfig`` for the target with this test's namespace as ``key_prefix``.
``redis_test_namespace``
    this test's key prefix, e.g. ``berthcare:bc-test-1a2b3c4d:t5e6f7a8b:``: every key under it is
    deleted when the test ends (SCAN + UNLINK, never KEYS or FLUSH*), so two tests writing the
    same key see nothing of each other — as pytest-redis's ``redisdb`` empties the database.
``redis_namespace`` (session)
    the run's prefix, e.g. ``berthcare:bc-test-1a2b3c4d:``, above every test's namespace; what is
    left under it is deleted at the end of the run.
``redis_target`` (session)
    the :class:`Target`.
``local_redis_factory``
    extra :class:`LocalRedis` / :class:`RedisServer`, stopped after the test; it needs a local
    ``redis-server`` >= 7 whatever the target, and skips the test, saying what to install or set,
    where there is none.

``REDIS_URL`` in the environment chooses the ``url`` target when no option does: the run then
says so in a :class:`RedisUrlTargetWarning` and in the header, and every test needing ``admin``
or ``replica`` is skipped with a reason naming ``REDIS_URL`` (pass ``--target local`` to run on
a local server instead).
Markers: ``requires(*capabilities)`` (below) and ``clause("C5")`` naming the contract clause a
test proves.

Capabilities — a test marked ``@pytest.mark.requires(...)`` is skipped, naming what is missing,
unless the target has every one it names:

``admin``
    This run started the server, so a test may reconfigure, flush, restart or fail it over
    (CONFIG SET, DEBUG, SHUTDOWN, REPLICAOF, the harness's admin user). Only ``local`` and
    ``docker`` have it — never ``url`` or ``stack``, whatever their user may run: on a server the
    suite did not start, no FLUSHALL, FLUSHDB, KEYS, CONFIG or DEBUG is ever sent. A test that
    only needs a server to break should take one of its own from ``local_redis_factory`` instead.
``replica``
    A replica is attached: ``local`` (its harness can also fail over), ``stack`` with more than
    one member cluster, ``url`` where ``INFO replication`` shows a connected replica.
``tls``
    TLS in transit: ``local``, ``stack``, ``url`` with ``rediss://``.
``auth``
    The server requires a password: ``local``, ``docker``, ``stack``, ``url`` with a password,
    ``cluster``.
``cluster``
    A Redis Cluster; clients run in cluster mode (``cluster=True``): the ``cluster`` target — 3
    local primaries x 1 replica, TLS, ACL users — standing in for ElastiCache cluster mode and
    Serverless (the same protocol). Its ``redis_target.cluster`` can fail a shard over and
    migrate slots. It has no ``admin`` (no single server to reconfigure) and no ``replica`` (the
    replication group's failover tests). A ``url`` or ``stack`` endpoint with
    ``cluster_enabled:1`` (``INFO cluster``) has it too.
``standalone``
    One primary — a server or a replication group, not a cluster: ``local``, ``docker``, and a
    ``url`` / ``stack`` endpoint without cluster mode. Tests of the seed's exact key formats
    (which cluster mode hash-tags, docs/contract.md C8, C9) need it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from berthcache import DEFAULT_KEY_PREFIX, AsyncCache, Cache, CacheConfig
from berthcache.acl import glob_escape
from berthcache.testing._cluster import LocalCluster
from berthcache.testing._harness import LocalRedis
from berthcache.testing._server import RedisServer, RedisServerNotFoundError, find_redis_server
from berthcache.testing._target import CAPABILITIES, Target, UsageError
from berthcache.testing._targets import (
    DEFAULT_DOCKER_IMAGE,
    TargetChoice,
    TargetOptions,
    check_prerequisites,
    choose_target,
    open_target,
)

__all__ = ["NAMESPACE_ROOT", "LocalRedisFactory", "RedisUrlTargetWarning", "delete_namespace"]

#: Namespaces live under the app user's key pattern so the restricted ACL user can write them.
NAMESPACE_ROOT = DEFAULT_KEY_PREFIX

_CHOICE = pytest.StashKey[TargetChoice]()
#: Set once a per-test namespace could not be emptied, so the run warns once, not per test.
_CLEANUP_FAILED = pytest.StashKey[bool]()


class RedisUrlTargetWarning(pytest.PytestWarning):
    """``REDIS_URL`` in the environment, not an option, chose the server this run tests against."""


_REDIS_URL_NOTE = (
    "chosen by REDIS_URL in the environment; pass --target local (or unset REDIS_URL) "
    "to test against a local server"
)

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--target", "target", "where to run: local (default), docker, url, stack or cluster"),
    ("--redis-url", "redis_url", "redis:// or rediss:// endpoint for the url target"),
    ("--tls-ca", "tls_ca", "CA file to verify the url or stack target's TLS certificate"),
    ("--stack", "stack", "Pulumi stack of the stack target (read with `pulumi stack output`)"),
    ("--stack-outputs", "stack_outputs", "outputs JSON file of the stack target"),
    (
        "--docker-image",
        "docker_image",
        "server image of the docker target (default redis:7; e.g. redis:7.2, valkey/valkey:8.1); "
        "implies --target docker",
    ),
    ("--redis-server", "redis_server", "redis-server (>= 7) binary for local servers"),
    (
        "--redis-maxmemory-policy",
        "redis_maxmemory_policy",
        "maxmemory-policy of local servers (default allkeys-lru)",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("berthcache", "berthcache Redis targets")
    for flag, name, help_text in _OPTIONS:
        group.addoption(flag, dest=f"berthcache_{name}", default=None, help=help_text)
        parser.addini(f"berthcache_{name}", help_text, default=None)


def _option(config: pytest.Config, name: str) -> str | None:
    """The flag's value, else the ini value, else ``None``."""
    value = config.getoption(f"berthcache_{name}", default=None)
    if value is None:
        value = config.getini(f"berthcache_{name}") or None
    return str(value) if value is not None else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip unless the Redis target has every capability named "
        "(admin: a server this run started; replica; tls; auth)",
    )
    config.addinivalue_line(
        "markers", "clause(id): the cache contract clause (C1..C16) this test proves"
    )
    # Decide now so contradictory options fail the run at once, not in every test.
    try:
        config.stash[_CHOICE] = choose_target(
            option_target=_option(config, "target"),
            option_url=_option(config, "redis_url"),
            option_stack=_option(config, "stack"),
            option_stack_outputs=_option(config, "stack_outputs"),
            option_docker_image=_option(config, "docker_image"),
            env=os.environ,
        )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    choice = config.stash[_CHOICE]
    if choice.source == "REDIS_URL":
        # Exported for the app, REDIS_URL would otherwise point the tests at that server with
        # no sign but a header line (and skip every admin or replica test).
        config.issue_config_time_warning(
            RedisUrlTargetWarning(
                f"berthcache tests run against {choice!r}: the url target, {_REDIS_URL_NOTE}"
            ),
            stacklevel=2,
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop the run before its first test when a selected test needs the target and the chosen
    target cannot be had here (the local one without redis-server >= 7): one usage error saying
    what to install, not one error per test. Runs whose tests never touch the target go on."""
    config = session.config
    if config.option.collectonly or _CHOICE not in config.stash:
        return
    if not any("redis_target" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    try:
        check_prerequisites(config.stash[_CHOICE], _target_options(config))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _target_options(config: pytest.Config) -> TargetOptions:
    return TargetOptions(
        redis_server=_option(config, "redis_server"),
        maxmemory_policy=_option(config, "redis_maxmemory_policy") or "allkeys-lru",
        tls_ca_file=_option(config, "tls_ca"),
        stack=_option(config, "stack"),
        stack_outputs=_option(config, "stack_outputs"),
        docker_image=_option(config, "docker_image"),
    )


def pytest_report_header(config: pytest.Config) -> str:
    choice = config.stash.get(_CHOICE, None)
    if choice is None:
        return "berthcache target: undecided"
    where = f" {choice!r}" if choice.url else ""
    if choice.name == "docker":
        where = f" image {_option(config, 'docker_image') or DEFAULT_DOCKER_IMAGE}"
    line = f"berthcache target: {choice.name} (from {choice.source}){where}"
    if choice.source == "REDIS_URL":
        line += f"\nWARNING: berthcache target {_REDIS_URL_NOTE}"
    return line


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The Redis this session tests against; a local group is started once and stopped at the
    end. Skips (with the reason) where the target cannot be had, e.g. no Docker engine."""
    config = request.config
    with open_target(config.stash[_CHOICE], _target_options(config)) as target:
        yield target


@pytest.fixture(scope="session")
def redis_namespace(redis_target: Target) -> Iterator[str]:
    """A per-run key prefix such as ``berthcare:bc-test-1a2b3c4d:``; everything under it is
    deleted at the end of the session (SCAN MATCH + UNLINK), on every target."""
    namespace = f"{NAMESPACE_ROOT}bc-test-{secrets.token_hex(4)}:"
    yield namespace
    try:
        delete_namespace(redis_target, namespace)
    except (redis.RedisError, OSError) as exc:
        if not redis_target.started_by_us:  # ours is about to be removed whole anyway
            warnings.warn(
                f"could not delete test keys under {namespace!r} on the {redis_target.name} "
                f"target: {type(exc).__name__}: {exc}",
                pytest.PytestWarning,
                stacklevel=1,
            )


@pytest.fixture
def redis_test_namespace(
    request: pytest.FixtureRequest, redis_target: Target, redis_namespace: str
) -> Iterator[str]:
    """This test's own key prefix under the run's namespace, so no state leaks from one test
    into the next; emptied when the test ends on a server this run started (elsewhere with the
    run's namespace, at the end)."""
    namespace = f"{redis_namespace}t{secrets.token_hex(4)}:"
    yield namespace
    if not redis_target.started_by_us:
        # The namespace is unique, so nothing leaks either way; a SCAN per test would walk a
        # shared endpoint's whole keyspace each time: the run's namespace is emptied once, at
        # the end, instead.
        return
    try:
        delete_namespace(redis_target, namespace)
    except (redis.RedisError, OSError) as exc:
        # E.g. an app user without SCAN on a deployed group: say it once, not after every test.
        if not request.config.stash.get(_CLEANUP_FAILED, False):
            request.config.stash[_CLEANUP_FAILED] = True
            warnings.warn(
                f"could not empty the test namespace {namespace!r} on the {redis_target.name} "
                f"target ({type(exc).__name__}: {exc}); keys written by one test may be seen by "
                "the next (their run's namespace is retried at the end)",
                pytest.PytestWarning,
                stacklevel=1,
            )


@pytest.fixture
def cache_config(redis_target: Target, redis_test_namespace: str) -> CacheConfig:
    """A ``CacheConfig`` for the target whose ``key_prefix`` is this test's own namespace."""
    return redis_target.cache_config(key_prefix=redis_test_namespace)


@pytest.fixture
def cache_factory(cache_config: CacheConfig) -> Iterator[Callable[..., Cache]]:
    """``factory(**settings)``: a :class:`Cache` on this test's namespace (settings override the
    target's); every one is closed when the test ends."""
    made: list[Cache] = []

    def factory(**settings: Any) -> Cache:
        client = Cache(cache_config, **settings)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in reversed(made):
            with contextlib.suppress(Exception):
                client.close()


@pytest.fixture
def cache(cache_factory: Callable[..., Cache]) -> Cache:
    """A connected :class:`Cache` on this test's own namespace, closed when the test ends."""
    return cache_factory()


@pytest_asyncio.fixture
async def async_cache_factory(
    cache_config: CacheConfig,
) -> AsyncIterator[Callable[..., AsyncCache]]:
    """``factory(**settings)``: an :class:`AsyncCache` on this test's namespace; every one is
    closed when the test ends, on the test's event loop."""
    made: list[AsyncCache] = []

    def factory(**settings: Any) -> AsyncCache:
        client = AsyncCache(cache_config, **settings)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in reversed(made):
            with contextlib.suppress(Exception):
                await client.close()


@pytest_asyncio.fixture
async def async_cache(async_cache_factory: Callable[..., AsyncCache]) -> AsyncCache:
    """A connected :class:`AsyncCache` on this test's own namespace, closed when the test ends."""
    return async_cache_factory()


@pytest.fixture
def local_redis_factory(request: pytest.FixtureRequest) -> Iterator[LocalRedisFactory]:
    """Start extra, isolated servers for fault tests; all are stopped when the test ends. They
    never touch the target, so this works on every target — but it needs a local ``redis-server``
    >= 7: without one the test is skipped with what to install (or ``REDIS_SERVER`` to set)."""
    binary = _option(request.config, "redis_server")
    try:
        find_redis_server(binary)
    except RedisServerNotFoundError as exc:
        pytest.skip(f"needs a local redis-server >= 7 for servers of its own: {exc}")
    factory = LocalRedisFactory(binary=binary)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(autouse=True)
def _berthcache_requires(request: pytest.FixtureRequest) -> None:
    """Apply ``@pytest.mark.requires(...)``: skip, naming what the target lacks."""
    wanted: list[str] = []
    for mark in request.node.iter_markers("requires"):
        wanted.extend(str(arg) for arg in mark.args)
    if not wanted:
        return
    unknown = sorted(set(wanted) - CAPABILITIES)
    if unknown:
        pytest.fail(
            f"@pytest.mark.requires: unknown capability {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(CAPABILITIES))}",
            pytrace=False,
        )
    target: Target = request.getfixturevalue("redis_target")
    missing = target.missing(*dict.fromkeys(wanted))
    if missing:
        has = ", ".join(sorted(target.capabilities)) or "none"
        choice = request.config.stash.get(_CHOICE, None)
        why = f" ({_REDIS_URL_NOTE})" if choice and choice.source == "REDIS_URL" else ""
        pytest.skip(
            f"requires {', '.join(missing)}: the {target.name} target lacks it (it has: {has}){why}"
        )


# -- helpers -------------------------------------------------------------------------------------


class LocalRedisFactory:
    """Starts :class:`LocalRedis` groups (``replica=False`` unless asked) and bare
    :class:`RedisServer` processes; ``close()`` stops every one of them."""

    def __init__(self, *, binary: str | None = None) -> None:
        self._binary = binary
        self._started: list[LocalRedis | RedisServer] = []

    def __call__(self, **kwargs: Any) -> LocalRedis:
        kwargs.setdefault("replica", False)
        kwargs.setdefault("binary", self._binary)
        group = LocalRedis(**kwargs)
        self._started.append(group)
        group.start()
        return group

    def server(self, **kwargs: Any) -> RedisServer:
        """A single plain server (no TLS, no AUTH unless given ``tls=`` / ``password=``)."""
        kwargs.setdefault("binary", self._binary)
        server = RedisServer(**kwargs)
        self._started.append(server)
        server.start()
        return server

    def close(self) -> None:
        while self._started:
            with contextlib.suppress(Exception):
                self._started.pop().close()


def delete_namespace(target: Target, namespace: str, *, batch: int = 500) -> int:
    """UNLINK every key under ``namespace`` (SCAN MATCH, glob characters escaped); returns how
    many. Never KEYS, never FLUSH*: data outside the namespace is never touched. On a local
    group the harness's admin user scans (the app user may not); elsewhere the target's user."""
    if not namespace.startswith(NAMESPACE_ROOT) or len(namespace) <= len(NAMESPACE_ROOT):
        raise ValueError(f"refusing to delete outside a test namespace: {namespace!r}")
    pattern = glob_escape(namespace) + "*"
    deleted = 0
    if target.cluster is not None:
        return _delete_namespace_in_cluster(target.cluster, pattern)
    client = target.harness.admin_client() if target.harness is not None else target.client()
    try:
        keys: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            keys.append(key)
            if len(keys) >= batch:
                deleted += int(client.unlink(*keys))
                keys.clear()
        if keys:
            deleted += int(client.unlink(*keys))
    finally:
        client.close()
    return deleted


def _delete_namespace_in_cluster(cluster: LocalCluster, pattern: str) -> int:
    """Every primary's keys under ``pattern``, scanned there by the admin user and unlinked one
    key a command (keys of one node may still live in different slots)."""
    deleted = 0
    for shard in cluster.shards:
        client = cluster.admin_client(shard.primary)
        try:
            pipe = client.pipeline(transaction=False)
            for key in client.scan_iter(match=pattern, count=1000):
                pipe.unlink(key)
            deleted += sum(int(n) for n in pipe.execute())
        finally:
            client.close()
    return deleted
