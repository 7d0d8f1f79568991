"""Where the suite runs: choosing the target and building it — every target builder in one place.

:func:`choose_target` is a pure decision from ``--target``, ``--stack`` / ``--stack-outputs``,
``--docker-image``, ``--redis-url`` and ``REDIS_URL`` — the one place a target is chosen
(``berthcache-ops conformance`` and ``./scripts/conformance`` forward their options here instead
of deciding themselves);
:func:`check_prerequisites` says before any test runs what the chosen target lacks on this
machine; :func:`open_target` then builds the chosen :class:`~berthcache.testing._target.Target`
with the builder registered for its name in :data:`TARGET_BUILDERS` (``local``, ``docker``,
``url``, ``stack``, ``cluster``) and takes it down again at the end. The ``stack`` builder
lives in ``_stack`` (it reads the deployed group through the ops helpers) and is imported only
when that target is chosen, so the plugin loads without the ``ops`` extra.

Import direction: ``plugin`` -> ``_targets`` -> {``_target``, ``_harness``, ``_cluster``,
``_server``, ``_cleanup``}; ``_targets`` -> ``_stack`` (lazily) -> ``_target``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from berthcache.testing._cleanup import register_for_cleanup, unregister_for_cleanup
from berthcache.testing._cluster import LocalCluster
from berthcache.testing._harness import LocalRedis
from berthcache.testing._server import RedisServerNotFoundError, find_redis_server
from berthcache.testing._target import (
    TARGET_NAMES,
    Target,
    TargetName,
    UsageError,
    first_line,
    mask_url,
    probe_capabilities,
)

__all__ = [
    "DEFAULT_DOCKER_HOST",
    "DEFAULT_DOCKER_IMAGE",
    "TARGET_BUILDERS",
    "TargetChoice",
    "TargetOptions",
    "check_prerequisites",
    "choose_target",
    "choose_target_from_args",
    "cluster_target",
    "docker_server_command",
    "docker_target",
    "local_target",
    "open_target",
    "stop_docker_target",
    "url_target",
]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
#: The docker target's server image unless ``--docker-image`` names another (CI runs a matrix of
#: Redis 7.0, 7.2, Valkey 7.2 and 8.x images: .github/workflows/ci.yml).
DEFAULT_DOCKER_IMAGE = "redis:7"


@dataclasses.dataclass(frozen=True)
class TargetChoice:
    """The outcome of :func:`choose_target`: which target, its URL, and which input decided."""

    name: TargetName
    url: str | None = dataclasses.field(default=None, repr=False)
    #: "--target", "--stack", "--stack-outputs", "--redis-url", "REDIS_URL" or "default"
    source: str = "default"

    def __repr__(self) -> str:
        shown = mask_url(self.url) if self.url else None
        return f"TargetChoice(name={self.name!r}, url={shown!r}, source={self.source!r})"


def choose_target(
    *,
    option_target: str | None,
    option_url: str | None,
    env: Mapping[str, str],
    option_stack: str | None = None,
    option_stack_outputs: str | None = None,
    option_docker_image: str | None = None,
) -> TargetChoice:
    """Decide the target. An explicit ``--target`` wins; without it ``--stack`` or
    ``--stack-outputs`` mean ``stack``, ``--docker-image`` means ``docker``, ``--redis-url``
    (or, failing that, a non-empty ``REDIS_URL``) means ``url``, and nothing at all ``local``.

    Options naming two targets (``--redis-url`` with another ``--target`` or with a stack
    option, a stack option with a target other than ``stack``, ``--docker-image`` with any
    target but ``docker``) raise :class:`UsageError`; ``REDIS_URL`` in the environment is
    ignored when ``--target`` or a stack or docker option names another target (shells often
    export it for the app itself).
    """
    if option_docker_image is not None:
        return _choose_docker(
            option_docker_image,
            option_target=option_target,
            others=(
                ("--redis-url", option_url),
                ("--stack", option_stack),
                ("--stack-outputs", option_stack_outputs),
            ),
        )
    target = option_target.strip().lower() if option_target is not None else None
    if target == "":
        raise UsageError("--target is empty; choose one of: " + ", ".join(TARGET_NAMES))
    if option_url is not None and not option_url.strip():
        raise UsageError("--redis-url is empty; give a redis:// or rediss:// URL")
    stack_flags = [
        flag
        for flag, value in (("--stack", option_stack), ("--stack-outputs", option_stack_outputs))
        if value is not None
    ]
    for flag, value in (("--stack", option_stack), ("--stack-outputs", option_stack_outputs)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} is empty; give a stack name or an outputs file")
    if len(stack_flags) > 1:
        raise UsageError("give either --stack NAME or --stack-outputs FILE, not both")
    env_url = (env.get("REDIS_URL") or "").strip() or None
    if target is not None and target not in TARGET_NAMES:
        raise UsageError(
            f"--target {option_target!r} is not a known target; choose one of: "
            + ", ".join(TARGET_NAMES)
        )
    if stack_flags and target not in (None, "stack"):
        raise UsageError(
            f"{stack_flags[0]} only makes sense with --target stack, not --target {target}; "
            "drop one of the two"
        )
    if stack_flags and option_url is not None:
        raise UsageError(
            f"--redis-url and {stack_flags[0]} name two targets (url and stack); drop one"
        )
    if target is not None and target != "url":
        if option_url is not None:
            raise UsageError(
                f"--redis-url only makes sense with --target url, not --target {target}; "
                "drop one of the two"
            )
        return TargetChoice(name=target, source="--target")
    if stack_flags:
        return TargetChoice(name="stack", source=stack_flags[0])
    if option_url is not None:
        url, source = option_url.strip(), "--redis-url"
    elif env_url is not None:
        url, source = env_url, "REDIS_URL"
    elif target == "url":
        raise UsageError("--target url needs an endpoint: pass --redis-url URL or set REDIS_URL")
    else:
        return TargetChoice(name="local", source="default")
    _check_url(url, source)
    return TargetChoice(name="url", url=url, source="--target" if target else source)


def _choose_docker(
    image: str, *, option_target: str | None, others: Sequence[tuple[str, str | None]]
) -> TargetChoice:
    """``--docker-image`` given: the docker target, unless another option names a different one."""
    check_docker_image(image)
    target = option_target.strip().lower() if option_target is not None else None
    if target is not None and target != "docker":
        raise UsageError(
            f"--docker-image only makes sense with --target docker, not --target {target}; "
            "drop one of the two"
        )
    for flag, value in others:
        if value is not None:
            raise UsageError(
                f"--docker-image and {flag} name two targets (docker and "
                f"{'url' if flag == '--redis-url' else 'stack'}); drop one"
            )
    return TargetChoice(name="docker", source="--target" if target else "--docker-image")


def check_docker_image(image: str) -> str:
    """``image`` if it reads as a Docker image reference (``[registry/]name[:tag][@digest]``);
    else :class:`UsageError` naming ``--docker-image``."""
    if not image.strip():
        raise UsageError("--docker-image is empty; give an image such as redis:7.2")
    if image != image.strip() or any(c.isspace() for c in image) or image.startswith("-"):
        raise UsageError(f"--docker-image {image!r} is not an image reference (e.g. redis:7.2)")
    return image


def docker_server_command(image: str, password: str) -> list[str]:
    """The server command for ``image``: ``valkey-server`` for Valkey images (whose newer
    releases need not ship the ``redis-server`` name), ``redis-server`` for the rest; both
    with ``--requirepass``, so the target has the ``auth`` capability it claims."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    server = "valkey-server" if "valkey" in name.lower() else "redis-server"
    return [server, "--requirepass", password]


#: The options :func:`choose_target` reads, as ``choose_target_from_args`` finds them in argv.
TARGET_FLAGS = ("--target", "--redis-url", "--stack", "--stack-outputs", "--docker-image")


def choose_target_from_args(args: Sequence[str], env: Mapping[str, str]) -> TargetChoice:
    """:func:`choose_target` for a pytest command line (``--flag value`` or ``--flag=value``;
    every other argument is ignored). ``./scripts/conformance`` asks this which target a run
    will use, so it never decides differently from the plugin."""
    values: dict[str, str] = {}
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag not in TARGET_FLAGS:
            continue
        if eq:
            values[flag] = value
        elif i + 1 < len(args):
            values[flag] = args[i + 1]
    return choose_target(
        option_target=values.get("--target"),
        option_url=values.get("--redis-url"),
        option_stack=values.get("--stack"),
        option_stack_outputs=values.get("--stack-outputs"),
        option_docker_image=values.get("--docker-image"),
        env=env,
    )


def _check_url(url: str, source: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UsageError(f"{source} is not a valid URL (bad host or port)") from None
    if parts.scheme not in ("redis", "rediss"):
        raise UsageError(f"{source} must start with redis:// or rediss://, got {parts.scheme!r}")
    if not parts.hostname:
        raise UsageError(f"{source} has no host")


@dataclasses.dataclass(frozen=True)
class TargetOptions:
    """The run's settings a builder may need (from the plugin's flags and ini keys)."""

    redis_server: str | None = None
    maxmemory_policy: str = "allkeys-lru"
    tls_ca_file: str | None = None
    stack: str | None = None
    stack_outputs: str | None = None
    docker_image: str | None = None


def check_prerequisites(choice: TargetChoice, options: TargetOptions) -> None:
    """Raise :class:`UsageError` when the chosen target cannot be had on this machine, so a run
    stops once, before its first test, saying what to install — instead of every test erroring.
    Only the ``local`` and ``cluster`` targets need something here: a ``redis-server`` >= 7."""
    if choice.name not in ("local", "cluster"):
        return
    try:
        find_redis_server(options.redis_server)
    except RedisServerNotFoundError as exc:
        raise UsageError(
            f"the {choice.name} target needs redis-server >= 7: {exc}; or test another target: "
            "--redis-url URL (or REDIS_URL), --stack NAME, --target docker"
        ) from None


# -- building targets ----------------------------------------------------------------------------


def local_target(
    *,
    binary: str | None = None,
    maxmemory_policy: str = "allkeys-lru",
    base_dir: Path | None = None,
) -> Target:
    """Start a :class:`LocalRedis` (TLS, AUTH + ACL, primary + replica, endpoint). The caller
    closes ``target.harness``."""
    harness = LocalRedis(binary=binary, maxmemory_policy=maxmemory_policy, base_dir=base_dir)
    harness.start()
    return Target(
        name="local",
        url=harness.url("app"),
        tls_ca_file=harness.ca_file,
        capabilities=frozenset({"admin", "replica", "tls", "auth", "standalone"}),
        started_by_us=True,
        harness=harness,
    )


def cluster_target(
    *,
    binary: str | None = None,
    maxmemory_policy: str = "allkeys-lru",
    base_dir: Path | None = None,
) -> Target:
    """Start a :class:`LocalCluster` (3 primaries x 1 replica, TLS, ACL users; the app user of
    cluster mode) — it stands in for ElastiCache cluster mode and Serverless, which speak the
    same protocol. The caller closes ``target.cluster``."""
    cluster = LocalCluster(binary=binary, maxmemory_policy=maxmemory_policy, base_dir=base_dir)
    cluster.start()
    return Target(
        name="cluster",
        url=cluster.url("app"),
        tls_ca_file=cluster.ca_file,
        capabilities=frozenset({"tls", "auth", "cluster"}),
        started_by_us=True,
        cluster=cluster,
    )


def url_target(url: str, *, tls_ca_file: str | None = None) -> Target:
    """A target for an existing endpoint; its capabilities come from probing it."""
    target = Target(name="url", url=url, tls_ca_file=tls_ca_file)
    return dataclasses.replace(target, capabilities=probe_capabilities(target))


def docker_target(
    *, image: str = DEFAULT_DOCKER_IMAGE, env: Mapping[str, str] | None = None
) -> Target:
    """``image`` (default ``redis:7``; Redis or Valkey, with ``requirepass``) through
    testcontainers, if a Docker engine answers; otherwise ``pytest.skip`` with the reason.
    Stop it with :func:`stop_docker_target`.

    A missing ``docker``/``testcontainers`` package is an installation error, not a missing
    engine: it raises :class:`UsageError` saying what to install instead of skipping."""
    try:
        import docker  # type: ignore[import-untyped]

        try:  # testcontainers >= 4.14 moved it; the old name warns there
            from testcontainers.community.redis import RedisContainer
        except ImportError:
            from testcontainers.redis import RedisContainer
    except ImportError as exc:
        raise UsageError(
            f"the docker target needs testcontainers[redis] ({exc}); "
            "install it with `pip install 'berthcache[testing]'`"
        ) from None
    environ = os.environ if env is None else env
    docker_host = environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        engine = docker.DockerClient(base_url=docker_host, timeout=3)
        try:
            engine.ping()
        finally:
            engine.close()
    except Exception as exc:
        pytest.skip(
            f"docker target: no Docker engine answered at {docker_host}: "
            f"{type(exc).__name__}: {first_line(exc)} (image {image})"
        )
    password = secrets.token_hex(16)
    inner = RedisContainer(image)
    inner.password = password  # the readiness PING authenticates with it
    inner.with_command(docker_server_command(image, password))
    container = _Container(inner)
    container.start()
    host = container.inner.get_container_host_ip()
    port = container.inner.get_exposed_port(container.inner.port)
    target = Target(
        name="docker",
        url=f"redis://:{password}@{host}:{port}/0",
        capabilities=frozenset({"admin", "auth", "standalone"}),
        started_by_us=True,
    )
    _CONTAINERS[id(target)] = container
    return target


class _Container:
    """A started container, registered for clean-up like the local servers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def start(self) -> None:
        register_for_cleanup(self)
        self.inner.start()

    def close(self) -> None:
        unregister_for_cleanup(self)
        self.inner.stop()


_CONTAINERS: dict[int, _Container] = {}


def stop_docker_target(target: Target) -> None:
    """Stop the container a :func:`docker_target` started (no-op for other targets)."""
    container = _CONTAINERS.pop(id(target), None)
    if container is not None:
        container.close()


# -- the registry ---------------------------------------------------------------------------------

#: A builder yields the target for a run and takes it down afterwards (what it started, it stops).
TargetBuilder = Callable[[TargetChoice, TargetOptions], contextlib.AbstractContextManager[Target]]


@contextlib.contextmanager
def _local(choice: TargetChoice, options: TargetOptions) -> Iterator[Target]:
    target = local_target(binary=options.redis_server, maxmemory_policy=options.maxmemory_policy)
    assert target.harness is not None
    try:
        yield target
    finally:
        target.harness.close()


@contextlib.contextmanager
def _cluster(choice: TargetChoice, options: TargetOptions) -> Iterator[Target]:
    target = cluster_target(binary=options.redis_server, maxmemory_policy=options.maxmemory_policy)
    assert target.cluster is not None
    try:
        yield target
    finally:
        target.cluster.close()


@contextlib.contextmanager
def _url(choice: TargetChoice, options: TargetOptions) -> Iterator[Target]:
    if choice.url is None:
        raise UsageError("the url target needs an endpoint: pass --redis-url URL or set REDIS_URL")
    yield url_target(choice.url, tls_ca_file=options.tls_ca_file)


@contextlib.contextmanager
def _docker(choice: TargetChoice, options: TargetOptions) -> Iterator[Target]:
    target = docker_target(image=options.docker_image or DEFAULT_DOCKER_IMAGE)
    try:
        yield target
    finally:
        stop_docker_target(target)


@contextlib.contextmanager
def _stack(choice: TargetChoice, options: TargetOptions) -> Iterator[Target]:
    # Imported here: _stack needs the ops helpers, which only the stack target uses.
    from berthcache.testing._stack import stack_target

    yield stack_target(
        stack=options.stack, outputs_file=options.stack_outputs, tls_ca_file=options.tls_ca_file
    )


TARGET_BUILDERS: Mapping[TargetName, TargetBuilder] = {
    "local": _local,
    "docker": _docker,
    "url": _url,
    "stack": _stack,
    "cluster": _cluster,
}


def open_target(
    choice: TargetChoice, options: TargetOptions
) -> contextlib.AbstractContextManager[Target]:
    """The chosen target, built by its registered builder; use as ``with open_target(...)``."""
    return TARGET_BUILDERS[choice.name](choice, options)
