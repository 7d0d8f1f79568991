"""Helpers shared by the conformance tests: one test body drives both clients.

Tests are ``async`` functions and wrap each client call in :func:`aw`, which awaits the async
client's coroutines and passes the sync client's results through.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import queue
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import redis

from berthcache import AsyncCache, Cache, CacheConfig
from berthcache.testing import free_port

AnyCache = Cache | AsyncCache
CacheFactory = Callable[..., AnyCache]
T = TypeVar("T")

CLIENT_KINDS = ("sync", "async")
#: Upper bound for anything a test waits for (a message, a server, an event).
WAIT = 5.0


async def aw(value: Any) -> Any:
    """Await ``value`` if the async client returned a coroutine; pass sync results through."""
    if inspect.isawaitable(value):
        return await value
    return value


def is_async(cache: AnyCache) -> bool:
    return isinstance(cache, AsyncCache)


def make_cache(kind: str, config: CacheConfig, **overrides: Any) -> AnyCache:
    """A client of ``kind`` ("sync" / "async") for ``config`` with ``overrides`` applied."""
    if kind == "sync":
        return Cache(config, **overrides)
    return AsyncCache(config, **overrides)


def config_url(config: CacheConfig, *, with_password: bool = True) -> str:
    """``config`` as a ``redis://`` / ``rediss://`` URL with its real credentials."""
    scheme = "rediss" if config.tls else "redis"
    auth = ""
    if config.username or (config.password and with_password):
        user = quote(config.username or "", safe="")
        secret = f":{quote(config.password, safe='')}" if config.password and with_password else ""
        auth = f"{user}{secret}@"
    return f"{scheme}://{auth}{config.host}:{config.port}/{config.db}"


def config_environ(config: CacheConfig) -> dict[str, str]:
    """The seed's ``REDIS_*`` variables describing ``config`` (as an app would get them)."""
    env = {
        "REDIS_HOST": config.host,
        "REDIS_PORT": str(config.port),
        "REDIS_DB": str(config.db),
        "REDIS_KEY_PREFIX": config.key_prefix,
        "REDIS_TLS": "true" if config.tls else "false",
    }
    if config.username:
        env["REDIS_USERNAME"] = config.username
    if config.password:
        env["REDIS_PASSWORD"] = config.password
    if config.tls_ca_file:
        env["REDIS_TLS_CA_FILE"] = config.tls_ca_file
    if config.cluster:
        env["REDIS_CLUSTER"] = "true"
    return env


def dead_port() -> int:
    """A local port nobody listens on (connections to it are refused)."""
    return free_port()


class Inbox:
    """Collects what a callback receives, from a thread (sync) or the loop (async), and lets the
    test await the next item with a timeout without blocking the event loop."""

    def __init__(self) -> None:
        self._items: queue.Queue[Any] = queue.Queue()

    def put(self, item: Any) -> None:
        self._items.put(item)

    async def get(self, within: float = WAIT) -> Any:
        """The next item; ``queue.Empty`` when none arrives ``within`` seconds."""
        try:
            return self._items.get_nowait()
        except queue.Empty:
            return await asyncio.to_thread(self._items.get, True, within)

    def empty(self) -> bool:
        return self._items.empty()


@contextlib.contextmanager
def elapsed() -> Iterator[list[float]]:
    """``with elapsed() as t: ...`` then ``t[0]`` is the seconds the block took."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


async def run_pipeline(
    cache: AnyCache, fill: Callable[[Any], object], *, transaction: bool = False
) -> list[Any]:
    """Queue commands with ``fill(pipe)`` and execute them, in either client's idiom."""
    if isinstance(cache, AsyncCache):
        async with cache.pipeline(transaction=transaction) as apipe:
            fill(apipe)
            return await apipe.execute()
    with cache.pipeline(transaction=transaction) as pipe:
        fill(pipe)
        return pipe.execute()


def start_server(local_redis_factory: Any) -> Any:
    """A separate local server from the harness (never the shared target): the RedisServer."""
    started = local_redis_factory()
    return getattr(started, "primary", started)


def server_config(server: Any, conf: CacheConfig) -> CacheConfig:
    """``conf`` pointed at ``server`` as its application user (or default user)."""
    has_app = any(u.name == "app" for u in getattr(server, "users", ()))
    kwargs = server.connection_kwargs("app" if has_app else None)
    return conf.replace(
        host=kwargs["host"],
        port=kwargs["port"],
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        tls=bool(kwargs.get("ssl")),
        tls_ca_file=kwargs.get("ssl_ca_certs"),
        cluster=False,  # a server of the test's own is a single node
    )


def _observe_writes(cache: AnyCache, observer: Callable[[bytes], None]) -> None:
    """Show ``observer`` every write of ``cache``'s transport through its seam
    (``observe_writes``), if it has one: a transport that writes to its sockets itself (the
    sync lean path) bypasses redis-py's connection class, which is patched as well (for what
    goes through ``cache.redis``)."""
    observe = getattr(getattr(cache, "_transport", None), "observe_writes", None)
    if observe is not None:
        observe(observer)


def record_sends(cache: AnyCache, monkeypatch: Any, marker: bytes) -> list[bytes]:
    """Record every socket write of ``cache``'s pool that mentions ``marker`` (a key prefix):
    one entry per round trip that carries our commands."""
    sends: list[bytes] = []

    def observed(data: bytes) -> None:
        if marker in data:
            sends.append(data)

    _observe_writes(cache, observed)
    if cache.config.cluster:  # cache.redis is redis-py's cluster client: not ours to count
        return sends
    connection_class = cache.redis.connection_pool.connection_class
    original = connection_class.send_packed_command

    def recording(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        chunks = command if isinstance(command, list | tuple) else [command]
        blob = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chunks)
        if marker in blob:
            sends.append(blob)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(connection_class, "send_packed_command", recording)
    return sends


def on_send(cache: AnyCache, monkeypatch: Any, marker: bytes, callback: Callable[[], None]) -> None:
    """Call ``callback`` each time ``cache``'s pool has written a command mentioning ``marker``
    to the server: a hook a test can await ("the command is on the wire") instead of sleeping.
    Called from the writing thread (sync client) or the event loop (async client)."""

    def observed(data: bytes) -> None:
        if marker in data:
            callback()

    _observe_writes(cache, observed)
    if cache.config.cluster:
        return
    connection_class = cache.redis.connection_pool.connection_class
    original = connection_class.send_packed_command

    def mentions(command: Any) -> bool:
        chunks = command if isinstance(command, list | tuple) else [command]
        return marker in b"".join(c if isinstance(c, bytes) else bytes(c) for c in chunks)

    if inspect.iscoroutinefunction(original):

        async def asending(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(self, command, *args, **kwargs)
            if mentions(command):
                callback()
            return result

        monkeypatch.setattr(connection_class, "send_packed_command", asending)
    else:

        def sending(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, command, *args, **kwargs)
            if mentions(command):
                callback()
            return result

        monkeypatch.setattr(connection_class, "send_packed_command", sending)


def plain_client(config: CacheConfig) -> Any:
    """redis-py's client for ``config`` as another app would hold it (the seed's service):
    ``redis.Redis``, or ``RedisCluster`` in cluster mode. Replies decoded."""
    kwargs = config.connection_kwargs()
    if config.cluster:
        from redis.cluster import RedisCluster

        kwargs.pop("db", None)
        return RedisCluster(**kwargs, decode_responses=True)
    return redis.Redis(**kwargs, decode_responses=True)


def session_key_part(cache: AnyCache, session_id: str) -> str:
    """The key of a session under the prefix, as docs/contract.md C8 documents it: the seed's
    ``session:{id}``, or in cluster mode ``session:{user-42}-session-{uuid}`` (a hash tag)."""
    if cache.config.cluster:
        user, rest = re.fullmatch(r"(user-.+)(-session-[0-9a-f-]{36})", session_id).groups()  # type: ignore[union-attr]
        return f"session:{{{user}}}{rest}"
    return f"session:{session_id}"


def api_key_part(cache: AnyCache, endpoint: str, user_id: object) -> str:
    """A response cache entry's key under the prefix (C9): ``api:{endpoint}:{user}``, with the
    endpoint as a hash tag in cluster mode."""
    name = f"{{{endpoint}}}" if cache.config.cluster else endpoint
    return f"api:{name}:{user_id}"
