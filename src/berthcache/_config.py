"""Connection and behaviour settings: from arguments, from the seed's environment variables, or
from ``REDIS_URL`` (which wins over the host/port/credential variables).

Every value is validated when the config is built; a bad one raises
:class:`~berthcache.ConfigurationError` naming the variable (``REDIS_PORT``) or, when built from
arguments, the argument (``port``). The password never appears in ``repr``, ``str`` or errors.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from berthcache._exceptions import ConfigurationError
from berthcache._serialization import SERIALIZERS, Serializer, SerializerName
from berthcache.acl import check_key_prefix

__all__ = ["DEFAULT_KEY_PREFIX", "RETRY_STRATEGIES", "CacheConfig", "RetryStrategy", "masked_url"]

RetryStrategy = Literal["exponential", "linear", "exponential-jitter", "none"]
#: ``exponential`` is the seed's name (its ``.env``) for its schedule 50, 100, 150 … ms capped
#: at 2000 ms, and the default; ``linear`` names the same schedule; ``exponential-jitter``
#: doubles per attempt with equal jitter; ``none`` never retries. See ``retry_schedule``.
RETRY_STRATEGIES: tuple[RetryStrategy, ...] = (
    "exponential",
    "linear",
    "exponential-jitter",
    "none",
)
DEFAULT_KEY_PREFIX = "berthcare:"
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Field name -> environment variable, for error messages and ``from_env``.
ENV_VARS: dict[str, str] = {
    "host": "REDIS_HOST",
    "port": "REDIS_PORT",
    "username": "REDIS_USERNAME",
    "password": "REDIS_PASSWORD",
    "db": "REDIS_DB",
    "key_prefix": "REDIS_KEY_PREFIX",
    "max_retries_per_request": "REDIS_MAX_RETRIES_PER_REQUEST",
    "retry_strategy": "REDIS_RETRY_STRATEGY",
    "retry_base_delay_ms": "REDIS_RETRY_BASE_DELAY_MS",
    "retry_max_delay_ms": "REDIS_RETRY_MAX_DELAY_MS",
    "tls": "REDIS_TLS",
    "tls_ca_file": "REDIS_TLS_CA_FILE",
    "tls_verify": "REDIS_TLS_VERIFY",
    "tls_cert_file": "REDIS_TLS_CERT_FILE",
    "tls_key_file": "REDIS_TLS_KEY_FILE",
    "connect_timeout": "REDIS_CONNECT_TIMEOUT",
    "socket_timeout": "REDIS_SOCKET_TIMEOUT",
    "max_connections": "REDIS_MAX_CONNECTIONS",
    "pool_timeout": "REDIS_POOL_TIMEOUT",
    "prefix_channels": "REDIS_PREFIX_CHANNELS",
    # time budgets (issue 8): calls that must answer in time whatever Redis does
    "health_timeout_ms": "REDIS_HEALTH_TIMEOUT_MS",
    "rate_limit_timeout_ms": "REDIS_RATE_LIMIT_TIMEOUT_MS",
    "response_cache_timeout_ms": "REDIS_RESPONSE_CACHE_TIMEOUT_MS",
    "serve_through_outage": "REDIS_SERVE_THROUGH_OUTAGE",
    # the asyncio client's multiplexed connections (issue 10)
    "multiplex_connections": "REDIS_MULTIPLEX_CONNECTIONS",
    "max_queued_commands": "REDIS_MAX_QUEUED_COMMANDS",
    "serializer": "REDIS_SERIALIZER",
    # Redis Cluster / ElastiCache cluster mode or Serverless (issue 11)
    "cluster": "REDIS_CLUSTER",
}
_INT_FIELDS = {
    "port": (1, 65535),
    "db": (0, 15),
    "max_retries_per_request": (0, 100),
    "retry_base_delay_ms": (1, 60_000),
    "retry_max_delay_ms": (1, 600_000),
    "max_connections": (1, 100_000),
    "health_timeout_ms": (10, 60_000),
    "rate_limit_timeout_ms": (10, 60_000),
    "response_cache_timeout_ms": (10, 60_000),
    "multiplex_connections": (1, 64),
    "max_queued_commands": (1, 1_000_000),
}
_FLOAT_FIELDS = {
    "connect_timeout": (0.01, 600.0),
    "socket_timeout": (0.01, 600.0),
    "pool_timeout": (0.01, 600.0),
}
_BOOL_FIELDS = ("tls", "tls_verify", "prefix_channels", "serve_through_outage", "cluster")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """Where the cache lives and how the client behaves.

    Defaults are the seed module's: ``localhost:6379``, db 0, prefix ``berthcare:``, at most 3
    retries per command with the seed's ``exponential`` schedule (50 ms per attempt: 50, 100,
    150 … capped at 2000 ms). TLS, once on, verifies the server certificate unless
    ``tls_verify=False`` is set explicitly. Pub/sub channels carry the key prefix unless
    ``prefix_channels=False`` (the seed publishes on bare channel names).
    """

    host: str = "localhost"
    port: int = 6379
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    db: int = 0
    key_prefix: str = DEFAULT_KEY_PREFIX
    max_retries_per_request: int = 3
    retry_strategy: RetryStrategy = "exponential"
    retry_base_delay_ms: int = 50
    retry_max_delay_ms: int = 2000
    tls: bool = False
    tls_ca_file: str | None = None
    tls_verify: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    connect_timeout: float = 5.0
    socket_timeout: float = 5.0
    max_connections: int = 50
    #: How long a command waits for a free pooled connection when all ``max_connections`` are
    #: busy, before failing with CacheUnavailableError (the pool blocks instead of erroring).
    pool_timeout: float = 5.0
    client_name: str = "berthcache"
    #: Publish/subscribe on ``{key_prefix}{channel}`` (True) or on the bare channel name as the
    #: seed does (False), so both can share a channel.
    prefix_channels: bool = True
    #: Time budgets in milliseconds, each a whole call (no retries; the ordinary command path
    #: keeps its retry policy): ``check_health()`` and ``/health``; one rate-limit decision
    #: (then fail open or closed); each cache read/write/lock step of ``get_or_compute``.
    health_timeout_ms: int = 1000
    rate_limit_timeout_ms: int = 250
    response_cache_timeout_ms: int = 500
    #: ``responses.get_or_compute()`` computes and returns the value when Redis is unavailable
    #: or over budget (counted in ``stats.served_through_outage``) instead of raising.
    serve_through_outage: bool = True
    #: ``AsyncCache`` sends the commands of all its tasks over this many shared connections
    #: (replies matched in order; a batch never splits), opened as load needs them.
    multiplex_connections: int = 1
    #: At most this many commands owed a reply per multiplexed connection; more callers wait
    #: their turn instead of growing buffers without limit.
    max_queued_commands: int = 4096
    #: How dicts, lists, booleans and ``None`` become JSON text and back: ``"orjson"`` (fast),
    #: ``"json"`` (the standard library; integers beyond 64 bits too), or an object with
    #: ``dumps(value) -> str | bytes`` and ``loads(data) -> value`` (:class:`Serializer`).
    #: What each writes: docs/api.md, "Serializers".
    serializer: SerializerName | Serializer = "orjson"
    #: Talk to a Redis Cluster (ElastiCache cluster mode, Serverless): ``host``/``port`` (or the
    #: URL) name the configuration endpoint, the client learns every shard from
    #: ``CLUSTER SLOTS`` and sends each command to the node serving its key's hash slot.
    cluster: bool = False

    def __post_init__(self) -> None:
        self._validate(names={})

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CacheConfig:
        """Build from the seed's ``REDIS_*`` variables; ``REDIS_URL`` wins over host/port/auth/db.

        ``overrides`` (keyword arguments named like the fields) win over the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[field] = _parse(field, raw, var)
        names = {f: ENV_VARS[f] for f in values}
        url = env.get("REDIS_URL")
        if url:
            from_url = _parse_url(url, "REDIS_URL", "password" in values or "password" in overrides)
            values.update(from_url)
            names.update(dict.fromkeys(from_url, "REDIS_URL"))
        values.update(overrides)
        names.update({f: f for f in overrides})
        return cls._build(values, names=names)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> CacheConfig:
        """Build from a ``redis://`` or ``rediss://`` URL (``rediss`` turns TLS on)."""
        values = _parse_url(url, "url", "password" in overrides)
        values.update(overrides)
        return cls._build(values, names={})

    @classmethod
    def _build(cls, values: dict[str, Any], names: Mapping[str, str]) -> CacheConfig:
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigurationError(unknown[0], "unknown setting")
        obj = object.__new__(cls)
        for f in dataclasses.fields(cls):
            default: Any = f.default
            object.__setattr__(obj, f.name, values.get(f.name, default))
        obj._validate(names)
        return obj

    def replace(self, **changes: Any) -> CacheConfig:
        """A copy with some settings changed (validated like the original)."""
        return dataclasses.replace(self, **changes)

    # -- derived ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint as a URL with the password masked — safe for logs."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = f"{self._shown_username or ''}{':***' if self.password else ''}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"

    @property
    def _shown_username(self) -> str | None:
        # A user name equal to the password is the token given twice: mask it too.
        return "***" if self.username and self.username == self.password else self.username

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={self._shown_username if f.name == 'username' else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name != "password"
        )
        masked = "'***'" if self.password else "None"
        return f"CacheConfig({shown}, password={masked})"

    __str__ = __repr__

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a redis-py client / connection pool (no retry policy)."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            "client_name": self.client_name,
            "max_connections": self.max_connections,
        }
        if self.tls:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=self.tls_ca_file,
                ssl_cert_reqs="required" if self.tls_verify else "none",
                ssl_check_hostname=self.tls_verify,
                ssl_certfile=self.tls_cert_file,
                ssl_keyfile=self.tls_key_file,
            )
        return kwargs

    # -- validation ---------------------------------------------------------------------------

    def _validate(self, names: Mapping[str, str]) -> None:
        def name(field: str) -> str:
            return names.get(field, field)

        for field, (lo, hi) in _INT_FIELDS.items():
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(name(field), f"must be an integer, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigurationError(name(field), f"must be between {lo} and {hi}, got {value}")
        for field, (flo, fhi) in _FLOAT_FIELDS.items():
            value = getattr(self, field)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigurationError(name(field), f"must be a number of seconds, got {value!r}")
            if not flo <= value <= fhi:
                raise ConfigurationError(
                    name(field), f"must be between {flo} and {fhi} seconds, got {value}"
                )
        for field in _BOOL_FIELDS:
            if not isinstance(getattr(self, field), bool):
                raise ConfigurationError(name(field), "must be true or false")
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigurationError(name("host"), "must be a non-empty host name or address")
        if self.retry_strategy not in RETRY_STRATEGIES:
            raise ConfigurationError(
                name("retry_strategy"),
                f"unknown retry strategy {self.retry_strategy!r}; "
                f"choose one of {', '.join(RETRY_STRATEGIES)}",
            )
        if self.retry_max_delay_ms < self.retry_base_delay_ms:
            raise ConfigurationError(
                name("retry_max_delay_ms"), "must be at least the base delay (retry_base_delay_ms)"
            )
        if (problem := check_key_prefix(self.key_prefix)) is not None:
            raise ConfigurationError(name("key_prefix"), problem)
        if any(c in self.key_prefix for c in " \r\n\t*?[]"):
            raise ConfigurationError(
                name("key_prefix"), "must not contain whitespace or glob characters (* ? [ ])"
            )
        for field in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, field)
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(name(field), f"no such file: {path}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigurationError(
                name("tls_cert_file"), "a client certificate needs both a cert file and a key file"
            )
        if self.password is not None and not isinstance(self.password, str):
            raise ConfigurationError(name("password"), "must be a string")
        _check_serializer(self.serializer, name("serializer"))
        if self.cluster and self.db != 0:
            raise ConfigurationError(
                name("db"),
                f"must be 0 in cluster mode (a Redis Cluster has one database), got {self.db}",
            )


def _check_serializer(serializer: object, setting: str) -> None:
    """A built-in serializer's name, or an object with callable ``dumps`` and ``loads``."""
    choices = " or ".join(repr(s) for s in SERIALIZERS)
    if isinstance(serializer, str):
        if serializer not in SERIALIZERS:
            raise ConfigurationError(
                setting,
                f"unknown serializer {serializer!r}; choose {choices}, or pass an object"
                " with dumps() and loads()",
            )
        return
    missing = [m for m in ("dumps", "loads") if not callable(getattr(serializer, m, None))]
    if missing:
        raise ConfigurationError(
            setting,
            f"must be {choices} or an object with dumps() and loads(); "
            f"{type(serializer).__name__} has no {' or '.join(m + '()' for m in missing)}",
        )


def _parse(field: str, raw: str, var: str) -> Any:
    raw = raw.strip() if field != "password" else raw
    if field in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(var, f"must be an integer, got {raw!r}") from None
    if field in _FLOAT_FIELDS:
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(var, f"must be a number of seconds, got {raw!r}") from None
    if field in _BOOL_FIELDS:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigurationError(var, f"must be true or false, got {raw!r}")
    if field in ("retry_strategy", "serializer"):
        return raw.lower()
    return raw


def masked_url(url: str) -> str:
    """``url`` safe to print: its password — or a lone user-slot value, the AUTH token by
    the rule ``REDIS_URL`` is read by — replaced by ``***``. Use it wherever a URL is logged."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return "<unparseable URL>"
    if user is None and password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    auth = "***" if password is None else f"{user or ''}:***"
    return parts._replace(netloc=f"{auth}@{host}").geturl()


def _parse_url(url: str, setting: str, password_elsewhere: bool = False) -> dict[str, Any]:
    """Split a redis URL into settings. Errors never echo the URL (it may hold a password).

    A lone user-slot value (``redis://TOKEN@host``, no ``:``) is the AUTH token, as redis-cli
    reads it — redis-py would send it as a user name, and the server would log it in its
    ACL LOG — unless a password comes from elsewhere (``REDIS_PASSWORD``, ``password=``):
    then it is the user name (``rediss://app@host`` plus the token from Secrets Manager).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigurationError(setting, "is not a valid URL (bad port or host)") from None
    if parts.scheme not in ("redis", "rediss"):
        shown = parts.scheme or "none"
        raise ConfigurationError(setting, f"scheme must be redis:// or rediss://, got {shown!r}")
    if not parts.hostname:
        raise ConfigurationError(setting, "has no host")
    if parts.query:
        # Names only, and only what looks like a name: a value, or a bare item, could be a
        # secret. TLS options have settings of their own.
        items = [item for item in parts.query.split("&") if item]
        names = sorted(
            {
                name
                for name, sep, _ in (item.partition("=") for item in items)
                if sep and _PARAM_NAME.fullmatch(name)
            }
        )
        shown = ", ".join(names) if len(names) == len(items) else f"{len(items)} given"
        raise ConfigurationError(
            setting,
            f"query parameters are not supported ({shown}); use the settings "
            "instead (REDIS_TLS_CA_FILE, REDIS_TLS_VERIFY, REDIS_CONNECT_TIMEOUT ...)",
        )
    values: dict[str, Any] = {"host": parts.hostname, "tls": parts.scheme == "rediss"}
    if port is not None:
        values["port"] = port
    if parts.username and parts.password is None and not password_elsewhere:
        values["password"] = unquote(parts.username)  # redis://TOKEN@host: the token
    elif parts.username:
        values["username"] = unquote(parts.username)
    if parts.password:
        values["password"] = unquote(parts.password)
    path = parts.path.lstrip("/")
    if path:
        try:
            values["db"] = int(path)
        except ValueError:
            raise ConfigurationError(setting, "database in the path must be an integer") from None
    return values
