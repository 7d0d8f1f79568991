"""A test target as the suite sees it: where Redis is, and what a test may do there.

:class:`Target` holds a URL (credentials masked in every ``repr``), the CA file, the capabilities
and whether this run started the server; :func:`probe_capabilities` finds out what an endpoint
someone else runs proves to have. Capabilities are facts: ``admin`` means "this run started the
server, so it may reconfigure, flush or restart it", which no probe of someone else's endpoint can
prove — a user allowed to run ``CONFIG`` on a shared Redis is exactly where the suite must not (the
safety rules of ``docs/contract.md``). :class:`Target` refuses ``admin`` unless ``started_by_us``.

Both the target builders (``_targets``) and the stack target (``_stack``) build on this module;
it imports neither.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache import CacheConfig, masked_url
from berthcache.testing._cluster import LocalCluster
from berthcache.testing._harness import LocalRedis

__all__ = [
    "CAPABILITIES",
    "TARGET_NAMES",
    "Target",
    "TargetName",
    "UsageError",
    "first_line",
    "mask_url",
    "probe_capabilities",
]

TargetName = Literal["local", "docker", "url", "stack", "cluster"]
TARGET_NAMES: tuple[TargetName, ...] = ("local", "docker", "url", "stack", "cluster")
#: What a test may require with ``@pytest.mark.requires(...)``: ``admin`` (this run started the
#: server and may reconfigure, flush or restart it: local, docker), ``replica`` (a connected
#: replica), ``tls`` (TLS in transit), ``auth`` (a password is required), ``cluster`` (a Redis
#: Cluster: clients run in cluster mode), ``standalone`` (one primary — a server or replication
#: group: the seed's key formats, the harness's failover). See the plugin's docs.
CAPABILITIES: frozenset[str] = frozenset(
    {"admin", "replica", "tls", "auth", "cluster", "standalone"}
)


class UsageError(ValueError):
    """The target options contradict each other or are malformed (the plugin reports it as a
    pytest usage error)."""


def mask_url(url: str) -> str:
    """The URL with its password — or a token in the user slot — replaced by ``***``
    (safe to print): berthcache's one rule, :func:`berthcache._config.masked_url`."""
    return masked_url(url)


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
    #: The local Redis Cluster of the ``cluster`` target (its nodes, failover, slot migration).
    cluster: LocalCluster | None = None

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
        if "cluster" in self.capabilities:
            overrides.setdefault("cluster", True)
        return CacheConfig.from_url(self.url, **overrides)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client with the target's (app) credentials."""
        options = self.cache_config().connection_kwargs()
        options.update(kwargs)
        return redis.Redis(**options)

    def admin_client(self, **kwargs: Any) -> redis.Redis:
        """A client that may administer the server, for tests marked ``requires("admin")``: the
        local group's admin user, or on the docker target its only (default) user. Refused on
        a server this run did not start (the safety rules of ``docs/contract.md``)."""
        if "admin" not in self.capabilities:
            raise ValueError(
                f"the {self.name} target has no 'admin' capability: this run did not start it, "
                "so no admin client is handed out"
            )
        if self.harness is not None:
            return self.harness.admin_client(**kwargs)
        return self.client(**kwargs)


def probe_capabilities(target: Target) -> frozenset[str]:
    """What the endpoint proves it has: ``tls``, ``auth``, ``replica``, ``cluster`` or
    ``standalone`` (``INFO cluster``) — never ``admin`` (only a
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
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from None
        try:
            info = client.info("replication")
        except redis.RedisError:
            info = {}
        if info.get("role") == "master" and int(info.get("connected_slaves", 0)) > 0:
            caps.add("replica")
        try:
            enabled = str(client.info("cluster").get("cluster_enabled", 0)) == "1"
        except redis.RedisError:
            enabled = False
        caps.add("cluster" if enabled else "standalone")
    finally:
        client.close()
    return frozenset(caps)


def first_line(exc: BaseException) -> str:
    """The first line of an error's text, bounded: enough to say why, never a whole dump."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no detail"
