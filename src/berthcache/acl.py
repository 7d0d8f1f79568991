"""The application user's ACL rules, in one place: an allow-list.

The deployed RBAC user (``infra/security.py``) and the local test harness's app user
(``berthcache.testing``) both use :func:`app_user_access`, so a check that passes against the
local harness cannot fail on the stack for lack of a permission (or the reverse). Who wraps the
rules is the caller's business: ElastiCache needs ``on`` in front (passwords are set through its
API, never in the access string); a ``redis-server`` config line adds ``reset on >password``.

The rules start from ``-@all`` and grant exactly the commands berthcache sends
(:data:`APP_USER_COMMANDS`), on keys and channels under the key prefix only. A deny-list
(``+@all -@dangerous``) let one tenant into another: ``SCAN`` and ``RANDOMKEY`` list every
tenant's keys (key patterns do not filter them) — session ids are bearer tokens —,
``FUNCTION LOAD REPLACE`` swaps a library another tenant's ``FCALL`` runs, ``PUBSUB CHANNELS``
lists channel names, ``SELECT`` changes database. The suite's second-tenant test
(``tests/infra/test_tenants.py``) tries each way in on a real ``redis-server``, and the whole
conformance suite runs as this user, which proves the list is complete.
"""

from __future__ import annotations

from collections.abc import Iterable

from berthcache._parts import glob_escape  # re-exported: its home is the shared helpers

__all__ = [
    "APP_USER_CLUSTER_COMMANDS",
    "APP_USER_COMMANDS",
    "KEY_PREFIX_DELIMITERS",
    "app_user_access",
    "check_key_prefix",
    "glob_escape",
]

#: The characters a key prefix may end with. Only ``:``: Redis's namespace separator and the
#: key builder's own joiner. A prefix ending elsewhere covers its longer siblings (``tenant1``
#: reaches ``tenant10:secret``), and ``-`` ``_`` ``.`` ``/`` occur inside names too often to
#: close a namespace (``acme-`` reaches ``acme-corp-``).
KEY_PREFIX_DELIMITERS = ":"

#: Every command berthcache sends, and why; the app user may run these and nothing else.
#: (``AUTH`` and ``HELLO`` are granted too, although Redis answers them for any user.)
APP_USER_COMMANDS: tuple[tuple[str, str], ...] = (
    ("auth", "connect: redis-py authenticates with username + password"),
    ("hello", "connect: RESP3 clients authenticate with HELLO ... AUTH"),
    ("client|setname", "connect: the connection's name (client_name, 'berthcache')"),
    ("ping", "ping(), check_health(), /health"),
    ("info", "INFO memory / INFO stats: the eviction policy and hit-rate checks (C9, C16)"),
    ("get", "get, get_json, sessions.get, responses, presence; the lock release script"),
    ("set", "set, set_json, sessions.create, responses.set, presence.touch, the lock (NX PX)"),
    ("mget", "presence.online(): many users in one round trip"),
    ("del", "delete, invalidate, rate_limiter.reset, presence.offline; release script"),
    ("exists", "exists()"),
    ("expire", "expire(), sessions.refresh, the session and response indexes (NX / GT)"),
    ("ttl", "ttl()"),
    ("incrby", "incr()"),
    ("sadd", "sessions.create: the per-user session index"),
    ("srem", "sessions.invalidate: the per-user session index"),
    ("smembers", "sessions.invalidate_all: read the per-user session index"),
    ("zadd", "responses.set: the per-endpoint index (member user id, score expiry)"),
    ("zremrangebyscore", "responses.set: prune expired members from the endpoint index"),
    ("multi", "transactions: sessions, responses, pipeline(transaction=True)"),
    ("exec", "transactions"),
    ("watch", "sessions.invalidate_all: a concurrent create retries"),
    ("unwatch", "redis-py resets a WATCHed pipeline with UNWATCH"),
    ("evalsha", "the rate limit, lock release and invalidation scripts (resources/*.lua)"),
    ("eval", "the same scripts on a server that has not cached them (NOSCRIPT fallback)"),
    ("incr", "inside rate_limit.lua"),
    ("pttl", "inside rate_limit.lua"),
    ("pexpire", "inside rate_limit.lua"),
    ("zrange", "inside invalidate_endpoint.lua: read a chunk of the endpoint index"),
    ("zrem", "inside invalidate_endpoint.lua: drop the chunk's members"),
    ("zcard", "inside invalidate_endpoint.lua: how many members are left"),
    ("publish", "publish()"),
    ("subscribe", "subscribe(): the subscription's own connection"),
    ("unsubscribe", "closing a subscription"),
)


#: What a cluster-mode client (ElastiCache cluster mode, Serverless) runs besides
#: :data:`APP_USER_COMMANDS`: learning the slot map, following ASK redirections, reading from
#: replicas, and sharded pub/sub.
APP_USER_CLUSTER_COMMANDS: tuple[tuple[str, str], ...] = (
    ("cluster|slots", "connect: redis-py's cluster client reads the slot map"),
    ("cluster|shards", "connect: the slot map, as Redis 7 clients read it"),
    ("cluster|myid", "health per node: which node answered"),
    ("command", "connect: redis-py's cluster client reads the command table to find keys"),
    ("asking", "a key moving between shards (ASK redirection during resharding)"),
    ("readonly", "reads from replicas, when asked for"),
    ("readwrite", "back to reading from primaries"),
    ("spublish", "publish() in cluster mode: sharded pub/sub"),
    ("ssubscribe", "subscribe() in cluster mode: sharded pub/sub"),
    ("sunsubscribe", "closing a sharded subscription"),
)


def check_key_prefix(key_prefix: object) -> str | None:
    """Why ``key_prefix`` cannot separate tenants, or None when it can: a non-empty string
    without whitespace that ends with a delimiter (:data:`KEY_PREFIX_DELIMITERS`)."""
    if not isinstance(key_prefix, str):
        return "must be a string"
    if not key_prefix:
        return "must not be empty: keys of every app sharing the server would mix"
    if any(c.isspace() for c in key_prefix):
        return "must not contain whitespace"
    if key_prefix[-1] not in KEY_PREFIX_DELIMITERS:
        return (
            f"must end with {' or '.join(repr(d) for d in KEY_PREFIX_DELIMITERS)} "
            f"(e.g. {key_prefix + ':'!r}): without a delimiter it also covers longer names "
            f"({key_prefix + '0:'!r})"
        )
    return None


def app_user_access(key_prefix: str, *, channels: Iterable[str] = (), cluster: bool = False) -> str:
    """ACL rules of the application user: ``-@all`` plus exactly :data:`APP_USER_COMMANDS`, on
    keys and pub/sub channels under ``key_prefix`` only.

    ``channels`` adds bare channel names, each as a literal (no pattern): for services that
    publish and subscribe without the prefix (``prefix_channels=False``, as the seed does on
    ``alerts``). The app user gets exactly those names, nothing more.

    Raises ``ValueError`` naming the argument for a prefix that is empty (it would grant every
    key), holds whitespace (it would split the rule string) or does not end with a delimiter
    (``tenant1`` would reach ``tenant10:``), and for a channel name that is empty or holds
    whitespace.

    ``cluster=True`` adds :data:`APP_USER_CLUSTER_COMMANDS`, what a cluster-mode client needs.
    """
    problem = check_key_prefix(key_prefix)
    if problem is not None:
        raise ValueError(f"key_prefix {key_prefix!r} {problem}")
    if isinstance(channels, str):
        raise ValueError("channels must be a collection of channel names, not one string")
    granted = []
    for channel in channels:
        if not isinstance(channel, str) or not channel or any(c.isspace() for c in channel):
            raise ValueError(
                f"channels: {channel!r} is not a channel name (non-empty, no whitespace)"
            )
        granted.append(f"&{glob_escape(channel)}")
    pattern = glob_escape(key_prefix) + "*"
    extra = "".join(f" {rule}" for rule in dict.fromkeys(granted))
    allowed = APP_USER_COMMANDS + (APP_USER_CLUSTER_COMMANDS if cluster else ())
    commands = " ".join(f"+{name}" for name, _ in allowed)
    return f"~{pattern} &{pattern}{extra} -@all {commands}"
