"""Where the suite runs: ``local`` (default), ``docker``, ``url`` or ``stack``.

:func:`choose_target` is a pure decision from ``--target``, ``--redis-url`` and ``REDIS_URL``;
the ``*_target`` functions then build a :class:`Target`. A target's capabilities are facts: the
local harness has them all; a ``url`` target has only what the endpoint proves (TLS if
``rediss://``, AUTH if the URL carries a password, replica only if the primary reports a connected
replica) and never ``admin``: that one means "this run started the server, so it may reconfigure,
flush or restart it", which no probe of someone else's endpoint can prove — a user allowed to run
``CONFIG`` on a shared Redis is exactly where the suite must not (DESIGN.md's safety rule).
:class:`Target` refuses ``admin`` unless ``started_by_us``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache._config import CacheConfig

if TYPE_CHECKING:
    from berthcache.testing._harness import LocalRedis

__all__ = [
    "CAPABILITIES",
    "TARGET_NAMES",
    "Target",
    "TargetChoice",
    "UsageError",
    "choose_target",
    "docker_target",
    "local_target",
    "mask_url",
    "probe_capabilities",
    "stack_target",
    "stop_docker_target",
    "url_target",
]

TargetName = Literal["local", "docker", "url", "stack"]
TARGET_NAMES: tuple[TargetName, ...] = ("local", "docker", "url", "stack")
#: What a test may require with ``@pytest.mark.requires(...)``: ``admin`` (this run started the
#: server and may reconfigure, flush or restart it: local, docker), ``replica`` (a connected
#: replica), ``tls`` (TLS in transit), ``auth`` (a password is required). See the plugin's docs.
CAPABILITIES: frozenset[str] = frozenset({"admin", "replica", "tls", "auth"})
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class UsageError(ValueError):
    """The target options contradict each other or are malformed (the plugin reports it as a
    pytest usage error)."""


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` — safe for reprs, logs and errors."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


@dataclasses.dataclass(frozen=True)
class TargetChoice:
    """The outcome of :func:`choose_target`: which target, its URL, and which input decided."""

    name: TargetName
    url: str | None = dataclasses.field(default=None, repr=False)
    source: str = "default"  # "--target", "--redis-url", "REDIS_URL" or "default"

    def __repr__(self) -> str:
        shown = mask_url(self.url) if self.url else None
        return f"TargetChoice(name={self.name!r}, url={shown!r}, source={self.source!r})"


def choose_target(
    *, option_target: str | None, option_url: str | None, env: Mapping[str, str]
) -> TargetChoice:
    """Decide the target. An explicit ``--target`` wins; ``--redis-url`` (or, failing that, a
    non-empty ``REDIS_URL``) without ``--target`` means ``url``; otherwise ``local``.

    ``--redis-url`` with a target other than ``url`` is a contradiction and raises
    :class:`UsageError`; ``REDIS_URL`` in the environment is ignored when ``--target`` names
    another target (shells often export it for the app itself).
    """
    target = option_target.strip().lower() if option_target is not None else None
    if target == "":
        raise UsageError("--target is empty; choose one of: " + ", ".join(TARGET_NAMES))
    if option_url is not None and not option_url.strip():
        raise UsageError("--redis-url is empty; give a redis:// or rediss:// URL")
    env_url = (env.get("REDIS_URL") or "").strip() or None
    if target is not None and target not in TARGET_NAMES:
        raise UsageError(
            f"--target {option_target!r} is not a known target; choose one of: "
            + ", ".join(TARGET_NAMES)
        )
    if target is not None and target != "url":
        if option_url is not None:
            raise UsageError(
                f"--redis-url only makes sense with --target url, not --target {target}; "
                "drop one of the two"
            )
        return TargetChoice(name=target, source="--target")
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """One place to run the suite: URL (with credentials, masked in ``repr``), TLS CA file,
    capabilities, whether this run started it, and the local harness (or ``None``)."""

    name: TargetName
    url: str = dataclasses.field(repr=False)
    tls_ca_file: str | None = None
    capabilities: frozenset[str] = frozenset()
    started_by_us: bool = False
    harness: LocalRedis | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.capabilities) - CAPABILITIES)
        if unknown:
            raise ValueError(
                f"Target capabilities: unknown {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(CAPABILITIES))}"
            )
        if "admin" in self.capabilities and not self.started_by_us:
            raise ValueError(
                f"Target capabilities: 'admin' is only for a server this run started "
                f"(started_by_us=True); the {self.name} target was not, and on a server the suite "
                "did not start no FLUSHALL, FLUSHDB, KEYS, CONFIG or DEBUG may run"
            )

    def __repr__(self) -> str:
        caps = ",".join(sorted(self.capabilities)) or "none"
        return (
            f"Target(name={self.name!r}, url={self.masked_url!r}, tls_ca_file={self.tls_ca_file!r},"
            f" capabilities={caps}, started_by_us={self.started_by_us})"
        )

    __str__ = __repr__

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def missing(self, *capabilities: str) -> list[str]:
        """The capabilities (of those asked for) this target lacks, in the order asked."""
        return [c for c in capabilities if c not in self.capabilities]

    def cache_config(self, **overrides: Any) -> CacheConfig:
        """A :class:`~berthcache.CacheConfig` for this target; ``overrides`` win."""
        if self.tls_ca_file is not None:
            overrides.setdefault("tls_ca_file", self.tls_ca_file)
        return CacheConfig.from_url(self.url, **overrides)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client with the target's (app) credentials."""
        options = self.cache_config().connection_kwargs()
        options.update(kwargs)
        return redis.Redis(**options)


# -- building targets ----------------------------------------------------------------------------


def local_target(
    *,
    binary: str | None = None,
    maxmemory_policy: str = "allkeys-lru",
    base_dir: Path | None = None,
) -> Target:
    """Start a :class:`LocalRedis` (TLS, AUTH + ACL, primary + replica, endpoint). The caller
    closes ``target.harness``."""
    from berthcache.testing._harness import LocalRedis

    harness = LocalRedis(binary=binary, maxmemory_policy=maxmemory_policy, base_dir=base_dir)
    harness.start()
    return Target(
        name="local",
        url=harness.url("app"),
        tls_ca_file=harness.ca_file,
        capabilities=frozenset({"admin", "replica", "tls", "auth"}),
        started_by_us=True,
        harness=harness,
    )


def url_target(url: str, *, tls_ca_file: str | None = None) -> Target:
    """A target for an existing endpoint; its capabilities come from probing it."""
    target = Target(name="url", url=url, tls_ca_file=tls_ca_file)
    return dataclasses.replace(target, capabilities=probe_capabilities(target))


def probe_capabilities(target: Target) -> frozenset[str]:
    """What the endpoint proves it has: ``tls``, ``auth``, ``replica`` — never ``admin`` (only a
    server this run started has that). Read-only probes (PING, INFO replication); nothing is
    written or changed, and nothing on the forbidden list (CONFIG, KEYS, FLUSH*, DEBUG) is sent."""
    config = target.cache_config()
    caps: set[str] = set()
    if config.tls:
        caps.add("tls")
    if config.password:
        caps.add("auth")
    client = target.client(
        socket_connect_timeout=5.0, socket_timeout=5.0, retry=Retry(NoBackoff(), 1)
    )
    try:
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise UsageError(
                f"the {target.name} target {target.masked_url} does not answer PING: "
                f"{type(exc).__name__}: {_first_line(exc)}"
            ) from None
        try:
            info = client.info("replication")
        except redis.RedisError:
            info = {}
        if info.get("role") == "master" and int(info.get("connected_slaves", 0)) > 0:
            caps.add("replica")
    finally:
        client.close()
    return frozenset(caps)


def docker_target(*, image: str = "redis:7", env: Mapping[str, str] | None = None) -> Target:
    """``redis:7`` (with ``requirepass``) through testcontainers, if a Docker engine answers;
    otherwise ``pytest.skip`` with the reason. Stop it with :func:`stop_docker_target`."""
    environ = os.environ if env is None else env
    docker_host = environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        import docker  # type: ignore[import-untyped]

        engine = docker.DockerClient(base_url=docker_host, timeout=3)
        try:
            engine.ping()
        finally:
            engine.close()
    except Exception as exc:
        pytest.skip(
            f"docker target: no Docker engine answered at {docker_host}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        )
    from testcontainers.redis import RedisContainer

    password = secrets.token_hex(16)
    container = RedisContainer(image, password=password)
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    target = Target(
        name="docker",
        url=f"redis://:{password}@{host}:{port}/0",
        capabilities=frozenset({"admin", "auth"}),
        started_by_us=True,
    )
    _CONTAINERS[id(target)] = container
    return target


_CONTAINERS: dict[int, Any] = {}


def stop_docker_target(target: Target) -> None:
    """Stop the container a :func:`docker_target` started (no-op for other targets)."""
    container = _CONTAINERS.pop(id(target), None)
    if container is not None:
        container.stop()


def stack_target(
    *, stack: str | None = None, outputs_file: str | None = None, tls_ca_file: str | None = None
) -> Target:
    """The deployed ElastiCache group (stack outputs + Secrets Manager); see ``_stack``."""
    from berthcache.testing._stack import stack_target as build

    return build(stack=stack, outputs_file=outputs_file, tls_ca_file=tls_ca_file)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no detail"
